"""Fixtures for the fast demonstrator tests: the real service on the fake runner (no Docker).

``fake_world(**settings)`` opens a service app (in-process, lifespan running)
whose runner is a :class:`runners.fake.FakeRunner`, with the small ``ok``
fixture model registered as ``double-x`` (alias production). The fake
sandboxes serve a tiny HTTP app on their real Unix socket, so the service's
socket checks, health probe and proxy run as on Docker.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runners.fake import Behaviour, FakeRunner
from tests.conftest import World
from tests.demos_service.conftest import open_world, register_model

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
def fast_tmp() -> Iterator[Path]:
    """A short directory: the socket path ``<data>/demos/<id>/run/demo.sock`` must stay under 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="bdf-", dir="/tmp"))
    os.chmod(path, 0o700)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def ok_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.fixtures.models import make_model

    return make_model("ok", tmp_path_factory.mktemp("ok") / "model")


@pytest.fixture
def fake_world(
    fast_tmp: Path, ok_model: Path
) -> Callable[..., contextlib.AbstractContextManager[World]]:
    """``with fake_world(runner=..., **settings) as world``: the service on a fake runner."""

    @contextlib.contextmanager
    def open_(runner: FakeRunner | None = None, **overrides: object) -> Iterator[World]:
        from bibia.settings import Settings

        runner = runner if runner is not None else FakeRunner(behaviour=lambda spec: READY)
        data = Path(tempfile.mkdtemp(dir=fast_tmp))
        settings = Settings(
            data_dir=data, seed_on_start=False, runner="none", **{**FAST, **overrides}
        )
        with open_world(settings, runner=runner) as world:
            register_model(world, "double-x", ok_model, "Modèle d'essai : le double de x")
            try:
                yield world
            finally:
                for info in runner.list():
                    runner.stop(info.demo_id, timeout=1)

    return open_
