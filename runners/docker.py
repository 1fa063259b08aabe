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
from typing import Any, TypeGuard

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
    Usage,
)

NAME_PREFIX = "bibia-demo-"
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_ROOT = Path("/proc")
SOURCE_STATS = "docker-stats"  # CPU and peak memory from the engine (cgroup v1: max_usage)
SOURCE_CGROUP_PEAK = "docker-stats+cgroup"  # cgroup v2: peak read from the container's memory.peak
SOURCE_LOWER_BOUND = (
    "docker-stats+memoire-courante"  # cgroup v2, no memory.peak: current usage, a lower bound
)


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

    def usage(self, demo_id: str) -> Usage | None:
        """The container's CPU time and peak memory, from the engine's statistics (one sample).

        CPU: ``cpu_stats.cpu_usage.total_usage`` (ns, the container's
        cgroup). Peak memory: ``memory_stats.max_usage`` on cgroup v1; cgroup
        v2 has none, so the container's own ``memory.peak`` is read when the
        engine is on this host (found from its main process's
        ``/proc/<pid>/cgroup``), else the current usage stands in as a lower
        bound (``source`` says which). None once the container has stopped
        (its counters went with its cgroup) or is gone.

        Raises:
            RunnerUnavailable: the Docker engine does not answer.
        """
        container = self._find(demo_id)
        if container is None or _status(container).state is not RunState.RUNNING:
            return None
        with self._translate(f"mesurer le démonstrateur {demo_id}"):
            try:
                try:
                    stats = container.stats(stream=False, one_shot=True)
                except docker.errors.InvalidVersion:  # an engine older than API 1.41: two samples
                    stats = container.stats(stream=False)
            except docker.errors.NotFound:
                return None
        pid = (container.attrs.get("State") or {}).get("Pid")
        local = isinstance(pid, int) and pid > 0 and self._engine_is_local()
        return _usage_from_stats(
            stats, container.id, pid if local else None, PROC_ROOT, CGROUP_ROOT
        )

    def _engine_is_local(self) -> bool:
        """Whether the engine answers on a Unix socket (its processes are this host's)."""
        base_url = str(getattr(getattr(self._docker(), "api", None), "base_url", ""))
        return base_url == "http+docker://localhost"  # not ssh (http+docker://ssh) nor tcp

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


def _usage_from_stats(
    stats: Any, container_id: str, pid: int | None, proc_root: Path, cgroup_root: Path
) -> Usage | None:
    """A :class:`Usage` from one ``/containers/{id}/stats`` answer, or None when it holds no figures.

    ``pid`` (the container's main process on this host, None when the
    engine is remote) lets cgroup v2's ``memory.peak`` be read.
    """
    if not isinstance(stats, dict):
        return None
    cpu = _dig(stats, "cpu_stats", "cpu_usage", "total_usage")
    memory = stats.get("memory_stats")
    memory = memory if isinstance(memory, dict) else {}
    if not _count(cpu) or not memory:  # a stopped container: zeros and no memory figures
        return None
    cpu_seconds = int(cpu) / 1e9
    max_usage = memory.get("max_usage")
    if _count(max_usage) and max_usage > 0:  # cgroup v1
        return Usage(cpu_seconds, int(max_usage), SOURCE_STATS)
    peak = _cgroup_peak(pid, container_id, proc_root, cgroup_root) if pid is not None else None
    if peak is not None:
        return Usage(cpu_seconds, peak, SOURCE_CGROUP_PEAK)
    current = memory.get("usage")
    return Usage(
        cpu_seconds, int(current) if _count(current) and current > 0 else None, SOURCE_LOWER_BOUND
    )


def _cgroup_peak(pid: int, container_id: str, proc_root: Path, cgroup_root: Path) -> int | None:
    """The container's cgroup v2 ``memory.peak`` (bytes), or None when it cannot be read.

    The cgroup is the unified (``0::``) line of ``/proc/<pid>/cgroup``, and
    only if it names the container: a recycled pid, or a process of another
    namespace, reads nothing.
    """
    try:
        lines = (proc_root / str(pid) / "cgroup").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        if not line.startswith("0::/"):
            continue
        relative = line[len("0::/") :].strip()
        if container_id not in relative or ".." in relative.split("/"):
            return None
        try:
            text = (cgroup_root / relative / "memory.peak").read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return int(text) if text.isdigit() and int(text) > 0 else None
    return None


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _count(value: object) -> TypeGuard[int]:
    """A non-negative integer (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
