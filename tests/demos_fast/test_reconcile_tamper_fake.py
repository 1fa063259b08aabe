"""Reconciliation after a restart, and tamper quarantine (proxy, reaper, launch), on the fake runner."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bibia.demos import LABEL_INSTANCE, LABEL_MODEL, TAMPERED
from runners.base import DemoSpec, RunState
from runners.fake import Behaviour
from tests.conftest import World
from tests.demos_fast.conftest import READY, add_row, audits, fake_runner, fake_world, state
from tests.demos_service.conftest import launch, launch_ready, wait_demo


@pytest.fixture(scope="module")
def world(fast_tmp: Path, ok_model: Path) -> Iterator[World]:
    with fake_world(fast_tmp, ok_model) as w:
        yield w


@pytest.fixture
def restarting(fast_tmp: Path, ok_model: Path) -> Iterator[World]:
    """A world of its own: the test shuts its service down."""
    with fake_world(fast_tmp, ok_model) as w:
        yield w


def _start_labelled(world: World, ok_model: Path, instance: str) -> str:
    demo_id = secrets.token_hex(8)
    fake_runner(world).start(
        DemoSpec(
            demo_id=demo_id,
            image="bibia/demo:fake",
            model_dir=ok_model,
            socket_dir=world.services.settings.demos_dir / demo_id / "run",
            labels={LABEL_INSTANCE: instance, LABEL_MODEL: "double-x/1"},
            ttl_seconds=600,
        )
    )
    return demo_id


def test_restart_adopts_fails_the_vanished_and_removes_orphans_of_its_own_instance_only(
    restarting: World, ok_model: Path
) -> None:
    from bibia.demos import DemoService

    world = restarting

    runner = fake_runner(world)
    kept = launch_ready(world, "double-x")
    removed = launch_ready(world, "double-x")
    killed = launch_ready(world, "double-x")
    runner.behaviour = lambda spec: Behaviour(load_seconds=1.0, predict=READY.predict)
    slow = launch(world, "double-x").json()
    deadline = time.monotonic() + 5
    while state(world, slow["id"])["state"] != "starting":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    world.app.state.demos.shutdown()  # the service stops; its sandboxes keep running

    runner.engine.vanish(removed["id"])
    runner.engine.crash(killed["id"], exit_code=137)
    interrupted = add_row(world, "pending", dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    fresh = add_row(world, "pending", dt.datetime.now(dt.UTC))
    orphan = _start_labelled(world, ok_model, world.services.instance)
    foreign = _start_labelled(world, ok_model, "another-instance")

    restarted = DemoService(world.services)  # what a restarted service (or another replica) builds
    try:
        result = restarted.reconcile()
        assert set(result["adopted"]) == {kept["id"], slow["id"]}
        assert set(result["failed"]) == {removed["id"], killed["id"], interrupted}
        assert result["orphans"] == [orphan]
        assert runner.status(orphan).state is RunState.MISSING
        assert runner.status(foreign).state is RunState.RUNNING, "not ours to remove"

        gone = state(world, removed["id"])
        assert gone["error"] == "démonstrateur disparu pendant l'arrêt du service"
        dead = state(world, killed["id"])
        assert dead["state"] == "failed"
        assert dead["error"].startswith("le démonstrateur s'est arrêté (code 137)")
        assert "Démonstrateur prêt" not in dead["error"]
        logs = world.client.get(
            f"/api/v1/demos/{killed['id']}/logs", headers=world.headers("expert")
        ).text
        assert "Démonstrateur prêt" in logs, "its last logs are kept for experts"
        assert runner.status(killed["id"]).state is RunState.MISSING
        late = state(world, interrupted)
        assert late["state"] == "failed" and "lancement interrompu" in late["error"]
        assert state(world, fresh)["state"] == "pending"

        adopted, seen = wait_demo(world, slow["id"], timeout=10)
        assert adopted["state"] == "ready", (seen, adopted)
        answer = world.client.post(
            f"{kept['url']}predict",
            headers=world.headers("member"),
            json={"dataframe_records": [{"x": 4}]},
        )
        assert answer.json() == {"predictions": [{"y": 8.0}]}
        listed = world.client.get("/api/v1/demos", headers=world.headers("member")).json()
        assert {d["id"] for d in listed} == {kept["id"], slow["id"], fresh}
    finally:
        restarted.shutdown()
        runner.stop(foreign)


def test_a_swapped_socket_seen_by_the_proxy_fails_the_demonstrator(world: World) -> None:
    runner = fake_runner(world)
    demo = launch_ready(world, "double-x")
    runner.engine.tamper(demo["id"])
    answer = world.client.get(demo["url"], headers=world.headers("member"))
    assert answer.status_code == 502, answer.text
    assert answer.json()["message"] == TAMPERED
    after = state(world, demo["id"])
    assert after["state"] == "failed" and after["error"] == TAMPERED
    assert demo["id"] in audits(world, "demo.tampered")
    assert runner.status(demo["id"]).state is RunState.MISSING
    logs = world.client.get(f"/api/v1/demos/{demo['id']}/logs", headers=world.headers("expert"))
    assert "lien symbolique" in logs.text, "experts read what the service saw"


def test_a_swapped_socket_nobody_used_is_caught_by_the_reaper(world: World) -> None:
    demo = launch_ready(world, "double-x")
    fake_runner(world).engine.tamper(demo["id"])
    world.app.state.demos.reap()
    after = state(world, demo["id"])
    assert after["state"] == "failed" and after["error"] == TAMPERED


def test_a_socket_swapped_before_ready_is_caught_by_the_launch(world: World) -> None:
    runner = fake_runner(world)
    runner.behaviour = lambda spec: Behaviour(load_seconds=2.0, predict=READY.predict)
    demo_id = launch(world, "double-x").json()["id"]
    deadline = time.monotonic() + 5
    while runner.status(demo_id).state is not RunState.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    runner.engine.tamper(demo_id)
    demo, seen = wait_demo(world, demo_id, timeout=10)
    runner.behaviour = lambda spec: READY
    assert demo["state"] == "failed" and demo["error"] == TAMPERED, (seen, demo)
