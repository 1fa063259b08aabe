"""A Docker engine of one's own that a test may restart under a running service.

``dockerd`` started as ``docker/ensure-dockerd.sh`` starts the machine's
engine (``setsid nohup dockerd``), with its own data root, exec root, pid file
and socket, no bridge and no iptables rules (demonstrators have no network:
they answer on a Unix socket). Restarting it breaks nothing another test uses.
The demonstrator image is copied from the machine's engine (``docker save |
docker load``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import need


@dataclass
class PrivateDockerd:
    data_root: Path
    exec_root: Path

    @property
    def socket(self) -> Path:
        return self.exec_root / "docker.sock"

    @property
    def host(self) -> str:
        """``DOCKER_HOST`` for clients of this engine."""
        return f"unix://{self.socket}"

    @property
    def pid_file(self) -> Path:
        return self.exec_root / "dockerd.pid"

    def docker(self, *args: str, **kwargs: object) -> subprocess.CompletedProcess:
        env = {**os.environ, "DOCKER_HOST": self.host}
        return subprocess.run(["docker", *args], env=env, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload, no-any-return]

    def answers(self) -> bool:
        return self.docker("info", timeout=20).returncode == 0

    def start(self) -> None:
        """Start the engine (as docker/ensure-dockerd.sh does) and wait until it answers."""
        with open(self.data_root.parent / "dockerd.log", "ab") as log:
            subprocess.Popen(
                [
                    "setsid", "nohup", "dockerd",
                    "--data-root", str(self.data_root),
                    "--exec-root", str(self.exec_root),
                    "--pidfile", str(self.pid_file),
                    "-H", self.host,
                    "--bridge=none", "--iptables=false", "--ip6tables=false",
                ],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while not self.answers():
            assert time.monotonic() < deadline, self.log_tail()
            time.sleep(0.3)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the engine with ``sig`` (SIGTERM: a clean stop, its containers stopped with it)."""
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, sig)
            deadline = time.monotonic() + 60
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                state = Path(f"/proc/{pid}/stat").read_text().split()[2]
                if state == "Z":
                    break
                time.sleep(0.2)
        while self.answers():
            time.sleep(0.2)

    def restart(self) -> None:
        self.stop()
        self.start()

    def load_image(self, tag: str) -> None:
        """Copy ``tag`` from the machine's engine into this one."""
        if self.docker("image", "inspect", tag, timeout=30).returncode == 0:
            return
        save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE)
        env = {**os.environ, "DOCKER_HOST": self.host}
        loaded = subprocess.run(
            ["docker", "load"], stdin=save.stdout, env=env, capture_output=True, timeout=600
        )
        assert save.wait(timeout=600) == 0 and loaded.returncode == 0, loaded.stderr[-2000:]

    def log_tail(self) -> str:
        log = self.data_root.parent / "dockerd.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""


@contextlib.contextmanager
def private_dockerd() -> Iterator[PrivateDockerd]:
    """A private engine, its containers removed and its directories deleted afterwards."""
    need(shutil.which("dockerd") is not None, "no dockerd (docker/ensure-dockerd.sh installs it)")
    top = Path(tempfile.mkdtemp(prefix="bibia-dockerd-", dir="/var/tmp"))
    # short: the socket's path must stay under 108 bytes
    exec_root = Path(tempfile.mkdtemp(prefix="bdk-", dir="/run"))
    engine = PrivateDockerd(top / "data", exec_root)
    try:
        engine.start()
        yield engine
    finally:
        if engine.answers():
            ids = engine.docker("ps", "-aq", timeout=60).stdout.split()
            if ids:
                engine.docker("rm", "-f", *ids, timeout=120)
        engine.stop()
        shutil.rmtree(top, ignore_errors=True)
        shutil.rmtree(exec_root, ignore_errors=True)
