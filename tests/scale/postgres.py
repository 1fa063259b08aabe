"""A PostgreSQL server of one's own that a test may stop and start under a running service.

The same script as the shared test server (``.ci/start-postgres.sh``) on another
port and in another directory (``BIBIA_PG_PORT``, ``BIBIA_PG_DIR``): stopping it
breaks nothing another test uses. Unlike the shared one, its commits are durable
(``BIBIA_PG_DURABLE``): the shared server's ``synchronous_commit = off`` would let
an immediate stop drop the last commits (a session opened just before), which a
real server does not. The directory is under ``/var/tmp`` (the
server runs as the ``postgres`` user when the tests run as root, and pytest's
temporary directories are root's alone).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.backends.conftest import PostgresServer
from tests.conftest import ROOT, free_port, need


@dataclass
class PrivatePostgres:
    directory: Path
    port: int

    @property
    def url(self) -> str:
        """The server's SQLAlchemy URL without a database (as ``BIBIA_TEST_POSTGRES_URL``)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"

    def server(self) -> PostgresServer:
        """The test helper that creates and drops databases on this server."""
        return PostgresServer(self.url)

    def start(self) -> None:
        """Start the server (initdb the first time); returns once it answers."""
        env = {
            **os.environ,
            "BIBIA_PG_PORT": str(self.port),
            "BIBIA_PG_DIR": str(self.directory),
            # durable commits: an immediate stop must not lose a committed row (a session, say)
            "BIBIA_PG_DURABLE": "1",
        }
        done = subprocess.run(
            ["bash", ".ci/start-postgres.sh"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr[-3000:]

    def stop(self) -> None:
        """``pg_ctl stop -m immediate``: the server quits without a clean shutdown, connections drop."""
        data = self.directory / "data"
        if not (data / "postmaster.pid").exists():
            return
        command = [str(self._bindir() / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, capture_output=True, timeout=60, check=False)
        deadline = time.monotonic() + 30
        while self.answers() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not self.answers(), "the private PostgreSQL still answers"

    def answers(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(
                f"postgresql://postgres@127.0.0.1:{self.port}/postgres", connect_timeout=2
            ):
                return True
        except psycopg.Error:
            return False

    def _bindir(self) -> Path:
        version = (self.directory / "data" / "PG_VERSION").read_text().strip()
        found = Path(f"/usr/lib/postgresql/{version}/bin")
        if found.is_dir():
            return found
        pg_ctl = shutil.which("pg_ctl")
        assert pg_ctl, "no pg_ctl"
        return Path(pg_ctl).resolve().parent


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A fresh PostgreSQL cluster on a free loopback port, removed afterwards."""
    need(
        shutil.which("pg_ctl") is not None or any(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")),
        "no PostgreSQL server binaries (.ci/provision.sh installs Debian's postgresql)",
    )
    directory = Path(tempfile.mkdtemp(prefix="bibia-pg-private-", dir="/var/tmp"))
    server = PrivatePostgres(directory, free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
