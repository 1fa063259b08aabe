"""Host directories a sandbox writes into: a tiny tmpfs each, never the host's disk.

The only host directory a sandbox can write is its socket directory (its
server must create its socket there). DockerRunner mounts a tmpfs of a few
pages and inodes on it before the sandbox starts, so a model that writes
beside its socket fills at most that (and it is memory charged to whoever
wrote it, released at unmount), never the host's disk. :func:`remove_tree`
unmounts whatever is mounted under a demonstrator's directory, then removes
it all; ``shutil.rmtree`` does not follow symlinks, so what the sandbox left
there cannot point the removal elsewhere.

Mounting needs root, or ``CAP_SYS_ADMIN`` for a dedicated service user.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
from pathlib import Path

from domain.errors import RunnerError

MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x2, 0x4, 0x8
MNT_DETACH = 0x2
SOCKET_TMPFS_BYTES = 64 * 1024  # the socket takes no data block; this is room for nothing else
SOCKET_TMPFS_INODES = 8  # the directory, the socket, and a handful more

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def mount_tmpfs(
    path: Path,
    *,
    uid: int,
    gid: int,
    size_bytes: int = SOCKET_TMPFS_BYTES,
    inodes: int = SOCKET_TMPFS_INODES,
) -> None:
    """Mount a ``nosuid,nodev,noexec`` tmpfs of ``size_bytes`` on ``path``, owned by ``uid:gid``, mode 0770.

    Raises:
        RunnerError: the service may not mount (not root, no CAP_SYS_ADMIN), or the mount failed.
    """
    options = f"size={size_bytes},nr_inodes={inodes},mode=0770,uid={uid},gid={gid}".encode()
    if (
        _libc.mount(
            b"tmpfs", os.fsencode(path), b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options
        )
        != 0
    ):
        errno = ctypes.get_errno()
        hint = (
            " : le service doit pouvoir monter un tmpfs (lancez-le en root, ou donnez à son utilisateur dédié la "
            "capacité CAP_SYS_ADMIN)"
            if errno in (1, 13)  # EPERM, EACCES
            else ""
        )
        raise RunnerError(
            f"Impossible de monter le dossier du socket {path} ({os.strerror(errno)}){hint}."
        )


def mounts_under(root: Path) -> list[Path]:
    """Mount points at or below ``root``, deepest first (from ``/proc/self/mountinfo``)."""
    prefix = os.fsencode(os.path.abspath(root))
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_bytes().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split(b" ")
        if len(fields) < 5:
            continue
        point = _unescape(fields[4])
        if point == prefix or point.startswith(prefix + b"/"):
            found.append(Path(os.fsdecode(point)))
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def unmount(path: Path) -> bool:
    """Detach the mount on ``path`` (lazily: a sandbox still using it keeps its own view). False if none."""
    return bool(_libc.umount2(os.fsencode(path), MNT_DETACH) == 0)


def remove_tree(root: Path) -> None:
    """Unmount everything under ``root``, then remove it entirely. Missing is fine."""
    for point in mounts_under(root):
        unmount(point)
    shutil.rmtree(root, ignore_errors=True)


def _unescape(raw: bytes) -> bytes:
    """mountinfo escapes space, tab, newline and backslash as ``\\ooo``."""
    out, i = bytearray(), 0
    while i < len(raw):
        if raw[i : i + 1] == b"\\" and raw[i + 1 : i + 4].isdigit():
            out.append(int(raw[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)
