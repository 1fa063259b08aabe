"""Fixtures for the fast demonstrator tests: the real service on the fake runner (no Docker).

``fake_world(**settings)`` opens a service app (in-process, lifespan running)
whose runner is a :class:`runners.fake.FakeRunner`, with the small ``ok``
fixture model registered as ``double-x`` (alias production). The fake
sandboxes serve a tiny HTTP app on their real Unix socket, so the service's
socket checks, health probe and proxy run as on Docker.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from runners.fake import Behaviour, FakeRunner
from tests.conftest import World
from tests.demos_service.conftest import open_world, register_model, short_tmp  # noqa: F401 - a fixture

FAST = {
    "demo_start_timeout_s": 10.0,
    "demo_reap_interval_s": 3600.0,
    "demo_quota_per_org": 10,
    "demo_quota_global": 20,
    "demo_pool_size": 0,
}


def double_x(records: list[dict]) -> list[dict]:
    return [{"y": 2.0 * float(r["x"])} for r in records]


READY = Behaviour(predict=double_x)


@pytest.fixture(scope="session")
def fast_tmp(short_tmp: Path) -> Path:  # noqa: F811 - the fixture imported above
    """The Docker suite's short directory: ``<data>/demos/<id>/run/demo.sock`` must stay under 108 bytes."""
    return short_tmp


@pytest.fixture(scope="session")
def ok_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.fixtures.models import make_model

    return make_model("ok", tmp_path_factory.mktemp("ok") / "model")


@contextlib.contextmanager
def fake_world(
    root: Path, model: Path, runner: FakeRunner | None = None, **overrides: object
) -> Iterator[World]:
    """The service on ``runner`` (a ready-at-once fake by default), ``double-x`` registered.

    Its data lives in a new directory under ``root``; every fake sandbox is
    stopped on exit.
    """
    from bibia.settings import Settings

    runner = runner if runner is not None else FakeRunner(behaviour=lambda spec: READY)
    data = Path(tempfile.mkdtemp(dir=root))
    settings = Settings(data_dir=data, seed_on_start=False, runner="none", **{**FAST, **overrides})
    with open_world(settings, runner=runner) as world:
        register_model(world, "double-x", model, "Modèle d'essai : le double de x")
        try:
            yield world
        finally:
            for info in runner.list():
                runner.stop(info.demo_id, timeout=1)


def fake_runner(world: World) -> FakeRunner:
    runner = world.services.runner
    assert isinstance(runner, FakeRunner)
    return runner


def state(world: World, demo_id: str, role: str = "member") -> dict:
    response = world.client.get(f"/api/v1/demos/{demo_id}", headers=world.headers(role))
    assert response.status_code == 200, response.text
    return response.json()


def settle(world: World) -> None:
    """Wait until the background launches are done."""
    world.app.state.demos.watchers.join(timeout=30)


def audits(world: World, action: str) -> list[str]:
    """The targets of the audit events of ``action``."""
    from sqlalchemy import select

    from bibia.db.models import AuditEvent

    with world.services.db.session() as session:
        return list(session.scalars(select(AuditEvent.target).where(AuditEvent.action == action)))


def add_row(world: World, row_state: str, created: dt.datetime, demo_id: str | None = None) -> str:
    """A Nantes demonstrator row of ``double-x`` written straight to the database (no launch behind it)."""
    from bibia.accounts import get_organisation
    from bibia.db.models import DemoSession

    demo_id = demo_id or secrets.token_hex(8)
    with world.services.db.session() as session:
        session.add(
            DemoSession(
                id=demo_id,
                organisation_id=get_organisation(session, "nantes-metropole").id,
                model_name="double-x",
                model_version=1,
                state=row_state,
                runner="FakeRunner",
                created_at=created,
                expires_at=created + dt.timedelta(minutes=90),
            )
        )
    return demo_id
