"""``runner="process"``: reference models run on the host (no sandbox); uploaded models are refused.

No Docker needed. The reference models come from the real ``bibia seed``
(which tags their versions ``bibia.reference=true``); ``double-x`` is an
expert's upload through the API, hence untrusted.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import World
from tests.demos_service.conftest import (
    launch,
    launch_ready,
    open_world,
    register_model,
    seed_reference,
)

pytestmark = pytest.mark.slow


def _settings(data: Path, **overrides: object):
    from bibia.settings import Settings

    return Settings(
        data_dir=data,
        seed_on_start=False,
        runner="process",
        demo_start_timeout_s=90.0,
        demo_reap_interval_s=3600.0,
        **overrides,
    )


@pytest.fixture(scope="module")
def world(reference_builds, fixture_models, short_tmp) -> Iterator[World]:
    data = Path(tempfile.mkdtemp(prefix="bds-proc-", dir=short_tmp))
    with open_world(_settings(data)) as w:
        seed_reference(w.services, reference_builds)
        register_model(w, "double-x", fixture_models("ok"), "Modèle d'essai : le double de x")
        yield w
        for info in w.services.runner.list():
            w.services.runner.stop(info.demo_id, timeout=1)


def _pid(world: World, demo_id: str) -> int:
    return int(next(i.runner_id for i in world.services.runner.list() if i.demo_id == demo_id))


def test_the_settings_pick_the_process_runner(world: World) -> None:
    from runners.process import ProcessRunner

    assert isinstance(world.services.runner, ProcessRunner)
    assert world.services.runner.allow_untrusted is False


def test_a_reference_model_launches_predicts_and_stops(world: World) -> None:
    demo = launch_ready(world, "velo-anomalies-nantes")
    headers = world.headers("member")
    page = world.client.get(demo["url"], headers=headers)
    assert (
        page.status_code == 200
        and "Détection d'anomalies des compteurs vélo" in page.text.replace("&#x27;", "'")
    )
    sample = world.client.get(f"{demo['url']}sample.csv", headers=headers)
    upload = world.client.post(
        f"{demo['url']}upload",
        headers=headers,
        files={"file": ("velo.csv", sample.content, "text/csv")},
    )
    assert upload.status_code == 200 and "<table>" in upload.text
    pid = _pid(world, demo["id"])
    os.kill(pid, 0)  # a host process
    stopped = world.client.delete(f"/api/v1/demos/{demo['id']}", headers=headers)
    assert stopped.json()["state"] == "stopped"
    assert demo["id"] not in {i.demo_id for i in world.services.runner.list()}


def test_an_uploaded_model_is_refused_with_a_clear_message(world: World) -> None:
    before = world.client.get("/api/v1/demos?all=true", headers=world.headers("member")).json()
    response = launch(world, "double-x")
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "modele_non_fiable"
    message = response.json()["message"]
    assert "sans bac à sable" in message and "modèles de référence" in message, message
    assert "« double-x » version 1" in message and "BIBIA_RUNNER=docker" in message
    # Refused before anything was created: no demonstrator row, nothing started.
    assert (
        world.client.get("/api/v1/demos?all=true", headers=world.headers("member")).json() == before
    )


def test_allow_untrusted_process_runner_lets_it_run(fixture_models, short_tmp) -> None:
    data = Path(tempfile.mkdtemp(prefix="bds-proc2-", dir=short_tmp))
    with open_world(_settings(data, allow_untrusted_process_runner=True)) as world:
        register_model(world, "double-x", fixture_models("ok"), "Modèle d'essai : le double de x")
        try:
            demo = launch_ready(world, "double-x")
            answer = world.client.post(
                f"{demo['url']}predict",
                headers=world.headers("member"),
                json={"dataframe_records": [{"x": 1.5}]},
            )
            assert answer.json() == {"predictions": [{"y": 3.0}]}
        finally:
            for info in world.services.runner.list():
                world.services.runner.stop(info.demo_id, timeout=1)
