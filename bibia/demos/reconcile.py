"""At start-up: match this instance's rows with what its runner runs.

Adopt what still runs, fail what vanished or ended while the service was
down, stop orphans. Only this instance's sandboxes count (``bibia.instance``:
several deployments may share one engine), and warm pool members (no row at
all) are not orphans; a claimed member is an ordinary demonstrator.
"""

from __future__ import annotations

import datetime as dt

from bibia.db.models import utcnow
from bibia.demos import messages
from bibia.demos.endings import Endings
from bibia.demos.pool import WarmPool
from bibia.demos.sandbox import SandboxFactory
from bibia.demos.sessions import Sessions
from bibia.demos.states import FAILURE_LOGS_CHARS, DemoState, aware, transition
from bibia.settings import Settings
from runners.base import RunState


def reconcile(
    settings: Settings,
    sessions: Sessions,
    sandbox: SandboxFactory,
    pool: WarmPool,
    endings: Endings,
) -> dict[str, list[str]]:
    """Adopt, fail and stop; returns ``{"adopted": [...], "failed": [...], "orphans": [...]}``.

    The adopted ones are the caller's to wait for (:meth:`bibia.demos.launch.Launcher.adopt`).

    Raises:
        RunnerError: the runner could not list its sandboxes.
    """
    result: dict[str, list[str]] = {"adopted": [], "failed": [], "orphans": []}
    if sandbox.runner is None:
        return result
    running = {info.demo_id: info for info in sandbox.mine()}
    stale = utcnow() - dt.timedelta(seconds=settings.demo_start_timeout_s)
    with sessions.db.session() as session:
        rows = {r.id: r for r in sessions.active_rows(session)}
        for demo_id, row in rows.items():
            info = running.get(demo_id)
            if info is not None and info.status.state == RunState.RUNNING:
                result["adopted"].append(demo_id)
                continue
            logs = None
            if info is not None:  # it ended while the service was down: say how, with its last logs
                error, logs = endings.ended_text(demo_id, info.status)
            elif row.state != DemoState.PENDING.value:
                error = messages.VANISHED
            elif aware(row.created_at) < stale:
                error = messages.INTERRUPTED
            else:
                continue  # not started yet: another replica's launch may still be on its way
            transition(row, DemoState.FAILED, error)
            row.failure_logs = logs[-FAILURE_LOGS_CHARS:] if logs else None
            result["failed"].append(demo_id)
        known = set(rows)
    members = {info.demo_id for info in pool.members()}
    for demo_id in running:
        if demo_id not in known and demo_id not in members:  # pool members wait for a launch
            result["orphans"].append(demo_id)
            sandbox.teardown(demo_id)
    for demo_id in result["failed"]:
        endings.teardown(demo_id)
    return result
