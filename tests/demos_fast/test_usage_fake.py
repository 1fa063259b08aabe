"""Every ending of a demonstrator records what its sandbox consumed, measured by the runner, before the sandbox goes.

Stop, expiry, a launch abandoned, a sandbox that died, a swapped socket, an
evaluation's sandbox closed: the row gets ``finished_at`` and, when the
sandbox still ran, the runner's ``cpu_seconds`` and ``peak_memory_bytes``
(the fake runner measures the CPU time of the threads that served the
requests; its peak memory is what the behaviour states).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from runners.base import RunState
from runners.fake import Behaviour, FakeRunner
from tests.conftest import World
from tests.demos_fast.conftest import READY, add_row, fake_runner, fake_world, settle, state
from tests.demos_service.conftest import launch, launch_ready, wait_demo

PEAK = 123 * 1024 * 1024
MEASURED = Behaviour(predict=READY.predict, peak_memory_bytes=PEAK)
BATCH = {"dataframe_records": [{"x": i} for i in range(500)]}


@pytest.fixture(scope="module")
def world(fast_tmp: Path, ok_model: Path) -> Iterator[World]:
    runner = FakeRunner(behaviour=lambda spec: MEASURED)
    with fake_world(fast_tmp, ok_model, runner=runner, demo_start_timeout_s=2.0) as w:
        yield w


@pytest.fixture
def runner(world: World) -> Iterator[FakeRunner]:
    runner = fake_runner(world)
    yield runner
    runner.behaviour = lambda spec: MEASURED
    settle(world)


def _row(world: World, demo_id: str) -> dict[str, object]:
    from bibia.db.models import DemoSession

    with world.services.db.session() as session:
        row = session.get(DemoSession, demo_id)
        assert row is not None
        return {
            "state": row.state,
            "finished_at": row.finished_at,
            "cpu_seconds": row.cpu_seconds,
            "peak_memory_bytes": row.peak_memory_bytes,
        }


def _used(world: World, demo: dict) -> float:
    """Serve a few batches through the proxy; the CPU time the runner counts for the sandbox now."""
    for _ in range(5):
        answer = world.client.post(
            f"{demo['url']}predict", headers=world.headers("member"), json=BATCH
        )
        assert answer.status_code == 200, answer.text
    usage = world.app.state.demos.sandbox.usage(demo["id"])
    assert usage is not None and usage.peak_memory_bytes == PEAK
    assert usage.source == "fake-thread-time"
    return usage.cpu_seconds


def _assert_measured(world: World, demo_id: str, at_least: float) -> None:
    row = _row(world, demo_id)
    assert row["finished_at"] is not None
    assert isinstance(row["cpu_seconds"], float) and row["cpu_seconds"] >= at_least > 0
    assert row["peak_memory_bytes"] == PEAK


def test_a_stop_records_the_sandboxs_cost_before_removing_it(
    world: World, runner: FakeRunner
) -> None:
    demo = launch_ready(world, "double-x")
    assert _row(world, demo["id"])["finished_at"] is None
    used = _used(world, demo)
    stopped = world.client.delete(f"/api/v1/demos/{demo['id']}", headers=world.headers("member"))
    assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"
    _assert_measured(world, demo["id"], used)
    assert runner.usage(demo["id"]) is None  # the sandbox is gone, its figures are on the row
    # stopping again changes nothing
    before = _row(world, demo["id"])
    world.client.delete(f"/api/v1/demos/{demo['id']}", headers=world.headers("member"))
    assert _row(world, demo["id"]) == before


def test_an_expiry_records_the_cost(world: World, runner: FakeRunner) -> None:
    from bibia.db.models import DemoSession

    demo = launch_ready(world, "double-x")
    used = _used(world, demo)
    with world.services.db.session() as session:
        row = session.get(DemoSession, demo["id"])
        assert row is not None
        row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    assert world.app.state.demos.reap() == [demo["id"]]
    assert _row(world, demo["id"])["state"] == "expired"
    _assert_measured(world, demo["id"], used)


def test_a_swapped_socket_records_the_cost_as_it_quarantines(
    world: World, runner: FakeRunner
) -> None:
    demo = launch_ready(world, "double-x")
    used = _used(world, demo)
    runner.engine.tamper(demo["id"])
    world.app.state.demos.reap()
    assert _row(world, demo["id"])["state"] == "failed"
    _assert_measured(world, demo["id"], used)
    assert runner.status(demo["id"]).state is RunState.MISSING


def test_a_sandbox_that_died_has_no_figures_left_but_an_end(
    world: World, runner: FakeRunner
) -> None:
    demo = launch_ready(world, "double-x")
    _used(world, demo)
    runner.engine.crash(demo["id"], exit_code=137, oom_killed=True)
    world.app.state.demos.reap()
    row = _row(world, demo["id"])
    assert row["state"] == "failed" and row["finished_at"] is not None
    # its counters went with it: nothing the runner cannot measure is made up
    assert row["cpu_seconds"] is None and row["peak_memory_bytes"] is None


def test_a_model_that_fails_to_load_ends_with_a_time(world: World, runner: FakeRunner) -> None:
    runner.behaviour = lambda spec: Behaviour(exit_code=3, logs="ValueError: non")
    response = launch(world, "double-x")
    assert response.status_code == 202
    demo, _ = wait_demo(world, response.json()["id"], timeout=10)
    assert demo["state"] == "failed"
    settle(world)
    row = _row(world, demo["id"])
    assert row["finished_at"] is not None and row["cpu_seconds"] is None


def test_an_abandoned_launch_ends_with_a_time(world: World, runner: FakeRunner) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    demo_id = add_row(world, "starting", old)
    world.app.state.demos.reap()
    row = _row(world, demo_id)
    assert row["state"] == "failed" and row["finished_at"] is not None


def test_an_evaluation_sandbox_closed_records_its_cost(world: World, runner: FakeRunner) -> None:
    """The evaluation jobs' sandboxes end through the same function (DemoService.close_sandbox)."""
    demos = world.app.state.demos
    demo = launch_ready(world, "double-x")
    used = _used(world, demo)
    demos.close_sandbox(demo["id"])
    assert state(world, demo["id"])["state"] == "stopped"
    _assert_measured(world, demo["id"], used)
