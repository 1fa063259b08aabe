"""KubernetesRunner without a cluster: its manifests against the Kubernetes schema and the restricted profile.

The manifests are what :mod:`runners.kubernetes` applies, built by pure
functions; ``kubernetes-validate`` checks them against the API's own schema
(shipped in the package, offline) and the tests below assert, field by field,
what the "restricted" Pod Security Standard requires and what the
NetworkPolicy admits. The relay (the service's Unix socket to the pod's port)
and the status mapping are tested on their own; the contract suite runs the
whole runner when ``BIBIA_TEST_KUBECONFIG`` names a cluster.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import kubernetes_validate
import pytest
from kubernetes.client import (
    V1ContainerState,
    V1ContainerStateRunning,
    V1ContainerStateTerminated,
    V1ContainerStateWaiting,
    V1ContainerStatus,
    V1ObjectMeta,
    V1Pod,
    V1PodStatus,
)

from domain.errors import RunnerUnavailable
from runners import kubernetes as k8s
from runners.base import SANDBOX_UID, DemoSpec, RunState
from runners.health import probe

KUBERNETES_VERSION = "1.37"  # the newest schema kubernetes-validate ships
SERVICE_LABELS = {"app.kubernetes.io/name": "bibia", "app.kubernetes.io/component": "service"}


@pytest.fixture
def spec(tmp_path: Path) -> DemoSpec:
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "MLmodel").write_text("flavors: {}\n")
    (model / "sub" / "weights.bin").write_bytes(b"\0" * 4096)
    os.symlink("/etc/passwd", model / "lien")  # never sent, never counted
    return DemoSpec(
        demo_id="d-1234abcd",
        image="bibia/demo:latest",
        model_dir=model,
        socket_dir=tmp_path / "s",
        memory_bytes=512 * 1024 * 1024,
        cpus=0.5,
        tmpfs_bytes=32 * 1024 * 1024,
        ttl_seconds=1800,
        labels={"bibia.instance": "inst-1", "bibia.model": "cantine/3"},
        env={"BIBIA_MAX_ROWS": "500"},
    )


@pytest.fixture
def pod(spec: DemoSpec) -> dict:
    return k8s.pod_manifest(
        spec,
        namespace="bibia",
        labels={"bibia.test": "1", **spec.all_labels(2_000_000_000)},
        model_bytes=k8s.model_size(spec.model_dir),
        image="registry.example/bibia/demo:1",
        socket_dir=str(spec.socket_dir),
    )


@pytest.fixture
def policy(spec: DemoSpec) -> dict:
    return k8s.network_policy_manifest(spec, namespace="bibia", service_labels=SERVICE_LABELS)


def test_manifests_are_valid_against_the_kubernetes_schema(pod: dict, policy: dict) -> None:
    for manifest in (pod, policy):
        assert kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_is_real(pod: dict) -> None:
    """A typo'd field and a wrong type are refused: the validation is not a no-op."""
    typo = json.loads(json.dumps(pod))
    typo["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesytem"] = True
    wrong = json.loads(json.dumps(pod))
    wrong["spec"]["activeDeadlineSeconds"] = "demain"
    for manifest in (typo, wrong):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def _containers(pod: dict) -> list[dict]:
    return pod["spec"]["initContainers"] + pod["spec"]["containers"]


def test_pod_meets_the_restricted_pod_security_standard(pod: dict) -> None:
    """Every control of the "restricted" profile (and of "baseline" beneath it), field by field."""
    spec = pod["spec"]
    # baseline: no host namespaces, no host ports or paths, no privileged container
    assert spec["hostNetwork"] is False and spec["hostPID"] is False and spec["hostIPC"] is False
    assert all("hostPath" not in v for v in spec["volumes"])
    # restricted: only ephemeral volume types
    assert {next(iter(set(v) - {"name"})) for v in spec["volumes"]} == {"emptyDir"}
    # restricted: runAsNonRoot with a fixed non-root uid, at the pod and in every container
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == SANDBOX_UID != 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in _containers(pod):
        ctx = container["securityContext"]
        assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == SANDBOX_UID
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["privileged"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]}  # and nothing added back
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
        assert ctx["readOnlyRootFilesystem"] is True
        assert "ports" not in container or all("hostPort" not in p for p in container["ports"])
        limits, requests = container["resources"]["limits"], container["resources"]["requests"]
        assert set(limits) == set(requests) == {"cpu", "memory", "ephemeral-storage"}
        assert limits == requests  # Guaranteed QoS: what it asks is all it gets
        assert limits["memory"] == str(512 * 1024 * 1024) and limits["cpu"] == "500m"
    # baseline: nothing that loosens the defaults (sysctls, /proc mount, SELinux, AppArmor, host process)
    for ctx in [spec["securityContext"]] + [c["securityContext"] for c in _containers(pod)]:
        assert not {
            "sysctls",
            "procMount",
            "seLinuxOptions",
            "appArmorProfile",
            "windowsOptions",
        } & set(ctx)
    assert "hostUsers" not in spec or spec["hostUsers"] is False
    # no credentials, no service discovery, no restarts, a deadline
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert spec["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] == 1800 + k8s.DEADLINE_GRACE_SECONDS


def test_pod_volumes_env_and_labels(pod: dict, spec: DemoSpec) -> None:
    volumes = {v["name"]: v["emptyDir"] for v in pod["spec"]["volumes"]}
    assert volumes["tmp"] == {"medium": "Memory", "sizeLimit": str(32 * 1024 * 1024)}
    assert volumes["model"]["sizeLimit"] == "17Mi"  # 4 KiB of model and the margin
    server = pod["spec"]["containers"][0]
    receiver = pod["spec"]["initContainers"][0]
    assert {m["mountPath"]: m.get("readOnly", False) for m in server["volumeMounts"]} == {
        "/model": True,  # the server only reads the model
        "/tmp": False,
    }
    assert {m["mountPath"] for m in receiver["volumeMounts"]} == {"/model", "/tmp"}
    assert server["image"] == receiver["image"] == "registry.example/bibia/demo:1"
    env = {e["name"]: e["value"] for e in server["env"]}
    assert env["BIBIA_PORT"] == str(k8s.DEMO_PORT)
    assert env["BIBIA_MODEL_DIR"] == "/model" and env["BIBIA_TTL_SECONDS"] == "1800"
    assert env["BIBIA_MAX_ROWS"] == "500"
    assert server["ports"] == [{"name": "http", "containerPort": k8s.DEMO_PORT, "protocol": "TCP"}]

    labels = pod["metadata"]["labels"]
    assert labels["bibia.managed"] == "true" and labels["bibia.demo_id"] == spec.demo_id
    assert labels["bibia.instance"] == "inst-1" and labels["bibia.test"] == "1"
    assert labels["bibia.expires_at"] == "2000000000"
    assert "bibia.model" not in labels  # "cantine/3" is no label value: kept in the annotation
    kept = json.loads(pod["metadata"]["annotations"][k8s.ANNOTATION_LABELS])
    assert kept["bibia.model"] == "cantine/3" and kept["bibia.demo_id"] == spec.demo_id
    assert pod["metadata"]["annotations"][k8s.ANNOTATION_SOCKET_DIR] == str(spec.socket_dir)


def test_network_policy_denies_all_egress_and_admits_only_the_service(
    policy: dict, pod: dict, spec: DemoSpec
) -> None:
    body = policy["spec"]
    selected = body["podSelector"]["matchLabels"]
    assert selected == {"bibia.managed": "true", "bibia.demo_id": spec.demo_id}
    assert selected.items() <= pod["metadata"]["labels"].items()  # it selects this pod
    assert sorted(body["policyTypes"]) == ["Egress", "Ingress"]
    assert body["egress"] == []  # Egress listed with no rule: nothing leaves, DNS included
    [rule] = body["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": SERVICE_LABELS}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": k8s.DEMO_PORT}]

    other = k8s.network_policy_manifest(
        spec, namespace="demos", service_labels=SERVICE_LABELS, service_namespace="bibia"
    )
    assert other["spec"]["ingress"][0]["from"] == [
        {
            "podSelector": {"matchLabels": SERVICE_LABELS},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "bibia"}},
        }
    ]
    assert kubernetes_validate.validate(other, KUBERNETES_VERSION, strict=True)
    with pytest.raises(ValueError, match="every pod"):
        k8s.network_policy_manifest(spec, namespace="bibia", service_labels={})


def test_model_archive_holds_regular_files_and_directories_only(spec: DemoSpec) -> None:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w|") as archive:
        k8s._model_archive(archive, spec.model_dir)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer, mode="r|") as archive:
        members = {m.name: m for m in archive}
    assert set(members) == {"MLmodel", "sub", "sub/weights.bin"}
    assert all(m.uid == SANDBOX_UID and not m.issym() for m in members.values())
    assert k8s.model_size(spec.model_dir) == len("flavors: {}\n") + 4096


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def pod_stand_in() -> Iterator[tuple[str, int]]:
    """A loopback HTTP server where the pod's address would be."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield ("127.0.0.1", server.server_address[1])
    server.shutdown()
    server.server_close()


def test_relay_serves_the_socket_the_service_connects_to(
    pod_stand_in: tuple[str, int], short_dir: Path
) -> None:
    """The service's side is unchanged: runners.sockets/health connect to socket_dir/demo.sock."""
    socket_dir = short_dir / "k8s-relay"
    target: list[tuple[str, int] | None] = [None]
    k8s._open_relay(socket_dir, lambda: target[0])
    try:
        owner = os.getuid()
        assert (socket_dir / "demo.sock").stat().st_uid == owner
        assert not probe(socket_dir, owner)  # no address yet: the connection just closes
        target[0] = pod_stand_in
        assert probe(socket_dir, owner)
        k8s._open_relay(socket_dir, lambda: None)  # a second runner object: the same relay
        assert probe(socket_dir, owner)
    finally:
        k8s._close_relay(socket_dir)
    assert not socket_dir.exists()
    assert not probe(socket_dir, os.getuid())


def _pod(phase: str, *, init=None, main=None, reason: str | None = None) -> V1Pod:
    return V1Pod(
        metadata=V1ObjectMeta(name="bibia-demo-x", labels={"bibia.managed": "true"}),
        status=V1PodStatus(
            phase=phase, reason=reason, init_container_statuses=init, container_statuses=main
        ),
    )


def _cs(name: str, state: V1ContainerState) -> V1ContainerStatus:
    return V1ContainerStatus(
        name=name, state=state, image="i", image_id="", ready=False, restart_count=0
    )


def test_status_from_the_pod() -> None:
    waiting_model = _pod(
        "Pending", init=[_cs("recevoir", V1ContainerState(running=V1ContainerStateRunning()))]
    )
    assert k8s._status(waiting_model).state is RunState.RUNNING
    loaded = k8s._status(
        _pod(
            "Failed",
            main=[
                _cs("demo", V1ContainerState(terminated=V1ContainerStateTerminated(exit_code=3)))
            ],
        )
    )
    assert (loaded.state, loaded.exit_code) == (RunState.EXITED, 3)
    oom = k8s._status(
        _pod(
            "Failed",
            main=[
                _cs(
                    "demo",
                    V1ContainerState(
                        terminated=V1ContainerStateTerminated(exit_code=137, reason="OOMKilled")
                    ),
                )
            ],
        )
    )
    assert oom.oom_killed and oom.exit_code == 137
    no_model = k8s._status(
        _pod(
            "Failed",
            init=[
                _cs(
                    "recevoir", V1ContainerState(terminated=V1ContainerStateTerminated(exit_code=1))
                )
            ],
        )
    )
    assert no_model.state is RunState.EXITED and "transmis" in (no_model.detail or "")
    pull = k8s._status(
        _pod(
            "Pending",
            init=[
                _cs(
                    "recevoir",
                    V1ContainerState(
                        waiting=V1ContainerStateWaiting(reason="ImagePullBackOff", message="no")
                    ),
                )
            ],
        )
    )
    assert pull.state is RunState.EXITED
    deadline = k8s._status(_pod("Failed", reason="DeadlineExceeded"))
    assert deadline.state is RunState.EXITED and "durée de vie" in (deadline.detail or "")


def test_usage_from_the_kubelet_summary() -> None:
    summary = {
        "pods": [
            {
                "podRef": {"name": "bibia-demo-x", "namespace": "bibia"},
                "containers": [
                    {"name": "recevoir", "cpu": {"usageCoreNanoSeconds": 1}},
                    {
                        "name": "demo",
                        "cpu": {"usageCoreNanoSeconds": 2_500_000_000},
                        "memory": {"workingSetBytes": 90_000_000, "usageBytes": 95_000_000},
                    },
                ],
            }
        ]
    }
    usage = k8s.usage_from_summary(json.dumps(summary), "bibia-demo-x", "bibia")
    assert usage is not None
    assert (usage.cpu_seconds, usage.peak_memory_bytes) == (2.5, 90_000_000)
    assert "memoire-courante" in usage.source  # a lower bound, and it says so
    assert k8s.usage_from_summary(json.dumps(summary), "bibia-demo-y", "bibia") is None
    assert k8s.usage_from_summary("pas du json", "bibia-demo-x", "bibia") is None


def test_a_cluster_that_does_not_answer_is_runner_unavailable(tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        textwrap.dedent(
            f"""\
            apiVersion: v1
            kind: Config
            clusters: [{{name: c, cluster: {{server: "https://127.0.0.1:{port}", insecure-skip-tls-verify: true}}}}]
            users: [{{name: u, user: {{token: t}}}}]
            contexts: [{{name: x, context: {{cluster: c, user: u, namespace: bibia}}}}]
            current-context: x
            """
        )
    )
    runner = k8s.KubernetesRunner(namespace="bibia", kubeconfig=kubeconfig)
    with pytest.raises(RunnerUnavailable, match="le cluster Kubernetes ne répond pas"):
        runner.list()
    with pytest.raises(RunnerUnavailable, match="configuration du cluster Kubernetes"):
        k8s.KubernetesRunner(kubeconfig=tmp_path / "absent").status("d-1")


def test_the_server_listens_on_bibia_port_as_in_a_pod(fixture_model, tmp_path: Path) -> None:
    """The pod's server (``BIBIA_PORT``): the same server on TCP, no socket file created."""
    import subprocess
    import sys
    import time

    import httpx

    probe_socket = socket.socket()
    probe_socket.bind(("127.0.0.1", 0))
    port = probe_socket.getsockname()[1]
    probe_socket.close()
    unused = tmp_path / "demo.sock"
    server = subprocess.Popen(
        [sys.executable, "-m", "demos.server"],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            "HOME": str(tmp_path),
            "BIBIA_MODEL_DIR": str(fixture_model("ok")),
            "BIBIA_SOCKET": str(unused),
            "BIBIA_PORT": str(port),
        },
        cwd=str(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        answer = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                answer = httpx.post(
                    f"http://127.0.0.1:{port}/predict",
                    json={"dataframe_records": [{"x": 2}]},
                    timeout=5,
                )
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert answer is not None, f"no answer on port {port}"
        assert answer.json() == {"predictions": [{"y": 4.0}]}
        assert not unused.exists()
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert f"Démonstrateur prêt sur le port {port}" in output


def test_settings_choose_the_kubernetes_runner(tmp_path: Path) -> None:
    from bibia.services import build_runner
    from bibia.settings import Settings

    settings = Settings(
        data_dir=tmp_path,
        runner="kubernetes",
        kubernetes_kubeconfig=tmp_path / "absent",
        kubernetes_service_labels="app.kubernetes.io/name=bibia, app.kubernetes.io/component=api",
    )
    assert settings.demo_pool_size == 0  # the model is sent at a pod's start: no warm pool
    assert settings.kubernetes_service_selector == {
        "app.kubernetes.io/name": "bibia",
        "app.kubernetes.io/component": "api",
    }
    with pytest.raises(RunnerUnavailable, match="configuration du cluster Kubernetes"):
        build_runner(settings)
    with pytest.raises(ValueError, match="clé=valeur"):
        Settings(data_dir=tmp_path, kubernetes_service_labels="bibia")
