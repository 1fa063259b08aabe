"""The warm pool on the real Docker engine: claims, refills, races, reconciliation, sandbox policy.

One app per module with ``demo_pool_size=2`` and the small ``ok`` fixture
model (``double-x``); a second, short-lived app checks that a pool size of 0
keeps today's behaviour. Every container is removed in the finalisers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runners import hostfs
from tests import demos_scenarios as scenarios
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

POOL = 2
PAYLOAD = {"dataframe_records": [{"x": 4}]}


@pytest.fixture(scope="module")
def world(demo_image, fixture_models, short_tmp) -> Iterator[World]:
    data = Path(tempfile.mkdtemp(prefix="bds-pool-", dir=short_tmp))
    with open_world(docker_settings(data, demo_image, demo_pool_size=POOL)) as w:
        register_model(w, "double-x", fixture_models("ok"), "Modèle d'essai : le double de x")
        yield w


def manager(world: World):
    return world.app.state.demos


def warm_members(
    world: World, count: int = POOL, timeout: float = 60.0, *, reaper_pass: bool = True
) -> dict[str, str]:
    """Wait until ``count`` pool members run and wait for a model; returns ``{demo_id: container id}``.

    With ``reaper_pass``, first does what the reaper's next pass would (the
    tests' reaper interval is an hour).
    """
    demos = manager(world)
    if reaper_pass:
        demos.maintain_pool()
    deadline = time.monotonic() + timeout
    while True:
        members = [m for m in demos.pool.members() if m.status.state.value == "running"]
        waiting = [
            m for m in members if "en attente d'un modèle" in demos.runner.logs(m.demo_id, tail=20)
        ]
        if len(members) == count and len(waiting) == count:
            return {m.demo_id: m.runner_id for m in members}
        if time.monotonic() > deadline:
            raise AssertionError(
                f"pool not full and warm after {timeout:.0f} s: {len(members)} member(s), {len(waiting)} warm"
            )
        time.sleep(0.2)


def stop(world: World, demo_id: str) -> None:
    response = world.client.delete(f"/api/v1/demos/{demo_id}", headers=world.headers("member"))
    assert response.status_code == 200, response.text


def predict(world: World, demo: dict) -> dict:
    response = world.client.post(
        f"{demo['url']}predict", headers=world.headers("member"), json=PAYLOAD
    )
    assert response.status_code == 200, response.text
    return response.json()


def inspect(container: str) -> dict:
    out = subprocess.run(
        ["docker", "inspect", container], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)[0]


def policy(container: str) -> dict:
    """The sandbox policy of a container, as the engine applied it."""
    info = inspect(container)
    host = info["HostConfig"]
    return {
        "user": info["Config"]["User"],
        "read_only": host["ReadonlyRootfs"],
        "cap_drop": host["CapDrop"],
        "security_opt": host["SecurityOpt"],
        "memory": host["Memory"],
        "memory_swap": host["MemorySwap"],
        "nano_cpus": host["NanoCpus"],
        "pids": host["PidsLimit"],
        "network": host["NetworkMode"],
        "ipc": host["IpcMode"],
        "tmpfs": host["Tmpfs"],
        "ulimits": host["Ulimits"],
        "image": info["Config"]["Image"],
        "mounts": sorted((m["Destination"], m["RW"]) for m in info["Mounts"]),
    }


def test_a_launch_claims_a_warm_sandbox_reaches_ready_and_predicts(world: World) -> None:
    before = warm_members(world)
    response = launch(world, "double-x")
    assert response.status_code == 202, response.text
    demo_id = response.json()["id"]
    assert demo_id in before, "the launch took a warm sandbox's id"
    assert container_ids(demo_id) == [before[demo_id][:12]], (
        "the container is one that existed before the launch"
    )
    demo, seen = wait_demo(world, demo_id, timeout=60)
    assert demo["state"] == "ready", (seen, demo["error"])
    assert predict(world, demo) == {"predictions": [{"y": 8.0}]}
    # The sandbox's own deadline never cuts the demonstrator short of its maximum time to live.
    created = dt.datetime.fromisoformat(demo["created_at"])
    limit = created + dt.timedelta(minutes=world.services.settings.demo_max_ttl_minutes)
    assert (
        int(inspect(before[demo_id])["Config"]["Labels"]["bibia.expires_at"]) >= limit.timestamp()
    )
    page = world.client.get(demo["url"], headers={**world.headers("member"), "Accept": "text/html"})
    assert page.status_code == 200 and "Modèle d'essai" in page.text.replace("&#x27;", "'")
    logs = manager(world).runner.logs(demo_id)
    assert logs.index("en attente d'un modèle") < logs.index("Chargement du modèle"), (
        "it imported, then waited"
    )
    stop(world, demo_id)
    assert container_ids(demo_id) == []
    refilled = warm_members(world, reaper_pass=False)
    assert demo_id not in refilled and len(set(before) & set(refilled)) == POOL - 1, (
        "refilled once the claimed one was ready"
    )


def test_reap_refills_the_pool_with_at_most_the_missing_count(world: World) -> None:
    demos = manager(world)
    members = warm_members(world)
    gone = next(iter(members))
    subprocess.run(["docker", "rm", "-f", members[gone]], capture_output=True, check=True)
    demos.reap()
    after = warm_members(world)
    assert gone not in after and len(after) == POOL
    assert set(members) - {gone} <= set(after), "the other member is kept"
    assert demos.maintain_pool() == {"started": [], "removed": []}, "a full pool starts nothing"
    # what the removed sandbox left on the host (its directory, its socket tmpfs) goes once it is old enough
    leftover = demos.demo_dir(gone)
    assert leftover.is_dir() and hostfs.mounts_under(leftover)
    assert gone not in demos.sweep_dirs(), "too recent: it could be a launch under way"
    old = time.time() - 3 * world.services.settings.demo_start_timeout_s
    os.utime(leftover, (old, old))
    assert demos.sweep_dirs() == [gone]
    assert not leftover.exists() and hostfs.mounts_under(leftover) == []
    assert set(after) <= {p.name for p in world.services.settings.demos_dir.iterdir()}, (
        "live members are kept"
    )


def test_concurrent_launches_never_claim_the_same_sandbox(world: World) -> None:
    members = warm_members(world)
    barrier = threading.Barrier(POOL + 2)
    answers: list = []

    def go() -> None:
        barrier.wait()
        answers.append(launch(world, "double-x"))

    threads = [threading.Thread(target=go) for _ in range(POOL + 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [a.status_code for a in answers] == [202] * (POOL + 2), [a.text for a in answers]
    ids = [a.json()["id"] for a in answers]
    assert len(set(ids)) == len(ids)
    assert set(ids) & set(members) == set(members), "each warm sandbox was claimed exactly once"
    containers = set()
    for demo_id in ids:
        demo, seen = wait_demo(world, demo_id, timeout=90)
        assert demo["state"] == "ready", (seen, demo)
        assert predict(world, demo) == {"predictions": [{"y": 8.0}]}
        found = container_ids(demo_id)
        assert len(found) == 1
        containers.add(found[0])
    assert len(containers) == len(ids), "one container per demonstrator"
    for demo_id in ids:
        stop(world, demo_id)


def test_the_primary_key_refuses_a_second_claim(world: World) -> None:
    scenarios.primary_key_refuses_a_second_claim(world, warm_members(world))


def test_a_warm_sandbox_cannot_be_reached_before_being_claimed(world: World) -> None:
    member = next(iter(warm_members(world)))
    for role in ("member", "admin"):
        page = world.client.get(f"/demos/{member}/", headers=world.headers(role))
        assert page.status_code == 404, page.text
        assert (
            world.client.post(
                f"/demos/{member}/predict", headers=world.headers(role), json=PAYLOAD
            ).status_code
            == 404
        )
        assert (
            world.client.get(f"/api/v1/demos/{member}", headers=world.headers(role)).status_code
            == 404
        )
    listed = world.client.get("/api/v1/demos", headers=world.headers("admin")).json()
    assert member not in {d["id"] for d in listed}


def test_a_claimed_sandbox_that_vanished_starts_cold_under_the_same_id(
    world: World, monkeypatch
) -> None:
    demos = manager(world)
    before = warm_members(world)
    place_model = demos.sandbox.place_model

    def trimmed_meanwhile(demo_id, version, *, warm):
        if warm:
            subprocess.run(
                ["docker", "rm", "-f", f"bibia-demo-{demo_id}"], capture_output=True, check=True
            )
        return place_model(demo_id, version, warm=warm)

    monkeypatch.setattr(demos.sandbox, "place_model", trimmed_meanwhile)
    demo_id = launch(world, "double-x").json()["id"]
    assert demo_id in before
    demo, seen = wait_demo(world, demo_id, timeout=90)
    assert demo["state"] == "ready", (seen, demo)
    assert container_ids(demo_id) and container_ids(demo_id)[0] != before[demo_id][:12], (
        "a new, cold container"
    )
    assert predict(world, demo) == {"predictions": [{"y": 8.0}]}
    stop(world, demo_id)


def test_restart_keeps_pool_members_adopts_claimed_ones_and_removes_true_orphans(
    world: World, demo_image, fixture_models
) -> None:
    import secrets

    from bibia.demos import LABEL_INSTANCE, LABEL_MODEL, DemoService
    from runners.base import DemoSpec
    from runners.docker import DockerRunner

    members = warm_members(world)
    claimed = launch(world, "double-x").json()["id"]
    assert claimed in members
    orphan = secrets.token_hex(8)
    DockerRunner().start(
        DemoSpec(
            demo_id=orphan,
            image=demo_image,
            model_dir=fixture_models("ok"),
            socket_dir=world.services.settings.demos_dir / orphan / "run",
            labels={LABEL_INSTANCE: world.services.instance, LABEL_MODEL: "double-x/1"},
            ttl_seconds=600,
        )
    )
    restarted = DemoService(world.services)  # what a restarted service (or another replica) builds
    try:
        result = restarted.reconcile()
        assert result["orphans"] == [orphan] and container_ids(orphan) == []
        assert claimed in result["adopted"]
        assert set(members) - {claimed} <= {m.demo_id for m in restarted.pool.members()}
        for demo_id in set(members) - {claimed}:
            assert container_ids(demo_id), "a pool member is not an orphan"
        demo, seen = wait_demo(world, claimed, timeout=60)
        assert demo["state"] == "ready", (seen, demo)
    finally:
        restarted.shutdown()
    stop(world, claimed)


def test_a_warm_sandbox_has_the_same_sandbox_policy_as_a_cold_one(world: World) -> None:
    import secrets

    demos = manager(world)
    member, container = next(iter(warm_members(world).items()))
    cold = secrets.token_hex(8)
    version = world.services.registry.version("double-x", 1)
    spec = demos.sandbox.cold_spec(cold, version, ttl_seconds=30 * 60)
    started = demos.runner.start(spec)
    try:
        warm, expected = policy(container), policy(started.runner_id)
        assert warm == expected
        assert (
            warm["network"] == "none" and warm["read_only"] is True and warm["cap_drop"] == ["ALL"]
        )
        assert ("/model", False) in warm["mounts"], "the model directory is read-only inside"
        env = inspect(container)["Config"]["Env"]
        assert "BIBIA_WAIT_FOR_MODEL=1" in env
    finally:
        demos.sandbox.teardown(cold)
    assert member in {m.demo_id for m in demos.pool.members()}


def test_pool_size_0_keeps_todays_behaviour(demo_image, fixture_models, short_tmp) -> None:
    data = Path(tempfile.mkdtemp(prefix="bds-nopool-", dir=short_tmp))
    with open_world(docker_settings(data, demo_image, demo_pool_size=0)) as w:
        demos = w.app.state.demos
        assert not demos.pool_enabled
        assert demos.maintain_pool() == {"started": [], "removed": []}
        register_model(w, "double-x", fixture_models("ok"), "Modèle d'essai : le double de x")
        response = launch(w, "double-x")
        assert response.status_code == 202, response.text
        demo, seen = wait_demo(w, response.json()["id"], timeout=90)
        assert demo["state"] == "ready", (seen, demo)
        assert demos.runner.list() and all(
            "bibia.pool" not in info.labels
            for info in demos.runner.list()
            if info.labels.get("bibia.instance") == w.services.instance
        )
        assert predict(w, demo) == {"predictions": [{"y": 8.0}]}


def test_a_warm_server_with_no_model_stops_by_itself_after_its_idle_limit(tmp_path) -> None:
    import os
    import sys

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "model").mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(root),
        "HOME": str(tmp_path),
        "BIBIA_MODEL_DIR": str(tmp_path / "model"),
        "BIBIA_SOCKET": str(tmp_path / "demo.sock"),
        "BIBIA_WAIT_FOR_MODEL": "1",
        "BIBIA_POOL_IDLE_SECONDS": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "demos.server"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 5, done.stderr
    assert "Aucun modèle reçu en 1 s" in done.stderr
    assert not (tmp_path / "demo.sock").exists()
