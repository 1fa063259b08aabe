"""DemoSpec validation, and ProcessRunner's refusal of untrusted models."""

from __future__ import annotations

from pathlib import Path

import pytest

from bibia.errors import status_for
from domain.errors import UntrustedModel
from runners.base import DemoSpec, RunState
from runners.health import wait_until_healthy
from runners.process import ProcessRunner


def _spec(tmp: Path, **fields) -> DemoSpec:
    values = {
        "demo_id": "demo-1",
        "image": "bibia/demo:latest",
        "model_dir": tmp,
        "socket_dir": tmp / "s",
    }
    values.update(fields)
    return DemoSpec(**values)


@pytest.mark.parametrize("demo_id", ["", "Demo", "a_b", "-a", "a" * 64, "../x", "demo-1\n", "d²"])
def test_demo_id_must_be_a_short_slug(tmp_path, demo_id) -> None:
    with pytest.raises(ValueError, match="demo_id"):
        _spec(tmp_path, demo_id=demo_id)


def test_runner_environment_cannot_be_overridden(tmp_path) -> None:
    with pytest.raises(ValueError, match="BIBIA_SOCKET"):
        _spec(tmp_path, env={"BIBIA_SOCKET": "/elsewhere"})


def test_limits_must_be_positive(tmp_path) -> None:
    with pytest.raises(ValueError, match="memory_bytes"):
        _spec(tmp_path, memory_bytes=0)
    with pytest.raises(ValueError, match="cpus"):
        _spec(tmp_path, cpus=0)


def test_socket_path_must_fit_in_a_unix_socket_address(tmp_path) -> None:
    with pytest.raises(ValueError, match="too long"):
        _spec(tmp_path, socket_dir=Path("/tmp") / ("x" * 120))


def test_runner_labels_win_over_spec_labels(tmp_path) -> None:
    spec = _spec(tmp_path, labels={"bibia.demo_id": "other", "team": "a"})
    labels = spec.all_labels(expires_at=100.0)
    assert labels == {
        "bibia.demo_id": "demo-1",
        "team": "a",
        "bibia.managed": "true",
        "bibia.expires_at": "100",
    }
    assert (
        spec.server_env("/model", "/run/bibia/demo.sock")["BIBIA_SOCKET"] == "/run/bibia/demo.sock"
    )


def test_process_runner_refuses_untrusted_models(process_runner, make_spec) -> None:
    spec = make_spec("ok", trusted=False)
    with pytest.raises(UntrustedModel, match="sans isolation"):
        process_runner.start(spec)
    assert process_runner.status(spec.demo_id).state is RunState.MISSING
    assert status_for(UntrustedModel) == 403


def test_process_runner_built_to_allow_untrusted_models_runs_them(
    process_runner, make_spec
) -> None:
    permissive = ProcessRunner(
        process_runner.state_dir, pythonpath=process_runner.pythonpath, allow_untrusted=True
    )
    spec = make_spec("ok", trusted=False)
    permissive.start(spec)
    try:
        wait_until_healthy(permissive, spec.demo_id, spec.socket_dir, timeout=90)
    finally:
        permissive.stop(spec.demo_id, timeout=2)
