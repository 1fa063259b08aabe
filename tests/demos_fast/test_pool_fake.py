"""The warm pool on the fake runner: claims, refills, the primary key, a member that vanished, idle limits."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runners.base import RunState
from runners.fake import FakeRunner
from tests import demos_scenarios as scenarios
from tests.conftest import World
from tests.demos_fast.conftest import READY, fake_runner, fake_world, settle
from tests.demos_service.conftest import launch, wait_demo

POOL = 2
PAYLOAD = {"dataframe_records": [{"x": 4}]}


@pytest.fixture(scope="module")
def world(fast_tmp: Path, ok_model: Path) -> Iterator[World]:
    with fake_world(fast_tmp, ok_model, demo_pool_size=POOL) as w:
        yield w


def warm_members(world: World, count: int = POOL, timeout: float = 10.0) -> dict[str, str]:
    """Fill the pool (the reaper's next pass) and wait until ``count`` members wait for a model."""
    demos = world.app.state.demos
    demos.maintain_pool()
    deadline = time.monotonic() + timeout
    while True:
        members = [m for m in demos.pool.members() if m.status.state is RunState.RUNNING]
        waiting = [m for m in members if "en attente d'un modèle" in demos.runner.logs(m.demo_id)]
        if len(members) == count and len(waiting) == count:
            return {m.demo_id: m.runner_id for m in members}
        assert time.monotonic() < deadline, f"{len(members)} member(s), {len(waiting)} warm"
        time.sleep(0.05)


def stop(world: World, demo_id: str) -> None:
    response = world.client.delete(f"/api/v1/demos/{demo_id}", headers=world.headers("member"))
    assert response.status_code == 200, response.text


def test_a_launch_claims_a_warm_sandbox_then_the_pool_refills(world: World) -> None:
    before = warm_members(world)
    response = launch(world, "double-x")
    assert response.status_code == 202, response.text
    demo_id = response.json()["id"]
    assert demo_id in before, "the oldest member was claimed"
    demo, seen = wait_demo(world, demo_id, timeout=10)
    assert demo["state"] == "ready", (seen, demo)
    answer = world.client.post(
        f"{demo['url']}predict", headers=world.headers("member"), json=PAYLOAD
    )
    assert answer.json() == {"predictions": [{"y": 8.0}]}
    assert fake_runner(world).list()[0].runner_id in before.values()
    after = warm_members(world)
    assert demo_id not in after and len(after) == POOL
    stop(world, demo_id)


def test_a_warm_sandbox_cannot_be_reached_before_being_claimed(world: World) -> None:
    member = next(iter(warm_members(world)))
    for role in ("member", "admin"):
        assert world.client.get(f"/demos/{member}/", headers=world.headers(role)).status_code == 404
        assert (
            world.client.get(f"/api/v1/demos/{member}", headers=world.headers(role)).status_code
            == 404
        )
    listed = world.client.get("/api/v1/demos", headers=world.headers("admin")).json()
    assert member not in {d["id"] for d in listed}


def test_the_primary_key_refuses_a_second_claim(world: World) -> None:
    scenarios.primary_key_refuses_a_second_claim(world, warm_members(world))


def test_a_claimed_sandbox_that_vanished_starts_cold_under_the_same_id(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    demos = world.app.state.demos
    runner = fake_runner(world)
    before = warm_members(world)
    place_model = demos.sandbox.place_model

    def trimmed_meanwhile(demo_id, version, *, warm):
        if warm:
            runner.engine.vanish(demo_id)
        return place_model(demo_id, version, warm=warm)

    monkeypatch.setattr(demos.sandbox, "place_model", trimmed_meanwhile)
    demo_id = launch(world, "double-x").json()["id"]
    assert demo_id in before
    demo, seen = wait_demo(world, demo_id, timeout=10)
    assert demo["state"] == "ready", (seen, demo)
    current = {i.demo_id: i.runner_id for i in runner.list()}
    assert current[demo_id] != before[demo_id], "a new, cold sandbox"
    assert "bibia.pool" not in next(i for i in runner.list() if i.demo_id == demo_id).labels
    stop(world, demo_id)


def test_dead_or_stale_members_are_replaced(world: World) -> None:
    demos = world.app.state.demos
    runner = fake_runner(world)
    members = warm_members(world)
    dead = next(iter(members))
    runner.engine.crash(dead, exit_code=5)
    result = demos.maintain_pool()
    assert dead in result["removed"] and len(result["started"]) == 1
    assert dead not in warm_members(world)


def test_a_warm_sandbox_stops_by_itself_after_its_idle_limit(
    fast_tmp: Path, ok_model: Path
) -> None:
    from bibia.demos import pool

    runner = FakeRunner(behaviour=lambda spec: READY)
    with (
        pytest.MonkeyPatch.context() as patch,
        fake_world(fast_tmp, ok_model, runner=runner, demo_pool_size=1) as w,
    ):
        patch.setattr(pool, "POOL_IDLE_SECONDS", 1)
        demos = w.app.state.demos
        settle(w)
        for info in runner.list():  # what the service filled at start-up, with the usual limit
            runner.stop(info.demo_id)
        demos.maintain_pool()
        (member,) = runner.list()
        deadline = time.monotonic() + 5
        while runner.status(member.demo_id).state is RunState.RUNNING:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert runner.status(member.demo_id).exit_code == 5
        assert "Aucun modèle reçu" in runner.logs(member.demo_id)
        assert demos.maintain_pool()["removed"] == [member.demo_id]
        settle(w)


def test_no_pool_without_an_isolating_runner_or_a_size(fast_tmp: Path, ok_model: Path) -> None:
    bare = FakeRunner(isolates=False, behaviour=lambda spec: READY)
    with fake_world(fast_tmp, ok_model, runner=bare, demo_pool_size=2) as w:
        assert not w.app.state.demos.pool_enabled
        assert w.app.state.demos.maintain_pool() == {"started": [], "removed": []}
        assert bare.list() == []
