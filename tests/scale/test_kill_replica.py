"""``kill -9`` of the replica driving launches: the survivor finishes or fails each, nothing is lost.

Two replicas on one PostgreSQL and one Docker engine (no warm pool: cold
launches, long enough to be cut in the middle). Three demonstrators are
launched through one replica, and a fourth just before it is killed while
they start (its sandbox most likely not started yet). The survivor
sees its heartbeat go stale, takes the upkeep's lock the victim held,
and takes its launches over: each ends ready (adopted: its sandbox answered,
the survivor now drives it) or failed with a French reason. Afterwards no
container of the cluster is left on the engine and every row is accounted for.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.backends.conftest import PostgresServer
from tests.scale.cluster import Cluster, cluster, docker_env

pytestmark = [pytest.mark.postgres, pytest.mark.docker, pytest.mark.slow]

LAUNCHES = 3
ROWS = [{"surface": 3.0, "occupation": 1.0, "temperature": 5.0}]


@pytest.fixture(scope="module")
def two(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: PostgresServer,
    sklearn_model_dir: Path,
) -> Iterator[Cluster]:
    env = {
        **docker_env(pool_size=0),
        "BIBIA_DEMO_REAP_INTERVAL_S": "1",
        "BIBIA_REPLICA_DEAD_AFTER_INTERVALS": "3",
        "BIBIA_EVALUATION_WORKERS": "0",
    }
    with cluster(
        tmp_path_factory.mktemp("kill"),
        postgres_server,
        2,
        env=env,
        seed_model_dir=sklearn_model_dir,
    ) as made:
        yield made


def test_the_survivor_finishes_or_fails_the_launches_of_a_killed_replica(two: Cluster) -> None:
    c = two
    # The victim leads the upkeep: its lock must pass to the survivor, too.
    leader = c.upkeep_leaders()
    assert len(leader) == 1, leader
    victim = next(r for r in c.replicas if r.name == leader[0])
    survivor = next(r for r in c.replicas if r is not victim)
    headers = {"Authorization": f"Bearer {c.token()}"}
    engine = create_engine(c.bibia_url)

    def rows() -> dict[str, tuple[str, str | None, str | None]]:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT id, state, error, replica_id FROM demo_sessions"))
            return {r.id: (r.state, r.error, r.replica_id) for r in found}

    try:

        def launch() -> str:
            launched = httpx.post(
                f"{victim.url}/api/v1/demos",
                json={"model": "cantine-nantes"},
                headers=headers,
                timeout=60,
            )
            assert launched.status_code == 202, launched.text
            return launched.json()["id"]

        ids = [launch() for _ in range(LAUNCHES)]
        assert {state[2] for state in rows().values()} == {victim.name}

        deadline = time.monotonic() + 60
        while not any(c.demo_id in ids for c in c.containers()):  # a sandbox is starting
            assert time.monotonic() < deadline, "no sandbox started"
            time.sleep(0.05)
        ids.append(launch())  # and one just accepted: most likely no sandbox yet
        victim.kill()
        at_kill = rows()
        assert any(state in ("pending", "starting") for state, _, _ in at_kill.values()), at_kill

        deadline = time.monotonic() + 300
        while True:
            now = rows()
            if all(state not in ("pending", "starting") for state, _, _ in now.values()):
                break
            assert time.monotonic() < deadline, f"launches never taken over: {now}"
            time.sleep(0.5)
        assert set(now) == set(ids), "a row was lost or added"
        print("killed mid-launch:", {d: at_kill[d][0] for d in ids}, "->", now)
        for demo_id, (state, error, driver) in now.items():
            assert state in ("ready", "failed"), (demo_id, state)
            if state == "ready":  # adopted: the survivor drives it and proxies it
                assert driver == survivor.name
                answer = httpx.post(
                    f"{survivor.url}/demos/{demo_id}/predict",
                    headers=headers,
                    json={"dataframe_records": ROWS},
                    timeout=60,
                )
                assert answer.status_code == 200, answer.text
            else:  # failed with a reason members read, in French
                assert error and ("démonstrateur" in error or "lancement" in error), error
        assert c.upkeep_leaders() == [survivor.name]  # it leads the upkeep now

        for demo_id in ids:
            stopped = httpx.delete(
                f"{survivor.url}/api/v1/demos/{demo_id}", headers=headers, timeout=60
            )
            assert stopped.status_code == 200, stopped.text

        deadline = time.monotonic() + 60
        while left := c.containers():  # the engine's own labels: nothing of the cluster remains
            assert time.monotonic() < deadline, f"orphan containers: {left}"
            time.sleep(0.5)
        final = rows()
        assert set(final) == set(ids)
        assert {state for state, _, _ in final.values()} <= {"stopped", "failed"}, final
    finally:
        engine.dispose()
