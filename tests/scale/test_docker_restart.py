"""The Docker engine restarted under a running demonstrator: its state converges, nothing is orphaned.

A private engine (:mod:`tests.scale.dockerd`: ``dockerd`` started as
``docker/ensure-dockerd.sh`` starts it, with its own directories and socket)
runs the demonstrators of one ``bibia serve`` replica behind nginx. A
demonstrator is ready and answers; the engine is stopped (SIGTERM, as a
service manager's restart does: its containers stop with it) and started
again. Within a few reaper passes the demonstrator is either running again
and answering, or ``failed`` with a French reason; no row says ``ready`` over
a dead sandbox; the engine holds no container without a live row. The same
service, not restarted, launches and stops a new demonstrator afterwards.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.backends.conftest import PostgresServer
from tests.scale.cluster import Cluster, cluster, docker_env
from tests.scale.dockerd import PrivateDockerd, private_dockerd

pytestmark = [pytest.mark.postgres, pytest.mark.docker, pytest.mark.slow]

MODEL = "cantine-nantes"
SETTLE_S = 180


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: PostgresServer,
    sklearn_model_dir: Path,
) -> Iterator[tuple[PrivateDockerd, Cluster, str]]:
    machine = docker_env(pool_size=0)  # the image, built or found on the machine's engine
    with private_dockerd() as engine:
        engine.load_image(machine["BIBIA_DEMO_IMAGE"])
        env = {
            **machine,
            "DOCKER_HOST": engine.host,
            "BIBIA_DEMO_REAP_INTERVAL_S": "1",
            "BIBIA_EVALUATION_WORKERS": "0",
        }
        root = tmp_path_factory.mktemp("docker-restart")
        with cluster(
            root, postgres_server, replicas=1, env=env, seed_model_dir=sklearn_model_dir
        ) as made:
            yield engine, made, made.token("nantes-metropole", "member")


def _containers(engine: PrivateDockerd, made: Cluster) -> dict[str, str]:
    """This service's containers on the private engine: demonstrator id → state."""
    instance = hashlib.sha256(made.bibia_url.encode()).hexdigest()[:16]
    listed = engine.docker(
        "ps", "-a", "--filter", f"label=bibia.instance={instance}",
        "--format", '{{.Label "bibia.demo_id"}} {{.State}}',
        timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    return dict(line.split(" ", 1) for line in listed.stdout.splitlines() if line.strip())


def _wait_ready(made: Cluster, headers: dict[str, str], demo_id: str) -> dict:
    deadline = time.monotonic() + SETTLE_S
    while True:
        demo = httpx.get(f"{made.url}/api/v1/demos/{demo_id}", headers=headers, timeout=60).json()
        if demo["state"] in ("ready", "failed"):
            return demo
        assert time.monotonic() < deadline, demo
        time.sleep(1)


def test_engine_restart_under_a_running_demonstrator_converges_without_orphans(
    site: tuple[PrivateDockerd, Cluster, str],
) -> None:
    engine, made, token = site
    headers = {"Authorization": f"Bearer {token}"}
    launched = httpx.post(
        f"{made.url}/api/v1/demos", json={"model": MODEL}, headers=headers, timeout=120
    )
    assert launched.status_code == 202, launched.text
    demo_id = launched.json()["id"]
    assert _wait_ready(made, headers, demo_id)["state"] == "ready"
    assert httpx.get(f"{made.url}/demos/{demo_id}/", headers=headers, timeout=60).status_code == 200
    assert _containers(engine, made) == {demo_id: "running"}

    engine.restart()

    # converges: running again and answering, or failed with a French reason
    deadline = time.monotonic() + SETTLE_S
    while True:
        demo = httpx.get(f"{made.url}/api/v1/demos/{demo_id}", headers=headers, timeout=60).json()
        containers = _containers(engine, made)
        if demo["state"] == "failed" and demo_id not in containers:
            assert demo["error"] and " " in demo["error"], demo
            break
        if demo["state"] == "ready" and containers.get(demo_id) == "running":
            answer = httpx.get(f"{made.url}/demos/{demo_id}/", headers=headers, timeout=60)
            if answer.status_code == 200:
                break
        assert time.monotonic() < deadline, (demo, containers, made.replicas[0].tail())
        time.sleep(1)
    assert made.replicas[0].alive

    # the same service launches on the restarted engine, and stops cleanly
    again = httpx.post(
        f"{made.url}/api/v1/demos", json={"model": MODEL}, headers=headers, timeout=120
    )
    assert again.status_code == 202, again.text
    second = again.json()["id"]
    assert _wait_ready(made, headers, second)["state"] == "ready"
    assert httpx.get(f"{made.url}/demos/{second}/", headers=headers, timeout=60).status_code == 200
    for ending in {demo_id, second}:
        stopped = httpx.delete(f"{made.url}/api/v1/demos/{ending}", headers=headers, timeout=120)
        assert stopped.status_code in (200, 202, 204, 409), stopped.text
    deadline = time.monotonic() + 60
    while _containers(engine, made):
        assert time.monotonic() < deadline, _containers(engine, made)
        time.sleep(1)
    live = httpx.get(f"{made.url}/api/v1/demos", headers=headers, timeout=60).json()
    assert live == [], live
