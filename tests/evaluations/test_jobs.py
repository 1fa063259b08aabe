"""Evaluation jobs on the real engine: a verified evaluation end to end, its cost, its sandbox gone;
models that crash, hang, answer garbage or look for the truth end in a failed job with a reason."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bibia.db.models import DemoSession
from tests.conftest import World
from tests.evaluations.conftest import (
    eval_settings,
    open_world,
    register_model,
    register_regression_benchmark,
    regression_csv,
    run_one,
)

pytestmark = pytest.mark.docker


@pytest.fixture
def world(data_dir, demo_image):
    with open_world(eval_settings(data_dir, demo_image, evaluation_predict_timeout_s=20)) as w:
        yield w


def test_a_verified_evaluation_end_to_end(world: World, fixture_models) -> None:
    register_model(world, "doubleur", fixture_models("ok"), "Doubleur")
    bench = register_regression_benchmark(world)
    assert bench["version"] == 1 and bench["n_rows"] == 40
    job = run_one(world, "doubleur@production", "doubles")
    assert job["state"] == "done", job
    assert job["verified"] is True
    assert job["metrics"]["mae"] == pytest.approx(0.0)
    assert job["baseline_metrics"]["mae"] > 1.0  # the mean of the observed values
    assert job["benchmark"] == "doubles/1" and job["benchmark_hash"] == bench["content_hash"]
    cost = job["cost"]
    assert cost["cpu_seconds"] is not None and cost["cpu_seconds"] >= 0
    assert cost["peak_memory_bytes"] and cost["peak_memory_bytes"] > 10 * 1024 * 1024
    assert cost["energy_wh"] > 0 and cost["co2e_g"] > 0
    assert job["bibia_version"] and job["runner"] == "DockerRunner"
    # its sandbox is gone, and it never was one of the organisation's demonstrators
    demos = world.client.get("/api/v1/demos?include_finished=true", headers=world.headers("member"))
    assert demos.status_code == 200 and demos.json() == []
    assert world.app.state.demos.sandbox.mine() == []
    with world.services.db.session() as session:
        (row,) = session.scalars(select(DemoSession)).all()
        assert (row.purpose, row.state) == ("evaluation", "stopped")


MARKER = 424242.4242


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("eval_crash", "le bac à sable s'est arrêté pendant les prédictions"),
        ("eval_hang", "n'a pas répondu en"),
        ("eval_nan", "réponse du modèle inutilisable"),
        ("eval_wrong_columns", "réponse du modèle inutilisable"),
        ("wrong_shape", "le modèle a refusé ou échoué sur les données"),
        ("raises_on_load", "le modèle n'a pas pu démarrer dans le bac à sable"),
        ("eval_memory", "mémoire"),
    ],
)
def test_a_model_that_misbehaves_ends_in_a_failed_job_with_a_reason(
    data_dir, demo_image, fixture_models, kind: str, reason: str
) -> None:
    settings = eval_settings(data_dir, demo_image, evaluation_predict_timeout_s=6)
    with open_world(settings) as world:
        register_model(world, "fautif", fixture_models(kind), "Fautif")
        register_regression_benchmark(world)
        job = run_one(world, "fautif@production", "doubles")
        assert job["state"] == "failed", job
        assert reason in job["error"], job["error"]
        assert job["metrics"] is None and job["finished_at"] is not None
        assert world.app.state.demos.sandbox.mine() == []  # its sandbox is gone


def test_the_truth_never_enters_the_sandbox(world: World, fixture_models) -> None:
    register_model(world, "curieux", fixture_models("eval_truth_seeker"), "Curieux")
    register_regression_benchmark(world, data=regression_csv(truth=lambda _: MARKER))
    job = run_one(world, "curieux@production", "doubles")
    assert job["state"] == "done", job["error"]
    # it predicted -1 everywhere: it found the marker nowhere
    assert job["metrics"]["mae"] == pytest.approx(MARKER + 1.0)
