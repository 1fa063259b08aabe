"""On the real engine: a demonstrator's stop records what its container consumed, by the engine's accounting."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import World
from tests.demos_service.conftest import docker_settings, launch_ready, open_world, register_model

pytestmark = [pytest.mark.docker]


@pytest.fixture(scope="module")
def world(demo_image, fixture_models, short_tmp) -> Iterator[World]:
    data = Path(tempfile.mkdtemp(prefix="bds-usage-", dir=short_tmp))
    with open_world(docker_settings(data, demo_image)) as w:
        register_model(w, "double-x", fixture_models("ok"), "Modèle d'essai : le double de x")
        yield w


def test_a_stop_records_the_containers_cpu_time_and_peak_memory(world: World) -> None:
    from bibia.db.models import DemoSession

    demo = launch_ready(world, "double-x")
    for _ in range(5):
        answer = world.client.post(
            f"{demo['url']}predict",
            headers=world.headers("member"),
            json={"dataframe_records": [{"x": i} for i in range(300)]},
        )
        assert answer.status_code == 200, answer.text
    measured = world.app.state.demos.sandbox.usage(demo["id"])
    assert measured is not None and measured.source.startswith("docker-stats")
    stopped = world.client.delete(f"/api/v1/demos/{demo['id']}", headers=world.headers("member"))
    assert stopped.status_code == 200, stopped.text

    with world.services.db.session() as session:
        row = session.get(DemoSession, demo["id"])
        assert row is not None and row.state == "stopped" and row.finished_at is not None
        # a Python server that loaded an MLflow model and served requests: real CPU time, real megabytes
        assert row.cpu_seconds is not None and row.cpu_seconds >= measured.cpu_seconds > 0.1
        assert row.peak_memory_bytes is not None
        assert (
            10 * 1024 * 1024
            < row.peak_memory_bytes
            <= world.services.settings.demo_memory_mb * 1024 * 1024
        )
    assert world.app.state.demos.sandbox.usage(demo["id"]) is None
