"""How a demonstrator ends badly: failed with a message for members and logs for experts, then torn down.

Shared by the launch, the reaper, reconciliation and the proxy: whoever sees
the sandbox die or tamper with its socket ends it the same way.
"""

from __future__ import annotations

import logging

from bibia.accounts import audit
from bibia.auth import SYSTEM
from bibia.db.models import DemoSession
from bibia.demos import messages
from bibia.demos.sandbox import SandboxFactory
from bibia.demos.sessions import Sessions
from bibia.demos.states import DemoState, transition
from domain.errors import SandboxTampered
from runners.base import RunStatus

log = logging.getLogger("bibia.demos")


class Endings:
    """Fails and tears down demonstrators (their row, their sandbox, their directory)."""

    def __init__(self, sessions: Sessions, sandbox: SandboxFactory, memory_mb: int) -> None:
        self.sessions = sessions
        self.sandbox = sandbox
        self.memory_mb = memory_mb

    def fail(self, demo_id: str, error: str, logs: str | None = None) -> None:
        """Fail the row (``error`` for members, ``logs`` for experts) and remove the sandbox."""
        self.sessions.fail(demo_id, error, logs)
        self.sandbox.teardown(demo_id)

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
        self.sandbox.teardown(demo_id)
