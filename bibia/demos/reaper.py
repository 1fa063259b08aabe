"""The reaper's pass: expire, fail what died or was abandoned, catch swapped sockets, sweep directories.

The service runs :meth:`Reaper.reap` every ``demo_reap_interval_s``; it also
keeps the warm pool full.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from bibia.db.models import utcnow
from bibia.demos import messages
from bibia.demos.endings import Endings
from bibia.demos.pool import WarmPool
from bibia.demos.sandbox import SandboxFactory
from bibia.demos.sessions import Sessions
from bibia.demos.states import DemoState, aware, transition, valid_id
from bibia.settings import Settings
from domain.errors import RunnerError, SandboxTampered
from runners import hostfs
from runners.base import RunState, RunStatus
from runners.sockets import check_socket

log = logging.getLogger("bibia.demos")


class Reaper:
    """Ends what outlived its time, its sandbox or its launch, and removes what nothing owns."""

    def __init__(
        self,
        settings: Settings,
        sessions: Sessions,
        sandbox: SandboxFactory,
        pool: WarmPool,
        endings: Endings,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.sandbox = sandbox
        self.pool = pool
        self.endings = endings

    def reap(self) -> list[str]:
        """Expire demonstrators past their time to live, fail those whose sandbox died, keep the pool full.

        Returns:
            The ids it expired.

        Raises:
            RunnerError: the runner could not list its sandboxes (for the pool or the sweep).
        """
        now = utcnow()
        # A launch waits at most demo_start_timeout_s; twice that with no outcome means the
        # process that drove it is gone (a crashed replica): nobody else will finish it.
        abandoned = now - dt.timedelta(seconds=2 * self.settings.demo_start_timeout_s)
        expired: list[str] = []
        stuck: list[str] = []
        ready: list[str] = []
        died: list[tuple[str, RunStatus]] = []
        with self.sessions.db.session() as session:
            for row in self.sessions.active_rows(session):
                if aware(row.expires_at) <= now:
                    if transition(row, DemoState.EXPIRED):
                        expired.append(row.id)
                elif (
                    row.state in (DemoState.PENDING.value, DemoState.STARTING.value)
                    and aware(row.created_at) <= abandoned
                ):
                    if transition(row, DemoState.FAILED, messages.ABANDONED):
                        stuck.append(row.id)
                elif row.state == DemoState.READY.value:
                    status = self._status(row.id)
                    if status is not None and status.state != RunState.RUNNING:
                        died.append((row.id, status))
                    else:
                        ready.append(row.id)
        for demo_id in expired + stuck:
            self.endings.teardown(demo_id)
        for demo_id, status in died:
            self.endings.died(demo_id, status)
        for demo_id in ready:  # a socket swapped while nobody used the demonstrator
            try:
                check_socket(self.sandbox.socket_dir(demo_id), self.sandbox.socket_owner)
            except SandboxTampered as exc:
                self.endings.quarantine(demo_id, exc)
        self.pool.maintain()
        self.sweep_dirs()
        return expired

    def sweep_dirs(self) -> list[str]:
        """Remove the directories (and socket tmpfs) that nothing owns any more; returns their ids.

        A sandbox removed behind the service's back (``docker rm``, an engine
        restart), a warm one above all since no row names it, leaves its
        directory and its mounted tmpfs. A directory is swept when no
        sandbox of any instance and no active row has its id, and it is older
        than twice the start timeout (a launch or a pool start under way,
        maybe another replica's, creates its directory just before its sandbox).

        Raises:
            RunnerError: the runner could not list its sandboxes.
        """
        runner, root = self.sandbox.runner, self.settings.demos_dir
        if runner is None or not root.is_dir():
            return []
        cutoff = time.time() - 2 * self.settings.demo_start_timeout_s
        old = [
            p
            for p in root.iterdir()
            if valid_id(p.name) and not p.is_symlink() and p.lstat().st_mtime <= cutoff
        ]
        if old:
            active = self.sessions.active_ids()
            old = [p for p in old if p.name not in active]
        if not old:  # the usual pass: nothing to ask the runner
            return []
        running = {info.demo_id for info in runner.list()}
        swept = []
        for path in old:
            if path.name not in running:
                hostfs.remove_tree(path)
                swept.append(path.name)
        if swept:
            log.info(
                "swept %d demonstrator directories nothing owned: %s", len(swept), ", ".join(swept)
            )
        return swept

    def _status(self, demo_id: str) -> RunStatus | None:
        """The sandbox's status, or None when the runner cannot tell now (the next pass asks again)."""
        runner = self.sandbox.runner
        if runner is None:
            return None
        try:
            return runner.status(demo_id)
        except RunnerError:
            log.warning("runner status failed for %s", demo_id, exc_info=True)
            return None
