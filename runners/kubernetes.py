"""KubernetesRunner: each demonstrator (or evaluation sandbox) in a pod under the "restricted" profile.

The only module that imports ``kubernetes`` (the official client); every
error of the client or of the cluster becomes a
:class:`~domain.errors.RunnerError` subclass (a cluster that does not answer:
:class:`~domain.errors.RunnerUnavailable`).

**Manifests.** Two pure functions build what is applied, so that they are
tested without a cluster (validated against the Kubernetes schema and the
restricted Pod Security Standard, ``tests/runners/test_kubernetes_manifests.py``):

- :func:`pod_manifest`: one pod, ``restartPolicy: Never``, fixed non-root
  uid/gid 10001, ``runAsNonRoot``, ``readOnlyRootFilesystem``, every
  capability dropped, ``seccompProfile: RuntimeDefault``,
  ``allowPrivilegeEscalation: false``, no service account token, no service
  links, no host namespaces; requests equal to limits (memory, CPU,
  ephemeral storage); ``activeDeadlineSeconds`` a little beyond the time to
  live (the server stops itself at the time to live; the deadline is the
  backstop); ``/tmp`` a small ``emptyDir`` in memory with a ``sizeLimit``;
  the labels of reconciliation (``bibia.managed``, ``bibia.demo_id``,
  ``bibia.expires_at`` and the spec's labels, e.g. ``bibia.instance``). The
  API has no per-pod PID limit: it is the kubelet's ``podPidsLimit``
  (README). Every label is also kept whole in the ``bibia.labels``
  annotation, since a label value such as ``bibia.model=name/1`` is not a
  valid Kubernetes label value.
- :func:`network_policy_manifest`: for that pod only, ``policyTypes:
  [Ingress, Egress]`` with no egress rule (all egress denied, DNS included)
  and one ingress rule: TCP on :data:`DEMO_PORT` from the service's pods
  (``podSelector`` on the service's labels). It is created before the pod.

**How the model reaches the pod without any egress.** The pod has an init
container, ``recevoir``, that only waits for ``/model/.bibia-ready`` in an
``emptyDir`` (on disk, ``sizeLimit`` the model's size plus a margin). The
runner streams the model directory into it as a tar archive through the
``exec`` API (the API server and the kubelet carry it; the pod opens no
connection), extracted by the image's own Python (``tarfile``, with ``filter="data"``
where the interpreter has it; the archive is the runner's own: regular
files and directories only, relative names), then writes the marker; the
init container ends and the server container starts with ``/model``
mounted **read-only**. Trade-offs: a Secret or ConfigMap would need no exec
but is limited to 1 MiB and lands in etcd; an upload over the demonstrator's
own port would need a second, writable entry into the server before it
serves; the exec API needs the ``pods/exec`` right for the service's account
(README) and streams at the API server's pace, which is fine for the models
bibia hosts (megabytes to a few hundred). The upload runs in a thread, so
:meth:`KubernetesRunner.start` returns at once, as the protocol asks; if it
fails the runner writes ``/model/.bibia-failed``, the init container exits 1
and the pod ends (``EXITED``, with the reason in its detail).

**How the service reaches the pod.** A pod cannot use the service host's
Unix socket, so the server listens on ``<pod IP>:DEMO_PORT`` (``BIBIA_PORT``)
and only the service's pods may connect (the NetworkPolicy). The Runner
protocol and :mod:`runners.sockets` stay as they are: for each demonstrator
the runner serves ``spec.socket_dir/demo.sock`` itself, a local relay owned
by the service's own uid (:attr:`KubernetesRunner.socket_owner`) that
forwards each connection to the pod's IP, read from the API for that pod
(the pod cannot choose where the service connects). The socket directory is
the service's alone (the pod never sees it). A restarted service (or another
replica) re-opens the relay when it first asks for the pod's status.

**Usage.** CPU time (cumulative) and memory come from the kubelet's summary
API through the API server (``nodes/proxy``), i.e. from outside the sandbox;
the kubelet has no peak, so the memory figure is the current working set, a
lower bound (``source`` says so).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import re
import selectors
import socket
import socketserver
import stat
import tarfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.config
import kubernetes.stream
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from domain.errors import DemoConflict, DemoMissing, RunnerError, RunnerUnavailable
from runners.base import (
    LABEL_DEMO_ID,
    LABEL_MANAGED,
    MODEL_MOUNT,
    SANDBOX_GID,
    SANDBOX_UID,
    SOCKET_NAME,
    DemoSpec,
    RunInfo,
    RunState,
    RunStatus,
    Usage,
)

logger = logging.getLogger(__name__)

NAME_PREFIX = "bibia-demo-"
DEMO_PORT = 8080
CONTAINER = "demo"
RECEIVER = "recevoir"
PYTHON = "/opt/venv/bin/python"  # the demonstrator image's interpreter (docker/demo.Dockerfile)
READY_MARKER = ".bibia-ready"
FAILED_MARKER = ".bibia-failed"
ANNOTATION_LABELS = "bibia.labels"
ANNOTATION_SOCKET_DIR = "bibia.socket_dir"
DEFAULT_SERVICE_LABELS = {"app.kubernetes.io/name": "bibia"}
DEADLINE_GRACE_SECONDS = 60
MODEL_MARGIN_BYTES = 16 * 1024 * 1024
LOG_MARGIN_BYTES = 64 * 1024 * 1024
SOURCE_KUBELET = "kubelet-summary+memoire-courante"
_REQUEST_TIMEOUT = (5, 30)  # connect, read (seconds)
_RECEIVER_WAIT_SECONDS = 600.0  # image pull and scheduling included

_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_LABEL_PREFIX = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")

# The init container waits for the model (or for the runner's word that it will not come).
_RECEIVE = (
    "import os, sys, time\n"
    f"while not os.path.exists('{MODEL_MOUNT}/{READY_MARKER}'):\n"
    f"    if os.path.exists('{MODEL_MOUNT}/{FAILED_MARKER}'):\n"
    "        sys.exit('le modèle n’a pas pu être transmis au bac à sable')\n"
    "    time.sleep(0.2)\n"
)
# Run through the exec API in the init container: the tar archive on stdin, then the marker.
_EXTRACT = (
    "import sys, tarfile\n"
    "safe = {'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}\n"
    "with tarfile.open(fileobj=sys.stdin.buffer, mode='r|') as archive:\n"
    f"    archive.extractall('{MODEL_MOUNT}', **safe)\n"
    f"open('{MODEL_MOUNT}/{READY_MARKER}', 'x').close()\n"
    "print('ok', flush=True)\n"
)
_FAIL = f"open('{MODEL_MOUNT}/{FAILED_MARKER}', 'a').close()\n"
_IMAGE_FAILURES = {
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
}

__all__ = [
    "DEMO_PORT",
    "KubernetesRunner",
    "kubernetes_labels",
    "model_size",
    "network_policy_manifest",
    "pod_manifest",
]


# -- the manifests: pure functions -------------------------------------------------------------


def kubernetes_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The labels that are valid Kubernetes labels (the others are kept in the ``bibia.labels`` annotation)."""
    return {k: v for k, v in labels.items() if _valid_label(k, v)}


def _valid_label(key: str, value: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and not _LABEL_PREFIX.fullmatch(prefix):
        return False
    return bool(_LABEL_NAME.fullmatch(name)) and bool(_LABEL_VALUE.fullmatch(value))


def model_size(model_dir: Path) -> int:
    """Bytes of the regular files under ``model_dir`` (what :func:`_model_archive` sends)."""
    total = 0
    for root, _dirs, files in os.walk(model_dir):
        for name in files:
            info = os.lstat(os.path.join(root, name))
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total


def pod_name(demo_id: str, prefix: str = NAME_PREFIX) -> str:
    return prefix + demo_id


def pod_manifest(
    spec: DemoSpec,
    *,
    namespace: str,
    labels: Mapping[str, str],
    model_bytes: int,
    image: str | None = None,
    name_prefix: str = NAME_PREFIX,
    socket_dir: str | None = None,
) -> dict[str, Any]:
    """The pod for ``spec``: the whole sandbox policy (see the module's docstring).

    ``labels`` are all of its labels (the runner's, the spec's, the
    instance's); ``model_bytes`` sizes the model's ``emptyDir``.
    """
    model_limit = _round_mib(model_bytes + MODEL_MARGIN_BYTES)
    ephemeral = _round_mib(model_bytes + MODEL_MARGIN_BYTES + LOG_MARGIN_BYTES)
    cpu = f"{max(1, math.ceil(float(spec.cpus) * 1000))}m"
    resources = {
        "requests": {"cpu": cpu, "memory": str(spec.memory_bytes), "ephemeral-storage": ephemeral},
        "limits": {"cpu": cpu, "memory": str(spec.memory_bytes), "ephemeral-storage": ephemeral},
    }
    container_security = {
        "runAsNonRoot": True,
        "runAsUser": SANDBOX_UID,
        "runAsGroup": SANDBOX_GID,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    env = spec.server_env(MODEL_MOUNT, f"/tmp/{SOCKET_NAME}")
    env["BIBIA_PORT"] = str(DEMO_PORT)
    annotations = {ANNOTATION_LABELS: json.dumps(dict(labels), sort_keys=True)}
    if socket_dir is not None:
        annotations[ANNOTATION_SOCKET_DIR] = socket_dir
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(spec.demo_id, name_prefix),
            "namespace": namespace,
            "labels": kubernetes_labels(labels),
            "annotations": annotations,
        },
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": spec.ttl_seconds + DEADLINE_GRACE_SECONDS,
            "terminationGracePeriodSeconds": 5,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "hostNetwork": False,
            "hostPID": False,
            "hostIPC": False,
            "shareProcessNamespace": False,
            "hostname": "demo",
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": SANDBOX_UID,
                "runAsGroup": SANDBOX_GID,
                "fsGroup": SANDBOX_GID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "initContainers": [
                {
                    "name": RECEIVER,
                    "image": image or spec.image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": [PYTHON, "-c", _RECEIVE],
                    "securityContext": container_security,
                    "resources": resources,
                    "volumeMounts": [
                        {"name": "model", "mountPath": MODEL_MOUNT},
                        {"name": "tmp", "mountPath": "/tmp"},
                    ],
                }
            ],
            "containers": [
                {
                    "name": CONTAINER,
                    "image": image or spec.image,
                    "imagePullPolicy": "IfNotPresent",
                    "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
                    "ports": [{"name": "http", "containerPort": DEMO_PORT, "protocol": "TCP"}],
                    "securityContext": container_security,
                    "resources": resources,
                    "volumeMounts": [
                        {"name": "model", "mountPath": MODEL_MOUNT, "readOnly": True},
                        {"name": "tmp", "mountPath": "/tmp"},
                    ],
                }
            ],
            "volumes": [
                {"name": "model", "emptyDir": {"sizeLimit": model_limit}},
                {
                    "name": "tmp",
                    "emptyDir": {"medium": "Memory", "sizeLimit": str(spec.tmpfs_bytes)},
                },
            ],
        },
    }


def network_policy_manifest(
    spec: DemoSpec,
    *,
    namespace: str,
    service_labels: Mapping[str, str],
    service_namespace: str | None = None,
    name_prefix: str = NAME_PREFIX,
) -> dict[str, Any]:
    """The pod's NetworkPolicy: no egress at all; ingress on :data:`DEMO_PORT` from the service's pods only.

    ``service_namespace``: the service's namespace when it is not the pod's
    (matched by its ``kubernetes.io/metadata.name`` label).
    """
    if not service_labels:
        raise ValueError(
            "service_labels must name the service's pods: an empty selector admits every pod"
        )
    source: dict[str, Any] = {"podSelector": {"matchLabels": dict(service_labels)}}
    if service_namespace and service_namespace != namespace:
        source["namespaceSelector"] = {
            "matchLabels": {"kubernetes.io/metadata.name": service_namespace}
        }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": pod_name(spec.demo_id, name_prefix),
            "namespace": namespace,
            "labels": {LABEL_MANAGED: "true", LABEL_DEMO_ID: spec.demo_id},
        },
        "spec": {
            "podSelector": {"matchLabels": {LABEL_MANAGED: "true", LABEL_DEMO_ID: spec.demo_id}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [source], "ports": [{"protocol": "TCP", "port": DEMO_PORT}]}],
            "egress": [],
        },
    }


def _round_mib(n: int) -> str:
    return f"{max(1, math.ceil(n / (1024 * 1024)))}Mi"


# -- the relay: the service's Unix socket to the pod's port ------------------------------------


class _Handler(socketserver.BaseRequestHandler):
    server: _RelayServer

    def handle(self) -> None:
        target = self.server.resolve()
        if target is None:
            return  # not scheduled, or no address yet: the client sees the connection close
        try:
            upstream = socket.create_connection(target, timeout=5)
        except OSError:
            return
        with upstream:
            upstream.settimeout(None)
            _pump(self.request, upstream)


def _pump(a: socket.socket, b: socket.socket) -> None:
    with selectors.DefaultSelector() as sel:
        sel.register(a, selectors.EVENT_READ, b)
        sel.register(b, selectors.EVENT_READ, a)
        open_ends = 2
        while open_ends:
            events = sel.select(timeout=300)
            if not events:
                return  # idle for five minutes
            for key, _ in events:
                src: socket.socket = key.fileobj  # type: ignore[assignment]
                dst: socket.socket = key.data
                try:
                    data = src.recv(65536)
                except OSError:
                    return
                if not data:
                    sel.unregister(src)
                    open_ends -= 1
                    with contextlib.suppress(OSError):
                        dst.shutdown(socket.SHUT_WR)
                    continue
                try:
                    dst.sendall(data)
                except OSError:
                    return


class _RelayServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, resolve: Any) -> None:
        self.resolve = resolve
        super().__init__(path, _Handler)


_relays: dict[str, tuple[_RelayServer, threading.Thread]] = {}
_relays_lock = threading.Lock()


def _open_relay(socket_dir: Path, resolve: Any) -> None:
    """Serve ``socket_dir/demo.sock`` (once per process), forwarding to ``resolve()``."""
    key = str(socket_dir)
    with _relays_lock:
        if key in _relays:
            return
        if socket_dir.is_symlink():
            raise RunnerError(f"Le dossier du socket {socket_dir} est un lien symbolique : refusé.")
        socket_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(socket_dir, 0o700)
        path = socket_dir / SOCKET_NAME
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        server = _RelayServer(str(path), resolve)
        os.chmod(path, 0o600)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True
        )
        thread.name = f"bibia-relais-{socket_dir.name}"
        thread.start()
        _relays[key] = (server, thread)


def _close_relay(socket_dir: Path) -> None:
    with _relays_lock:
        entry = _relays.pop(str(socket_dir), None)
    if entry is not None:
        entry[0].shutdown()
        entry[0].server_close()
    with contextlib.suppress(OSError):
        (socket_dir / SOCKET_NAME).unlink()
    with contextlib.suppress(OSError):
        socket_dir.rmdir()


# -- the runner --------------------------------------------------------------------------------


class KubernetesRunner:
    """Runs demonstrators as pods under the restricted Pod Security Standard (see the module's docstring).

    Args:
        namespace: where the pods and NetworkPolicies go.
        kubeconfig: a kubeconfig file; None: the default one (``KUBECONFIG``,
            ``~/.kube/config``), unless ``in_cluster``.
        in_cluster: use the pod's service account (the service runs in the cluster).
        image: the demonstrator image as the cluster pulls it (None: the spec's).
        service_labels: the labels of the service's pods, the only ones the
            NetworkPolicy admits.
        service_namespace: the service's namespace, when not ``namespace``.
        labels: labels added to every pod (e.g. ``bibia.test=1``).
        api_client: a ready ``kubernetes.client.ApiClient`` (instead of the three above).
    """

    def __init__(
        self,
        *,
        namespace: str = "default",
        kubeconfig: str | Path | None = None,
        in_cluster: bool = False,
        image: str | None = None,
        service_labels: Mapping[str, str] | None = None,
        service_namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
        name_prefix: str = NAME_PREFIX,
        api_client: Any = None,
    ) -> None:
        self.namespace = namespace
        self.kubeconfig = str(kubeconfig) if kubeconfig else None
        self.in_cluster = in_cluster
        self.image = image
        self.service_labels = dict(service_labels or DEFAULT_SERVICE_LABELS)
        self.service_namespace = service_namespace
        self.extra_labels = dict(labels or {})
        self.name_prefix = name_prefix
        self._api_client = api_client
        self._configuration: Any = None
        self._addresses: dict[str, tuple[str, tuple[str, int]]] = {}  # pod name -> (uid, address)

    @property
    def socket_owner(self) -> int:
        """The service's own uid: the socket is the runner's relay, not the sandbox's."""
        return os.getuid()

    @property
    def isolates(self) -> bool:
        return True

    def accepts(self, *, trusted: bool) -> bool:
        return True

    # -- the protocol

    def start(self, spec: DemoSpec) -> RunInfo:
        if not spec.model_dir.is_dir():
            raise RunnerError(f"Le dossier du modèle {spec.model_dir} n'existe pas.")
        if spec.env.get("BIBIA_WAIT_FOR_MODEL") == "1":
            raise RunnerError(
                "La réserve de bacs à sable préchauffés ne fonctionne pas avec Kubernetes : "
                "le modèle est transmis au pod à son lancement."
            )
        name = pod_name(spec.demo_id, self.name_prefix)
        if self._read_pod(name) is not None:
            raise DemoConflict(f"Le démonstrateur {spec.demo_id} existe déjà : arrêtez-le d'abord.")
        labels = {**self.extra_labels, **spec.all_labels(time.time() + spec.ttl_seconds)}
        pod = pod_manifest(
            spec,
            namespace=self.namespace,
            labels=labels,
            model_bytes=model_size(spec.model_dir),
            image=self.image,
            name_prefix=self.name_prefix,
            socket_dir=str(spec.socket_dir),
        )
        policy = network_policy_manifest(
            spec,
            namespace=self.namespace,
            service_labels=self.service_labels,
            service_namespace=self.service_namespace,
            name_prefix=self.name_prefix,
        )
        core, net = self._core(), self._net()
        with self._translate(f"protéger le démonstrateur {spec.demo_id} (NetworkPolicy)"):
            try:
                net.create_namespaced_network_policy(
                    self.namespace, policy, _request_timeout=_REQUEST_TIMEOUT
                )
            except ApiException as exc:
                if exc.status != 409:
                    raise
                net.replace_namespaced_network_policy(
                    name, self.namespace, policy, _request_timeout=_REQUEST_TIMEOUT
                )
        try:
            with self._translate(f"lancer le démonstrateur {spec.demo_id}"):
                created = core.create_namespaced_pod(
                    self.namespace, pod, _request_timeout=_REQUEST_TIMEOUT
                )
        except DemoConflict:
            raise  # the pod of that id (being removed, or just started) keeps its policy
        except RunnerError:
            with contextlib.suppress(ApiException, urllib3.exceptions.HTTPError, OSError):
                net.delete_namespaced_network_policy(
                    name, self.namespace, _request_timeout=_REQUEST_TIMEOUT
                )
            raise
        _open_relay(spec.socket_dir, lambda: self._address(name))
        uploader = threading.Thread(target=self._deliver, args=(name, spec.model_dir), daemon=True)
        uploader.name = f"bibia-envoi-{spec.demo_id}"
        uploader.start()
        return RunInfo(spec.demo_id, created.metadata.uid or name, _status(created), labels)

    def status(self, demo_id: str) -> RunStatus:
        pod = self._read_pod(pod_name(demo_id, self.name_prefix))
        if pod is None:
            return RunStatus(RunState.MISSING)
        status = _status(pod)
        if status.state is RunState.RUNNING:
            self._reopen_relay(pod)
        return status

    def logs(self, demo_id: str, *, tail: int = 200) -> str:
        name = pod_name(demo_id, self.name_prefix)
        if self._read_pod(name) is None:
            raise DemoMissing(f"Aucun démonstrateur {demo_id}.")
        with self._translate(f"lire le journal du démonstrateur {demo_id}"):
            try:
                text = self._core().read_namespaced_pod_log(
                    name,
                    self.namespace,
                    container=CONTAINER,
                    tail_lines=tail,
                    _request_timeout=_REQUEST_TIMEOUT,
                )
            except ApiException as exc:
                if exc.status == 404:
                    raise DemoMissing(f"Aucun démonstrateur {demo_id}.") from None
                if exc.status == 400:  # the server has not started yet (the model is on its way)
                    return ""
                raise
        return str(text or "")

    def stop(self, demo_id: str, *, timeout: float = 5.0) -> None:
        name = pod_name(demo_id, self.name_prefix)
        pod = self._read_pod(name)
        socket_dir = _annotation(pod, ANNOTATION_SOCKET_DIR) if pod is not None else None
        grace = max(0, int(timeout))
        with self._translate(f"arrêter le démonstrateur {demo_id}"):
            for delete in (
                lambda: self._core().delete_namespaced_pod(
                    name,
                    self.namespace,
                    grace_period_seconds=grace,
                    _request_timeout=_REQUEST_TIMEOUT,
                ),
                lambda: self._net().delete_namespaced_network_policy(
                    name, self.namespace, _request_timeout=_REQUEST_TIMEOUT
                ),
            ):
                try:
                    delete()  # type: ignore[no-untyped-call]
                except ApiException as exc:
                    if exc.status != 404:
                        raise
        if socket_dir:
            _close_relay(Path(socket_dir))
        self._addresses.pop(name, None)
        deadline = time.monotonic() + grace + 30
        while pod is not None and time.monotonic() < deadline:  # gone, so that the id is free again
            pod = self._read_pod(name, deleting_too=True)
            if pod is not None:
                time.sleep(0.5)

    def list(self) -> list[RunInfo]:
        with self._translate("lister les démonstrateurs"):
            pods = self._core().list_namespaced_pod(
                self.namespace,
                label_selector=f"{LABEL_MANAGED}=true",
                _request_timeout=_REQUEST_TIMEOUT,
            )
        infos = []
        for pod in pods.items:
            if pod.metadata.deletion_timestamp is not None:
                continue
            labels = _all_labels(pod)
            demo_id = labels.get(LABEL_DEMO_ID)
            if not demo_id:
                continue
            status = _status(pod)
            if status.state is RunState.RUNNING:
                self._reopen_relay(pod)
            infos.append(RunInfo(demo_id, pod.metadata.uid or pod.metadata.name, status, labels))
        return infos

    def usage(self, demo_id: str) -> Usage | None:
        """CPU time and memory of the server container from the kubelet's summary (``nodes/proxy``).

        None when the pod is not running, or the figures cannot be read
        (no right on ``nodes/proxy``, no such pod in the summary yet).
        """
        pod = self._read_pod(pod_name(demo_id, self.name_prefix))
        if pod is None or _status(pod).state is not RunState.RUNNING or not pod.spec.node_name:
            return None
        with self._translate(f"mesurer le démonstrateur {demo_id}"):
            try:
                raw = self._core().connect_get_node_proxy_with_path(
                    pod.spec.node_name, "stats/summary", _request_timeout=_REQUEST_TIMEOUT
                )
            except ApiException as exc:
                logger.warning("résumé du kubelet illisible (%s) : %s", exc.status, exc.reason)
                return None
        return usage_from_summary(raw, pod.metadata.name, self.namespace)

    # -- helpers

    def _deliver(self, name: str, model_dir: Path) -> None:
        """Wait for the receiving init container, stream the model into it; on failure, end the pod."""
        try:
            self._wait_receiver(name)
            ws = kubernetes.stream.stream(
                self._exec_api().connect_get_namespaced_pod_exec,
                name,
                self.namespace,
                container=RECEIVER,
                command=[PYTHON, "-c", _EXTRACT],
                stdin=True,
                stdout=True,
                stderr=True,
                tty=False,
                _preload_content=False,
                binary=True,
            )
            try:
                with tarfile.open(fileobj=_WebSocketWriter(ws), mode="w|") as archive:
                    _model_archive(archive, model_dir)
                deadline = time.monotonic() + 120
                out = b""
                while ws.is_open() and time.monotonic() < deadline:
                    ws.update(timeout=1)
                    out += _as_bytes(ws.read_stdout())
                    if b"ok" in out:
                        break
                if b"ok" not in out:
                    raise RunnerError(
                        "le bac à sable n'a pas confirmé la réception du modèle : "
                        + _as_bytes(ws.read_stderr()).decode("utf-8", "replace")[-500:]
                    )
            finally:
                ws.close()
        except Exception as exc:  # noqa: BLE001 - the thread's end: the pod carries the failure
            logger.error("Transmission du modèle au pod %s impossible : %s", name, exc)
            with contextlib.suppress(Exception):
                kubernetes.stream.stream(
                    self._exec_api().connect_get_namespaced_pod_exec,
                    name,
                    self.namespace,
                    container=RECEIVER,
                    command=[PYTHON, "-c", _FAIL],
                    stdin=False,
                    stdout=True,
                    stderr=True,
                    tty=False,
                )

    def _wait_receiver(self, name: str) -> None:
        deadline = time.monotonic() + _RECEIVER_WAIT_SECONDS
        while time.monotonic() < deadline:
            pod = self._read_pod(name)
            if pod is None:
                raise RunnerError(f"le pod {name} a disparu")
            for status in (pod.status and pod.status.init_container_statuses) or []:
                if status.name == RECEIVER and status.state and status.state.running:
                    return
                if status.name == RECEIVER and status.state and status.state.terminated:
                    raise RunnerError(f"le conteneur de réception du pod {name} s'est arrêté")
            if _status(pod).state is not RunState.RUNNING:
                raise RunnerError(f"le pod {name} s'est arrêté avant de recevoir le modèle")
            time.sleep(0.5)
        raise RunnerError(f"le pod {name} n'a pas démarré dans les {_RECEIVER_WAIT_SECONDS:.0f} s")

    def _address(self, name: str) -> tuple[str, int] | None:
        """The pod's IP and port, read from the API (cached for the pod's uid)."""
        cached = self._addresses.get(name)
        try:
            pod = self._read_pod(name)
        except RunnerError:
            return cached[1] if cached else None
        if pod is None or _status(pod).state is not RunState.RUNNING or not pod.status.pod_ip:
            return None
        if cached and cached[0] == pod.metadata.uid:
            return cached[1]
        address = (pod.status.pod_ip, DEMO_PORT)
        self._addresses[name] = (pod.metadata.uid, address)
        return address

    def _reopen_relay(self, pod: Any) -> None:
        socket_dir = _annotation(pod, ANNOTATION_SOCKET_DIR)
        if not socket_dir:
            return
        name = pod.metadata.name
        with contextlib.suppress(RunnerError, OSError):
            _open_relay(Path(socket_dir), lambda: self._address(name))

    def _read_pod(self, name: str, *, deleting_too: bool = False) -> Any:
        with self._translate(f"chercher le pod {name}"):
            try:
                pod = self._core().read_namespaced_pod(
                    name, self.namespace, _request_timeout=_REQUEST_TIMEOUT
                )
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise
        if (pod.metadata.labels or {}).get(LABEL_MANAGED) != "true":
            return None  # not one of ours
        if pod.metadata.deletion_timestamp is not None and not deleting_too:
            return None  # being removed: gone as far as the service is concerned
        return pod

    def _exec_api(self) -> Any:
        """A CoreV1Api on a client of its own: ``stream`` swaps its client's ``call_api`` while it runs."""
        return kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(self._config()))

    def _config(self) -> Any:
        if self._configuration is None and self._api_client is not None:
            self._configuration = self._api_client.configuration
        if self._configuration is None:
            configuration = kubernetes.client.Configuration()
            with self._translate("lire la configuration du cluster"):
                if self.in_cluster:
                    kubernetes.config.load_incluster_config(  # type: ignore[no-untyped-call]
                        client_configuration=configuration
                    )
                else:
                    kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                        config_file=self.kubeconfig, client_configuration=configuration
                    )
            configuration.retries = 1
            self._configuration = configuration
        return self._configuration

    def _client(self) -> Any:
        if self._api_client is None:
            self._api_client = kubernetes.client.ApiClient(self._config())
        return self._api_client

    def _core(self) -> Any:
        return kubernetes.client.CoreV1Api(self._client())

    def _net(self) -> Any:
        return kubernetes.client.NetworkingV1Api(self._client())

    @contextlib.contextmanager
    def _translate(self, action: str) -> Iterator[None]:
        try:
            yield
        except ApiException as exc:
            if exc.status == 409:
                raise DemoConflict(f"Impossible de {action} : {exc.reason}") from exc
            if exc.status in (0, 502, 503, 504):
                raise RunnerUnavailable(
                    f"Impossible de {action} : le cluster Kubernetes ne répond pas ({exc.reason})."
                ) from exc
            raise RunnerError(
                f"Impossible de {action} : {exc.reason} ({exc.status}) {_api_message(exc)}".rstrip()
                + "."
            ) from exc
        except ConfigException as exc:
            raise RunnerUnavailable(
                f"Impossible de {action} : configuration du cluster Kubernetes introuvable ({exc})."
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise RunnerUnavailable(
                f"Impossible de {action} : le cluster Kubernetes ne répond pas ({exc})."
            ) from exc


class _WebSocketWriter(io.RawIOBase):
    """A write-only file object that sends what it gets to the exec's stdin, in pieces."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = bytes(data)
        for at in range(0, len(view), 64 * 1024):
            self._ws.write_stdin(view[at : at + 64 * 1024])
        self._ws.update(timeout=0)  # drain what the other side said
        return len(view)


def _model_archive(archive: tarfile.TarFile, model_dir: Path) -> None:
    """Regular files and directories of ``model_dir`` (no links, no special files), owned by the sandbox."""
    for root, dirs, files in os.walk(model_dir):
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            path = Path(root) / name
            info = os.lstat(path)
            if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                continue
            member = tarfile.TarInfo(str(path.relative_to(model_dir)))
            member.uid, member.gid, member.mtime = SANDBOX_UID, SANDBOX_GID, int(info.st_mtime)
            if stat.S_ISDIR(info.st_mode):
                member.type, member.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(member)
            else:  # a hard link of the cache is sent as the file it is
                member.size, member.mode = info.st_size, 0o644
                with open(path, "rb") as handle:
                    archive.addfile(member, handle)


def _api_message(exc: ApiException) -> str:
    """The API server's own explanation (a refusal by Pod Security admission names the field)."""
    try:
        message = json.loads(exc.body or "{}").get("message")
    except (ValueError, TypeError, AttributeError):
        return ""
    return f"— {str(message)[:500]}" if message else ""


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, bytes):
        return data
    return str(data or "").encode("utf-8")


def _annotation(pod: Any, key: str) -> str | None:
    value = (pod.metadata.annotations or {}).get(key)
    return str(value) if value else None


def _all_labels(pod: Any) -> dict[str, str]:
    labels = dict(pod.metadata.labels or {})
    raw = _annotation(pod, ANNOTATION_LABELS)
    if raw:
        with contextlib.suppress(ValueError, TypeError):
            labels = {**{str(k): str(v) for k, v in json.loads(raw).items()}, **labels}
    return labels


def _status(pod: Any) -> RunStatus:
    """The pod's state as a :class:`RunStatus` (read from its containers first, then its phase)."""
    status = pod.status
    phase = getattr(status, "phase", None) or "Pending"
    for init in (status and status.init_container_statuses) or []:
        terminated = init.state and init.state.terminated
        if terminated and terminated.exit_code:
            return RunStatus(
                RunState.EXITED,
                terminated.exit_code,
                terminated.reason == "OOMKilled",
                "le modèle n'a pas pu être transmis au bac à sable",
            )
        waiting = init.state and init.state.waiting
        if waiting and waiting.reason in _IMAGE_FAILURES:
            return RunStatus(RunState.EXITED, None, False, f"{waiting.reason}: {waiting.message}")
    for container in (status and status.container_statuses) or []:
        if container.name != CONTAINER:
            continue
        terminated = container.state and container.state.terminated
        if terminated:
            return RunStatus(
                RunState.EXITED,
                terminated.exit_code,
                terminated.reason == "OOMKilled",
                terminated.message or None,
            )
        waiting = container.state and container.state.waiting
        if waiting and waiting.reason in _IMAGE_FAILURES:
            return RunStatus(RunState.EXITED, None, False, f"{waiting.reason}: {waiting.message}")
    if phase in ("Succeeded", "Failed"):
        detail = getattr(status, "reason", None)
        if detail == "DeadlineExceeded":
            detail = "durée de vie écoulée (activeDeadlineSeconds)"
        return RunStatus(RunState.EXITED, None, False, detail or None)
    return RunStatus(RunState.RUNNING)


def usage_from_summary(raw: Any, pod: str, namespace: str) -> Usage | None:
    """The server container's figures in the kubelet's ``/stats/summary`` answer, or None."""
    try:
        summary = json.loads(raw) if isinstance(raw, str | bytes) else raw
    except ValueError:
        return None
    for entry in (summary or {}).get("pods") or []:
        ref = entry.get("podRef") or {}
        if ref.get("name") != pod or ref.get("namespace") != namespace:
            continue
        for container in entry.get("containers") or []:
            if container.get("name") != CONTAINER:
                continue
            cpu = (container.get("cpu") or {}).get("usageCoreNanoSeconds")
            memory = container.get("memory") or {}
            current = memory.get("workingSetBytes") or memory.get("usageBytes")
            if not isinstance(cpu, int) or cpu < 0:
                return None
            return Usage(
                cpu / 1e9, int(current) if isinstance(current, int) else None, SOURCE_KUBELET
            )
    return None
