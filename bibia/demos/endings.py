"""How a demonstrator ends: measured, then torn down; badly, failed first with a message for members and logs for experts.

Shared by the launch, the reaper, reconciliation, the proxy and the stop:
whoever sees the sandbox die or tamper with its socket ends it the same way,
and every ending records what the sandbox consumed (:meth:`Endings.measure`)
before its sandbox goes.
"""

from __future__ import annotations

import logging

from bibia.accounts import audit
from bibia.auth import SYSTEM
from bibia.db.models import DemoSession, utcnow
from bibia.demos import messages
from bibia.demos.sandbox import SandboxFactory
from bibia.demos.sessions import Sessions
from bibia.demos.states import DemoState, transition
from domain.errors import SandboxTampered
from runners.base import RunStatus, Usage

log = logging.getLogger("bibia.demos")


class Endings:
    """Fails and tears down demonstrators (their row, their sandbox, their directory)."""

    def __init__(self, sessions: Sessions, sandbox: SandboxFactory, memory_mb: int) -> None:
        self.sessions = sessions
        self.sandbox = sandbox
        self.memory_mb = memory_mb

    def measure(self, demo_id: str) -> Usage | None:
        """Record on the row what the sandbox consumed, by its runner's accounting, and when it ended.

        Writes ``cpu_seconds`` and ``peak_memory_bytes`` when the runner can
        tell (a later measure of a sandbox still running replaces an earlier
        one: its counters only grow), and ``finished_at`` once. Call it
        before the sandbox is stopped: its counters go with it.
        """
        usage = self.sandbox.usage(demo_id)
        with self.sessions.db.session() as session:
            row = session.get(DemoSession, demo_id)
            if row is not None:
                if usage is not None:
                    row.cpu_seconds = usage.cpu_seconds
                    row.peak_memory_bytes = usage.peak_memory_bytes
                if row.finished_at is None:
                    row.finished_at = utcnow()
        return usage

    def teardown(self, demo_id: str) -> Usage | None:
        """Measure the sandbox (:meth:`measure`), then stop it and remove its directory; the usage."""
        usage = self.measure(demo_id)
        self.sandbox.teardown(demo_id)
        return usage

    def fail(self, demo_id: str, error: str, logs: str | None = None) -> None:
        """Fail the row (``error`` for members, ``logs`` for experts) and remove the sandbox."""
        self.sessions.fail(demo_id, error, logs)
        self.teardown(demo_id)

    def died(self, demo_id: str, status: RunStatus) -> None:
        """The sandbox ended on its own: say how, keep its last lines for experts."""
        self.fail(demo_id, *self.ended_text(demo_id, status))

    def ended_text(self, demo_id: str, status: RunStatus) -> tuple[str, str]:
        """``(message, logs)`` of a sandbox that ended on its own, without changing anything."""
        return messages.ended(status, self.memory_mb), self.sandbox.logs_tail(demo_id)

    def quarantine(self, demo_id: str, exc: SandboxTampered) -> None:
        """Fail and tear down a demonstrator whose sandbox tampered with its socket; audited."""
        log.warning("demonstrator %s tampered with its socket: %s", demo_id, exc.message)
        with self.sessions.db.session() as session:
            row = session.get(DemoSession, demo_id)
            if row is not None and transition(row, DemoState.FAILED, messages.TAMPERED):
                row.failure_logs = exc.message
                audit(session, SYSTEM, "demo.tampered", demo_id, reason=exc.message)
        self.teardown(demo_id)
