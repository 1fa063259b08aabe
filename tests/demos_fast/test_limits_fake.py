"""Quotas, expiry, extension, abandoned launches and the directory sweep, on the fake runner."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runners.base import RunState
from tests import demos_scenarios as scenarios
from tests.conftest import World
from tests.demos_fast.conftest import add_row, fake_runner, fake_world, settle, state
from tests.demos_service.conftest import launch_ready


@pytest.fixture(scope="module")
def world(fast_tmp: Path, ok_model: Path) -> Iterator[World]:
    with fake_world(
        fast_tmp, ok_model, demo_quota_per_org=2, demo_quota_global=3, demo_max_ttl_minutes=60
    ) as w:
        yield w


@pytest.fixture
def stop_all(world: World) -> Iterator[list[str]]:
    ids: list[str] = []
    yield ids
    settle(world)
    for demo_id in ids:
        world.client.delete(f"/api/v1/demos/{demo_id}", headers=world.headers("admin"))


def _set(world: World, demo_id: str, **values: object) -> None:
    from bibia.db.models import DemoSession

    with world.services.db.session() as session:
        row = session.get(DemoSession, demo_id)
        for name, value in values.items():
            setattr(row, name, value)


def test_quota_per_organisation_then_global(world: World, stop_all: list[str]) -> None:
    scenarios.quota_per_organisation_then_global(world, stop_all)


def test_ttl_expiry_is_reaped_and_the_sandbox_removed(world: World, stop_all: list[str]) -> None:
    demo = launch_ready(world, "double-x", ttl_minutes=1)
    stop_all.append(demo["id"])
    _set(world, demo["id"], expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    assert world.app.state.demos.reap() == [demo["id"]]
    after = state(world, demo["id"])
    assert after["state"] == "expired" and after["url"] is None
    assert fake_runner(world).status(demo["id"]).state is RunState.MISSING
    proxied = world.client.get(demo["url"], headers=world.headers("member"))
    assert proxied.status_code == 409 and "expired" in proxied.json()["message"]
    extend = world.client.post(
        f"/api/v1/demos/{demo['id']}/extend", headers=world.headers("member"), json={"minutes": 5}
    )
    assert extend.status_code == 409 and "relancez-en un" in extend.json()["message"]
    assert world.app.state.demos.reap() == []


def test_extension_by_the_owner_within_the_maximum(world: World, stop_all: list[str]) -> None:
    runner = fake_runner(world)
    scenarios.extension_by_the_owner_within_the_maximum(
        world,
        stop_all,
        lambda demo_id: int(
            next(i for i in runner.list() if i.demo_id == demo_id).labels["bibia.expires_at"]
        ),
    )


def test_a_launch_abandoned_by_a_crashed_replica_is_failed_by_the_reaper(world: World) -> None:
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(
        seconds=2 * world.services.settings.demo_start_timeout_s + 60
    )
    add_row(world, "starting", long_ago, "a0a0a0a0a0a0a0a0")
    add_row(world, "pending", dt.datetime.now(dt.UTC), "b1b1b1b1b1b1b1b1")
    world.app.state.demos.reap()
    stuck = state(world, "a0a0a0a0a0a0a0a0")
    assert stuck["state"] == "failed" and "lancement abandonné" in stuck["error"]
    assert state(world, "b1b1b1b1b1b1b1b1")["state"] == "pending"
    _set(world, "b1b1b1b1b1b1b1b1", state="stopped")


def test_the_sweep_removes_old_directories_nothing_owns(world: World, stop_all: list[str]) -> None:
    demos = world.app.state.demos
    live = launch_ready(world, "double-x")
    stop_all.append(live["id"])
    old = time.time() - 3 * world.services.settings.demo_start_timeout_s
    orphan = demos.demo_dir("c2c2c2c2c2c2c2c2")
    recent = demos.demo_dir("d3d3d3d3d3d3d3d3")
    for path in (orphan / "run", recent / "run"):
        path.mkdir(parents=True)
    for path in (orphan, demos.demo_dir(live["id"])):
        os.utime(path, (old, old))
    assert demos.sweep_dirs() == ["c2c2c2c2c2c2c2c2"]
    assert not orphan.exists()
    assert recent.exists(), "a launch or a pool start may be creating it"
    assert demos.demo_dir(live["id"]).exists(), "an active row owns it"
