"""A service restart loses and orphans nothing: reconciliation against the real Docker engine.

The first app launches demonstrators and stops WITHOUT stopping them (as a
redeploy would); behind its back one container is removed, one killed, an orphan of this
instance (no database row) and a container of ANOTHER instance appear. A new
app on the same data directory must adopt what runs, fail what vanished,
fail what vanished or died (keeping its last logs) and the launches the
restart interrupted, remove the orphan, and leave the other instance's
container alone.
"""

from __future__ import annotations

import secrets
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.demos_service.conftest import (
    container_ids,
    docker_settings,
    launch,
    launch_ready,
    open_world,
    register_model,
    remove_instance_containers,
    wait_demo,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _start_labelled(model_dir: Path, socket_root: Path, instance: str, image: str) -> str:
    """Start a bibia-managed container labelled with ``instance`` and no row in any database."""
    from bibia.demos import LABEL_INSTANCE, LABEL_MODEL
    from runners.base import DemoSpec
    from runners.docker import DockerRunner

    demo_id = secrets.token_hex(8)
    DockerRunner().start(
        DemoSpec(
            demo_id=demo_id,
            image=image,
            model_dir=model_dir,
            socket_dir=socket_root / demo_id / "run",
            labels={LABEL_INSTANCE: instance, LABEL_MODEL: "double-x/1"},
            ttl_seconds=600,
        )
    )
    return demo_id


def _pending_row(settings, minutes_ago: int) -> str:
    """A demonstrator row of Nantes in state pending, created ``minutes_ago``, written straight to the database."""
    import datetime as dt

    from sqlalchemy import select

    from bibia.db import Database
    from bibia.db.models import DemoSession, Organisation

    demo_id = secrets.token_hex(8)
    created = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    db = Database(settings.database_uri)
    try:
        with db.session() as session:
            org = session.scalar(
                select(Organisation).where(Organisation.slug == "nantes-metropole")
            )
            session.add(
                DemoSession(
                    id=demo_id,
                    organisation_id=org.id,
                    model_name="double-x",
                    model_version=1,
                    state="pending",
                    runner="DockerRunner",
                    created_at=created,
                    expires_at=created + dt.timedelta(minutes=90),
                )
            )
    finally:
        db.dispose()
    return demo_id


def test_restart_adopts_fails_the_vanished_and_removes_orphans_of_its_own_instance_only(
    demo_image, fixture_models, short_tmp
) -> None:
    data = Path(tempfile.mkdtemp(prefix="bds-rec-", dir=short_tmp))
    settings = docker_settings(data, demo_image)
    foreign_root = Path(tempfile.mkdtemp(prefix="bds-other-", dir=short_tmp))
    foreign = orphan = None
    instance = None
    try:
        with open_world(settings, cleanup=False) as first:
            instance = first.services.instance
            tokens = first.tokens
            register_model(
                first, "double-x", fixture_models("ok"), "Modèle d'essai : le double de x"
            )
            register_model(
                first, "lent", fixture_models("slow_load", delay=6), "Modèle d'essai lent"
            )
            kept = launch_ready(first, "double-x")
            removed = launch_ready(first, "double-x")
            killed = launch_ready(first, "double-x")
            slow = launch(first, "lent").json()
            deadline = time.monotonic() + 30
            while not container_ids(slow["id"]):  # its container exists; it is still loading
                assert time.monotonic() < deadline
                time.sleep(0.1)
            assert (
                first.client.get(
                    f"/api/v1/demos/{slow['id']}", headers=first.headers("member")
                ).json()["state"]
                == "starting"
            )

        # Behind the service's back.
        subprocess.run(
            ["docker", "rm", "-f", f"bibia-demo-{removed['id']}"], capture_output=True, check=True
        )
        subprocess.run(
            ["docker", "kill", f"bibia-demo-{killed['id']}"], capture_output=True, check=True
        )
        interrupted = _pending_row(settings, minutes_ago=60)  # its launch died with the old process
        fresh = _pending_row(settings, minutes_ago=0)  # maybe another replica's launch on its way
        orphan = _start_labelled(fixture_models("ok"), settings.demos_dir, instance, demo_image)
        foreign = _start_labelled(
            fixture_models("ok"), foreign_root, "another-instance", demo_image
        )
        assert container_ids(kept["id"]) and container_ids(orphan) and container_ids(foreign)

        with open_world(settings, tokens=tokens) as second:
            headers = second.headers("member")
            still = second.client.get(f"/api/v1/demos/{kept['id']}", headers=headers).json()
            assert still["state"] == "ready"
            answer = second.client.post(
                f"{kept['url']}predict", headers=headers, json={"dataframe_records": [{"x": 4}]}
            )
            assert answer.status_code == 200 and answer.json() == {"predictions": [{"y": 8.0}]}

            gone = second.client.get(f"/api/v1/demos/{removed['id']}", headers=headers).json()
            assert gone["state"] == "failed"
            assert gone["error"] == "démonstrateur disparu pendant l'arrêt du service"

            dead = second.client.get(f"/api/v1/demos/{killed['id']}", headers=headers).json()
            assert dead["state"] == "failed"
            assert dead["error"].startswith("le démonstrateur s'est arrêté (code 137)"), dead[
                "error"
            ]
            assert "Démonstrateur prêt" not in dead["error"], (
                "members read a fixed message, not the sandbox's output"
            )
            logs = second.client.get(
                f"/api/v1/demos/{killed['id']}/logs", headers=second.headers("expert")
            ).text
            assert "Démonstrateur prêt" in logs, (
                "its last logs are kept for experts before the container goes"
            )
            assert container_ids(killed["id"]) == []

            late = second.client.get(f"/api/v1/demos/{interrupted}", headers=headers).json()
            assert late["state"] == "failed" and "lancement interrompu" in late["error"]
            assert (
                second.client.get(f"/api/v1/demos/{fresh}", headers=headers).json()["state"]
                == "pending"
            )

            adopted, seen = wait_demo(second, slow["id"], timeout=60)
            assert adopted["state"] == "ready", (seen, adopted)

            assert container_ids(orphan) == [], "an orphan of this instance is removed"
            assert container_ids(foreign), "another instance's demonstrator is not ours to remove"
            listed = {d["id"] for d in second.client.get("/api/v1/demos", headers=headers).json()}
            assert listed == {kept["id"], slow["id"], fresh}
    finally:
        if instance is not None:
            remove_instance_containers(instance)
        remove_instance_containers("another-instance")
        subprocess.run(["rm", "-rf", str(foreign_root)], check=False)
    assert foreign is not None and container_ids(foreign) == []
