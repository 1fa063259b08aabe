"""Fixture models through the whole service: failing, slow, wrong answers.

Each behaviour model (``tests/fixtures/models.py``) is registered through the
API like any expert upload and launched by a member; the service must show
what happened (state, a fixed error message, expert logs) and stay healthy.
All demonstrators start at once (module fixture) to keep the run short; every
container is removed when the module ends. Escape attempts are the hostile
suite's (tests/security/test_hostile_models.py).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import World
from tests.demos_service.conftest import (
    container_ids,
    docker_settings,
    launch,
    open_world,
    register_model,
    wait_demo,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

KINDS = ("raises_on_load", "slow_load", "wrong_shape")


@pytest.fixture(scope="module")
def world(demo_image, fixture_models, short_tmp) -> Iterator[World]:
    data = Path(tempfile.mkdtemp(prefix="bds-fix-", dir=short_tmp))
    settings = docker_settings(
        data, demo_image, demo_memory_mb=256, demo_pids=64, demo_start_timeout_s=60.0
    )
    params = {"slow_load": {"delay": 5}}
    with open_world(settings) as w:
        for kind in KINDS:
            register_model(
                w,
                kind.replace("_", "-"),
                fixture_models(kind, **params.get(kind, {})),
                f"Modèle d'essai « {kind} »",
            )
        yield w


@pytest.fixture(scope="module")
def outcomes(world: World) -> dict[str, dict]:
    """Launch every kind at once, then wait for each: ``{kind: last answer + states seen}``."""
    ids = {}
    for kind in KINDS:
        response = launch(world, kind.replace("_", "-"))
        assert response.status_code == 202, response.text
        ids[kind] = response.json()["id"]
    out = {}
    for kind, demo_id in ids.items():
        demo, seen = wait_demo(world, demo_id, timeout=120)
        out[kind] = {**demo, "seen": seen}
    return out


def _healthy(world: World) -> None:
    response = world.client.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_raises_on_load_is_failed_with_the_error_shown(
    world: World, outcomes: dict[str, dict]
) -> None:
    demo = outcomes["raises_on_load"]
    assert demo["state"] == "failed", demo
    assert demo["url"] is None
    assert (
        "le démonstrateur s'est arrêté (code 3) : le modèle n'a pas pu être chargé" in demo["error"]
    )
    assert (
        "échec volontaire au chargement" not in demo["error"]
    )  # what the model printed is for experts only
    logs = world.client.get(f"/api/v1/demos/{demo['id']}/logs", headers=world.headers("expert"))
    assert logs.status_code == 200
    assert "échec volontaire au chargement" in logs.text
    assert (
        world.client.get(
            f"/api/v1/demos/{demo['id']}/logs", headers=world.headers("member")
        ).status_code
        == 403
    )
    proxied = world.client.get(f"/demos/{demo['id']}/", headers=world.headers("member"))
    assert (
        proxied.status_code == 409 and "n'est pas prêt (état : failed)" in proxied.json()["message"]
    )
    assert container_ids(demo["id"]) == []
    _healthy(world)


def test_slow_load_is_starting_then_ready(world: World, outcomes: dict[str, dict]) -> None:
    demo = outcomes["slow_load"]
    assert demo["state"] == "ready", demo
    assert "starting" in demo["seen"] and demo["seen"].index("starting") < demo["seen"].index(
        "ready"
    )
    response = world.client.post(
        f"{demo['url']}predict",
        headers=world.headers("member"),
        json={"dataframe_records": [{"x": 2}]},
    )
    assert response.json() == {"predictions": [{"y": 4.0}]}


def test_wrong_shape_is_a_clear_json_error_and_nothing_crashes(
    world: World, outcomes: dict[str, dict]
) -> None:
    demo = outcomes["wrong_shape"]
    assert demo["state"] == "ready", demo
    headers = world.headers("member")
    for _ in range(2):
        response = world.client.post(
            f"{demo['url']}predict",
            headers=headers,
            json={"dataframe_records": [{"x": 1}, {"x": 2}]},
        )
        assert 400 <= response.status_code < 600, response.text
        body = response.json()
        assert "Traceback" not in response.text
        assert body["message"] and "prédiction" in body["message"].lower(), body
    upload = world.client.post(
        f"{demo['url']}upload", headers=headers, files={"file": ("d.csv", b"x\n1\n2\n", "text/csv")}
    )
    assert 400 <= upload.status_code < 600 and 'role="alert"' in upload.text
    assert world.client.get(f"{demo['url']}health", headers=headers).status_code == 200
    assert (
        world.client.get(f"/api/v1/demos/{demo['id']}", headers=headers).json()["state"] == "ready"
    )
    _healthy(world)
