"""Evaluation jobs: their states, the claim under a row lock, heartbeats and recovery.

States: ``queued`` → ``running`` → ``done`` | ``failed`` | ``cancelled``
(``queued`` → ``cancelled`` too). Every write that moves a job is a
compare-and-set ``UPDATE ... WHERE state = <expected> [AND claimed_by = <me>]``
checked by its row count, so two workers (two replicas) never both move one
job: the claim selects the oldest queued row ``FOR UPDATE SKIP LOCKED``
(PostgreSQL; SQLite serialises writers anyway) and takes it only if its
update still finds it queued. A worker proves itself alive in
``heartbeat_at``; a running job whose heartbeat is older than
``evaluation_stale_after_s`` lost its worker (a restart, a crash) and
:meth:`Jobs.recover` queues it again, or fails it with the reason after
``evaluation_max_attempts`` runs: no job stays hung.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bibia.accounts import evaluation_quota
from bibia.db import Database
from bibia.db.models import Evaluation, utcnow
from bibia.settings import Settings
from domain.errors import QuotaExceeded

log = logging.getLogger("bibia.evaluations")


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)

    @property
    def label(self) -> str:
        return LABELS[self]


LABELS = {
    JobState.QUEUED: "en attente",
    JobState.RUNNING: "en cours",
    JobState.DONE: "terminée",
    JobState.FAILED: "échouée",
    JobState.CANCELLED: "annulée",
}
ACTIVE = (JobState.QUEUED.value, JobState.RUNNING.value)
INTERRUPTED = "interrompue : le service qui l'exécutait s'est arrêté ; relancée automatiquement"


class Jobs:
    """The ``evaluations`` table as the job lifecycle moves it; ``worker`` names this worker."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._postgres = db.engine.dialect.name == "postgresql"

    # ------------------------------------------------------------ quota

    def check_quota(self, session: Session, organisation_id: int) -> None:
        """Raises QuotaExceeded when the organisation already has its quota (its own, else the
        service's) queued or running."""
        mine = (
            session.scalar(
                select(func.count())
                .select_from(Evaluation)
                .where(Evaluation.organisation_id == organisation_id, Evaluation.state.in_(ACTIVE))
            )
            or 0
        )
        quota = evaluation_quota(session, organisation_id, self.settings.evaluation_quota_per_org)
        if mine >= quota:
            raise QuotaExceeded(
                f"votre collectivité a déjà {mine} évaluation(s) en attente ou en cours "
                f"(quota : {quota}) : attendez qu'elles finissent "
                "ou annulez-en une (DELETE /api/v1/evaluations/{id})"
            )

    def check_hidden_truth_limit(
        self, session: Session, organisation_id: int, benchmark_id: int
    ) -> None:
        """Raises QuotaExceeded past ``evaluation_hidden_per_day`` evaluations of the organisation
        on one hidden-truth benchmark in 24 hours: each score says a little about the truth, and
        many scores of crafted models would say it all (a private leaderboard's daily limit)."""
        since = utcnow() - dt.timedelta(days=1)
        used = (
            session.scalar(
                select(func.count())
                .select_from(Evaluation)
                .where(
                    Evaluation.organisation_id == organisation_id,
                    Evaluation.benchmark_id == benchmark_id,
                    Evaluation.created_at >= since,
                    Evaluation.state != JobState.CANCELLED.value,
                )
            )
            or 0
        )
        limit = self.settings.evaluation_hidden_per_day
        if used >= limit:
            raise QuotaExceeded(
                f"votre collectivité a déjà lancé {used} évaluation(s) sur ce jeu à vérité cachée "
                f"depuis 24 heures (limite : {limit} par jour) : chaque score dit un peu de la "
                "vérité, réessayez demain"
            )

    # ------------------------------------------------------------ the claim

    def claim(self, worker: str) -> str | None:
        """Take the oldest queued job for ``worker``; None when there is none (or another took it)."""
        with self.db.session() as session:
            query = (
                select(Evaluation.id)
                .where(Evaluation.state == JobState.QUEUED.value)
                .order_by(Evaluation.created_at, Evaluation.id)
                .limit(1)
            )
            if self._postgres:
                query = query.with_for_update(skip_locked=True)
            job_id = session.scalar(query)
            if job_id is None:
                return None
            now = utcnow()
            taken = session.execute(
                update(Evaluation)
                .where(Evaluation.id == job_id, Evaluation.state == JobState.QUEUED.value)
                .values(
                    state=JobState.RUNNING.value,
                    claimed_by=worker,
                    heartbeat_at=now,
                    started_at=now,
                    attempts=Evaluation.attempts + 1,
                    progress=0.0,
                    stage="démarrage",
                )
                .execution_options(synchronize_session=False)
            )
            return job_id if _rowcount(taken) == 1 else None

    def _mine(self, job_id: str, worker: str) -> Any:
        return (
            (Evaluation.id == job_id)
            & (Evaluation.state == JobState.RUNNING.value)
            & (Evaluation.claimed_by == worker)
        )

    def heartbeat(self, job_id: str, worker: str) -> bool:
        """Prove ``worker`` alive; False when the job is no longer its own and running (cancelled...)."""
        with self.db.session() as session:
            done = session.execute(
                update(Evaluation)
                .where(self._mine(job_id, worker))
                .values(heartbeat_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            return _rowcount(done) == 1

    def progress(self, job_id: str, worker: str, fraction: float, stage: str) -> bool:
        """Record progress (0..1) and what it is doing; False when the job is no longer ours and running."""
        with self.db.session() as session:
            done = session.execute(
                update(Evaluation)
                .where(self._mine(job_id, worker))
                .values(
                    progress=max(0.0, min(1.0, fraction)), stage=stage[:300], heartbeat_at=utcnow()
                )
                .execution_options(synchronize_session=False)
            )
            return _rowcount(done) == 1

    def set_fields(self, job_id: str, worker: str, **fields: Any) -> bool:
        with self.db.session() as session:
            done = session.execute(
                update(Evaluation)
                .where(self._mine(job_id, worker))
                .values(**fields)
                .execution_options(synchronize_session=False)
            )
            return _rowcount(done) == 1

    def finish(self, job_id: str, worker: str, **fields: Any) -> bool:
        """Mark the job done with its result, if it is still ours and running."""
        return self.set_fields(
            job_id,
            worker,
            state=JobState.DONE.value,
            progress=1.0,
            stage="terminée",
            finished_at=utcnow(),
            **fields,
        )

    def fail(self, job_id: str, worker: str, reason: str, **fields: Any) -> bool:
        """Mark the job failed with a French reason, if it is still ours and running."""
        return self.set_fields(
            job_id,
            worker,
            state=JobState.FAILED.value,
            stage="échouée",
            error=reason[:4000],
            finished_at=utcnow(),
            **fields,
        )

    def release(self, job_id: str, worker: str) -> bool:
        """Put a job this worker runs back in the queue (the service stops), keeping its attempts."""
        return self.set_fields(
            job_id,
            worker,
            state=JobState.QUEUED.value,
            stage=INTERRUPTED,
            claimed_by=None,
            heartbeat_at=None,
            progress=0.0,
            sandbox_id=None,
        )

    def cancel(self, session: Session, row: Evaluation) -> bool:
        """Cancel a queued or running job (its worker notices at its next heartbeat)."""
        done = session.execute(
            update(Evaluation)
            .where(Evaluation.id == row.id, Evaluation.state.in_(ACTIVE))
            .values(
                state=JobState.CANCELLED.value,
                stage="annulée",
                finished_at=utcnow(),
                error="annulée à la demande de la collectivité",
            )
            .execution_options(synchronize_session=False)
        )
        return _rowcount(done) == 1

    def state(self, job_id: str) -> JobState | None:
        with self.db.session() as session:
            value = session.scalar(select(Evaluation.state).where(Evaluation.id == job_id))
            return JobState(value) if value is not None else None

    # ------------------------------------------------------------ recovery

    def recover(self, *, now: dt.datetime | None = None) -> dict[str, list[str]]:
        """Queue again (or fail, after the last attempt) the running jobs whose worker went silent.

        Returns:
            ``{"requeued": [...], "failed": [...], "sandboxes": [...]}``, the last
            being the sandboxes the lost runs left (the caller stops them).
        """
        now = now or utcnow()
        limit = now - dt.timedelta(seconds=self.settings.evaluation_stale_after_s)
        result: dict[str, list[str]] = {"requeued": [], "failed": [], "sandboxes": []}
        with self.db.session() as session:
            stale = session.execute(
                select(Evaluation.id, Evaluation.attempts, Evaluation.sandbox_id).where(
                    Evaluation.state == JobState.RUNNING.value,
                    (Evaluation.heartbeat_at.is_(None)) | (Evaluation.heartbeat_at < limit),
                )
            ).all()
        for job_id, attempts, sandbox_id in stale:
            last = attempts >= self.settings.evaluation_max_attempts
            values: dict[str, Any] = (
                {
                    "state": JobState.FAILED.value,
                    "stage": "échouée",
                    "finished_at": now,
                    "error": (
                        f"interrompue {attempts} fois : le service qui l'exécutait s'est arrêté "
                        "pendant l'évaluation ; relancez-la"
                    ),
                }
                if last
                else {
                    "state": JobState.QUEUED.value,
                    "stage": INTERRUPTED,
                    "claimed_by": None,
                    "heartbeat_at": None,
                    "progress": 0.0,
                    "sandbox_id": None,
                }
            )
            with self.db.session() as session:
                moved = session.execute(
                    update(Evaluation)
                    .where(
                        Evaluation.id == job_id,
                        Evaluation.state == JobState.RUNNING.value,
                        (Evaluation.heartbeat_at.is_(None)) | (Evaluation.heartbeat_at < limit),
                    )
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
            if _rowcount(moved) != 1:
                continue
            result["failed" if last else "requeued"].append(job_id)
            if sandbox_id:
                result["sandboxes"].append(sandbox_id)
            log.warning(
                "evaluation %s lost its worker: %s", job_id, "failed" if last else "queued again"
            )
        return result


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
