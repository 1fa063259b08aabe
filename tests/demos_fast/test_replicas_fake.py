"""Two replicas on one database, on the fake runner: own warm pools, launches taken over only from the dead.

The world's service is replica A; a second :class:`DemoService` on the same
database, registry and runner, with another ``replica_id``, is replica B.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bibia.db.models import Replica
from bibia.demos import LABEL_INSTANCE, LABEL_MODEL, DemoService
from bibia.demos.messages import REPLICA_DIED
from bibia.demos.sandbox import LABEL_REPLICA
from runners.base import DemoSpec
from tests.conftest import World
from tests.demos_fast.conftest import add_row, fake_runner, fake_world, state
from tests.demos_service.conftest import wait_demo


@pytest.fixture
def pooled(fast_tmp: Path, ok_model: Path) -> Iterator[World]:
    with fake_world(fast_tmp, ok_model, demo_pool_size=1) as w:
        yield w


def replica(world: World, name: str) -> DemoService:
    """Another replica of the world's service (same database, registry and runner)."""
    settings = world.services.settings.model_copy(update={"replica_id": name})
    return DemoService(dataclasses.replace(world.services, settings=settings))


def warm(world: World) -> dict[str, str]:
    """The warm sandboxes running: demo id -> the replica that started it."""
    from bibia.demos.pool import WarmPool

    return {
        i.demo_id: i.labels[LABEL_REPLICA]
        for i in fake_runner(world).list()
        if WarmPool.is_warm(i) and i.status.state.value == "running"
    }


def test_each_replica_keeps_its_own_warm_pool_and_a_dead_ones_is_removed(pooled: World) -> None:
    world = pooled
    a = world.app.state.demos.settings.replica_id
    deadline = time.monotonic() + 10
    while list(warm(world).values()) != [a]:
        assert time.monotonic() < deadline, warm(world)
        time.sleep(0.05)
    b = replica(world, "replique-b")
    try:
        b.replicas.join()
        b.maintain_pool()
        b.maintain_pool()  # its pool is full: nothing of A's is trimmed nor counted
        members = warm(world)
        assert sorted(members.values()) == sorted([a, "replique-b"])
        mine = [m.demo_id for m in b.pool.claimable()]
        assert [members[m] for m in mine] == ["replique-b"], "B claims only its own members"

        with world.services.db.session() as session:  # A falls silent: its heartbeat gets stale
            silent = session.get(Replica, a)
            assert silent is not None
            silent.last_seen = dt.datetime.now(dt.UTC) - 2 * b.replicas.dead_after
        removed = b.pool.remove_dead(b.replicas.live())
        assert [members[r] for r in removed] == [a]
        assert list(warm(world).values()) == ["replique-b"]
    finally:
        b.shutdown()


def test_a_replica_takes_over_only_the_launches_of_dead_replicas(
    fast_tmp: Path, ok_model: Path
) -> None:
    with fake_world(fast_tmp, ok_model) as world:
        a = world.app.state.demos.settings.replica_id
        now = dt.datetime.now(dt.UTC)
        live_launch = add_row(world, "starting", now)  # A is starting its sandbox
        dead_launch = add_row(world, "starting", now)  # a killed replica was
        dead_running = add_row(world, "starting", now)  # and its sandbox runs
        with world.services.db.engine.begin() as conn:
            for demo_id, driver in (
                (live_launch, a),
                (dead_launch, "tuee"),
                (dead_running, "tuee"),
            ):
                conn.execute(
                    text("UPDATE demo_sessions SET replica_id = :r WHERE id = :id"),
                    {"r": driver, "id": demo_id},
                )
        fake_runner(world).start(
            DemoSpec(
                demo_id=dead_running,
                image="bibia/demo:fake",
                model_dir=ok_model,
                socket_dir=world.services.settings.demos_dir / dead_running / "run",
                labels={
                    LABEL_INSTANCE: world.services.instance,
                    LABEL_MODEL: "double-x/1",
                    LABEL_REPLICA: "tuee",
                },
                ttl_seconds=600,
            )
        )
        b = replica(world, "replique-b")
        try:
            result = b.reconcile()  # B starts: its reconciliation
            assert result["adopted"] == [dead_running]
            assert result["failed"] == [dead_launch]
            assert state(world, live_launch)["state"] == "starting", "A's launch is A's"
            failed = state(world, dead_launch)
            assert failed["state"] == "failed" and failed["error"] == REPLICA_DIED
            adopted, seen = wait_demo(world, dead_running, timeout=10)
            assert adopted["state"] == "ready", seen
            with world.services.db.engine.connect() as conn:
                driver = conn.scalar(
                    text("SELECT replica_id FROM demo_sessions WHERE id = :id"),
                    {"id": dead_running},
                )
            assert driver == "replique-b"
        finally:
            b.shutdown()
