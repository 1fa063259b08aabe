"""Each reference model's verified evaluation, in a sandbox on its reference benchmark, reproduces the
metrics recorded at its registration; leaderboards, comparison and the promotion gate read them."""

from __future__ import annotations

import math

import pytest

from registry.refs import ModelRef
from tests.evaluations.conftest import (
    ALL_REFERENCES,
    eval_settings,
    open_world,
    run_one,
    seed_reference,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

BENCHMARKS = {
    "cantine-nantes": "cantine-nantes-2017-2018",
    "velo-anomalies-nantes": "velo-nantes-2019-anomalies-injectees",
    "pics-pollution-lille": "air-lille-annees-test",
}
#: Each reference version by its alias: cantine-nantes has two (calendar only, and the
#: staff-order variant), scored on the same benchmark.
VERSIONS = {
    **{f"{name}@production": bench for name, bench in BENCHMARKS.items()},
    "cantine-nantes@correction-commande": BENCHMARKS["cantine-nantes"],
}


@pytest.fixture(scope="module")
def seeded(short_tmp, demo_image, all_reference_builds):
    import tempfile
    from pathlib import Path

    directory = Path(tempfile.mkdtemp(dir=short_tmp))
    with open_world(eval_settings(directory, demo_image)) as world:
        seed_reference(world.services, all_reference_builds, ALL_REFERENCES)
        jobs = {ref: run_one(world, ref, bench) for ref, bench in VERSIONS.items()}
        jobs.update({name: jobs[f"{name}@production"] for name in BENCHMARKS})
        yield world, jobs


@pytest.mark.parametrize("ref", sorted(VERSIONS))
def test_the_verified_evaluation_reproduces_the_registered_metrics(seeded, ref: str) -> None:
    world, jobs = seeded
    job = jobs[ref]
    assert job["state"] == "done", job
    registered = world.services.registry.resolve(ModelRef.parse(ref))
    assert registered.metrics, "the reference model records its metrics at registration"
    for metric, value in registered.metrics.items():
        if metric not in job["metrics"]:
            continue
        assert job["metrics"][metric] == pytest.approx(value, rel=1e-6, abs=1e-9), metric
    shared = set(registered.metrics) & set(job["metrics"])
    assert len(shared) >= 3, (sorted(registered.metrics), sorted(job["metrics"]))
    assert all(math.isfinite(v) for v in job["baseline_metrics"].values())
    assert job["cost"]["cpu_seconds"] > 0


def test_the_leaderboard_ranks_the_model_beside_the_naive_baseline(seeded) -> None:
    world, jobs = seeded
    response = world.client.get("/api/v1/tasks/cantine-frequentation/leaderboard")
    assert response.status_code == 200, response.text
    board = response.json()
    assert board["benchmark"]["slug"] == BENCHMARKS["cantine-nantes"]
    rows = board["rows"]
    assert [r["is_baseline"] for r in rows].count(True) == 1
    models = {r["evaluation"]: r for r in rows if not r["is_baseline"]}
    # one row per version: the calendar-only one (production) and the staff-order variant
    production = models[jobs["cantine-nantes"]["id"]]
    assert production["model"] == "cantine-nantes" and "production" in production["aliases"]
    variant = models[jobs["cantine-nantes@correction-commande"]["id"]]
    assert "correction-commande" in variant["aliases"]


def test_the_promotion_gate_passes_a_model_better_than_the_baseline(seeded) -> None:
    world, _ = seeded
    evaluations = world.app.state.evaluations
    job = seeded[1]["cantine-nantes"]
    primary = job["primary"]
    with world.services.db.session() as session:
        from bibia.db.models import ModelEvaluationSettings

        session.get(ModelEvaluationSettings, "cantine-nantes").promotion_gate = True
    try:
        if job["metrics"][primary] <= job["baseline_metrics"][primary]:
            evaluations.check_promotion("cantine-nantes", job["version"])
        else:  # the gate must refuse, naming the metric and both values
            from domain.errors import PromotionRefused

            with pytest.raises(PromotionRefused, match=primary):
                evaluations.check_promotion("cantine-nantes", job["version"])
    finally:
        with world.services.db.session() as session:
            session.get(ModelEvaluationSettings, "cantine-nantes").promotion_gate = False


def test_compare_puts_verified_and_declared_figures_side_by_side(seeded) -> None:
    world, _ = seeded
    response = world.client.get(
        "/api/v1/compare",
        params={"models": "cantine-nantes@production,cantine-nantes/1"},
    )
    assert response.status_code == 200, response.text
    comparison = response.json()
    assert comparison["comparable"] is True, comparison["reasons"]
    assert comparison["benchmark"].startswith(BENCHMARKS["cantine-nantes"])
    marks = {(m["name"], m["verified"]) for m in comparison["models"][0]["metrics"]}
    assert ("wmape", True) in marks and ("wmape", False) in marks


def test_models_of_different_tasks_are_not_compared(seeded) -> None:
    world, _ = seeded
    response = world.client.get(
        "/api/v1/compare", params={"models": "cantine-nantes@production,velo-anomalies-nantes"}
    )
    assert response.status_code == 200, response.text
    comparison = response.json()
    assert comparison["comparable"] is False
    assert any("même tâche" in reason for reason in comparison["reasons"])
