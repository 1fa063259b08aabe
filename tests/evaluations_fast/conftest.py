"""Fixtures of the fast evaluation tests: the real service on the fake runner (no Docker).

The fake sandboxes serve their real Unix socket and answer ``/predict``
with :data:`tests.demos_fast.conftest.double_x` (y = 2x) unless a test gives
them another behaviour, so the service's whole job lifecycle — claims,
heartbeats, recovery, cancellation, quotas, the checks of what a sandbox
answers — runs as on Docker, in seconds.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from runners.fake import FakeRunner
from tests.conftest import World
from tests.demos_fast.conftest import FAST, READY, fast_tmp, ok_model  # noqa: F401 - fixtures
from tests.demos_service.conftest import (  # noqa: F401 - fixtures
    create_tokens,
    open_world,
    register_model,
    short_tmp,
)
from tests.evaluations.conftest import register_regression_benchmark, run_one, submit  # noqa: F401

EVAL_FAST = {
    **FAST,
    "evaluation_workers": 0,
    "evaluation_heartbeat_s": 0.2,
    "evaluation_poll_interval_s": 0.1,
    "evaluation_stale_after_s": 60.0,
}


def settings_for(data: Path, **overrides: object):
    from bibia.settings import Settings

    return Settings(data_dir=data, seed_on_start=False, runner="none", **{**EVAL_FAST, **overrides})


@contextlib.contextmanager
def eval_world(
    root: Path,
    model: Path,
    runner: FakeRunner | None = None,
    *,
    data: Path | None = None,
    tokens: dict[str, str] | None = None,
    register: bool = True,
    **overrides: object,
) -> Iterator[World]:
    """The service on a fake runner with ``double-x`` and the ``doubles`` regression benchmark.

    ``data`` and ``tokens`` reopen an existing data directory (a restart).
    """
    runner = runner if runner is not None else FakeRunner(behaviour=lambda spec: READY)
    data = data if data is not None else Path(tempfile.mkdtemp(dir=root))
    with open_world(settings_for(data, **overrides), runner=runner, tokens=tokens) as world:
        if register:
            register_model(world, "double-x", model, "Modèle d'essai : le double de x")
            register_regression_benchmark(world)
        try:
            yield world
        finally:
            world.app.state.evaluations.executor.stopping.set()
            for info in runner.list():
                runner.stop(info.demo_id, timeout=1)
