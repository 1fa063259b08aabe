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
    assert world.app.state.services.runner.list() == []
    with world.services.db.session() as session:
        (row,) = session.scalars(select(DemoSession)).all()
        assert (row.purpose, row.state) == ("evaluation", "stopped")
