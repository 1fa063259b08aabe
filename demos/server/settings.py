"""The demonstrator server's settings, read once from the environment.

The runner (Docker, process, Kubernetes) and the server agree on this
environment contract and on nothing else:

- ``BIBIA_MODEL_DIR``: the MLflow model directory, read-only
  (default ``/model``);
- ``BIBIA_SOCKET``: the Unix socket to listen on, the ONLY way in
  (default ``/run/bibia/demo.sock``);
- ``BIBIA_PORT``: only in a Kubernetes pod (a pod cannot share the service
  host's socket): listen on this TCP port of the pod's own address instead of
  the socket; the pod's NetworkPolicy admits the service's pods only;
- ``BIBIA_MAX_UPLOAD_BYTES``: largest accepted upload (default 5 MiB);
- ``BIBIA_MAX_ROWS``: most rows predicted in one request (default 10 000);
- ``BIBIA_TTL_SECONDS``: when set and > 0, the server stops by itself after
  that long (a backstop: the service reaps demonstrators anyway);
- ``BIBIA_WAIT_FOR_MODEL``: ``1`` for a warm sandbox of the service's pool:
  the server imports what loading a model needs, then waits until
  ``<model dir>/.bibia-ready`` exists (the service writes the model, then
  that marker, into the bind-mounted directory) and only then loads it and
  listens; the time to live still counts from the server's start (the
  service adds the idle limit to it);
- ``BIBIA_POOL_IDLE_SECONDS``: how long a warm sandbox waits for a model
  before stopping by itself (default 600);
- ``BIBIA_RESULTS_DIR``: where the results of uploads are kept for their
  result pages (default: a fresh private directory in the temp dir — the
  sandbox's ``/tmp`` tmpfs — that the server removes when it stops).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL_DIR = "/model"
DEFAULT_SOCKET = "/run/bibia/demo.sock"
DEFAULT_MAX_UPLOAD_BYTES = 5 * 1024 * 1024
DEFAULT_MAX_ROWS = 10_000
DEFAULT_POOL_IDLE_SECONDS = 600
READY_MARKER = ".bibia-ready"


class SettingsError(ValueError):
    """An environment variable has a value the server cannot use."""


@dataclass(frozen=True)
class Settings:
    """What the server needs to know, nothing read at import time."""

    model_dir: Path = Path(DEFAULT_MODEL_DIR)
    socket_path: Path = Path(DEFAULT_SOCKET)
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_rows: int = DEFAULT_MAX_ROWS
    ttl_seconds: float = 0.0
    wait_for_model: bool = False
    pool_idle_seconds: int = DEFAULT_POOL_IDLE_SECONDS
    results_dir: Path | None = None
    port: int | None = None

    @property
    def ready_marker(self) -> Path:
        """The file whose existence tells a warm sandbox that its model is complete."""
        return self.model_dir / READY_MARKER

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build the settings from ``environ`` (default: ``os.environ``).

        Raises:
            SettingsError: a number is not a positive number (French message).
        """
        env = os.environ if environ is None else environ
        return cls(
            model_dir=Path(env.get("BIBIA_MODEL_DIR") or DEFAULT_MODEL_DIR),
            socket_path=Path(env.get("BIBIA_SOCKET") or DEFAULT_SOCKET),
            max_upload_bytes=_positive_int(env, "BIBIA_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES),
            max_rows=_positive_int(env, "BIBIA_MAX_ROWS", DEFAULT_MAX_ROWS),
            ttl_seconds=_ttl(env),
            wait_for_model=_flag(env, "BIBIA_WAIT_FOR_MODEL"),
            pool_idle_seconds=_positive_int(
                env, "BIBIA_POOL_IDLE_SECONDS", DEFAULT_POOL_IDLE_SECONDS
            ),
            results_dir=Path(env["BIBIA_RESULTS_DIR"]) if env.get("BIBIA_RESULTS_DIR") else None,
            port=_positive_int(env, "BIBIA_PORT", 0) or None,
        )


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} doit être un nombre entier positif, pas « {raw} »") from None
    if value <= 0:
        raise SettingsError(f"{name} doit être un nombre entier positif, pas « {raw} »")
    return value


def _ttl(env: Mapping[str, str]) -> float:
    raw = env.get("BIBIA_TTL_SECONDS")
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(
            f"BIBIA_TTL_SECONDS doit être un nombre de secondes, pas « {raw} »"
        ) from None
    if value < 0:
        raise SettingsError(f"BIBIA_TTL_SECONDS doit être positif, pas « {raw} »")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "non", "no"):
        return False
    if raw in ("1", "true", "oui", "yes"):
        return True
    raise SettingsError(f"{name} doit valoir 1 ou 0, pas « {env.get(name)} »")
