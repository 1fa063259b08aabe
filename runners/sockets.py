"""The service's side of a sandbox's Unix socket: connect only to the socket the sandbox was given.

The socket directory is writable by the sandbox (its server must create the
socket there), so whatever sits at ``<socket_dir>/demo.sock`` is hostile: a
symlink to the Docker engine's socket, a regular file, a directory, a socket
of another user. Connecting by path would follow a symlink with the
service's rights. So no connection is ever made by that path; each one:

1. opens the socket directory ``O_PATH | O_DIRECTORY | O_NOFOLLOW`` (its
   parents belong to the service; the directory is a mount point the sandbox
   cannot rename);
2. opens ``demo.sock`` relative to it with ``O_PATH | O_NOFOLLOW``: a symlink
   is opened as itself, never followed;
3. checks that descriptor with ``fstat``: a socket, owned by the sandbox's
   uid, else :class:`SandboxTampered`;
4. connects to ``/proc/self/fd/<n>``: the kernel connects to that very inode,
   so a swap after step 2 changes nothing.

The httpx transports below do this for every new connection, so pooled
clients are covered too; :func:`check_socket` lets a caller re-check the
entry before reusing a pooled connection (a swap is then detected mid-life).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpcore
import httpx

from domain.errors import SandboxTampered
from runners.base import SOCKET_NAME

__all__ = ["AsyncSandboxTransport", "SandboxTransport", "check_socket", "pinned_socket"]

_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_ENTRY_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


class SocketMissing(OSError):
    """No socket yet (the server has not bound it), or the directory is gone."""


def _describe(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "un lien symbolique"
    if stat.S_ISDIR(mode):
        return "un dossier"
    if stat.S_ISREG(mode):
        return "un fichier ordinaire"
    if stat.S_ISFIFO(mode):
        return "un tube nommé"
    return "un fichier spécial"


@contextlib.contextmanager
def pinned_socket(socket_dir: Path, owner_uid: int) -> Iterator[str]:
    """Yield a path that connects to the checked socket inode, and only to it.

    Raises:
        SocketMissing: no socket (yet) in ``socket_dir``, or no ``socket_dir``.
        SandboxTampered: the entry is not a socket owned by ``owner_uid``
            (a symlink, a file, a directory, someone else's socket).
    """
    try:
        dir_fd = os.open(socket_dir, _DIR_FLAGS)
    except (FileNotFoundError, NotADirectoryError) as exc:
        # NotADirectoryError: the directory itself was replaced by a symlink or a file
        if isinstance(exc, NotADirectoryError) or os.path.islink(socket_dir):
            raise SandboxTampered(
                f"le dossier du socket {socket_dir} a été remplacé : le bac à sable a tenté de rediriger le service"
            ) from None
        raise SocketMissing(f"le dossier du socket {socket_dir} n'existe pas") from None
    try:
        try:
            fd = os.open(SOCKET_NAME, _ENTRY_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            raise SocketMissing(
                f"aucun socket dans {socket_dir} (le serveur ne l'a pas encore créé)"
            ) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISSOCK(info.st_mode):
                raise SandboxTampered(
                    f"le socket du démonstrateur a été remplacé par {_describe(info.st_mode)} : "
                    "le bac à sable a tenté de rediriger les connexions du service"
                )
            if info.st_uid != owner_uid:
                raise SandboxTampered(
                    f"le socket du démonstrateur appartient à l'utilisateur {info.st_uid}, pas à celui du bac à sable "
                    f"({owner_uid}) : connexion refusée"
                )
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
    finally:
        os.close(dir_fd)


def check_socket(socket_dir: Path, owner_uid: int) -> bool:
    """Whether the sandbox's socket is there (False: not yet); never follows a link.

    Raises:
        SandboxTampered: something other than the sandbox's socket is there.
    """
    try:
        with pinned_socket(socket_dir, owner_uid):
            return True
    except SocketMissing:
        return False


def _connect_error(exc: SocketMissing) -> httpcore.ConnectError:
    return httpcore.ConnectError(str(exc))


class _SyncBackend(httpcore.NetworkBackend):
    def __init__(self, socket_dir: Path, owner_uid: int) -> None:
        self._inner = httpcore.SyncBackend()
        self._dir, self._uid = Path(socket_dir), owner_uid

    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("un démonstrateur ne se joint que par son socket Unix")

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        try:
            with pinned_socket(self._dir, self._uid) as pinned:
                return self._inner.connect_unix_socket(pinned, timeout, socket_options)
        except SocketMissing as exc:
            raise _connect_error(exc) from None

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, socket_dir: Path, owner_uid: int) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._dir, self._uid = Path(socket_dir), owner_uid

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("un démonstrateur ne se joint que par son socket Unix")

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        # The descriptor stays open until the connection is made: connecting to a Unix
        # socket is immediate (or refused), never a wait on the network.
        try:
            with pinned_socket(self._dir, self._uid) as pinned:
                return await self._inner.connect_unix_socket(pinned, timeout, socket_options)
        except SocketMissing as exc:
            raise _connect_error(exc) from None

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _pool_options(socket_dir: Path) -> dict[str, Any]:
    """httpcore pool options; ``uds`` is only a label here: our backends never connect by it."""
    return {
        "max_connections": 32,
        "max_keepalive_connections": 8,
        "keepalive_expiry": 30.0,
        "uds": str(Path(socket_dir) / SOCKET_NAME),
    }


class SandboxTransport(httpx.HTTPTransport):
    """An httpx transport to one sandbox's socket, connecting only as :func:`pinned_socket` allows.

    :class:`SandboxTampered` raised while connecting propagates as is (it is
    not an ``httpx.HTTPError``): the caller must fail the demonstrator.
    """

    def __init__(self, socket_dir: Path, owner_uid: int) -> None:
        super().__init__(verify=False)  # plain HTTP on a Unix socket: no certificate store to load
        # httpx builds its httpcore pool without a network-backend seam: build ours the same way.
        self._pool = httpcore.ConnectionPool(
            **_pool_options(socket_dir), network_backend=_SyncBackend(socket_dir, owner_uid)
        )


class AsyncSandboxTransport(httpx.AsyncHTTPTransport):
    """The asynchronous twin of :class:`SandboxTransport` (the service's proxy)."""

    def __init__(self, socket_dir: Path, owner_uid: int) -> None:
        super().__init__(verify=False)
        self._pool = httpcore.AsyncConnectionPool(
            **_pool_options(socket_dir), network_backend=_AsyncBackend(socket_dir, owner_uid)
        )
