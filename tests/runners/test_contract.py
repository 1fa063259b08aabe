"""One contract for every Runner: the same behaviour from DockerRunner, ProcessRunner and FakeRunner.

Each test starts demonstrator servers on fixture models (real ones for
Docker and processes; the fake runner plays what each fixture model does)
and talks to them over their Unix socket, as the service does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from domain.errors import DemoConflict, DemoMissing, RunnerError
from runners.base import DemoSpec, Runner, RunState
from runners.fake import Behaviour, FakeRunner
from runners.health import probe, wait_until_healthy
from runners.sockets import SandboxTransport

pytestmark = pytest.mark.timeout(180)


@dataclass
class Case:
    runner: Runner
    spec: Callable[..., DemoSpec]
    fresh: Callable[[], Runner]  # a new runner object on the same backend (a restarted service)
    measures_memory: bool = True  # the fake runner cannot measure a thread's memory


def _double_x(records: list[dict]) -> list[dict]:
    return [{"y": 2.0 * float(r["x"])} for r in records]


# What the fixture models of tests/fixtures/models.py do, played by the fake runner.
FAKE_BEHAVIOURS = {
    "ok": lambda params: Behaviour(predict=_double_x),
    "raises_on_load": lambda params: Behaviour(
        exit_code=3, logs="ValueError: échec volontaire au chargement"
    ),
    "slow_load": lambda params: Behaviour(load_seconds=params.get("delay", 5), predict=_double_x),
}


@pytest.fixture(
    params=["fake", "process", pytest.param("docker", marks=pytest.mark.docker), "kubernetes"]
)
def case(request, make_spec) -> Case:
    if request.param == "fake":
        runner = request.getfixturevalue("fake_runner")
        scripted: dict[str, Behaviour] = {}
        runner.behaviour = lambda spec: scripted[spec.demo_id]

        def spec(kind: str, **kw) -> DemoSpec:
            made = make_spec(kind, **kw)
            scripted[made.demo_id] = FAKE_BEHAVIOURS[kind](kw.get("model_params") or {})
            return made

        return Case(
            runner,
            spec,
            lambda: FakeRunner(runner.engine, behaviour=runner.behaviour),
            measures_memory=False,
        )
    if request.param == "docker":
        from runners.docker import DockerRunner

        image = request.getfixturevalue("demo_image")
        runner = request.getfixturevalue("docker_runner")
        return Case(
            runner,
            lambda kind, **kw: make_spec(kind, image=image, **kw),
            lambda: DockerRunner(labels=runner.extra_labels),
        )
    if request.param == "kubernetes":  # skipped without BIBIA_TEST_KUBECONFIG, CI or not
        from runners.kubernetes import KubernetesRunner

        runner = request.getfixturevalue("kubernetes_runner")
        image = os.environ.get("BIBIA_TEST_KUBERNETES_IMAGE", "bibia/demo:latest")
        return Case(
            runner,
            lambda kind, **kw: make_spec(kind, image=image, **kw),
            lambda: KubernetesRunner(
                namespace=runner.namespace, kubeconfig=runner.kubeconfig, labels=runner.extra_labels
            ),
            measures_memory=False,  # the kubelet reports the current working set, not a peak
        )
    from runners.process import ProcessRunner

    runner = request.getfixturevalue("process_runner")
    return Case(
        runner, make_spec, lambda: ProcessRunner(runner.state_dir, pythonpath=runner.pythonpath)
    )


def _client(spec: DemoSpec, runner: Runner) -> httpx.Client:
    return httpx.Client(
        transport=SandboxTransport(spec.socket_dir, runner.socket_owner),
        base_url="http://demo",
        timeout=30,
    )


def _wait_exited(runner: Runner, demo_id: str, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = runner.status(demo_id)
        if status.state is RunState.EXITED:
            return status
        time.sleep(0.2)
    pytest.fail(f"{demo_id} did not exit within {timeout}s; logs:\n{runner.logs(demo_id)}")


def test_start_serve_list_and_stop(case: Case) -> None:
    spec = case.spec("ok")
    info = case.runner.start(spec)
    assert info.demo_id == spec.demo_id and info.runner_id
    wait_until_healthy(case.runner, spec.demo_id, spec.socket_dir, timeout=90)

    with _client(spec, case.runner) as client:
        health = client.get("/health").json()
        predictions = client.post(
            "/predict", json={"dataframe_records": [{"x": 1.5}, {"x": -2}]}
        ).json()
    assert health["status"] == "ok"
    assert predictions == {"predictions": [{"y": 3.0}, {"y": -4.0}]}
    assert case.runner.status(spec.demo_id).state is RunState.RUNNING
    assert "Démonstrateur prêt" in case.runner.logs(spec.demo_id)

    listed = {i.demo_id: i for i in case.runner.list()}
    assert listed[spec.demo_id].labels["bibia.kind"] == "ok"
    assert listed[spec.demo_id].labels["bibia.managed"] == "true"
    assert listed[spec.demo_id].labels["bibia.demo_id"] == spec.demo_id
    assert int(listed[spec.demo_id].labels["bibia.expires_at"]) > time.time()
    assert listed[spec.demo_id].status.state is RunState.RUNNING

    case.runner.stop(spec.demo_id, timeout=2)
    case.runner.stop(spec.demo_id, timeout=2)  # idempotent
    assert case.runner.status(spec.demo_id).state is RunState.MISSING
    assert spec.demo_id not in {i.demo_id for i in case.runner.list()}
    assert not probe(spec.socket_dir, case.runner.socket_owner)
    with pytest.raises(DemoMissing):
        case.runner.logs(spec.demo_id)


def test_unknown_demo_is_missing(case: Case) -> None:
    assert case.runner.status("t-never-started").state is RunState.MISSING
    case.runner.stop("t-never-started")
    with pytest.raises(DemoMissing):
        case.runner.logs("t-never-started")


def test_model_that_raises_on_load_exits_non_zero_with_the_error_in_logs(case: Case) -> None:
    spec = case.spec("raises_on_load")
    case.runner.start(spec)
    with pytest.raises(RunnerError, match="arrêté avant d'être prêt") as caught:
        wait_until_healthy(case.runner, spec.demo_id, spec.socket_dir, timeout=90)
    status = _wait_exited(case.runner, spec.demo_id)
    assert status.exit_code == 3
    logs = case.runner.logs(spec.demo_id)
    assert "Échec du chargement du modèle" in logs
    assert "échec volontaire au chargement" in logs
    assert "échec volontaire" in caught.value.details["logs"]
    case.runner.stop(spec.demo_id)
    assert case.runner.status(spec.demo_id).state is RunState.MISSING


def test_slow_model_is_not_healthy_at_first_then_healthy(case: Case) -> None:
    spec = case.spec("slow_load", model_params={"delay": 5})
    case.runner.start(spec)
    assert not probe(spec.socket_dir, case.runner.socket_owner)
    assert case.runner.status(spec.demo_id).state is RunState.RUNNING
    wait_until_healthy(case.runner, spec.demo_id, spec.socket_dir, timeout=90)
    assert "Chargement du modèle" in case.runner.logs(spec.demo_id)


def test_starting_the_same_demo_twice_conflicts(case: Case) -> None:
    spec = case.spec("ok")
    case.runner.start(spec)
    with pytest.raises(DemoConflict):
        case.runner.start(spec)


def test_a_new_runner_object_finds_what_an_earlier_one_started(case: Case) -> None:
    spec = case.spec("ok")
    case.runner.start(spec)
    wait_until_healthy(case.runner, spec.demo_id, spec.socket_dir, timeout=90)

    restarted = case.fresh()
    assert restarted.status(spec.demo_id).state is RunState.RUNNING
    assert spec.demo_id in {i.demo_id for i in restarted.list()}
    restarted.stop(spec.demo_id, timeout=2)
    assert case.runner.status(spec.demo_id).state is RunState.MISSING


def test_time_to_live_stops_the_server(case: Case) -> None:
    spec = case.spec("ok", ttl_seconds=6)
    case.runner.start(spec)
    wait_until_healthy(case.runner, spec.demo_id, spec.socket_dir, timeout=90)
    status = _wait_exited(case.runner, spec.demo_id, timeout=30)
    assert status.exit_code == 0
    assert "Durée de vie écoulée" in case.runner.logs(spec.demo_id)


def test_usage_is_measured_by_the_runner_while_it_runs(case: Case) -> None:
    spec = case.spec("ok")
    case.runner.start(spec)
    wait_until_healthy(case.runner, spec.demo_id, spec.socket_dir, timeout=90)
    with _client(spec, case.runner) as client:
        for _ in range(20):
            answer = client.post(
                "/predict", json={"dataframe_records": [{"x": i} for i in range(200)]}
            )
            assert answer.status_code == 200

    first = case.runner.usage(spec.demo_id)
    assert first is not None and first.source
    assert first.cpu_seconds >= 0
    if case.measures_memory:
        # a Python server that loaded a model: real CPU time and megabytes of memory
        assert first.cpu_seconds > 0
        assert first.peak_memory_bytes is not None and first.peak_memory_bytes > 1024 * 1024
        assert first.peak_memory_bytes <= spec.memory_bytes or case.runner.isolates is False
    with _client(spec, case.runner) as client:
        client.post("/predict", json={"dataframe_records": [{"x": 1}]})
    later = case.fresh().usage(spec.demo_id)  # the runner's own accounting, not an object's memory
    assert later is not None and later.cpu_seconds >= first.cpu_seconds
    if case.measures_memory:
        assert later.peak_memory_bytes is not None
        assert later.peak_memory_bytes >= first.peak_memory_bytes

    case.runner.stop(spec.demo_id, timeout=2)
    assert case.runner.usage(spec.demo_id) is None  # gone with its sandbox


def test_usage_of_a_missing_or_ended_demo_is_none(case: Case) -> None:
    assert case.runner.usage("t-never-started") is None
    spec = case.spec("raises_on_load")
    case.runner.start(spec)
    _wait_exited(case.runner, spec.demo_id)
    assert case.runner.usage(spec.demo_id) is None
