"""Where demonstrators run: the :class:`Runner` protocol and its value types.

A runner starts the demonstrator server (``python -m demos.server``) next to
one model directory, and answers for it by ``demo_id`` alone, so that a
service that restarted (or another replica) can reconcile its database with
what actually runs: every runner labels what it starts (``bibia.managed``,
``bibia.demo_id``, the spec's labels) and :meth:`Runner.list` returns it.

The environment contract with the server (see ``demos/server/settings.py``):
``BIBIA_MODEL_DIR`` (the model, read-only), ``BIBIA_SOCKET`` (the Unix
socket the server listens on, ``<socket_dir>/demo.sock``), ``BIBIA_TTL_SECONDS``
and the optional limits ``BIBIA_MAX_UPLOAD_BYTES``, ``BIBIA_MAX_ROWS``.

:meth:`Runner.usage` is what a sandbox consumed (CPU time, peak memory), by
the runner's own accounting: the evaluation's cost is computed from it.

Implementations: :class:`runners.docker.DockerRunner` (the sandbox),
:class:`runners.process.ProcessRunner` (development and trusted reference
models only: no isolation at all), :class:`runners.kubernetes.KubernetesRunner`
(pods on a cluster; the spec's socket is its relay to the pod's port) and
:class:`runners.fake.FakeRunner` (in memory, for tests; it serves a tiny HTTP
app on the spec's socket).
"""

from __future__ import annotations

import enum
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Protocol, runtime_checkable

SOCKET_NAME = "demo.sock"
MAX_SOCKET_PATH = 107  # sun_path is 108 bytes with its final NUL
SANDBOX_UID = 10001
SANDBOX_GID = 10001
MODEL_MOUNT = "/model"
SOCKET_MOUNT = "/run/bibia"

LABEL_MANAGED = "bibia.managed"
LABEL_DEMO_ID = "bibia.demo_id"
LABEL_EXPIRES_AT = "bibia.expires_at"
RESERVED_ENV = frozenset({"BIBIA_MODEL_DIR", "BIBIA_SOCKET", "BIBIA_TTL_SECONDS"})
# Matched whole (fullmatch): "$" would also accept a final newline.
DEMO_ID_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
LABEL_KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}")

__all__ = [
    "LABEL_DEMO_ID",
    "LABEL_EXPIRES_AT",
    "LABEL_MANAGED",
    "SANDBOX_UID",
    "SOCKET_NAME",
    "DemoSpec",
    "RunInfo",
    "RunState",
    "RunStatus",
    "Runner",
    "Usage",
]


@dataclass(frozen=True)
class DemoSpec:
    """Everything a runner needs to start one demonstrator.

    Attributes:
        demo_id: the service's id for the demonstrator (lowercase letters,
            digits, dashes; at most 63), also its name in the runner.
        image: the demonstrator image (``bibia/demo:<tag>``); ProcessRunner
            ignores it.
        model_dir: host path of the MLflow model directory, mounted
            read-only at ``/model``.
        socket_dir: host path of a directory mounted read-write at
            ``/run/bibia``; the server listens on ``socket_dir/demo.sock``
            (:attr:`socket_path`). The runner creates it and makes it
            writable by the sandbox user; DockerRunner mounts a tiny tmpfs
            there, so nothing the sandbox writes lands on the host's disk.
        memory_bytes: memory limit (swap included).
        cpus: CPU limit, in cores.
        pids_limit: most processes and threads.
        tmpfs_bytes: size of the writable ``/tmp``.
        ttl_seconds: time to live; the server stops by itself after it, and
            ``bibia.expires_at`` (Unix time) labels the demonstrator.
        labels: extra labels (``bibia.managed`` and ``bibia.demo_id`` are
            set by the runner and cannot be overridden).
        env: extra environment for the server (not the reserved
            ``BIBIA_MODEL_DIR``, ``BIBIA_SOCKET``, ``BIBIA_TTL_SECONDS``).
        trusted: the model is a reference model the project built itself;
            only then may ProcessRunner run it outside a sandbox.
    """

    demo_id: str
    image: str
    model_dir: Path
    socket_dir: Path
    memory_bytes: int = 768 * 1024 * 1024
    cpus: float = 1.0
    pids_limit: int = 128
    tmpfs_bytes: int = 64 * 1024 * 1024
    ttl_seconds: int = 3600
    labels: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    trusted: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.demo_id, str) or not DEMO_ID_PATTERN.fullmatch(self.demo_id):
            raise ValueError(
                f"demo_id {self.demo_id!r} is invalid: use 1 to 63 lowercase letters, digits or dashes"
            )
        object.__setattr__(self, "model_dir", Path(self.model_dir))
        object.__setattr__(self, "socket_dir", Path(self.socket_dir))
        if len(os.fsencode(self.socket_path)) > MAX_SOCKET_PATH:
            raise ValueError(
                f"socket path {self.socket_path} is too long for a Unix socket "
                f"(at most {MAX_SOCKET_PATH} bytes): use a shorter socket_dir"
            )
        for name in ("memory_bytes", "pids_limit", "tmpfs_bytes", "ttl_seconds"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if not (0 < float(self.cpus) <= 64):
            raise ValueError(f"cpus must be in (0, 64], not {self.cpus!r}")
        for key, value in self.labels.items():
            if not LABEL_KEY_PATTERN.fullmatch(str(key)) or not isinstance(value, str):
                raise ValueError(f"label {key!r}={value!r} is invalid: string keys and values")
        reserved = RESERVED_ENV.intersection(self.env)
        if reserved:
            raise ValueError(f"env cannot set {', '.join(sorted(reserved))}: the runner sets them")
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))
        object.__setattr__(
            self, "env", MappingProxyType({str(k): str(v) for k, v in self.env.items()})
        )

    @property
    def socket_path(self) -> Path:
        """The host path of the server's Unix socket."""
        return self.socket_dir / SOCKET_NAME

    def all_labels(self, expires_at: float) -> dict[str, str]:
        """The spec's labels plus the runner's own (which win)."""
        return {
            **self.labels,
            LABEL_MANAGED: "true",
            LABEL_DEMO_ID: self.demo_id,
            LABEL_EXPIRES_AT: str(int(expires_at)),
        }

    def server_env(self, model_dir: str, socket_path: str) -> dict[str, str]:
        """The server's environment, for the paths it sees (host or sandbox)."""
        return {
            **self.env,
            "BIBIA_MODEL_DIR": model_dir,
            "BIBIA_SOCKET": socket_path,
            "BIBIA_TTL_SECONDS": str(self.ttl_seconds),
        }


class RunState(str, enum.Enum):
    """Where a demonstrator is, as far as its runner can tell."""

    RUNNING = "running"  # started and not exited (health is checked over the socket)
    EXITED = "exited"  # ended by itself (failed to load, crashed, TTL ran out)
    MISSING = "missing"  # unknown to the runner: never started, or stopped and removed

    @property
    def is_terminal(self) -> bool:
        return self is not RunState.RUNNING


@dataclass(frozen=True)
class RunStatus:
    """The state of one demonstrator.

    Attributes:
        state: running, exited or missing.
        exit_code: the server's exit code once exited, when known
            (3: the model failed to load; 137: killed, e.g. out of memory).
        oom_killed: the sandbox killed it for using too much memory.
        detail: a short runner-side explanation, when there is one.
    """

    state: RunState
    exit_code: int | None = None
    oom_killed: bool = False
    detail: str | None = None


@dataclass(frozen=True)
class RunInfo:
    """One demonstrator as :meth:`Runner.list` reports it.

    Attributes:
        demo_id: the service's id.
        runner_id: the runner's own id (container id, process id).
        status: its current status.
        labels: all its labels (``bibia.*`` included).
    """

    demo_id: str
    runner_id: str
    status: RunStatus
    labels: Mapping[str, str]


@dataclass(frozen=True)
class Usage:
    """What one demonstrator has consumed so far, by the runner's own accounting.

    Measured from outside the sandbox (the engine's container statistics, the
    kernel's ``/proc`` counters), never from anything the sandbox reports.

    Attributes:
        cpu_seconds: CPU time used since it started (user + system, every
            process of the sandbox), in seconds.
        peak_memory_bytes: the most memory it held at once, in bytes; None
            when the runner cannot tell.
        source: where the figures come from (``docker-stats``,
            ``docker-stats+cgroup``, ``procfs``...), including when the
            memory figure is only a lower bound.
    """

    cpu_seconds: float
    peak_memory_bytes: int | None
    source: str

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cpu_seconds) and self.cpu_seconds >= 0):
            raise ValueError(f"cpu_seconds must be finite and >= 0, not {self.cpu_seconds!r}")
        if self.peak_memory_bytes is not None and (
            isinstance(self.peak_memory_bytes, bool)
            or not isinstance(self.peak_memory_bytes, int)
            or self.peak_memory_bytes < 0
        ):
            raise ValueError(
                f"peak_memory_bytes must be an int >= 0, not {self.peak_memory_bytes!r}"
            )


@runtime_checkable
class Runner(Protocol):
    """Starts, watches and stops demonstrators. Every method may raise
    :class:`RunnerError` (or a subclass); none returns a vendor object.

    ``socket_owner`` is the host uid that owns a genuine demonstrator socket
    (the sandbox user); the service connects to nothing else
    (:mod:`runners.sockets`).
    """

    @property
    def socket_owner(self) -> int:
        """The host uid a demonstrator's socket must belong to."""
        ...

    @property
    def isolates(self) -> bool:
        """Whether what it runs is sandboxed (no host files, no network, limits).

        Only an isolating runner may run a model the project did not build,
        or start a sandbox before knowing which model it will get (the warm pool).
        """
        ...

    def accepts(self, *, trusted: bool) -> bool:
        """Whether :meth:`start` would run a spec with this ``trusted`` flag (else UntrustedModel)."""
        ...

    def start(self, spec: DemoSpec) -> RunInfo:
        """Start the demonstrator; return at once (health is the caller's to wait for).

        Raises:
            DemoConflict: one with this id exists (stop it first).
            UntrustedModel: the runner refuses this model.
            RunnerUnavailable, RunnerError: the runner could not start it.
        """
        ...

    def status(self, demo_id: str) -> RunStatus:
        """The demonstrator's state; ``MISSING`` when unknown (never raises for that)."""
        ...

    def logs(self, demo_id: str, *, tail: int = 200) -> str:
        """The last ``tail`` lines the server wrote (stdout and stderr).

        Raises:
            DemoMissing: no such demonstrator.
        """
        ...

    def stop(self, demo_id: str, *, timeout: float = 5.0) -> None:
        """Stop the demonstrator and remove what the runner holds for it.

        Idempotent: stopping a missing demonstrator does nothing.
        Afterwards :meth:`status` is ``MISSING``.
        """
        ...

    def list(self) -> list[RunInfo]:
        """Every demonstrator this runner manages (``bibia.managed=true``)."""
        ...

    def usage(self, demo_id: str) -> Usage | None:
        """What the running demonstrator consumed so far (:class:`Usage`), measured by the runner.

        None when the runner cannot tell: no such demonstrator, it already
        ended (its counters went with it), or the engine gives no figures;
        never raises for that. Ask before :meth:`stop`.
        """
        ...
