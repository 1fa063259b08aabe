"""30 launch requests at the same moment through nginx, on two replicas and the real Docker engine.

Three organisations send ten launches each at once (a thread per request,
released together), the quotas set so that most must be refused: each answer
is a 202 (a new demonstrator) or a French 429 (a quota), nothing else; the
platform's and each organisation's quotas hold across both replicas; every
202 has its row, listed through the proxy, and reaches ``ready`` or
``failed`` with a French reason; the Docker engine runs a container for
exactly the demonstrators that run (no orphan, none missing); stopped, none
is left.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.backends.conftest import PostgresServer
from tests.scale.cluster import Cluster, cluster, docker_env

pytestmark = [pytest.mark.postgres, pytest.mark.docker, pytest.mark.slow]

ORGS = ("nantes-metropole", "lille-metropole", "rennes-metropole")
PER_ORG = 10
QUOTA_PER_ORG = 3
QUOTA_GLOBAL = 5  # below 3 × 3: the platform's quota must hold across organisations too
MODEL = "cantine-nantes"
SETTLE_S = 300


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: PostgresServer,
    sklearn_model_dir: Path,
) -> Iterator[Cluster]:
    env = {
        **docker_env(pool_size=0),
        "BIBIA_DEMO_QUOTA_PER_ORG": str(QUOTA_PER_ORG),
        "BIBIA_DEMO_QUOTA_GLOBAL": str(QUOTA_GLOBAL),
        "BIBIA_EVALUATION_WORKERS": "0",
    }
    root = tmp_path_factory.mktemp("burst")
    with cluster(
        root, postgres_server, replicas=2, env=env, seed_model_dir=sklearn_model_dir
    ) as made:
        yield made


def _ours(made: Cluster) -> dict[str, str]:
    """This cluster's containers on the engine: demonstrator id → container state."""
    from runners.base import LABEL_DEMO_ID
    from runners.docker import DockerRunner

    instance = hashlib.sha256(made.bibia_url.encode()).hexdigest()[:16]
    return {
        info.labels.get(LABEL_DEMO_ID, ""): info.status.state.value
        for info in DockerRunner().list()
        if info.labels.get("bibia.instance") == instance
    }


def test_thirty_simultaneous_launches_end_ready_or_429_none_lost_none_orphaned(
    site: Cluster,
) -> None:
    made = site
    tokens = {org: made.token(org, "member") for org in ORGS}
    requests = [org for org in ORGS for _ in range(PER_ORG)]
    gate = threading.Barrier(len(requests))

    def launch(org: str) -> tuple[str, httpx.Response]:
        with httpx.Client(base_url=made.url, timeout=120) as client:
            gate.wait()
            return org, client.post(
                "/api/v1/demos",
                json={"model": MODEL},
                headers={"Authorization": f"Bearer {tokens[org]}"},
            )

    with ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(launch, requests))

    statuses = Counter(r.status_code for _, r in answers)
    assert set(statuses) <= {202, 429}, [(r.status_code, r.text[:300]) for _, r in answers]
    for _, refused in (a for a in answers if a[1].status_code == 429):
        body = refused.json()
        assert body["error"] == "quota_depasse" and "démonstrateur" in body["message"], body
    accepted: dict[str, str] = {r.json()["id"]: org for org, r in answers if r.status_code == 202}
    assert len(accepted) == statuses[202]  # one new demonstrator per 202
    assert 1 <= len(accepted) <= QUOTA_GLOBAL, statuses
    per_org = Counter(accepted.values())
    assert max(per_org.values()) <= QUOTA_PER_ORG, per_org

    # every 202 has its row (asked through the proxy, so of either replica) and settles
    final: dict[str, dict] = {}
    deadline = time.monotonic() + SETTLE_S
    while len(final) < len(accepted):
        for demo_id, org in accepted.items():
            if demo_id in final:
                continue
            got = httpx.get(
                f"{made.url}/api/v1/demos/{demo_id}",
                headers={"Authorization": f"Bearer {tokens[org]}"},
                timeout=60,
            )
            assert got.status_code == 200, got.text
            if got.json()["state"] in ("ready", "failed", "stopped", "expired"):
                final[demo_id] = got.json()
        assert time.monotonic() < deadline, {d: f.get("state") for d, f in final.items()}
        time.sleep(1)
    for demo in final.values():
        assert demo["state"] in ("ready", "failed"), demo
        if demo["state"] == "failed":
            # a sentence for a person, not an exception's repr
            assert demo["error"] and " " in demo["error"] and "Traceback" not in demo["error"], demo
    listed = {
        d["id"]
        for org, token in tokens.items()
        for d in httpx.get(
            f"{made.url}/api/v1/demos?all=true",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        ).json()
    }
    assert listed == set(accepted), (listed, set(accepted))

    # the engine runs exactly the demonstrators that are ready: no orphan, none missing
    ready = {d for d, demo in final.items() if demo["state"] == "ready"}
    containers = _ours(made)
    assert {d for d, state in containers.items() if state == "running"} == ready, containers
    assert set(containers) <= set(accepted), containers

    # a demonstrator answers through the proxy (whichever replica serves the request)
    for demo_id in ready:
        org = accepted[demo_id]
        page = httpx.get(
            f"{made.url}/demos/{demo_id}/",
            headers={"Authorization": f"Bearer {tokens[org]}"},
            timeout=60,
        )
        assert page.status_code == 200, page.text[:300]

    # stopped through the proxy: no row left running, no container left
    for demo_id, org in accepted.items():
        stopped = httpx.delete(
            f"{made.url}/api/v1/demos/{demo_id}",
            headers={"Authorization": f"Bearer {tokens[org]}"},
            timeout=120,
        )
        assert stopped.status_code in (200, 202, 204), stopped.text
    deadline = time.monotonic() + 120
    while _ours(made):
        assert time.monotonic() < deadline, _ours(made)
        time.sleep(1)
