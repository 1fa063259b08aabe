"""Demonstrator rows: who sees which, quotas, and the writes the lifecycle makes.

The organisation filter lives in :meth:`Sessions.row_for` and
:meth:`Sessions.visible`, over the predicates of :mod:`bibia.policy`; the
quotas, and the reuse of a demonstrator the organisation already runs, are
checked in the same transaction as the insert that they guard, after that
transaction took the organisation's row lock (:meth:`Sessions._serialise`),
so two launches at once cannot both see room, or both miss the running one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from typing import NamedTuple

from sqlalchemy import ColumnElement, func, select, text, update
from sqlalchemy.orm import Session

from bibia import policy
from bibia.accounts import audit, demo_quota
from bibia.auth import Caller
from bibia.db import Database
from bibia.db.models import DemoSession, Organisation, User, utcnow
from bibia.demos.states import (
    FAILURE_LOGS_CHARS,
    TERMINAL_VALUES,
    DemoState,
    DemoView,
    transition,
    valid_id,
)
from bibia.settings import Settings
from domain.errors import Forbidden, NotFound, QuotaExceeded
from registry.entries import VersionInfo

MEMBERS_ONLY = "accès refusé : réservé aux membres d'une collectivité"
SIGN_IN = (
    "authentification requise : les démonstrateurs sont réservés aux membres d'une collectivité"
)
LIST_LIMIT = 500


PURPOSE_DEMO = "demo"
PURPOSE_EVALUATION = (
    "evaluation"  # an evaluation job's sandbox: neither listed nor counted in quotas
)


def active() -> ColumnElement[bool]:
    """Rows not in a terminal state."""
    return DemoSession.state.not_in(TERMINAL_VALUES)


def demonstrators() -> ColumnElement[bool]:
    """Members' demonstrators, not the sandboxes of evaluation jobs."""
    return DemoSession.purpose == PURPOSE_DEMO


#: The advisory lock a launch takes on PostgreSQL while it checks the platform's quota.
GLOBAL_QUOTA_LOCK = int.from_bytes(
    hashlib.sha256(b"bibia:demo-quota-global").digest()[:8], "big", signed=True
)


class Inserted(NamedTuple):
    """What :meth:`Sessions.insert` did: ``reused`` when it found a running one instead of inserting."""

    view: DemoView
    reused: bool


class Sessions:
    """The ``demo_sessions`` table, as the demonstrators' lifecycle reads and writes it."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    # ------------------------------------------------------------ reads

    def row_for(
        self,
        session: Session,
        caller: Caller,
        demo_id: str,
        may: Callable[[Caller, int | None], bool] = policy.may_see_demo,
    ) -> DemoSession:
        """The row of ``demo_id`` if ``caller`` may act on it (``may``), else NotFound.

        Raises:
            Unauthorized, Forbidden: the caller is not a member of an organisation.
            NotFound: no such demonstrator, or another organisation's.
        """
        if not policy.may_list_demos(caller):
            policy.refuse(caller, MEMBERS_ONLY, anonymous=SIGN_IN)
        row = session.get(DemoSession, demo_id) if valid_id(demo_id) else None
        if row is None or row.purpose != PURPOSE_DEMO or not may(caller, row.organisation_id):
            raise NotFound(f"démonstrateur introuvable : {demo_id} (bibia demo ls pour la liste)")
        return row

    def visible(
        self,
        caller: Caller,
        *,
        include_finished: bool,
        own_organisation: bool = False,
        model: str | None = None,
    ) -> list[DemoView]:
        """The caller's organisation's demonstrators (every one for an administrator), newest first.

        ``own_organisation`` keeps an administrator's list to their own
        organisation (what the web pages show); ``model`` keeps one model's.
        """
        if not policy.may_list_demos(caller):
            raise Forbidden(MEMBERS_ONLY)
        with self.db.session() as session:
            query = (
                select(DemoSession, User.name)
                .outerjoin(User, User.id == DemoSession.user_id)
                .where(demonstrators())
                .order_by(DemoSession.created_at.desc())
            )
            if own_organisation or not policy.sees_every_demo(caller):
                query = query.where(DemoSession.organisation_id == caller.organisation_id)
            if model is not None:
                query = query.where(DemoSession.model_name == model)
            if not include_finished:
                query = query.where(active())
            return [
                DemoView.of(row, launched_by=name)
                for row, name in session.execute(query.limit(LIST_LIMIT)).tuples()
            ]

    def launcher(self, session: Session, row: DemoSession) -> str | None:
        """The name of the user who launched ``row`` (None: a service account since removed)."""
        user = session.get(User, row.user_id) if row.user_id is not None else None
        return user.name if user is not None else None

    def active_rows(self, session: Session) -> Sequence[DemoSession]:
        return session.scalars(select(DemoSession).where(active())).all()

    def active_ids(self) -> set[str]:
        with self.db.session() as session:
            return set(session.scalars(select(DemoSession.id).where(active())))

    def claimed(self, demo_ids: list[str]) -> set[str]:
        """Which of ``demo_ids`` a row holds (a warm sandbox so held is claimed)."""
        with self.db.session() as session:
            return set(session.scalars(select(DemoSession.id).where(DemoSession.id.in_(demo_ids))))

    def state(self, demo_id: str) -> DemoState | None:
        with self.db.session() as session:
            row = session.get(DemoSession, demo_id)
            return DemoState(row.state) if row is not None else None

    # ------------------------------------------------------------ writes

    def insert(
        self,
        caller: Caller,
        version: VersionInfo,
        ttl_minutes: int,
        demo_id: str,
        *,
        runner: str,
        runner_ref: str | None,
        purpose: str = PURPOSE_DEMO,
        reuse: bool = False,
    ) -> Inserted:
        """Check the quotas and insert the pending row (for a warm member, this is the claim).

        With ``reuse``, a demonstrator of the same version that the caller's
        organisation already runs (or is starting) is returned instead, and
        nothing is inserted. An evaluation's sandbox (``purpose``) is bounded
        by the evaluation quota and workers instead of the demonstrators' quotas.

        Raises:
            QuotaExceeded: the organisation's or the platform's quota is reached.
            IntegrityError: a row has this id (another launch claimed the member first).
        """
        with self.db.session() as session:
            if purpose == PURPOSE_DEMO:
                self._serialise(session, caller)
                if reuse:
                    running = self._running(session, caller, version)
                    if running is not None:
                        return Inserted(
                            DemoView.of(running, launched_by=self.launcher(session, running)),
                            reused=True,
                        )
                self._check_quotas(session, caller)
            row = DemoSession(
                id=demo_id,
                organisation_id=caller.organisation_id,
                user_id=caller.user_id,
                model_name=version.name,
                model_version=version.version,
                state=DemoState.PENDING.value,
                runner=runner,
                runner_ref=runner_ref,
                replica_id=self.settings.replica_id,
                expires_at=utcnow() + dt.timedelta(minutes=ttl_minutes),
                purpose=purpose,
            )
            session.add(row)
            session.flush()
            audit(
                session,
                caller,
                "demo.launch" if purpose == PURPOSE_DEMO else "evaluation.sandbox",
                f"{version.name}/{version.version}",
                demo=demo_id,
                ttl_minutes=ttl_minutes,
                warm=runner_ref is not None,
            )
            return Inserted(DemoView.of(row, launched_by=caller.user), reused=False)

    def move(self, demo_id: str, new: DemoState) -> bool:
        """Move the row to ``new`` if it exists and the lifecycle allows it."""
        with self.db.session() as session:
            row = session.get(DemoSession, demo_id)
            return row is not None and transition(row, new)

    def fail(self, demo_id: str, error: str, logs: str | None = None) -> bool:
        """Fail the row: ``error`` is what members read (fixed text), ``logs`` is for experts."""
        with self.db.session() as session:
            row = session.get(DemoSession, demo_id)
            if row is None or not transition(row, DemoState.FAILED, error):
                return False
            if logs:
                row.failure_logs = logs[-FAILURE_LOGS_CHARS:]
            return True

    def _serialise(self, session: Session, caller: Caller) -> None:
        """Take the caller's organisation's row lock until this transaction ends.

        An UPDATE that changes nothing: PostgreSQL locks the row (a second
        launch of the same organisation waits here, then reads what the
        first committed); SQLite takes its single writer lock, so the checks
        that follow read the newest state too. On PostgreSQL a transaction
        advisory lock then serialises the platform-wide check: without it, two
        organisations launching at once could each see the last free place.
        """
        session.execute(
            update(Organisation)
            .where(Organisation.id == caller.organisation_id)
            .values(id=Organisation.id)
        )
        if session.get_bind().dialect.name == "postgresql":
            # The platform's quota counts every organisation's demonstrators: launches of
            # different organisations (on any replica) check it one after the other too,
            # under a lock held until this transaction ends.
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": GLOBAL_QUOTA_LOCK})

    def _running(
        self, session: Session, caller: Caller, version: VersionInfo
    ) -> DemoSession | None:
        """The organisation's newest live demonstrator of ``version``, if any."""
        query = (
            select(DemoSession)
            .where(
                active(),
                demonstrators(),
                DemoSession.organisation_id == caller.organisation_id,
                DemoSession.model_name == version.name,
                DemoSession.model_version == version.version,
                DemoSession.expires_at > utcnow(),
            )
            .order_by(DemoSession.created_at.desc())
            .limit(1)
        )
        return session.scalars(query).first()

    def _check_quotas(self, session: Session, caller: Caller) -> None:
        total = (
            session.scalar(
                select(func.count()).select_from(DemoSession).where(active(), demonstrators())
            )
            or 0
        )
        if total >= self.settings.demo_quota_global:
            raise QuotaExceeded(
                f"trop de démonstrateurs actifs sur la plateforme ({total} sur {self.settings.demo_quota_global}) : "
                "réessayez dans quelques minutes"
            )
        mine = (
            session.scalar(
                select(func.count())
                .select_from(DemoSession)
                .where(
                    active(), demonstrators(), DemoSession.organisation_id == caller.organisation_id
                )
            )
            or 0
        )
        quota = demo_quota(session, caller.organisation_id, self.settings.demo_quota_per_org)
        if mine >= quota:
            raise QuotaExceeded(
                f"votre collectivité a déjà {mine} démonstrateur(s) actif(s) (quota : {quota}) : "
                "arrêtez-en un (DELETE /api/v1/demos/{id} ou bibia demo stop) puis réessayez"
            )
