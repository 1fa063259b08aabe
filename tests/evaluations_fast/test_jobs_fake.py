"""The evaluation job lifecycle on the fake runner: queue, claim, progress, done; cancellation;
quotas; recovery of a job whose worker died; a service restart with a job running; private results;
garbage answers; the leaderboard's constant number of SQL statements."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import event, select

from bibia.db.models import Evaluation
from runners.fake import Behaviour, FakeRunner
from tests.evaluations_fast.conftest import eval_world, run_one, submit


def test_a_job_goes_from_queued_to_done_with_its_result(fast_tmp: Path, ok_model: Path) -> None:
    with eval_world(fast_tmp, ok_model) as world:
        response = submit(world, "double-x@production", benchmark="doubles")
        assert response.status_code == 202, response.text
        queued = response.json()
        assert queued["state"] == "queued" and response.headers["location"].endswith(queued["id"])
        world.app.state.evaluations.run_queued()
        job = world.client.get(
            queued["url"].replace("/evaluations", "/api/v1/evaluations"),
            headers=world.headers("member"),
        ).json()
        assert job["state"] == "done" and job["progress"] == 1.0
        assert job["metrics"]["mae"] == pytest.approx(0.0)
        assert job["n_rows"] == 40 and job["cost"]["cpu_seconds"] is not None
        with world.services.db.session() as session:
            row = session.get(Evaluation, job["id"])
            assert row.attempts == 1 and row.claimed_by is not None


def test_garbage_answers_fail_the_job(fast_tmp: Path, ok_model: Path) -> None:
    answers = {
        "wrong length": lambda records: [{"y": 1.0}] * (len(records) + 1),
        "strings": lambda records: [{"y": "beaucoup"} for _ in records],
        "nested": lambda records: [{"y": {"a": [1, 2]}} for _ in records],
        "missing column": lambda records: [{"z": 1.0} for _ in records],
    }
    for label, answer in answers.items():
        runner = FakeRunner(behaviour=lambda spec, a=answer: Behaviour(predict=a))
        with eval_world(fast_tmp, ok_model, runner) as world:
            job = run_one(world, "double-x@production", "doubles")
            assert job["state"] == "failed", (label, job)
            assert job["error"].startswith("réponse du modèle inutilisable"), (label, job["error"])


def test_a_queued_job_is_cancelled_and_never_runs(fast_tmp: Path, ok_model: Path) -> None:
    with eval_world(fast_tmp, ok_model) as world:
        job = submit(world, "double-x@production", benchmark="doubles").json()
        other = world.client.delete(
            f"/api/v1/evaluations/{job['id']}", headers=world.headers("other_member")
        )
        assert other.status_code == 404  # another organisation's job does not exist for it
        response = world.client.delete(
            f"/api/v1/evaluations/{job['id']}", headers=world.headers("member")
        )
        assert response.status_code == 200, response.text
        assert response.json()["state"] == "cancelled"
        assert world.app.state.evaluations.run_queued() == []


def test_the_quota_answers_429_in_french(fast_tmp: Path, ok_model: Path) -> None:
    with eval_world(fast_tmp, ok_model, evaluation_quota_per_org=2) as world:
        for _ in range(2):
            assert submit(world, "double-x@production", benchmark="doubles").status_code == 202
        response = submit(world, "double-x@production", benchmark="doubles")
        assert response.status_code == 429
        assert "quota" in response.json()["message"]
        # another organisation has its own quota
        assert (
            submit(world, "double-x@production", "other_member", benchmark="doubles").status_code
            == 202
        )


def test_a_job_whose_worker_died_is_queued_again_then_failed_after_its_last_attempt(
    fast_tmp: Path, ok_model: Path
) -> None:
    with eval_world(
        fast_tmp, ok_model, evaluation_stale_after_s=0.5, evaluation_max_attempts=2
    ) as world:
        evaluations = world.app.state.evaluations
        job = submit(world, "double-x@production", benchmark="doubles").json()
        assert evaluations.jobs.claim("a-worker-that-dies") == job["id"]  # then never beats
        time.sleep(0.7)
        assert evaluations.run_queued() == [job["id"]]  # recovered, claimed again, run
        done = evaluations.get(_member(world), job["id"])
        assert done.state == "done"
        second = submit(world, "double-x@production", benchmark="doubles").json()
        for worker in ("dies-once", "dies-twice"):
            assert evaluations.jobs.claim(worker) == second["id"]
            time.sleep(0.7)
            evaluations.jobs.recover()
        failed = evaluations.get(_member(world), second["id"])
        assert failed.state == "failed"
        assert "interrompue 2 fois" in (failed.error or "")


def test_a_restart_with_a_job_running_requeues_it_and_the_next_start_finishes_it(
    fast_tmp: Path, ok_model: Path
) -> None:
    release, asked = threading.Event(), threading.Event()

    def stuck(records: list[dict]) -> list[dict]:
        asked.set()
        release.wait(30)
        return [{"y": 2.0 * float(r["x"])} for r in records]

    stuck_runner = FakeRunner(behaviour=lambda spec: Behaviour(predict=stuck))
    overrides = {"evaluation_workers": 1, "evaluation_stale_after_s": 1.0}
    try:
        with eval_world(fast_tmp, ok_model, stuck_runner, **overrides) as first:
            data, tokens = first.services.settings.data_dir, first.tokens
            job = submit(first, "double-x@production", benchmark="doubles").json()
            assert asked.wait(20), "the worker never sent the batch"
            assert first.app.state.evaluations.get(_member(first), job["id"]).state == "running"
        # the service stopped mid-run: the job is not left hung
        with eval_world(
            fast_tmp, ok_model, data=data, tokens=tokens, register=False, **overrides
        ) as second:
            evaluations = second.app.state.evaluations
            deadline = time.monotonic() + 30
            while (view := evaluations.get(_member(second), job["id"])).state not in {
                "done",
                "failed",
            }:
                assert time.monotonic() < deadline, view
                time.sleep(0.2)
            assert view.state == "done", view
            with second.services.db.session() as session:
                assert session.get(Evaluation, job["id"]).attempts == 2
    finally:
        release.set()


def test_a_private_evaluation_is_its_organisation_s_only(fast_tmp: Path, ok_model: Path) -> None:
    csv = b"x;observe\n1,5;3,0\n2;4\n3;6,5\n"
    with eval_world(fast_tmp, ok_model) as world:
        response = world.client.post(
            "/api/v1/evaluations",
            headers=world.headers("member"),
            data={"model": "double-x@production", "truth_column": "observe", "task": "regression"},
            files={"fichier": ("mes-donnees.csv", csv, "text/csv")},
        )
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["kind"] == "donnees" and job["verified"] is False
        world.app.state.evaluations.run_queued()
        mine = world.client.get(f"/api/v1/evaluations/{job['id']}", headers=world.headers("member"))
        assert mine.status_code == 200 and mine.json()["state"] == "done", mine.text
        assert mine.json()["metrics"]["mae"] == pytest.approx(0.5 / 3)
        for role in (None, "other_member", "other_expert"):
            seen = world.client.get(f"/api/v1/evaluations/{job['id']}", headers=world.headers(role))
            assert seen.status_code == 404, role
        listed = world.client.get(
            "/api/v1/evaluations", headers=world.headers("other_member")
        ).json()
        assert job["id"] not in {e["id"] for e in listed}
        # the uploaded rows are gone once scored
        assert not (world.services.settings.evaluations_dir / job["id"]).exists()


def test_the_leaderboard_costs_the_same_sql_statements_for_10_or_1000_evaluations(
    fast_tmp: Path, ok_model: Path
) -> None:
    with eval_world(fast_tmp, ok_model) as world:
        evaluations = world.app.state.evaluations
        run_one(world, "double-x@production", "doubles")
        with world.services.db.session() as session:
            template = session.scalars(select(Evaluation)).one()
            bench = template.benchmark_id

        def add(n: int) -> None:
            with world.services.db.session() as session:
                for i in range(n):
                    session.add(
                        Evaluation(
                            id=f"{i:032x}",
                            kind="benchmark",
                            state="done",
                            progress=1.0,
                            model_name=f"modele-{i % 50}",
                            model_version=1 + i // 50,
                            model_ref="x",
                            task="regression",
                            benchmark_id=bench,
                            organisation_id=template.organisation_id,
                            requested_by="x",
                            metrics={"mae": i / 10, "rmse": i / 5},
                            baseline_metrics={"mae": 9.0},
                        )
                    )

        def statements() -> int:
            count = 0

            def seen(*_: object) -> None:
                nonlocal count
                count += 1

            engine = world.services.db.engine
            event.listen(engine, "before_cursor_execute", seen)
            try:
                board = evaluations.leaderboard(_member(world), "regression")
            finally:
                event.remove(engine, "before_cursor_execute", seen)
            assert board.rows
            return count

        add(9)
        few = statements()
        with world.services.db.session() as session:
            session.query(Evaluation).filter(Evaluation.model_name.like("modele-%")).delete(
                synchronize_session=False
            )
        add(999)
        many = statements()
        assert few == many


def _member(world):
    from bibia.auth import authenticate

    with world.services.db.session() as session:
        return authenticate(session, world.tokens["member"])


def test_the_promotion_gate_guards_production(fast_tmp: Path, ok_model: Path) -> None:
    answers = {"good": lambda records: [{"y": 2.0 * float(r["x"])} for r in records]}
    answers["bad"] = lambda records: [{"y": 1000.0} for _ in records]
    behaviour = {"answer": answers["bad"]}
    runner = FakeRunner(behaviour=lambda spec: Behaviour(predict=lambda r: behaviour["answer"](r)))
    with eval_world(fast_tmp, ok_model, runner, register=False) as world:
        from tests.demos_service.conftest import register_model
        from tests.evaluations.conftest import regression_csv

        register_model(world, "double-x", ok_model, "Modèle d'essai : le double de x")
        response = world.client.post(
            "/api/v1/benchmarks",
            headers=world.headers("admin"),
            files={"fichier": ("jeu.csv", regression_csv(), "text/csv")},
            data={
                "slug": "doubles-reference",
                "task": "regression",
                "title": "Doubles (référence)",
                "licence": "Licence Ouverte 2.0",
                "truth_column": "observe",
                "reference": "true",
            },
        )
        assert response.status_code == 201 and response.json()["reference"] is True, response.text
        settings = world.client.put(
            "/api/v1/models/double-x/evaluation-settings",
            headers=world.headers("expert"),
            json={"task": "regression", "promotion_gate": True},
        )
        assert settings.status_code == 200, settings.text

        def promote() -> object:
            return world.client.put(
                "/api/v1/models/double-x/aliases/production",
                headers=world.headers("expert"),
                json={"version": 1},
            )

        refused = promote()
        assert refused.status_code == 409, refused.text
        assert "n'a pas d'évaluation vérifiée" in refused.json()["message"]
        assert run_one(world, "double-x/1", "doubles-reference")["state"] == "done"
        refused = promote()
        assert refused.status_code == 409, refused.text
        message = refused.json()["message"]
        assert "mae" in message and "référence" in message, message
        behaviour["answer"] = answers["good"]
        assert run_one(world, "double-x/1", "doubles-reference")["state"] == "done"
        assert promote().status_code == 200
        # another alias is never gated
        candidate = world.client.put(
            "/api/v1/models/double-x/aliases/candidate",
            headers=world.headers("expert"),
            json={"version": 1},
        )
        assert candidate.status_code == 200


def test_a_hidden_truth_benchmark_takes_a_few_evaluations_a_day_per_organisation(
    fast_tmp: Path, ok_model: Path
) -> None:
    from tests.evaluations.conftest import register_regression_benchmark

    with eval_world(
        fast_tmp, ok_model, evaluation_hidden_per_day=2, evaluation_quota_per_org=10
    ) as world:
        register_regression_benchmark(world, "doubles-caches", visibility="verite-cachee")
        for _ in range(2):
            assert (
                submit(world, "double-x@production", benchmark="doubles-caches").status_code == 202
            )
        refused = submit(world, "double-x@production", benchmark="doubles-caches")
        assert refused.status_code == 429, refused.text
        assert "vérité cachée" in refused.json()["message"]
        # another organisation has its own allowance; a public benchmark has none
        other = submit(world, "double-x@production", "other_member", benchmark="doubles-caches")
        assert other.status_code == 202, other.text
        assert submit(world, "double-x@production", benchmark="doubles").status_code == 202
