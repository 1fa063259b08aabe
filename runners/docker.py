"""DockerRunner: each demonstrator in a locked-down container.

The only module that imports ``docker``; it turns every docker error into a
:class:`~domain.errors.RunnerError` subclass. The sandbox policy lives in
one function, :func:`_run_args`: non-root user, read-only root filesystem
with a small ``/tmp`` tmpfs, every capability dropped, no-new-privileges,
memory (swap included), CPU and PID limits, and no network at all: the
server listens on a Unix socket in ``spec.socket_dir``, mounted at
``/run/bibia``. That directory is a tmpfs of a few pages that the runner
mounts before the container starts and unmounts when it stops
(:mod:`runners.hostfs`): the sandbox's one writable host directory holds its
socket and nothing that could fill the host's disk. The service connects to
the socket only through :mod:`runners.sockets`. Containers carry ``bibia.managed=true``, ``bibia.demo_id``
and the spec's labels, so a restarted service finds them with :meth:`list`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.client
import docker.errors
import requests.exceptions
from docker.types import LogConfig, Ulimit

from domain.errors import DemoConflict, DemoMissing, RunnerError, RunnerUnavailable
from runners import hostfs
from runners.base import (
    LABEL_DEMO_ID,
    LABEL_MANAGED,
    MODEL_MOUNT,
    SANDBOX_GID,
    SANDBOX_UID,
    SOCKET_MOUNT,
    SOCKET_NAME,
    DemoSpec,
    RunInfo,
    RunState,
    RunStatus,
)

NAME_PREFIX = "bibia-demo-"


def _run_args(spec: DemoSpec, *, name: str, labels: dict[str, str]) -> dict[str, Any]:
    """The ``containers.run`` arguments for ``spec``: the whole sandbox policy."""
    return {
        "image": spec.image,
        "name": name,
        "detach": True,
        "user": f"{SANDBOX_UID}:{SANDBOX_GID}",
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,noexec,size={spec.tmpfs_bytes},mode=1777"},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "mem_limit": spec.memory_bytes,
        "memswap_limit": spec.memory_bytes,
        "nano_cpus": int(spec.cpus * 1_000_000_000),
        "pids_limit": spec.pids_limit,
        "ulimits": [Ulimit(name="nofile", soft=1024, hard=1024)],
        "network_mode": "none",
        "ipc_mode": "private",
        "volumes": {
            str(spec.model_dir): {"bind": MODEL_MOUNT, "mode": "ro"},
            str(spec.socket_dir): {"bind": SOCKET_MOUNT, "mode": "rw"},
        },
        "environment": spec.server_env(MODEL_MOUNT, f"{SOCKET_MOUNT}/{SOCKET_NAME}"),
        "labels": labels,
        "log_config": LogConfig(type="json-file", config={"max-size": "5m", "max-file": "1"}),
        "hostname": "demo",
    }


class DockerRunner:
    """Runs demonstrators as sandboxed Docker containers.

    Args:
        client: a ``docker.DockerClient``; by default one is made from the
            environment (``DOCKER_HOST``...) on first use.
        name_prefix: container names are ``<prefix><demo_id>``.
        labels: labels added to every container (e.g. ``bibia.test=1``, or
            the service instance), under the spec's and the runner's own.
    """

    def __init__(
        self,
        client: Any = None,
        *,
        name_prefix: str = NAME_PREFIX,
        labels: dict[str, str] | None = None,
        sandbox_host_uid: int = SANDBOX_UID,
    ) -> None:
        self._client = client
        self.name_prefix = name_prefix
        self.extra_labels = dict(labels or {})
        self._sandbox_host_uid = sandbox_host_uid

    @property
    def socket_owner(self) -> int:
        """The host uid of the sandbox user (uid 10001 inside; the same outside without user namespaces)."""
        return self._sandbox_host_uid

    @property
    def isolates(self) -> bool:
        """Always: the policy of :func:`_run_args`."""
        return True

    def accepts(self, *, trusted: bool) -> bool:
        """Every model: the sandbox is what makes an untrusted one safe to run."""
        return True

    def start(self, spec: DemoSpec) -> RunInfo:
        """Start ``spec`` in a new container (see :class:`runners.base.Runner`).

        Raises:
            DemoConflict: a container for this demo_id exists.
            RunnerError: the model directory is missing, the image is
                unknown, or docker refused the container.
            RunnerUnavailable: the Docker engine does not answer.
        """
        if not spec.model_dir.is_dir():
            raise RunnerError(f"Le dossier du modèle {spec.model_dir} n'existe pas.")
        if self._find(spec.demo_id) is not None:
            raise DemoConflict(f"Le démonstrateur {spec.demo_id} existe déjà : arrêtez-le d'abord.")
        _prepare_socket_dir(spec, self._sandbox_host_uid)
        labels = {**self.extra_labels, **spec.all_labels(time.time() + spec.ttl_seconds)}
        name = self.name_prefix + spec.demo_id
        try:
            with self._translate(f"lancer le démonstrateur {spec.demo_id}"):
                container = self._docker().containers.run(
                    **_run_args(spec, name=name, labels=labels)
                )
        except RunnerError:
            self._remove_by_name(name)  # a container created but not started
            hostfs.unmount(spec.socket_dir)
            raise
        return RunInfo(spec.demo_id, container.id, _status(container), dict(container.labels))

    def status(self, demo_id: str) -> RunStatus:
        container = self._find(demo_id)
        return RunStatus(RunState.MISSING) if container is None else _status(container)

    def logs(self, demo_id: str, *, tail: int = 200) -> str:
        container = self._find(demo_id)
        if container is None:
            raise DemoMissing(f"Aucun démonstrateur {demo_id}.")
        with self._translate(f"lire le journal du démonstrateur {demo_id}"):
            try:
                raw = container.logs(stdout=True, stderr=True, tail=tail)
            except docker.errors.NotFound:
                raise DemoMissing(f"Aucun démonstrateur {demo_id}.") from None
        text: str = raw.decode("utf-8", errors="replace")
        return text

    def stop(self, demo_id: str, *, timeout: float = 5.0) -> None:
        container = self._find(demo_id)
        if container is None:
            return
        socket_dirs = [
            Path(m["Source"])
            for m in container.attrs.get("Mounts") or []
            if m.get("Destination") == SOCKET_MOUNT and m.get("Source")
        ]
        with self._translate(f"arrêter le démonstrateur {demo_id}"):
            try:
                if container.status in ("running", "restarting", "paused"):
                    container.stop(timeout=max(0, int(timeout)))
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # 409: removal already in progress
                    raise
        for path in socket_dirs:  # what the sandbox wrote there goes with its tmpfs
            hostfs.unmount(path)

    def list(self) -> list[RunInfo]:
        with self._translate("lister les démonstrateurs"):
            # ignore_removed: a container removed between the listing and its inspection is simply gone
            containers = self._docker().containers.list(
                all=True, ignore_removed=True, filters={"label": f"{LABEL_MANAGED}=true"}
            )
        return [
            RunInfo(c.labels.get(LABEL_DEMO_ID, ""), c.id, _status(c), dict(c.labels))
            for c in containers
            if c.labels.get(LABEL_DEMO_ID)
        ]

    def _docker(self) -> Any:
        if self._client is None:
            with self._translate("joindre le moteur Docker"):
                self._client = docker.client.from_env()
        return self._client

    def _find(self, demo_id: str) -> Any:
        with self._translate(f"chercher le démonstrateur {demo_id}"):
            found = self._docker().containers.list(
                all=True,
                ignore_removed=True,
                filters={"label": [f"{LABEL_MANAGED}=true", f"{LABEL_DEMO_ID}={demo_id}"]},
            )
        return found[0] if found else None

    def _remove_by_name(self, name: str) -> None:
        with contextlib.suppress(RunnerError), self._translate("nettoyer un conteneur non démarré"):
            try:
                self._docker().containers.get(name).remove(force=True)
            except docker.errors.NotFound:
                pass

    @contextlib.contextmanager
    def _translate(self, action: str) -> Iterator[None]:
        try:
            yield
        except docker.errors.ImageNotFound as exc:
            raise RunnerError(
                f"Impossible de {action} : image introuvable ({exc.explanation or exc}). "
                "Construisez-la avec docker/build-demo-image.sh."
            ) from exc
        except docker.errors.APIError as exc:
            if exc.status_code == 409:
                raise DemoConflict(f"Impossible de {action} : {exc.explanation or exc}") from exc
            raise RunnerError(f"Impossible de {action} : {exc.explanation or exc}") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise RunnerUnavailable(
                f"Impossible de {action} : le moteur Docker ne répond pas ({exc})."
            ) from exc


def _status(container: Any) -> RunStatus:
    state = container.attrs.get("State") or {}
    status = state.get("Status", container.status)
    if status in ("running", "restarting", "paused"):
        return RunStatus(RunState.RUNNING)
    if status == "removing":
        return RunStatus(RunState.MISSING)
    if status == "created":
        return RunStatus(RunState.EXITED, None, False, "conteneur créé mais jamais démarré")
    return RunStatus(
        RunState.EXITED,
        state.get("ExitCode"),
        bool(state.get("OOMKilled")),
        state.get("Error") or None,
    )


def _prepare_socket_dir(spec: DemoSpec, uid: int) -> None:
    """Mount a fresh tmpfs of a few pages on the socket directory, writable by the sandbox user only.

    Owned by the sandbox uid and the service's group, mode 0770. Whatever an
    earlier sandbox of this id left mounted there is detached first.
    """
    try:
        if spec.socket_dir.is_symlink():
            raise RunnerError(
                f"Le dossier du socket {spec.socket_dir} est un lien symbolique : refusé."
            )
        spec.socket_dir.mkdir(parents=True, exist_ok=True)
        for point in hostfs.mounts_under(spec.socket_dir):
            hostfs.unmount(point)
        os.chmod(spec.socket_dir, 0o750)  # the directory under the mount: the sandbox never sees it
    except OSError as exc:
        raise RunnerError(
            f"Impossible de préparer le dossier du socket {spec.socket_dir} : {exc}"
        ) from exc
    hostfs.mount_tmpfs(spec.socket_dir, uid=uid, gid=os.getgid())
