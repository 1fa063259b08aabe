"""Two replicas on one PostgreSQL and one Docker engine, behind Debian's nginx (round-robin), agree.

A demonstrator launched through one replica is listed, proxied (predict),
extended and stopped through the other (they share the sandboxes' directory);
each replica keeps its own warm pool (a launch claims its replica's member,
the other's is never adopted, trimmed or replaced); one replica alone leads
the upkeep (reconciliation, reaper) and holds its advisory lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.backends.conftest import PostgresServer
from tests.scale.cluster import Cluster, cluster, docker_env

pytestmark = [pytest.mark.postgres, pytest.mark.docker, pytest.mark.slow]

REAP_INTERVAL_S = 2
MODEL = "cantine-nantes"
ROWS = [{"surface": 3.0, "occupation": 1.0, "temperature": 5.0}]


@pytest.fixture(scope="module")
def two(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: PostgresServer,
    sklearn_model_dir: Path,
) -> Iterator[Cluster]:
    env = {
        **docker_env(pool_size=1),
        "BIBIA_DEMO_REAP_INTERVAL_S": str(REAP_INTERVAL_S),
        "BIBIA_EVALUATION_WORKERS": "0",
    }
    with cluster(
        tmp_path_factory.mktemp("replicas"),
        postgres_server,
        2,
        env=env,
        seed_model_dir=sklearn_model_dir,
    ) as made:
        yield made


def wait_for(what: str, check: Callable[[], object], timeout: float = 120) -> object:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.5)


def members(c: Cluster) -> dict[str, str]:
    """The running warm sandboxes: container id -> the replica that started it."""
    return {k.id: k.replica for k in c.containers() if k.warm and k.state == "running"}


def full_pools(c: Cluster) -> dict[str, str] | None:
    found = members(c)
    return found if sorted(found.values()) == ["r0", "r1"] else None


def through(c: Cluster, replica: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A request through nginx that ``replica`` serves (round-robin: one more turn when needed)."""
    assert c.proxy is not None
    served = c.proxy.upstreams()
    if not served or c.by_upstream(served[-1]).name == replica:
        c.proxy.request("GET", "/healthz")  # the other replica's turn
    response, upstream = c.proxy.request(method, path, **kwargs)
    assert c.by_upstream(upstream).name == replica
    return response


def test_a_demonstrator_launched_through_one_replica_is_served_through_the_other(
    two: Cluster,
) -> None:
    c = two
    assert c.proxy is not None
    headers = {"Authorization": f"Bearer {c.token()}"}
    pools = wait_for("a warm member per replica", lambda: full_pools(c))
    assert isinstance(pools, dict)

    launched, upstream = c.proxy.request(
        "POST", "/api/v1/demos", json={"model": MODEL}, headers=headers
    )
    assert launched.status_code == 202, launched.text
    demo_id = launched.json()["id"]
    launcher = c.by_upstream(upstream).name
    other = "r1" if launcher == "r0" else "r0"

    # the launch claimed its own replica's warm member, never the other's
    assert pools.get(next(k.id for k in c.containers() if k.demo_id == demo_id)) == launcher
    engine = create_engine(c.bibia_url)
    try:
        with engine.connect() as conn:
            driver = conn.scalar(
                text("SELECT replica_id FROM demo_sessions WHERE id = :id"), {"id": demo_id}
            )
        assert driver == launcher

        def ready() -> dict | None:
            got, _ = c.proxy.request("GET", f"/api/v1/demos/{demo_id}", headers=headers)
            body = got.json()
            assert body["state"] in ("pending", "starting", "ready"), body
            return body if body["state"] == "ready" else None

        demo = wait_for("the demonstrator ready", ready, timeout=180)
        assert isinstance(demo, dict)

        listed = through(c, other, "GET", "/api/v1/demos", headers=headers)
        assert demo_id in {d["id"] for d in listed.json()}

        for replica in (other, launcher):  # proxied by both: they share the sockets' directory
            answer = through(
                c,
                replica,
                "POST",
                f"{demo['url']}predict",
                headers=headers,
                json={"dataframe_records": ROWS},
            )
            assert answer.status_code == 200, answer.text
            assert len(answer.json()["predictions"]) == 1

        extended = through(
            c,
            other,
            "POST",
            f"/api/v1/demos/{demo_id}/extend",
            json={"minutes": 10},
            headers=headers,
        )
        assert extended.status_code == 200, extended.text
        assert extended.json()["expires_at"] > demo["expires_at"]

        stopped = through(c, other, "DELETE", f"/api/v1/demos/{demo_id}", headers=headers)
        assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"
        assert not [k for k in c.containers() if k.demo_id == demo_id], "its sandbox is gone"

        # the launcher refilled its own pool; the other replica's member was never touched
        refilled = wait_for("the launcher's pool refilled", lambda: full_pools(c))
        assert isinstance(refilled, dict)
        kept = {cid for cid, replica in pools.items() if replica == other}
        assert kept <= set(refilled), "the other replica's warm member was replaced"
        time.sleep(3 * REAP_INTERVAL_S)  # a few upkeep passes of both replicas
        assert members(c) == refilled, "a replica trimmed, adopted or replaced another's member"
    finally:
        engine.dispose()


def test_one_replica_alone_leads_the_upkeep(two: Cluster) -> None:
    c = two
    time.sleep(2 * REAP_INTERVAL_S)  # both replicas past their start and a pass or two
    leaders = c.upkeep_leaders()
    assert len(leaders) == 1 and leaders[0] in ("r0", "r1"), leaders
    for _ in range(3):  # it keeps the lead: the other replica's tries (every pass) fail
        time.sleep(REAP_INTERVAL_S)
        assert c.upkeep_leaders() == leaders
    engine = create_engine(c.bibia_url)
    try:
        with engine.connect() as conn:
            beats = dict(conn.execute(text("SELECT id, host FROM replicas")).all())
    finally:
        engine.dispose()
    assert set(beats) == {"r0", "r1"}  # both beat
    # and the leader says so in its log (bibia's INFO messages reach ``bibia serve``'s stderr)
    said = [r.name for r in c.replicas if "leads the demonstrators' upkeep" in r.log.read_text()]
    assert said == leaders, said
