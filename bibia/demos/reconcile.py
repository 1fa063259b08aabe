"""Match the rows no live replica drives with what the runner runs.

Adopt what still runs, fail what vanished or ended, stop orphans. Only this
instance's sandboxes count (``bibia.instance``: several deployments may share
one engine), and warm pool members (no row at all, any replica's) are not
orphans; a claimed member is an ordinary demonstrator.

Replicas share one database: a launch driven by another live replica
(``demo_sessions.replica_id``, :mod:`bibia.demos.replicas`) is that replica's
and is never touched here. The launches of a dead replica (or of this
replica's previous process) are taken over: adopted when their sandbox runs
(this replica then drives them), failed with a French reason otherwise. It
runs at start-up and on every pass of the replica that does the upkeep.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from bibia.db.models import utcnow
from bibia.demos import messages
from bibia.demos.endings import Endings
from bibia.demos.pool import WarmPool
from bibia.demos.sandbox import READY_MARKER, SandboxFactory
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
    live: set[str] | None = None,
) -> dict[str, list[str]]:
    """Adopt, fail and stop; returns ``{"adopted": [...], "failed": [...], "orphans": [...]}``.

    The adopted ones are the caller's to wait for (:meth:`bibia.demos.launch.Launcher.adopt`).

    Args:
        live: the replicas alive now (their rows are left alone); None: this one only.

    Raises:
        RunnerError: the runner could not list its sandboxes.
    """
    result: dict[str, list[str]] = {"adopted": [], "failed": [], "orphans": []}
    if sandbox.runner is None:
        return result
    me = settings.replica_id
    live = {me} if live is None else live
    running = {info.demo_id: info for info in sandbox.mine()}  # listed before the rows are read
    stale = utcnow() - dt.timedelta(seconds=settings.demo_start_timeout_s)
    with sessions.db.session() as session:
        rows = {r.id: r for r in sessions.active_rows(session)}
        for demo_id, row in rows.items():
            if row.replica_id in live:
                continue  # a live replica drives it (its reaper pass sees its sandbox die)
            info = running.get(demo_id)
            launching = row.state in (DemoState.PENDING.value, DemoState.STARTING.value)
            if (
                info is not None
                and info.status.state == RunState.RUNNING
                and not (launching and _warm_without_model(sandbox, info.labels, demo_id))
            ):
                row.replica_id = me  # this replica drives it from now on
                result["adopted"].append(demo_id)
                continue
            logs = None
            if info is not None and info.status.state != RunState.RUNNING:
                # it ended while nobody watched: say how, with its last logs
                error, logs = endings.ended_text(demo_id, info.status)
            elif launching and row.replica_id is not None:
                error = messages.REPLICA_DIED  # its replica died before its sandbox answered
            elif not launching:
                error = messages.VANISHED
            elif aware(row.created_at) < stale:
                error = messages.INTERRUPTED
            else:
                continue  # not started yet, by a service of before replica ids: it may be on its way
            transition(row, DemoState.FAILED, error)
            row.failure_logs = logs[-FAILURE_LOGS_CHARS:] if logs else None
            result["failed"].append(demo_id)
        known = set(rows)
    unknown = {d: info for d, info in running.items() if d not in known}
    warm = [d for d, info in unknown.items() if pool.is_warm(info)]
    members = set(warm) - sessions.claimed(warm) if warm else set()
    for demo_id in unknown:
        if demo_id not in members:  # pool members (any replica's) wait for a launch
            result["orphans"].append(demo_id)
            sandbox.teardown(demo_id)
    for demo_id in result["failed"]:
        endings.teardown(demo_id)
    return result


def _warm_without_model(sandbox: SandboxFactory, labels: Mapping[str, str], demo_id: str) -> bool:
    """A claimed warm sandbox whose model never arrived: nobody can finish that launch."""
    return (
        WarmPool.is_warm_labels(labels) and not (sandbox.model_dir(demo_id) / READY_MARKER).exists()
    )
