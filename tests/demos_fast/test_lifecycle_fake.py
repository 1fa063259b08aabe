"""The demonstrators' lifecycle through the real service on the fake runner: no Docker, a second or so each.

The same paths as tests/demos_service (which prove them on the real engine):
launch → starting → ready → proxied predictions → stop; a model that fails
to load, one that never answers, one that dies later; a runner without
sandbox refusing an uploaded model; a stop while the launch is under way.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bibia.demos.messages import LAUNCH_FAILED
from runners.base import RunState
from runners.fake import Behaviour, FakeRunner
from tests.conftest import World
from tests.demos_fast.conftest import READY, audits, fake_runner, fake_world, settle, state
from tests.demos_service.conftest import launch, launch_ready, wait_demo

PAYLOAD = {"dataframe_records": [{"x": 4}]}


@pytest.fixture(scope="module")
def world(fast_tmp: Path, ok_model: Path) -> Iterator[World]:
    with fake_world(fast_tmp, ok_model, demo_start_timeout_s=2.0) as w:
        yield w


@pytest.fixture
def runner(world: World) -> Iterator[FakeRunner]:
    runner = fake_runner(world)
    yield runner
    runner.behaviour = lambda spec: READY


def test_launch_starting_ready_predict_stop(world: World, runner: FakeRunner) -> None:
    runner.behaviour = lambda spec: Behaviour(load_seconds=0.5, predict=READY.predict)
    response = launch(world, "double-x")
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/api/v1/demos/{response.json()['id']}"
    demo, seen = wait_demo(world, response.json()["id"], timeout=10)
    assert demo["state"] == "ready" and "starting" in seen, seen
    assert demo["url"] == f"/demos/{demo['id']}/"

    answer = world.client.post(
        f"{demo['url']}predict", headers=world.headers("member"), json=PAYLOAD
    )
    assert answer.status_code == 200 and answer.json() == {"predictions": [{"y": 8.0}]}
    assert runner.status(demo["id"]).state is RunState.RUNNING
    assert runner.list()[0].labels["bibia.model"] == "double-x/1"

    stopped = world.client.delete(f"/api/v1/demos/{demo['id']}", headers=world.headers("member"))
    assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"
    assert runner.status(demo["id"]).state is RunState.MISSING
    assert not world.app.state.demos.demo_dir(demo["id"]).exists()
    assert "double-x/1" in audits(world, "demo.launch")
    assert demo["id"] in audits(world, "demo.stop")


def test_a_model_that_fails_to_load_shows_a_fixed_message_and_keeps_its_logs_for_experts(
    world: World, runner: FakeRunner
) -> None:
    runner.behaviour = lambda spec: Behaviour(exit_code=3, logs="ValueError: secret=hunter2")
    demo, seen = wait_demo(world, launch(world, "double-x").json()["id"], timeout=10)
    assert demo["state"] == "failed", (seen, demo)
    assert demo["error"].startswith(
        "le démonstrateur s'est arrêté (code 3) : le modèle n'a pas pu être chargé"
    )
    assert "hunter2" not in demo["error"], "members never read the sandbox's output"
    logs = world.client.get(f"/api/v1/demos/{demo['id']}/logs", headers=world.headers("expert"))
    assert logs.status_code == 200 and "hunter2" in logs.text
    refused = world.client.get(f"/api/v1/demos/{demo['id']}/logs", headers=world.headers("member"))
    assert refused.status_code == 403
    assert runner.status(demo["id"]).state is RunState.MISSING


def test_a_sandbox_that_never_answers_fails_after_the_start_timeout(
    world: World, runner: FakeRunner
) -> None:
    runner.behaviour = lambda spec: Behaviour(ready=False)
    demo, seen = wait_demo(world, launch(world, "double-x").json()["id"], timeout=10)
    assert demo["state"] == "failed", (seen, demo)
    assert demo["error"] == "le démonstrateur n'a pas répondu en 2 s"
    assert runner.status(demo["id"]).state is RunState.MISSING


def test_a_sandbox_that_dies_later_is_failed_by_the_reaper_with_its_memory_limit(
    world: World, runner: FakeRunner
) -> None:
    demo = launch_ready(world, "double-x")
    runner.engine.crash(demo["id"], exit_code=137, oom_killed=True, logs="Killed")
    assert world.app.state.demos.reap() == []
    after = state(world, demo["id"])
    assert after["state"] == "failed" and after["url"] is None
    assert after["error"].startswith(
        "le démonstrateur s'est arrêté (code 137) : il a dépassé sa limite de mémoire"
    )
    assert runner.status(demo["id"]).state is RunState.MISSING


def test_a_bug_in_the_launch_worker_fails_the_demonstrator_at_once(
    world: World, runner: FakeRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("a bug, not a runner error")

    monkeypatch.setattr(world.app.state.demos.sandbox, "place_model", broken)
    demo, seen = wait_demo(world, launch(world, "double-x").json()["id"], timeout=10)
    assert demo["state"] == "failed", (seen, demo)
    assert demo["error"] == LAUNCH_FAILED, demo
    logs = world.client.get(f"/api/v1/demos/{demo['id']}/logs", headers=world.headers("expert"))
    assert "KeyError" in logs.text
    assert runner.status(demo["id"]).state is RunState.MISSING


def test_a_demo_stopped_while_starting_leaves_no_sandbox(world: World, runner: FakeRunner) -> None:
    runner.behaviour = lambda spec: Behaviour(load_seconds=1.0, predict=READY.predict)
    demo_id = launch(world, "double-x").json()["id"]
    deadline = time.monotonic() + 5
    while state(world, demo_id)["state"] == "pending":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    stopped = world.client.delete(f"/api/v1/demos/{demo_id}", headers=world.headers("member"))
    assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"
    settle(world)
    assert runner.status(demo_id).state is RunState.MISSING
    assert state(world, demo_id)["state"] == "stopped"


def test_a_runner_without_sandbox_refuses_an_uploaded_model_at_once(
    fast_tmp: Path, ok_model: Path
) -> None:
    bare = FakeRunner(isolates=False, behaviour=lambda spec: READY)
    with fake_world(fast_tmp, ok_model, runner=bare) as w:
        refused = launch(w, "double-x")
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "modele_non_fiable"
        assert "seuls les modèles de référence" in refused.json()["message"]
        assert bare.list() == []
        assert not w.app.state.demos.pool_enabled, "no warm pool without a sandbox"
