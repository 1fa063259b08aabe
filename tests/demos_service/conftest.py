"""Fixtures for the service-level demonstrator tests: real apps, a real Docker engine, real models.

- ``demo_image``: the demonstrator image, built or found up to date by
  ``docker/build-demo-image.sh``; needs a Docker engine (``need``: skips, or
  FAILS when ``CI`` is set).
- ``reference_builds``: the cantine and velo reference models, built once
  (and cached across sessions in pytest's cache, keyed by the same
  fingerprint ``bibia seed`` uses: a change to their code or data rebuilds).
- ``fixture_models``: ``fixture_models(kind, **params)`` builds the tiny
  behaviour models of ``tests/fixtures/models.py`` once per session.
- ``open_world(settings)``: a service app (in-process, lifespan running)
  with organisations and tokens; every container it started is removed when
  the context exits.
- ``docker_settings(data, image, **overrides)``: its settings on Docker,
  with no warm pool (``demo_pool_size=0``) unless a test asks for one.

Data directories live under a short ``/tmp/bds-*`` directory: the socket
path ``<data>/demos/<id>/run/demo.sock`` must stay under 108 bytes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import EXAMPLE_CARD, ROOT, World, need, tar_model
from tests.reference_builds import cached_builds, prebuilt

REFERENCE_PACKAGES = ("demos.cantine", "demos.velo")


# ------------------------------------------------------------------ engine


def docker_answers() -> str | None:
    """None when a Docker engine answers, else why not."""
    from domain.errors import RunnerError
    from runners.docker import DockerRunner

    try:
        DockerRunner().list()
    except RunnerError as exc:
        return str(exc)
    return None


@pytest.fixture(scope="session")
def demo_image() -> str:
    """The demonstrator image tag (bibia/demo:<hash>), built if stale."""
    problem = docker_answers()
    need(
        problem is None,
        f"no Docker engine answers ({problem}); start one with docker/ensure-dockerd.sh",
    )
    result = subprocess.run(
        ["bash", str(ROOT / "docker" / "build-demo-image.sh")],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if result.returncode != 0:
        pytest.fail(f"docker/build-demo-image.sh failed:\n{result.stderr[-3000:]}")
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def short_tmp() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bds-", dir="/tmp"))
    os.chmod(path, 0o700)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def data_dir(short_tmp: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=short_tmp))


def remove_instance_containers(instance: str) -> list[str]:
    """Remove every container labelled with this service instance; returns their demo ids."""
    from bibia.demos import LABEL_INSTANCE
    from runners.docker import DockerRunner

    runner = DockerRunner()
    removed = []
    for info in runner.list():
        if info.labels.get(LABEL_INSTANCE) == instance:
            runner.stop(info.demo_id, timeout=0)
            removed.append(info.demo_id)
    return removed


def container_ids(demo_id: str) -> list[str]:
    """Ids of the containers (any state) of one demonstrator, straight from the docker CLI."""
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=bibia.demo_id={demo_id}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


# ------------------------------------------------------------------ models


@pytest.fixture(scope="session")
def reference_builds(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, object]:
    """``{package: ReferenceBuild}`` for cantine and velo, trained once (cached by fingerprint)."""
    return cached_builds(request, tmp_path_factory, REFERENCE_PACKAGES)


def seed_reference(
    services, builds: dict[str, object], packages: tuple[str, ...] = REFERENCE_PACKAGES
) -> None:
    """Run the real ``bibia seed`` for ``packages`` (cantine and velo), with their prebuilt model directories.

    The projects, organisations, cards, metrics and the ``bibia.reference``
    version tags are exactly what ``bibia seed`` writes; only the training is
    skipped (its result comes from ``reference_builds``).
    """
    import importlib

    import bibia.seed

    with pytest.MonkeyPatch.context() as patch, prebuilt({p: builds[p] for p in packages}):
        patch.setattr(bibia.seed, "REFERENCE_MODELS", packages)
        report = bibia.seed.seed(services)
    assert set(report.models_registered) | set(report.models_unchanged) == {
        importlib.import_module(p).MODEL_NAME for p in packages
    }


@pytest.fixture(scope="session")
def fixture_models(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``fixture_models(kind, **params)``: a fixture model directory, built once per session."""
    from tests.fixtures.models import make_model

    cache: dict[tuple, Path] = {}

    def get(kind: str, **params: object) -> Path:
        key = (kind, tuple(sorted(params.items())))
        if key not in cache:
            cache[key] = make_model(kind, tmp_path_factory.mktemp(kind) / "model", **params)
        return cache[key]

    return get


def fixture_card(title: str) -> dict:
    """The example card (owned by Nantes Métropole) with another title."""
    card = yaml.safe_load(EXAMPLE_CARD.read_text(encoding="utf-8"))
    card["identification"]["title"] = title
    return card


def register_model(
    world: World, name: str, model_dir: Path, title: str, role: str = "expert"
) -> dict:
    """Register ``model_dir`` as ``name`` (alias production) through the API, as an expert of Nantes."""
    response = world.client.post(
        f"/api/v1/models/{name}/versions",
        headers=world.headers(role),
        files={
            "card": (
                "fiche.yaml",
                yaml.safe_dump(fixture_card(title), allow_unicode=True).encode(),
                "application/yaml",
            ),
            "model": ("model.tar.gz", tar_model(model_dir), "application/gzip"),
        },
        data={"alias": "production"},
    )
    assert response.status_code == 201, response.text
    return response.json()


# ------------------------------------------------------------------ service


def create_tokens(services) -> dict[str, str]:
    from bibia import accounts
    from bibia.auth import SYSTEM

    with services.db.session() as session:
        accounts.create_organisation(
            session, SYSTEM, "nantes-metropole", "Nantes Métropole", "244400404"
        )
        accounts.create_organisation(
            session, SYSTEM, "lille", "Métropole Européenne de Lille", "200093201"
        )
        return {
            "member": accounts.create_token(
                session, SYSTEM, "nantes-metropole", "member", "agent"
            ).token,
            "member2": accounts.create_token(
                session, SYSTEM, "nantes-metropole", "member", "agente-2"
            ).token,
            "expert": accounts.create_token(
                session, SYSTEM, "nantes-metropole", "expert", "experte"
            ).token,
            "admin": accounts.create_token(
                session, SYSTEM, "nantes-metropole", "admin", "admin"
            ).token,
            "other_member": accounts.create_token(
                session, SYSTEM, "lille", "member", "agent-lille"
            ).token,
            "other_expert": accounts.create_token(
                session, SYSTEM, "lille", "expert", "expert-lille"
            ).token,
        }


@contextlib.contextmanager
def open_world(
    settings, *, tokens: dict[str, str] | None = None, runner=None, cleanup: bool = True
) -> Iterator[World]:
    """A running service app on ``settings`` (organisations and tokens created unless given).

    With ``cleanup`` (the default), every container labelled with this
    instance is removed on exit; without it the demonstrators keep running
    (a service restart), and the caller removes them.
    """
    from fastapi.testclient import TestClient

    from bibia.app import create_app

    app = create_app(settings, runner=runner)
    services = app.state.services
    try:
        world = World(
            app=app,
            client=TestClient(app),
            services=services,
            tokens=tokens or create_tokens(services),
        )
        with world.client:
            yield world
    finally:
        if cleanup and settings.runner == "docker":
            remove_instance_containers(services.instance)


def docker_settings(data_dir: Path, image: str, **overrides: object):
    """Settings of a Docker-backed test app, without a warm pool unless ``demo_pool_size`` is given.

    Most tests launch cold: warm sandboxes they never claim would only hold
    memory and CPU on a shared machine. The pool tests, and one lifecycle
    module (the default path of a real deployment), turn it on.
    """
    from bibia.settings import Settings

    values = {
        "demo_start_timeout_s": 90.0,
        "demo_reap_interval_s": 3600.0,
        "demo_quota_per_org": 10,
        "demo_quota_global": 20,
        "demo_pool_size": 0,
    }
    values.update(overrides)
    return Settings(
        data_dir=data_dir, seed_on_start=False, runner="docker", demo_image=image, **values
    )


# ------------------------------------------------------------------ demos


def launch(world: World, model: str, role: str = "member", **body: object):
    return world.client.post(
        "/api/v1/demos", headers=world.headers(role), json={"model": model, **body}
    )


def wait_demo(
    world: World,
    demo_id: str,
    *,
    role: str = "member",
    until: set[str] | None = None,
    timeout: float = 120.0,
) -> tuple[dict, list[str]]:
    """Poll ``GET /api/v1/demos/{id}`` until a state in ``until`` (default: not pending/starting).

    Returns:
        The last answer and every state seen, in order (deduplicated runs).
    """
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        response = world.client.get(f"/api/v1/demos/{demo_id}", headers=world.headers(role))
        assert response.status_code == 200, response.text
        demo = response.json()
        if not seen or seen[-1] != demo["state"]:
            seen.append(demo["state"])
        done = demo["state"] in until if until else demo["state"] not in {"pending", "starting"}
        if done:
            return demo, seen
        if time.monotonic() > deadline:
            raise AssertionError(
                f"demonstrator {demo_id} still {demo['state']} after {timeout:.0f} s (states: {seen})"
            )
        time.sleep(0.2)


def launch_ready(world: World, model: str, role: str = "member", **body: object) -> dict:
    response = launch(world, model, role, **body)
    assert response.status_code == 202, response.text
    demo, seen = wait_demo(world, response.json()["id"], role=role)
    assert demo["state"] == "ready", (seen, demo)
    return demo
