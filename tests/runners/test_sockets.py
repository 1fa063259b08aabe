"""runners.sockets and runners.hostfs on real sockets and real mounts (no Docker needed).

Whatever a sandbox can put in its socket directory, the service connects to
the sandbox's own socket or to nothing: never through a symlink, never to a
file, a directory, a FIFO or another user's socket, and a swap after the
check changes nothing. The socket directory is a tiny tmpfs that fills up
at once and leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from domain.errors import SandboxTampered
from runners import hostfs
from runners.base import SANDBOX_UID, SOCKET_NAME
from runners.health import probe
from runners.sockets import AsyncSandboxTransport, SandboxTransport, check_socket, pinned_socket
from tests.conftest import need


@pytest.fixture
def as_root() -> None:
    """Chowning to the sandbox uid and mounting need root (skips, or fails under CI)."""
    need(
        os.geteuid() == 0, "these checks chown to the sandbox uid and mount a tmpfs: they need root"
    )


class Listener:
    """A tiny HTTP server on a Unix socket, answering /health, counting connections."""

    def __init__(self, path: Path, owner: int | None = SANDBOX_UID) -> None:
        self.path = path
        self.connections = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        if owner is not None:
            os.chown(path, owner, -1)
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(2)
                try:
                    while b"\r\n\r\n" not in conn.recv(4096):
                        pass
                    body = b'{"status": "ok"}'
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                        % (len(body), body)
                    )
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def dirs(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """``(socket_dir, elsewhere)``: the sandbox's socket directory, and a host directory with a host socket."""
    socket_dir, elsewhere = tmp_path / "run", tmp_path / "host"
    socket_dir.mkdir()
    elsewhere.mkdir()
    yield socket_dir, elsewhere


@pytest.mark.usefixtures("as_root")
def test_the_sandboxs_own_socket_is_reached_sync_and_async(dirs) -> None:
    socket_dir, _ = dirs
    server = Listener(socket_dir / SOCKET_NAME)
    try:
        assert check_socket(socket_dir, SANDBOX_UID) is True
        assert probe(socket_dir, SANDBOX_UID) is True
        with httpx.Client(transport=SandboxTransport(socket_dir, SANDBOX_UID)) as client:
            assert client.get("http://demo/health").json() == {"status": "ok"}

        async def fetch() -> dict:
            async with httpx.AsyncClient(
                transport=AsyncSandboxTransport(socket_dir, SANDBOX_UID)
            ) as client:
                return (await client.get("http://demo/health")).json()

        assert asyncio.run(fetch()) == {"status": "ok"}
    finally:
        server.close()


@pytest.mark.usefixtures("as_root")
@pytest.mark.parametrize(
    "kind", ["symlink", "relative-symlink", "file", "directory", "fifo", "other-owner"]
)
def test_anything_else_in_its_place_is_refused_and_never_connected_to(dirs, kind: str) -> None:
    socket_dir, elsewhere = dirs
    host = Listener(elsewhere / "host.sock", owner=SANDBOX_UID)  # even owned by the sandbox uid
    entry = socket_dir / SOCKET_NAME
    try:
        if kind == "symlink":
            entry.symlink_to(host.path)
        elif kind == "relative-symlink":
            os.symlink(os.path.relpath(host.path, socket_dir), entry)
        elif kind == "file":
            entry.write_text("not a socket")
            os.chown(entry, SANDBOX_UID, -1)
        elif kind == "directory":
            entry.mkdir()
            os.chown(entry, SANDBOX_UID, -1)
        elif kind == "fifo":
            os.mkfifo(entry)
            os.chown(entry, SANDBOX_UID, -1)
        else:
            other = Listener(entry, owner=SANDBOX_UID + 1)
        with pytest.raises(SandboxTampered):
            check_socket(socket_dir, SANDBOX_UID)
        with pytest.raises(SandboxTampered):
            probe(socket_dir, SANDBOX_UID)
        with (
            httpx.Client(transport=SandboxTransport(socket_dir, SANDBOX_UID)) as client,
            pytest.raises(SandboxTampered),
        ):
            client.get("http://demo/health")
        assert host.connections == 0
        if kind == "other-owner":
            assert other.connections == 0
            other.close()
    finally:
        host.close()


@pytest.mark.usefixtures("as_root")
def test_a_swap_after_the_check_still_connects_to_the_checked_socket(dirs) -> None:
    socket_dir, elsewhere = dirs
    genuine = Listener(socket_dir / SOCKET_NAME)
    host = Listener(elsewhere / "host.sock")
    try:
        with pinned_socket(socket_dir, SANDBOX_UID) as pinned:
            os.rename(socket_dir / SOCKET_NAME, socket_dir / "moved.sock")
            (socket_dir / SOCKET_NAME).symlink_to(host.path)
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.connect(pinned)
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: demo\r\n\r\n")
            answer = conn.recv(4096)
            conn.close()
        assert answer.startswith(b"HTTP/1.1 200") and b'"ok"' in answer
        assert genuine.connections == 1 and host.connections == 0
    finally:
        genuine.close()
        host.close()


def test_no_socket_yet_is_not_an_error_but_a_connection_error(dirs) -> None:
    socket_dir, _ = dirs
    assert check_socket(socket_dir, SANDBOX_UID) is False
    assert probe(socket_dir, SANDBOX_UID) is False
    with (
        httpx.Client(transport=SandboxTransport(socket_dir, SANDBOX_UID)) as client,
        pytest.raises(httpx.ConnectError),
    ):
        client.get("http://demo/health")
    assert check_socket(socket_dir / "gone", SANDBOX_UID) is False


def test_a_socket_directory_replaced_by_a_symlink_is_refused(dirs) -> None:
    socket_dir, elsewhere = dirs
    socket_dir.rmdir()
    socket_dir.symlink_to(elsewhere)
    with pytest.raises(SandboxTampered):
        check_socket(socket_dir, SANDBOX_UID)


@pytest.mark.usefixtures("as_root")
def test_the_socket_tmpfs_fills_at_64_kib_and_removal_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    run = root / "run"
    run.mkdir(parents=True)
    hostfs.mount_tmpfs(run, uid=SANDBOX_UID, gid=os.getgid())
    try:
        assert hostfs.mounts_under(root) == [run]
        written = 0
        with pytest.raises(OSError), open(run / "filler", "wb") as handle:
            for _ in range(1024):
                handle.write(b"x" * 65536)
                handle.flush()
                written += 65536
        assert written <= hostfs.SOCKET_TMPFS_BYTES
        with pytest.raises(OSError):  # inodes are bounded too
            for i in range(100):
                (run / f"f{i}").touch()
        (run / "link").unlink(missing_ok=True)
    finally:
        hostfs.remove_tree(root)
    assert not root.exists()
    assert hostfs.mounts_under(root) == []
