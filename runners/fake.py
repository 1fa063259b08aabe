"""FakeRunner: demonstrators as threads in this process, for tests (as httpx ships ``MockTransport``).

A fake sandbox is a thread that plays the demonstrator server's part of the
contract (:mod:`runners.base`): it "loads" its model, then serves a tiny
HTTP app on the spec's Unix socket (``GET /health``, ``POST /predict``,
``GET /``), owned by the current uid (:attr:`FakeRunner.socket_owner`), and
stops by itself after its time to live. Warm specs (``BIBIA_WAIT_FOR_MODEL``)
wait for ``.bibia-ready`` in their model directory, and stop with code 5
after their idle limit, as the real server does. It writes the real server's
log lines, so callers that read them behave the same.

What a sandbox does is a :class:`Behaviour`, asked of
:attr:`FakeRunner.behaviour` when its loading starts (so a test may switch it
before a launch): become ready after a while, never become ready, fail to
load with logs. :class:`FakeEngine` holds the sandboxes (a fake Docker
daemon: a new runner on the same engine finds what an earlier one started)
and drives what happens later: :meth:`FakeEngine.crash`,
:meth:`FakeEngine.tamper` (the socket replaced by a symlink),
:meth:`FakeEngine.vanish` (removed behind the service's back).

It isolates nothing; :attr:`FakeRunner.isolates` says what it stands in for
(Docker by default, so the warm pool runs on it).
"""

from __future__ import annotations

import contextlib
import http.server
import itertools
import json
import os
import socketserver
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.errors import DemoConflict, DemoMissing, RunnerError, UntrustedModel
from runners.base import DemoSpec, RunInfo, RunState, RunStatus, Usage

READY_MARKER = ".bibia-ready"  # demos/server/settings.py
EXIT_MODEL = 3  # demos/server: the model failed to load
EXIT_IDLE = 5  # demos/server: a warm sandbox received no model
EXIT_STOPPED = 143
DEFAULT_IDLE_SECONDS = 600
POLL_SECONDS = 0.02
SOURCE_THREAD_TIME = "fake-thread-time"

Records = list[dict[str, Any]]


def _no_predictions(records: Records) -> Records:
    return []


@dataclass(frozen=True)
class Behaviour:
    """What one fake sandbox does once its model is there.

    Attributes:
        load_seconds: how long loading takes before it serves.
        ready: False: it never answers its health check (it runs until stopped or its TTL).
        exit_code: ends with this code when loading is over instead of serving
            (3: the model failed to load).
        logs: what it writes as it ends that way.
        oom_killed: it ends as killed for using too much memory.
        predict: its answer to ``POST /predict`` (the request's records in, predictions out).
        peak_memory_bytes: what :meth:`FakeRunner.usage` reports as its peak memory (a
            thread has no memory of its own to measure: None says the runner cannot tell).
    """

    load_seconds: float = 0.0
    ready: bool = True
    exit_code: int | None = None
    logs: str = ""
    oom_killed: bool = False
    predict: Callable[[Records], Records] = _no_predictions
    peak_memory_bytes: int | None = None


class _Sandbox:
    """One fake demonstrator: its life thread, its HTTP server, its log."""

    def __init__(
        self, spec: DemoSpec, runner_id: str, behaviour: Callable[[DemoSpec], Behaviour]
    ) -> None:
        self.spec = spec
        self.runner_id = runner_id
        self.labels = spec.all_labels(time.time() + spec.ttl_seconds)
        self._behaviour = behaviour
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._end = threading.Event()  # stop, crash or vanish: the life thread ends now
        self._status = RunStatus(RunState.RUNNING)
        self._server: _Server | None = None
        self._predict: Callable[[Records], Records] = _no_predictions
        self._peak_memory: int | None = None
        self._cpu_seconds = 0.0  # the CPU time of the threads that served its requests
        self._started = time.monotonic()
        self._thread = threading.Thread(
            target=self._life, name=f"fake-sandbox-{spec.demo_id}", daemon=True
        )

    # ------------------------------------------------------------ what the runner sees

    def begin(self) -> None:
        self._thread.start()

    def status(self) -> RunStatus:
        with self._lock:
            return self._status

    def logs(self, tail: int) -> str:
        with self._lock:
            lines = self._lines[-tail:]
        return "".join(f"{line}\n" for line in lines)

    def usage(self) -> Usage | None:
        """The CPU time its request threads used (``time.thread_time``), while it runs."""
        with self._lock:
            if self._status.state is not RunState.RUNNING:
                return None
            return Usage(self._cpu_seconds, self._peak_memory, SOURCE_THREAD_TIME)

    def add_cpu(self, seconds: float) -> None:
        with self._lock:
            self._cpu_seconds += max(0.0, seconds)

    def end(self, code: int, *, oom_killed: bool = False, detail: str | None = None) -> None:
        """End the server (as it would exit by itself, or be killed)."""
        with self._lock:
            if self._status.state is not RunState.RUNNING:
                return
            self._status = RunStatus(RunState.EXITED, code, oom_killed, detail)
        self._end.set()
        self._close()

    def join(self, timeout: float) -> None:
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # ------------------------------------------------------------ the server's life

    def log(self, message: str) -> None:
        with self._lock:
            self._lines.append(f"INFO demos.server : {message}")

    def _remaining(self) -> float:
        return self.spec.ttl_seconds - (time.monotonic() - self._started)

    def _life(self) -> None:
        env = self.spec.env
        if env.get("BIBIA_WAIT_FOR_MODEL") == "1" and not self._wait_for_model(env):
            return
        behaviour = self._behaviour(self.spec)
        with self._lock:
            self._peak_memory = behaviour.peak_memory_bytes
        self.log(f"Chargement du modèle depuis {self.spec.model_dir}")
        if self._end.wait(min(behaviour.load_seconds, max(0.0, self._remaining()))):
            return
        if behaviour.exit_code is not None:
            self.log(
                f"Échec du chargement du modèle depuis {self.spec.model_dir} : {behaviour.logs}"
            )
            self.end(behaviour.exit_code, oom_killed=behaviour.oom_killed)
            return
        self.log("Modèle chargé en 0.0 s")
        if behaviour.ready:
            self._predict = behaviour.predict
            try:
                self._serve()
            except OSError as exc:
                self.log(f"Impossible de préparer le socket {self.spec.socket_path} : {exc}")
                self.end(4)
                return
            self.log(f"Démonstrateur prêt sur {self.spec.socket_path}")
        if self._end.wait(max(0.0, self._remaining())):
            return
        self.log(f"Durée de vie écoulée ({self.spec.ttl_seconds:.0f} s) : arrêt du démonstrateur")
        self.end(0)

    def _wait_for_model(self, env: Mapping[str, str]) -> bool:
        idle = float(env.get("BIBIA_POOL_IDLE_SECONDS", DEFAULT_IDLE_SECONDS))
        limit = min(idle, self.spec.ttl_seconds)
        self.log("Bac à sable préparé en 0.0 s : en attente d'un modèle")
        deadline = time.monotonic() + limit
        marker = self.spec.model_dir / READY_MARKER
        while not marker.exists():
            if time.monotonic() >= deadline:
                self.log(f"Aucun modèle reçu en {limit:.0f} s : arrêt du bac à sable inoccupé")
                self.end(EXIT_IDLE)
                return False
            if self._end.wait(POLL_SECONDS):
                return False
        return True

    def _serve(self) -> None:
        path = self.spec.socket_path
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        server = _Server(str(path), _Handler, self)
        with self._lock:
            if self._status.state is not RunState.RUNNING:
                server.server_close()
                return
            self._server = server
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def _close(self) -> None:
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        path = self.spec.socket_path
        with contextlib.suppress(OSError):
            if path.is_socket():
                path.unlink()

    def predict(self, records: Records) -> Records:
        return self._predict(records)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, handler: type[_Handler], sandbox: _Sandbox) -> None:
        self.sandbox = sandbox
        super().__init__(path, handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def handle(self) -> None:
        """Serve the connection, counting this thread's CPU time as the sandbox's own."""
        started = time.thread_time()
        try:
            super().handle()
        finally:
            self.server.sandbox.add_cpu(time.thread_time() - started)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._answer(200, "application/json", json.dumps({"status": "ok"}).encode())
        else:
            page = "<!doctype html><html lang='fr'><h1>Démonstrateur</h1></html>"
            self._answer(200, "text/html; charset=utf-8", page.encode())

    def do_POST(self) -> None:
        try:
            body = json.loads(self._body() or b"{}")
            if "dataframe_split" in body:  # MLflow's split form, as evaluations send it
                split = body["dataframe_split"]
                records = [dict(zip(split["columns"], row, strict=True)) for row in split["data"]]
            else:
                records = body["dataframe_records"]
        except (ValueError, KeyError, TypeError):
            self._answer(400, "application/json", b'{"error": "requete_invalide"}')
            return
        predictions = self.server.sandbox.predict(records)
        self._answer(200, "application/json", json.dumps({"predictions": predictions}).encode())

    def _body(self) -> bytes:
        """The request's body, sized or chunked (the service's proxy streams it)."""
        if self.headers.get("transfer-encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("content-length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        self.rfile.readline()  # the empty line after the last chunk
        return b"".join(chunks)

    def _answer(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self) -> str:
        return "demo"  # a Unix socket's peer has no address

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FakeEngine:
    """The fake sandboxes, shared by every :class:`FakeRunner` made on it (a fake Docker daemon)."""

    def __init__(self) -> None:
        self._sandboxes: dict[str, _Sandbox] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def crash(
        self, demo_id: str, *, exit_code: int = 1, logs: str = "", oom_killed: bool = False
    ) -> None:
        """The server dies now (after it was ready, say), writing ``logs`` first."""
        sandbox = self.get(demo_id)
        if logs:
            sandbox.log(logs)
        sandbox.end(exit_code, oom_killed=oom_killed)

    def tamper(self, demo_id: str, target: Path = Path("/run/docker.sock")) -> None:
        """The sandbox replaces its socket by a symlink to ``target`` (the service must refuse it)."""
        sandbox = self.get(demo_id)
        path = sandbox.spec.socket_path
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.symlink(target, path)

    def vanish(self, demo_id: str) -> None:
        """The sandbox is removed behind the service's back (``docker rm -f``, an engine restart)."""
        sandbox = self.remove(demo_id)
        if sandbox is not None:
            sandbox.end(137)
            sandbox.join(2.0)

    def get(self, demo_id: str) -> _Sandbox:
        """The sandbox of ``demo_id``.

        Raises:
            DemoMissing: none (never started, stopped, or vanished).
        """
        with self._lock:
            sandbox = self._sandboxes.get(demo_id)
        if sandbox is None:
            raise DemoMissing(f"Aucun démonstrateur {demo_id}.")
        return sandbox

    def add(self, spec: DemoSpec, behaviour: Callable[[DemoSpec], Behaviour]) -> _Sandbox:
        """A new sandbox for ``spec`` (not started yet).

        Raises:
            DemoConflict: one with this id exists.
        """
        with self._lock:
            if spec.demo_id in self._sandboxes:
                raise DemoConflict(
                    f"Le démonstrateur {spec.demo_id} existe déjà : arrêtez-le d'abord."
                )
            sandbox = _Sandbox(spec, f"fake-{next(self._ids)}", behaviour)
            self._sandboxes[spec.demo_id] = sandbox
        return sandbox

    def remove(self, demo_id: str) -> _Sandbox | None:
        with self._lock:
            return self._sandboxes.pop(demo_id, None)

    def sandboxes(self) -> list[_Sandbox]:
        with self._lock:
            return list(self._sandboxes.values())


class FakeRunner:
    """A :class:`runners.base.Runner` whose sandboxes are threads of this process (tests only).

    Args:
        engine: where the sandboxes live (a new one by default); share it to
            play a restarted service.
        isolates: what the runner claims (Docker: True; the process runner: False,
            and then it accepts trusted specs only).
        behaviour: what a sandbox does, asked when its loading starts
            (default: ready at once); may be replaced at any time.
    """

    def __init__(
        self,
        engine: FakeEngine | None = None,
        *,
        isolates: bool = True,
        behaviour: Callable[[DemoSpec], Behaviour] | None = None,
    ) -> None:
        self.engine = engine if engine is not None else FakeEngine()
        self._isolates = isolates
        self.behaviour: Callable[[DemoSpec], Behaviour] = behaviour or (lambda spec: Behaviour())

    @property
    def socket_owner(self) -> int:
        """The fake server runs in this process: its socket is this user's."""
        return os.getuid()

    @property
    def isolates(self) -> bool:
        return self._isolates

    def accepts(self, *, trusted: bool) -> bool:
        return trusted or self._isolates

    def start(self, spec: DemoSpec) -> RunInfo:
        if not self.accepts(trusted=spec.trusted):
            raise UntrustedModel(
                "FakeRunner (sans isolation) ne lance que les modèles de référence de confiance."
            )
        if not spec.model_dir.is_dir():
            raise RunnerError(f"Le dossier du modèle {spec.model_dir} n'existe pas.")
        sandbox = self.engine.add(spec, lambda s: self.behaviour(s))
        spec.socket_dir.mkdir(parents=True, exist_ok=True)
        sandbox.begin()
        return RunInfo(spec.demo_id, sandbox.runner_id, sandbox.status(), dict(sandbox.labels))

    def status(self, demo_id: str) -> RunStatus:
        try:
            return self.engine.get(demo_id).status()
        except DemoMissing:
            return RunStatus(RunState.MISSING)

    def logs(self, demo_id: str, *, tail: int = 200) -> str:
        return self.engine.get(demo_id).logs(tail)

    def stop(self, demo_id: str, *, timeout: float = 5.0) -> None:
        sandbox = self.engine.remove(demo_id)
        if sandbox is not None:
            sandbox.end(EXIT_STOPPED)
            sandbox.join(timeout)

    def list(self) -> list[RunInfo]:
        return [
            RunInfo(s.spec.demo_id, s.runner_id, s.status(), dict(s.labels))
            for s in self.engine.sandboxes()
        ]

    def usage(self, demo_id: str) -> Usage | None:
        """The CPU time of the threads that served its requests, measured in them
        (``time.thread_time``), and its behaviour's ``peak_memory_bytes``; None once it ended."""
        try:
            return self.engine.get(demo_id).usage()
        except DemoMissing:
            return None
