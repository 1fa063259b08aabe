"""Replicas of the service on one database: who is alive, and which one does the upkeep.

Each replica has an id (``Settings.replica_id``, random at each start unless
set), a heartbeat row in ``replicas`` refreshed every reaper interval, and
its id on what it drives: the ``bibia.replica`` label of the sandboxes it
starts, ``demo_sessions.replica_id`` of the launches it drives. A replica
whose heartbeat is older than ``replica_dead_after_intervals`` intervals (or
that has no row) is dead.

The upkeep that must run once across replicas (reconciliation, the reaper's
pass, removing the dead replicas' warm sandboxes) is done by one replica at a
time, the one holding the ``demonstrators`` lock (:class:`Upkeep`,
``Database.try_exclusive``: ``pg_try_advisory_lock`` on PostgreSQL). It keeps
it while it lives; when it dies its connection closes, PostgreSQL releases
the lock and another replica's next try takes it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import socket
from collections.abc import Callable

from sqlalchemy import delete, select, update

from bibia.db import Database
from bibia.db.models import DemoSession, Replica, utcnow
from bibia.demos.sessions import active
from bibia.settings import Settings

log = logging.getLogger("bibia.demos")

UPKEEP_LOCK = "demonstrators"
FORGET_AFTER = dt.timedelta(days=1)  # a dead replica's row is kept this long (for the operators)


class Replicas:
    """The heartbeat rows: this replica's, and who else is alive."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.me = settings.replica_id
        self.dead_after = dt.timedelta(
            seconds=settings.demo_reap_interval_s * settings.replica_dead_after_intervals
        )
        self.host = socket.gethostname()[:255]

    def join(self) -> None:
        """At start: the first heartbeat, and this id's launches of a previous life are let go.

        A replica restarted under a fixed id drives none of the launches its
        previous process drove: they are handed to reconciliation as a dead
        replica's (see :func:`bibia.demos.reconcile.reconcile`).
        """
        with self.db.session() as session:
            session.execute(
                update(DemoSession)
                .where(DemoSession.replica_id == self.me, active())
                .values(replica_id=None)
            )
            row = session.get(Replica, self.me)
            if row is None:
                session.add(Replica(id=self.me, host=self.host))
            else:
                row.host, row.started_at, row.last_seen = self.host, utcnow(), utcnow()

    def beat(self) -> None:
        """Refresh this replica's heartbeat (its row comes back if someone removed it)."""
        with self.db.session() as session:
            row = session.get(Replica, self.me)
            if row is None:
                session.add(Replica(id=self.me, host=self.host))
            else:
                row.last_seen = utcnow()

    def leave(self) -> None:
        """At a clean stop: no heartbeat any more, so a survivor takes over at once."""
        with self.db.session() as session:
            session.execute(delete(Replica).where(Replica.id == self.me))

    def live(self) -> set[str]:
        """The ids of the replicas whose heartbeat is recent (this one included once it beat)."""
        since = utcnow() - self.dead_after
        with self.db.session() as session:
            return set(session.scalars(select(Replica.id).where(Replica.last_seen >= since)))

    def forget_dead(self) -> None:
        """Remove the rows of replicas dead for a day (a random id per start leaves one per start)."""
        with self.db.session() as session:
            session.execute(delete(Replica).where(Replica.last_seen < utcnow() - FORGET_AFTER))


class Upkeep:
    """Holds the upkeep's lock for as long as this replica lives (one leader among the replicas)."""

    def __init__(self, db: Database, me: str) -> None:
        self.db = db
        self.me = me
        self._stack = contextlib.ExitStack()
        self._held: Callable[[], bool] | None = None

    def lead(self) -> bool:
        """Whether this replica does the upkeep now: it keeps the lock, else tries to take it."""
        if self._held is not None:
            if self._held():
                return True
            log.warning("replica %s lost the demonstrators' upkeep lock", self.me)
            self.release()
        held = self._stack.enter_context(self.db.try_exclusive(UPKEEP_LOCK))
        if held is None:
            self._stack.close()
            return False
        self._held = held
        log.info("replica %s leads the demonstrators' upkeep (reconciliation, reaper)", self.me)
        return True

    @property
    def leading(self) -> bool:
        return self._held is not None

    def release(self) -> None:
        self._held = None
        with contextlib.suppress(Exception):
            self._stack.close()
        self._stack = contextlib.ExitStack()
