"""Evaluation jobs on both databases: concurrent workers claim every queued job exactly once (row locks
on PostgreSQL, a compare-and-set update everywhere), and moves are refused to a worker that lost its job."""

from __future__ import annotations

import secrets
import threading
import time

from sqlalchemy import select

from bibia import accounts
from bibia.auth import SYSTEM
from bibia.db import Database
from bibia.db.models import Evaluation, Organisation
from bibia.evaluations.jobs import Jobs, JobState
from bibia.settings import Settings

WORKERS = 6
JOBS = 60


def _queue(db: Database, n: int) -> set[str]:
    with db.session() as session:
        org = session.scalar(select(Organisation).where(Organisation.slug == "jobs-contract"))
        if org is None:
            org = accounts.create_organisation(session, SYSTEM, "jobs-contract", "Contrat", None)
        ids = set()
        for _ in range(n):
            job_id = secrets.token_hex(16)
            session.add(
                Evaluation(
                    id=job_id,
                    kind="benchmark",
                    state=JobState.QUEUED.value,
                    model_name="m",
                    model_version=1,
                    model_ref="m/1",
                    task="regression",
                    organisation_id=org.id,
                    requested_by="test",
                    attempts=0,
                    progress=0.0,
                )
            )
            ids.add(job_id)
    return ids


def test_concurrent_workers_claim_every_job_exactly_once(db: Database, tmp_path) -> None:
    jobs = Jobs(db, Settings(data_dir=tmp_path))
    queued = _queue(db, JOBS)
    claimed: dict[str, list[str]] = {}
    lock = threading.Lock()
    start = threading.Barrier(WORKERS)

    def work(name: str) -> None:
        start.wait()
        misses = 0
        while misses < 20:
            job_id = jobs.claim(name)
            if job_id is None:
                misses += 1
                continue
            with lock:
                claimed.setdefault(job_id, []).append(name)
            assert jobs.finish(job_id, name, metrics={"mae": 0.0})

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    mine = {k: v for k, v in claimed.items() if k in queued}
    assert set(mine) == queued
    assert all(len(workers) == 1 for workers in mine.values()), mine
    with db.session() as session:
        states = set(session.scalars(select(Evaluation.state).where(Evaluation.id.in_(queued))))
    assert states == {"done"}


def test_a_worker_that_lost_its_job_moves_it_no_more(db: Database, tmp_path) -> None:
    jobs = Jobs(db, Settings(data_dir=tmp_path, evaluation_stale_after_s=0.01))
    (job_id,) = _queue(db, 1)
    while (taken := jobs.claim("first")) not in (job_id, None):  # older tests' leftovers
        jobs.finish(taken, "first")
    assert jobs.state(job_id) == JobState.RUNNING
    time.sleep(0.05)
    recovered = jobs.recover()  # its heartbeat is older than 10 ms: lost
    assert job_id in recovered["requeued"]
    assert not jobs.heartbeat(job_id, "first")
    assert not jobs.finish(job_id, "first", metrics={"mae": 1.0})
    assert jobs.claim("second") == job_id
    assert jobs.finish(job_id, "second", metrics={"mae": 2.0})
    with db.session() as session:
        row = session.get(Evaluation, job_id)
        assert row is not None
        assert (row.state, row.claimed_by, row.attempts, row.metrics) == (
            "done",
            "second",
            2,
            {"mae": 2.0},
        )
