"""Fixtures of the evaluation service tests: real apps on a real Docker engine, real models, real jobs.

Apps run with ``evaluation_workers=0`` unless a test asks for workers: a test
queues an evaluation through the API and runs the queue in its own thread
(``EvaluationService.run_queued``), so what it asserts is deterministic; the
background workers, their claims and their recovery have tests of their own.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import World
from tests.demos_service.conftest import (  # noqa: F401  (fixtures)
    cached_builds,
    data_dir,
    demo_image,
    docker_settings,
    fixture_models,
    open_world,
    register_model,
    seed_reference,
    short_tmp,
)

ALL_REFERENCES = ("demos.cantine.commande", "demos.cantine", "demos.velo", "demos.air")


@pytest.fixture(scope="session")
def all_reference_builds(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, object]:
    """The three reference models, trained once (shared cache with the demonstrator tests)."""
    return cached_builds(request, tmp_path_factory, ALL_REFERENCES)


def eval_settings(directory: Path, image: str, **overrides: object):
    values: dict[str, object] = {
        "evaluation_workers": 0,
        "evaluation_heartbeat_s": 0.5,
        "evaluation_poll_interval_s": 0.2,
    }
    values.update(overrides)
    return docker_settings(directory, image, **values)


def regression_csv(n: int = 40, *, truth: Callable[[float], float] = lambda x: 2.0 * x) -> bytes:
    """A French CSV (``;``, decimal comma) of ``x`` and the observed ``observe`` column."""
    frame = pd.DataFrame({"x": [i / 2 for i in range(n)]})
    frame["observe"] = [truth(x) for x in frame["x"]]
    buffer = io.StringIO()
    frame.to_csv(buffer, sep=";", decimal=",", index=False)
    return buffer.getvalue().encode("utf-8")


def register_regression_benchmark(
    world: World, slug: str = "doubles", *, data: bytes | None = None, visibility: str = "public"
) -> dict:
    response = world.client.post(
        "/api/v1/benchmarks",
        headers=world.headers("expert"),
        files={"fichier": ("jeu.csv", data or regression_csv(), "text/csv")},
        data={
            "slug": slug,
            "task": "regression",
            "title": "Doubles",
            "licence": "Licence Ouverte 2.0",
            "visibility": visibility,
            "truth_column": "observe",
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


def submit(world: World, model: str, role: str = "member", **body: object):
    return world.client.post(
        "/api/v1/evaluations", headers=world.headers(role), json={"model": model, **body}
    )


def run_one(world: World, model: str, benchmark: str, role: str = "member") -> dict:
    """Queue an evaluation through the API, run the queue here, return the finished job."""
    response = submit(world, model, role, benchmark=benchmark)
    assert response.status_code == 202, response.text
    job = response.json()
    world.app.state.evaluations.run_queued()
    response = world.client.get(f"/api/v1/evaluations/{job['id']}", headers=world.headers(role))
    assert response.status_code == 200, response.text
    return response.json()
