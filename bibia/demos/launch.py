"""Starting a demonstrator and waiting for it: the task, the worker and the threads that run them.

As in cog's coordinator / task / worker split: the service (the coordinator,
:mod:`bibia.demos.service`) checks and inserts the row, then hands a
:class:`Launch` (the task: which row, which version, warm or cold) to
:class:`Launcher` (the worker) on a thread of :class:`Watchers`. The task
carries the version the launch resolved, so the worker never reads it again.

Warm path: the row was inserted under a warm pool member's id (the claim);
the worker places the model into the member's directory (``.bibia-ready``
last) and waits for health. A member that ended before its model arrived
(idle limit, trimmed by a reaper) makes the worker start it cold under the
same id. Cold path: place the model, start the sandbox, wait for health.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bibia.db.models import DemoSession, utcnow
from bibia.demos import messages
from bibia.demos.endings import Endings
from bibia.demos.pool import WARM_GONE_EXIT_CODES, WarmPool
from bibia.demos.sandbox import SandboxFactory
from bibia.demos.sessions import Sessions
from bibia.demos.states import DemoState
from bibia.settings import Settings
from domain.errors import BibiaError, SandboxTampered
from registry.entries import VersionInfo
from runners.base import RunState, RunStatus
from runners.health import poll

log = logging.getLogger("bibia.demos")

MIN_SANDBOX_TTL_SECONDS = 60


@dataclass(frozen=True)
class Launch:
    """One demonstrator to start.

    Attributes:
        demo_id: its row (pending), and its sandbox's name.
        version: the model version the launch resolved.
        latest_expiry: the latest expiry an extension can reach; the sandbox
            stops by itself then (the reaper enforces the actual expiry).
        warm: the row claimed a warm pool member of this id.
        refill: refill the pool once the claimed member is ready; an
            evaluation refills it when it is done instead (its predictions
            come after "ready", and would compete with a new member's imports).
    """

    demo_id: str
    version: VersionInfo
    latest_expiry: dt.datetime
    warm: bool = False
    refill: bool = True


class Launcher:
    """Drives a demonstrator from pending to ready (or failed), once its row is inserted."""

    def __init__(
        self,
        settings: Settings,
        sessions: Sessions,
        sandbox: SandboxFactory,
        pool: WarmPool,
        endings: Endings,
        stopping: threading.Event,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.sandbox = sandbox
        self.pool = pool
        self.endings = endings
        self._stopping = stopping

    def run(self, launch: Launch) -> None:
        """Start the sandbox (warm, else cold) and wait until it is ready, failed or stopped."""
        if not self.sessions.move(launch.demo_id, DemoState.STARTING):
            return
        if launch.warm:
            if not self._place(launch, warm=True):
                return
            settled = self.wait_ready(launch.demo_id, warm=True)
            if launch.refill or not settled:
                self.pool.refill_later()
            if settled:
                return
            log.info(
                "warm sandbox %s ended before its model arrived: starting it cold", launch.demo_id
            )
            self.sandbox.stop(launch.demo_id)
        if self._start_cold(launch):
            self.wait_ready(launch.demo_id)

    def adopt(self, demo_id: str) -> None:
        """Wait for a demonstrator a previous service instance started (see :mod:`bibia.demos.reconcile`)."""
        state = self.sessions.state(demo_id)
        if state == DemoState.PENDING:
            self.sessions.move(demo_id, DemoState.STARTING)
            state = DemoState.STARTING
        if state == DemoState.STARTING:
            self.wait_ready(demo_id)

    def _place(self, launch: Launch, *, warm: bool) -> bool:
        try:
            self.sandbox.place_model(launch.demo_id, launch.version, warm=warm)
        except (BibiaError, OSError) as exc:
            self.endings.fail(launch.demo_id, *messages.launch_failed(exc))
            return False
        return True

    def _start_cold(self, launch: Launch) -> bool:
        """Place the model and start the sandbox; False when the demonstrator ended meanwhile."""
        ttl = int((launch.latest_expiry - utcnow()).total_seconds())
        try:
            spec = self.sandbox.cold_spec(
                launch.demo_id, launch.version, ttl_seconds=max(MIN_SANDBOX_TTL_SECONDS, ttl)
            )
            handle = self.sandbox.require_runner().start(spec)
        except (BibiaError, OSError) as exc:
            self.endings.fail(launch.demo_id, *messages.launch_failed(exc))
            return False
        with self.sessions.db.session() as session:
            row = session.get(DemoSession, launch.demo_id)
            ended = row is None or DemoState(row.state).is_terminal
            if row is not None:
                row.runner_ref = handle.runner_id[:128]
        if (
            ended
        ):  # stopped or expired while the runner was starting it: its teardown found nothing yet
            self.endings.teardown(launch.demo_id)
            return False
        return True

    def wait_ready(self, demo_id: str, *, warm: bool = False) -> bool:
        """Wait for health; ready, failed or stopped meanwhile: True.

        With ``warm``, returns False (and changes nothing) when the claimed
        warm sandbox ended before its model arrived: the caller starts it cold.
        """
        started = time.monotonic()
        deadline = started + self.settings.demo_start_timeout_s
        socket_dir = self.sandbox.socket_dir(demo_id)
        runner = self.sandbox.runner
        while runner is not None and time.monotonic() < deadline and not self._stopping.is_set():
            state = self.sessions.state(demo_id)
            if state is None or state.is_terminal:
                return True
            try:
                health = poll(runner, demo_id, socket_dir, timeout=1.0)
            except SandboxTampered as exc:
                self.endings.quarantine(demo_id, exc)
                return True
            if health.ended is not None:
                if warm and _warm_gone(health.ended):
                    return False
                self.endings.died(demo_id, health.ended)
                return True
            if health.ready:
                self.sessions.move(demo_id, DemoState.READY)
                return True
            # A warm sandbox answers within a second of its model: poll closely at first.
            time.sleep(0.05 if time.monotonic() - started < 3 else 0.2)
        if not self._stopping.is_set():
            self.endings.fail(
                demo_id,
                messages.no_answer(self.settings.demo_start_timeout_s),
                self.sandbox.logs_tail(demo_id),
            )
        return True


def _warm_gone(status: RunStatus) -> bool:
    """Whether a claimed warm sandbox ended before its model arrived (not the model's failure)."""
    return status.state == RunState.MISSING or status.exit_code in WARM_GONE_EXIT_CODES


class Watchers:
    """The threads that drive launches and adoptions, one per demonstrator; joined at shutdown.

    A thread is where an unexpected error (a bug, not a runner or registry
    error, which the worker handles) would otherwise vanish with the thread and
    leave the demonstrator starting until the reaper calls it abandoned: each
    thread hands it to ``on_crash``, which fails the demonstrator at once.
    """

    def __init__(self, on_crash: Callable[[str, Exception], None]) -> None:
        self._threads: dict[str, threading.Thread] = {}
        self._on_crash = on_crash

    def start(self, demo_id: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(
            target=self._supervised,
            args=(demo_id, target),
            name=f"bibia-demo-{demo_id}",
            daemon=True,
        )
        self._threads[demo_id] = thread
        thread.start()

    def _supervised(self, demo_id: str, target: Callable[[], None]) -> None:
        try:
            target()
        except Exception as exc:
            log.exception("the worker of demonstrator %s crashed", demo_id)
            try:
                self._on_crash(demo_id, exc)
            except Exception:
                log.exception("demonstrator %s could not be marked failed", demo_id)

    def join(self, timeout: float = 5.0) -> None:
        for thread in list(self._threads.values()):
            thread.join(timeout=timeout)
