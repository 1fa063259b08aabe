"""A demonstrator's lifecycle: its states, the transitions allowed, and how the API shows it.

States: pending → starting → ready → stopped | failed | expired. Every change
of ``DemoSession.state`` in this package goes through :func:`transition`.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

from bibia.db.models import DemoSession, utcnow

FAILURE_LOGS_CHARS = 20_000  # what experts read of a failed sandbox's output
ERROR_CHARS = 4000


class DemoState(str, enum.Enum):
    PENDING = "pending"
    STARTING = "starting"
    READY = "ready"
    STOPPED = "stopped"
    FAILED = "failed"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({DemoState.STOPPED, DemoState.FAILED, DemoState.EXPIRED})
TERMINAL_VALUES = tuple(s.value for s in TERMINAL)
ALLOWED = {
    DemoState.PENDING: {DemoState.STARTING, DemoState.FAILED, DemoState.STOPPED, DemoState.EXPIRED},
    DemoState.STARTING: {DemoState.READY, DemoState.FAILED, DemoState.STOPPED, DemoState.EXPIRED},
    DemoState.READY: {DemoState.FAILED, DemoState.STOPPED, DemoState.EXPIRED},
}


def transition(row: DemoSession, new: DemoState, error: str | None = None) -> bool:
    """Move ``row`` to ``new`` if the lifecycle allows it; returns whether it moved."""
    current = DemoState(row.state)
    if new == current or new not in ALLOWED.get(current, set()):
        return False
    row.state = new.value
    row.updated_at = utcnow()
    if error is not None:
        row.error = error[-ERROR_CHARS:]
    return True


def aware(value: dt.datetime) -> dt.datetime:
    """``value`` in UTC when the database returned it naive (SQLite)."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def valid_id(demo_id: str) -> bool:
    """Whether ``demo_id`` has the shape of the ids the service makes (16 hex digits)."""
    return len(demo_id) == 16 and all(c in "0123456789abcdef" for c in demo_id)


def _ended_at(row: DemoSession) -> dt.datetime | None:
    ended = row.finished_at or row.updated_at
    return aware(ended) if ended is not None else None


@dataclass(frozen=True)
class DemoView:
    """A demonstrator as the API shows it."""

    id: str
    state: str
    url: str | None
    model: str
    version: int
    organisation_id: int
    created_at: dt.datetime
    expires_at: dt.datetime
    error: str | None
    launched_by: str | None = None  # the launching user's name, when the reader asked for it
    ended_at: dt.datetime | None = None  # when it reached its terminal state

    @classmethod
    def of(cls, row: DemoSession, launched_by: str | None = None) -> DemoView:
        state = DemoState(row.state)
        return cls(
            id=row.id,
            state=state.value,
            url=f"/demos/{row.id}/" if not state.is_terminal else None,
            model=row.model_name,
            version=row.model_version,
            organisation_id=row.organisation_id,
            created_at=aware(row.created_at),
            expires_at=aware(row.expires_at),
            error=row.error,
            launched_by=launched_by,
            ended_at=_ended_at(row) if state.is_terminal else None,
        )

    @property
    def is_live(self) -> bool:
        """Pending, starting or ready: not ended."""
        return not DemoState(self.state).is_terminal

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "url": self.url,
            "model": self.model,
            "version": self.version,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "error": self.error,
        }
