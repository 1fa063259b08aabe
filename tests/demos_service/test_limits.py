"""Time to live, extension and quotas of demonstrators, through the service on Docker.

Quotas here: 2 active demonstrators per organisation, 3 on the platform;
time to live 30 minutes by default, 60 at most.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import demos_scenarios as scenarios
from tests.conftest import World
from tests.demos_service.conftest import (
    container_ids,
    docker_settings,
    launch,
    launch_ready,
    open_world,
    register_model,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def world(demo_image, fixture_models, short_tmp) -> Iterator[World]:
    data = Path(tempfile.mkdtemp(prefix="bds-lim-", dir=short_tmp))
    settings = docker_settings(
        data,
        demo_image,
        demo_quota_per_org=2,
        demo_quota_global=3,
        demo_ttl_minutes=30,
        demo_max_ttl_minutes=60,
    )
    with open_world(settings) as w:
        register_model(w, "double-x", fixture_models("ok"), "Modèle d'essai : le double de x")
        yield w


@pytest.fixture
def stop_all(world: World) -> Iterator[list[str]]:
    """Ids to stop (as their owner would) after the test, whatever happened."""
    ids: list[str] = []
    yield ids
    for demo_id in ids:
        world.client.delete(f"/api/v1/demos/{demo_id}", headers=world.headers("admin"))
    _settle(world)


def _settle(world: World) -> None:
    """Wait until the background launches are done (so containers are where the database says)."""
    world.app.state.demos.watchers.join(timeout=120)


def _row(world: World, demo_id: str):
    from bibia.db.models import DemoSession

    with world.services.db.session() as session:
        row = session.get(DemoSession, demo_id)
        session.expunge(row)
        return row


def _label_expiry(demo_id: str) -> int:
    out = subprocess.run(
        [
            "docker",
            "inspect",
            "-f",
            '{{index .Config.Labels "bibia.expires_at"}}',
            f"bibia-demo-{demo_id}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip())


def test_quota_per_organisation_then_global(world: World, stop_all: list[str]) -> None:
    scenarios.quota_per_organisation_then_global(world, stop_all)


def test_a_demo_stopped_while_starting_leaves_no_container(world: World) -> None:
    response = launch(world, "double-x")
    assert response.status_code == 202
    demo_id = response.json()["id"]
    # Stop it once the background launch is on its way to the runner (the container is being created).
    deadline = time.monotonic() + 10
    while _row(world, demo_id).state == "pending":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    stopped = world.client.delete(f"/api/v1/demos/{demo_id}", headers=world.headers("member"))
    assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"
    _settle(world)
    assert container_ids(demo_id) == []
    assert _row(world, demo_id).state == "stopped"


def test_ttl_expiry_is_reaped_and_the_container_removed(world: World, stop_all: list[str]) -> None:
    from bibia.db.models import DemoSession

    demo = launch_ready(world, "double-x", ttl_minutes=1)
    stop_all.append(demo["id"])
    assert container_ids(demo["id"])
    with world.services.db.session() as session:
        session.get(DemoSession, demo["id"]).expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(
            seconds=1
        )
    assert world.app.state.demos.reap() == [demo["id"]]
    after = world.client.get(f"/api/v1/demos/{demo['id']}", headers=world.headers("member")).json()
    assert after["state"] == "expired" and after["url"] is None
    assert container_ids(demo["id"]) == []
    proxied = world.client.get(demo["url"], headers=world.headers("member"))
    assert proxied.status_code == 409 and "expired" in proxied.json()["message"]
    extend = world.client.post(
        f"/api/v1/demos/{demo['id']}/extend", headers=world.headers("member"), json={"minutes": 5}
    )
    assert extend.status_code == 409 and "relancez-en un" in extend.json()["message"]
    assert world.app.state.demos.reap() == []  # nothing left to reap


def test_a_sandbox_that_died_is_failed_by_the_reaper(world: World, stop_all: list[str]) -> None:
    demo = launch_ready(world, "double-x")
    stop_all.append(demo["id"])
    subprocess.run(["docker", "kill", f"bibia-demo-{demo['id']}"], capture_output=True, check=True)
    deadline = time.monotonic() + 20
    while (
        world.client.get(f"/api/v1/demos/{demo['id']}", headers=world.headers("member")).json()[
            "state"
        ]
        == "ready"
    ):
        assert time.monotonic() < deadline
        world.app.state.demos.reap()
        time.sleep(0.2)
    after = world.client.get(f"/api/v1/demos/{demo['id']}", headers=world.headers("member")).json()
    assert (
        after["state"] == "failed" and "le démonstrateur s'est arrêté (code 137)" in after["error"]
    )
    assert container_ids(demo["id"]) == []


def test_extension_by_the_owner_within_the_maximum(world: World, stop_all: list[str]) -> None:
    scenarios.extension_by_the_owner_within_the_maximum(world, stop_all, _label_expiry)


def test_a_launch_abandoned_by_a_crashed_replica_is_failed_by_the_reaper(world: World) -> None:
    """A row left pending/starting by a process that died is not owned by anyone: the reaper ends it."""
    from bibia.accounts import get_organisation
    from bibia.db.models import DemoSession

    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(
        seconds=2 * world.services.settings.demo_start_timeout_s + 60
    )
    recent = dt.datetime.now(dt.UTC)
    with world.services.db.session() as session:
        org = get_organisation(session, "nantes-metropole")
        for demo_id, state, created in (
            ("a0a0a0a0a0a0a0a0", "starting", long_ago),
            ("b1b1b1b1b1b1b1b1", "pending", recent),
        ):
            session.add(
                DemoSession(
                    id=demo_id,
                    organisation_id=org.id,
                    model_name="double-x",
                    model_version=1,
                    state=state,
                    runner="DockerRunner",
                    created_at=created,
                    expires_at=recent + dt.timedelta(minutes=30),
                )
            )
    world.app.state.demos.reap()
    stuck = world.client.get(
        "/api/v1/demos/a0a0a0a0a0a0a0a0", headers=world.headers("member")
    ).json()
    assert stuck["state"] == "failed" and "lancement abandonné" in stuck["error"]
    fresh = world.client.get(
        "/api/v1/demos/b1b1b1b1b1b1b1b1", headers=world.headers("member")
    ).json()
    assert fresh["state"] == "pending"  # a launch still on its way is left alone
    with world.services.db.session() as session:
        session.get(DemoSession, "b1b1b1b1b1b1b1b1").state = "stopped"
