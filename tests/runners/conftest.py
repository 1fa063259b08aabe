"""Fixtures for the runner tests: fixture models, runners, the demo image.

Docker tests need an engine: without one they skip, except under CI (env
``CI`` set) where they fail with a clear message. Everything they start is
labelled ``bibia.test=1`` and removed in a finaliser.

Kubernetes tests need a cluster named by ``BIBIA_TEST_KUBECONFIG`` (README,
« Kubernetes »): without one they skip, **even under CI** — no cluster exists
on the development and CI machines, the one documented exception to "CI never
skips". The manifests are checked without a cluster
(``test_kubernetes_manifests.py``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from domain.errors import RunnerUnavailable
from runners.base import DemoSpec
from tests.conftest import need
from tests.fixtures.models import make_model

REPO = Path(__file__).resolve().parents[2]
TEST_LABELS = {"bibia.test": "1"}


@pytest.fixture(scope="session")
def fixture_model(tmp_path_factory) -> Callable[..., Path]:
    """``fixture_model(kind, **params)``: a fixture model directory, built once per session."""
    cache: dict[tuple, Path] = {}

    def get(kind: str, **params) -> Path:
        key = (kind, tuple(sorted(params.items())))
        if key not in cache:
            cache[key] = make_model(kind, tmp_path_factory.mktemp(kind) / "model", **params)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def short_dir() -> Iterator[Path]:
    """A short directory for socket dirs and state: a Unix socket path has 107 bytes at most."""
    path = Path(tempfile.mkdtemp(prefix="bt-", dir="/tmp"))
    os.chmod(path, 0o700)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def docker_available() -> None:
    """Skip (or fail under CI) when no Docker engine answers."""
    from runners.docker import DockerRunner

    try:
        DockerRunner().list()
    except RunnerUnavailable as exc:
        need(False, f"no Docker engine answers: {exc}. Start one with docker/ensure-dockerd.sh.")


@pytest.fixture(scope="session")
def demo_image(docker_available) -> str:
    """The demonstrator image, built (or found up to date) by docker/build-demo-image.sh."""
    result = subprocess.run(
        ["bash", str(REPO / "docker" / "build-demo-image.sh")],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if result.returncode != 0:
        pytest.fail(f"docker/build-demo-image.sh failed:\n{result.stderr[-3000:]}")
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture
def docker_runner(docker_available) -> Iterator:
    from runners.docker import DockerRunner

    runner = DockerRunner(labels=TEST_LABELS)
    yield runner
    for info in runner.list():
        if info.labels.get("bibia.test") == "1":
            runner.stop(info.demo_id, timeout=1)


KUBERNETES_SKIP = (
    "no Kubernetes cluster: set BIBIA_TEST_KUBECONFIG to a cluster's kubeconfig to run the "
    "contract suite on KubernetesRunner (README, « Kubernetes »). Skipped even with CI set: "
    "no cluster exists on the development and CI machines (the one documented exception); "
    "its manifests are validated without a cluster by tests/runners/test_kubernetes_manifests.py"
)


@pytest.fixture
def kubernetes_runner() -> Iterator:
    """A KubernetesRunner on ``BIBIA_TEST_KUBECONFIG`` (namespace ``BIBIA_TEST_KUBERNETES_NAMESPACE``,
    default ``bibia-test``); skipped without it, CI or not (see the module's docstring)."""
    kubeconfig = os.environ.get("BIBIA_TEST_KUBECONFIG")
    if not kubeconfig:
        pytest.skip(KUBERNETES_SKIP)
    from runners.kubernetes import KubernetesRunner

    runner = KubernetesRunner(
        namespace=os.environ.get("BIBIA_TEST_KUBERNETES_NAMESPACE", "bibia-test"),
        kubeconfig=kubeconfig,
        labels=TEST_LABELS,
    )
    yield runner
    for info in runner.list():
        if info.labels.get("bibia.test") == "1":
            runner.stop(info.demo_id, timeout=1)


@pytest.fixture
def process_runner(short_dir) -> Iterator:
    from runners.process import ProcessRunner

    runner = ProcessRunner(short_dir / "process-state", pythonpath=REPO)
    yield runner
    for info in runner.list():
        if info.labels.get("bibia.test") == "1":
            runner.stop(info.demo_id, timeout=1)


@pytest.fixture
def fake_runner() -> Iterator:
    from runners.fake import FakeRunner

    runner = FakeRunner()
    yield runner
    for info in runner.list():
        runner.stop(info.demo_id, timeout=1)


@pytest.fixture
def make_spec(fixture_model, short_dir) -> Callable[..., DemoSpec]:
    """``make_spec(kind, image=..., model_params={}, **spec_fields)``: a labelled test DemoSpec."""

    def make(
        kind: str, *, image: str = "bibia/demo:latest", model_params: dict | None = None, **fields
    ) -> DemoSpec:
        demo_id = f"t-{kind.replace('_', '-')}-{uuid.uuid4().hex[:8]}"
        fields.setdefault("labels", {**TEST_LABELS, "bibia.kind": kind})
        fields.setdefault("trusted", True)
        return DemoSpec(
            demo_id=demo_id,
            image=image,
            model_dir=fixture_model(kind, **(model_params or {})),
            socket_dir=short_dir / "sock" / demo_id,
            **fields,
        )

    return make
