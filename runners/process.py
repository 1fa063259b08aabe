"""ProcessRunner: demonstrators as plain host processes.

FOR DEVELOPMENT AND TRUSTED REFERENCE MODELS ONLY. There is no isolation: the
model's code runs on the host with the service's rights, its network and
its files. It therefore refuses any model whose spec is not ``trusted``
(reference models the project built itself), unless it was created with
``allow_untrusted=True`` (a developer's own machine). Use
:class:`runners.docker.DockerRunner` for registered models.

State survives the runner object and the service: each demonstrator has
``<state_dir>/<demo_id>.json`` (pid, process start time, labels),
``<demo_id>.log`` (the server's output) and, once it ended,
``<demo_id>.exit`` (its exit code, written by the ``sh`` wrapper that runs
it). A new ProcessRunner on the same ``state_dir`` sees every demonstrator
started by a previous one. ``state_dir`` is typically the parent of the
socket directories. Linux only (reads ``/proc``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from domain.errors import DemoConflict, DemoMissing, RunnerError, UntrustedModel
from runners.base import DemoSpec, RunInfo, RunState, RunStatus, Usage

# Runs the server, then records its exit code atomically: $0 is the exit file.
_WRAPPER = '"$@"; code=$?; echo "$code" > "$0.tmp" && mv "$0.tmp" "$0"; exit "$code"'
_PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")
_LOG_TAIL_BYTES = 256 * 1024
SOURCE_PROCFS = "procfs"
PROC_ROOT = Path("/proc")


def _default_pythonpath() -> Path:
    spec = importlib.util.find_spec("demos")
    if spec is None or not spec.submodule_search_locations:
        raise RunnerError(
            "Le paquet demos est introuvable : ProcessRunner ne peut pas lancer le serveur."
        )
    return Path(next(iter(spec.submodule_search_locations))).parent


class ProcessRunner:
    """Runs ``python -m demos.server`` as host subprocesses, without any sandbox.

    Args:
        state_dir: where state, log and exit files live (created if needed).
        python: the interpreter to run the server with.
        pythonpath: the directory holding the ``demos`` package (default:
            where this interpreter finds it).
        allow_untrusted: also run models not marked ``trusted`` - only on a
            developer's machine, never in a shared deployment.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        python: str = sys.executable,
        pythonpath: Path | None = None,
        allow_untrusted: bool = False,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.python = python
        self.pythonpath = pythonpath
        self.allow_untrusted = allow_untrusted
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def socket_owner(self) -> int:
        """The server runs as the service's own user, so its socket is the service's."""
        return os.getuid()

    @property
    def isolates(self) -> bool:
        """Never: the server runs on the host with the service's rights."""
        return False

    def accepts(self, *, trusted: bool) -> bool:
        """Trusted reference models, or any model when ``allow_untrusted`` (a developer's machine)."""
        return trusted or self.allow_untrusted

    def start(self, spec: DemoSpec) -> RunInfo:
        """Start the server for ``spec`` as a host process.

        Raises:
            UntrustedModel: ``spec.trusted`` is false and untrusted models
                are not allowed: the host has no sandbox.
            DemoConflict: a demonstrator with this id is known (stop it first).
            RunnerError: the model directory is missing or the process
                could not be started.
        """
        if not self.accepts(trusted=spec.trusted):
            raise UntrustedModel(
                "ProcessRunner exécute le modèle sur l'hôte, sans isolation : il ne lance que les modèles "
                "de référence de confiance (DemoSpec.trusted). Utilisez DockerRunner pour ce modèle."
            )
        if not spec.model_dir.is_dir():
            raise RunnerError(f"Le dossier du modèle {spec.model_dir} n'existe pas.")
        if self._read_state(spec.demo_id) is not None:
            raise DemoConflict(f"Le démonstrateur {spec.demo_id} existe déjà : arrêtez-le d'abord.")
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            spec.socket_dir.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                spec.socket_path.unlink()
            for path in (self._exit_file(spec.demo_id), self._log_file(spec.demo_id)):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            pythonpath = self.pythonpath or _default_pythonpath()
            env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
            env.update(spec.server_env(str(spec.model_dir), str(spec.socket_path)))
            env["PYTHONPATH"] = str(pythonpath)
            with open(self._log_file(spec.demo_id), "ab") as log:
                child = subprocess.Popen(
                    [
                        "/bin/sh",
                        "-c",
                        _WRAPPER,
                        str(self._exit_file(spec.demo_id)),
                        self.python,
                        "-m",
                        "demos.server",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=str(spec.socket_dir),
                    start_new_session=True,
                )
        except OSError as exc:
            raise RunnerError(
                f"Impossible de lancer le démonstrateur {spec.demo_id} : {exc}"
            ) from exc
        self._children[spec.demo_id] = child
        labels = spec.all_labels(time.time() + spec.ttl_seconds)
        state = {
            "demo_id": spec.demo_id,
            "pid": child.pid,
            "proc_start": _proc_start(child.pid),
            "labels": labels,
            "socket_path": str(spec.socket_path),
            "model_dir": str(spec.model_dir),
            "started_at": time.time(),
        }
        tmp = self._state_file(spec.demo_id).with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        tmp.replace(self._state_file(spec.demo_id))
        return RunInfo(spec.demo_id, str(child.pid), self.status(spec.demo_id), labels)

    def status(self, demo_id: str) -> RunStatus:
        state = self._read_state(demo_id)
        if state is None:
            return RunStatus(RunState.MISSING)
        code = self._exit_code(demo_id)
        if code is not None:
            return RunStatus(RunState.EXITED, code, False, None)
        if self._alive(demo_id, state):
            return RunStatus(RunState.RUNNING)
        return RunStatus(RunState.EXITED, None, False, "le processus a disparu sans code de sortie")

    def logs(self, demo_id: str, *, tail: int = 200) -> str:
        if self._read_state(demo_id) is None:
            raise DemoMissing(f"Aucun démonstrateur {demo_id}.")
        try:
            with open(self._log_file(demo_id), "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - _LOG_TAIL_BYTES))
                text = log.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-tail:]) + ("\n" if text.endswith("\n") else "")

    def stop(self, demo_id: str, *, timeout: float = 5.0) -> None:
        state = self._read_state(demo_id)
        if state is None:
            return
        if self._alive(demo_id, state):
            pgid = int(state["pid"])  # the wrapper leads its own session and group
            _signal_group(pgid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self._alive(demo_id, state) and time.monotonic() < deadline:
                time.sleep(0.05)
            _signal_group(pgid, signal.SIGKILL)
            deadline = time.monotonic() + 2.0
            while self._alive(demo_id, state) and time.monotonic() < deadline:
                time.sleep(0.02)
        child = self._children.pop(demo_id, None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=0.5)
        for path in (
            self._exit_file(demo_id),
            self._log_file(demo_id),
            Path(state.get("socket_path", "")),
            self._state_file(demo_id),
        ):
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
                if path.name:
                    path.unlink()

    def usage(self, demo_id: str) -> Usage | None:
        """CPU time and peak memory of the demonstrator's processes, from the kernel's ``/proc``.

        The wrapper leads its own session, and the server (and anything it
        started) runs in it: for every live process of that session,
        ``/proc/<pid>/stat`` utime + stime + cutime + cstime (its children
        it waited for) over the clock ticks, and ``/proc/<pid>/status``
        VmHWM (peak resident memory). The peak is their sum: an upper bound
        when several processes peaked at different times (with one server
        process, its own peak plus the wrapper's ~1 MB). None once the
        demonstrator has ended or is unknown.
        """
        state = self._read_state(demo_id)
        if state is None or self._exit_code(demo_id) is not None or not self._alive(demo_id, state):
            return None
        return _session_usage(int(state["pid"]), PROC_ROOT)

    def list(self) -> list[RunInfo]:
        if not self.state_dir.is_dir():
            return []
        found = []
        for path in sorted(self.state_dir.glob("*.json")):
            state = self._read_state(path.stem)
            if state is not None:
                found.append(
                    RunInfo(
                        path.stem, str(state["pid"]), self.status(path.stem), dict(state["labels"])
                    )
                )
        return found

    def _state_file(self, demo_id: str) -> Path:
        return self.state_dir / f"{demo_id}.json"

    def _log_file(self, demo_id: str) -> Path:
        return self.state_dir / f"{demo_id}.log"

    def _exit_file(self, demo_id: str) -> Path:
        return self.state_dir / f"{demo_id}.exit"

    def _read_state(self, demo_id: str) -> dict[str, Any] | None:
        try:
            state = json.loads(self._state_file(demo_id).read_text(encoding="utf-8"))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, ValueError) as exc:
            raise RunnerError(f"État illisible pour le démonstrateur {demo_id} : {exc}") from exc
        return state if isinstance(state, dict) and "pid" in state else None

    def _exit_code(self, demo_id: str) -> int | None:
        try:
            return int(self._exit_file(demo_id).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _alive(self, demo_id: str, state: dict[str, Any]) -> bool:
        pid = int(state["pid"])
        child = self._children.get(demo_id)
        if child is not None and child.pid == pid:
            return child.poll() is None  # also reaps our own zombie
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)  # a zombie child of an earlier runner in this process
        start = _proc_start(pid)
        return start is not None and start == state.get("proc_start")


def _proc_start(pid: int) -> int | None:
    """The process's start time in clock ticks (guards against pid reuse), or
    None when it does not exist or is a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _session_usage(sid: int, proc_root: Path) -> Usage | None:
    """The summed CPU time and peak RSS of the live processes of session ``sid``, or None if none."""
    ticks = os.sysconf("SC_CLK_TCK")
    cpu_ticks, peak, found = 0, 0, False
    for entry in proc_root.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            status = (entry / "status").read_text()
        except OSError:  # it ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[0] is field 3 of proc(5): session is field 6, utime..cstime are fields 14-17
        if len(fields) < 15 or not fields[3].isdigit() or int(fields[3]) != sid:
            continue
        found = True
        cpu_ticks += sum(int(f) for f in fields[11:15] if f.isdigit())
        peak += _vm_hwm(status)
    if not found:
        return None
    return Usage(cpu_ticks / ticks, peak or None, SOURCE_PROCFS)


def _vm_hwm(status: str) -> int:
    """``VmHWM`` of a ``/proc/<pid>/status`` text, in bytes (0 when absent: a kernel thread, a zombie)."""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) * 1024  # the kernel writes it in kB (KiB)
    return 0


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
