"""Demonstrator scenarios that do not depend on the engine, run by both suites.

``tests/demos_fast`` runs them on the fake runner (seconds, no Docker) and
``tests/demos_service`` on the real engine (the proof): one body, two worlds.
Each takes a world whose service has the scenario's settings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

import pytest

from tests.conftest import World
from tests.demos_service.conftest import launch, launch_ready, wait_demo


def quota_per_organisation_then_global(world: World, stop_all: list[str]) -> None:
    """Quotas 2 per organisation and 3 in all: the third launch of one organisation, then the fourth in all, get 429."""
    for _ in range(2):
        response = launch(world, "double-x")
        assert response.status_code == 202, response.text
        stop_all.append(response.json()["id"])
    third = launch(world, "double-x", role="member2")
    assert third.status_code == 429
    body = third.json()
    assert body["error"] == "quota_depasse"
    assert "votre collectivité a déjà 2 démonstrateur(s) actif(s) (quota : 2)" in body["message"]
    assert "arrêtez-en un" in body["message"]

    lille = launch(world, "double-x", role="other_member")
    assert lille.status_code == 202, lille.text
    stop_all.append(lille.json()["id"])
    over = launch(world, "double-x", role="other_member")
    assert over.status_code == 429
    assert "trop de démonstrateurs actifs sur la plateforme (3 sur 3)" in over.json()["message"]

    # Stopping one frees a place for its organisation.
    assert (
        world.client.delete(
            f"/api/v1/demos/{stop_all[0]}", headers=world.headers("member")
        ).status_code
        == 200
    )
    again = launch(world, "double-x", role="member2")
    assert again.status_code == 202, again.text
    stop_all.append(again.json()["id"])


def primary_key_refuses_a_second_claim(world: World, members: Iterable[str]) -> None:
    """Two launches claiming the same warm member: the database's primary key lets one through."""
    from sqlalchemy.exc import IntegrityError

    from bibia.auth import authenticate
    from registry.refs import ModelRef

    demos = world.app.state.demos
    member = next(iter(members))
    with world.services.db.session() as session:
        caller = authenticate(session, world.tokens["member"])
    info = world.services.registry.resolve(ModelRef.parse("double-x@production"))
    runner = demos.sandbox.runner_name
    demos.sessions.insert(caller, info, 5, member, runner=runner, runner_ref="first")
    try:
        with pytest.raises(IntegrityError):
            demos.sessions.insert(caller, info, 5, member, runner=runner, runner_ref="second")
        assert member not in {m.demo_id for m in demos.pool.members()}, (
            "claimed: no longer a pool member"
        )
    finally:
        demos.sessions.fail(member, "essai")
        demos.sandbox.teardown(member)


def extension_by_the_owner_within_the_maximum(
    world: World, stop_all: list[str], expiry_label: Callable[[str], int]
) -> None:
    """Only the owner's organisation extends, within created + the maximum time to live (60 min here);
    the sandbox's own deadline (``expiry_label``, its ``bibia.expires_at``) follows."""
    demo = launch_ready(world, "double-x", ttl_minutes=5)
    stop_all.append(demo["id"])
    created = dt.datetime.fromisoformat(demo["created_at"])
    first = dt.datetime.fromisoformat(demo["expires_at"])
    assert abs(first - created - dt.timedelta(minutes=5)) < dt.timedelta(seconds=1)

    for role in (None, "other_member", "other_expert"):
        refused = world.client.post(
            f"/api/v1/demos/{demo['id']}/extend", headers=world.headers(role), json={"minutes": 5}
        )
        assert refused.status_code == (401 if role is None else 404), (role, refused.text)
    bad = world.client.post(
        f"/api/v1/demos/{demo['id']}/extend", headers=world.headers("member"), json={"minutes": 0}
    )
    assert bad.status_code == 422

    longer = world.client.post(
        f"/api/v1/demos/{demo['id']}/extend", headers=world.headers("member2"), json={"minutes": 10}
    )
    assert longer.status_code == 200, longer.text
    assert dt.datetime.fromisoformat(longer.json()["expires_at"]) == first + dt.timedelta(
        minutes=10
    )
    capped = world.client.post(
        f"/api/v1/demos/{demo['id']}/extend", headers=world.headers("member"), json={"minutes": 600}
    )
    assert capped.status_code == 200
    assert dt.datetime.fromisoformat(capped.json()["expires_at"]) == created + dt.timedelta(
        minutes=60
    )  # created + max TTL

    # The sandbox's own deadline (it stops by itself) must not cut an extended demonstrator short.
    assert expiry_label(demo["id"]) >= int((created + dt.timedelta(minutes=60)).timestamp()) - 5
    with world.services.db.session() as session:
        from bibia.db.models import DemoSession

        session.get(DemoSession, demo["id"]).expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(
            minutes=20
        )
    assert world.app.state.demos.reap() == []
    demo_now, _ = wait_demo(world, demo["id"])
    assert demo_now["state"] == "ready"
