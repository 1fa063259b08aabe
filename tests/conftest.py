"""Shared fixtures: real MLflow (SQLite by default), a real service, real tokens.

Environment knobs:
- ``BIBIA_TEST_POSTGRES_URL``: a PostgreSQL server URL (``postgresql+psycopg://user@host:port``);
  tests marked ``postgres`` create their own databases on it. With ``CI`` set,
  they fail instead of skipping when it is missing.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_CARD = ROOT / "examples" / "fiche-exemple.yaml"

os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def need(condition: bool, why: str) -> None:
    """Skip when a real component is missing, but fail under CI: skipped tests are hidden gaps."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"{why} (CI is set: this test must run, not skip)")
    pytest.skip(why)


@pytest.fixture
def card_data() -> dict:
    """A valid card (examples/fiche-exemple.yaml) as a fresh dict."""
    return yaml.safe_load(EXAMPLE_CARD.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def sklearn_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small scikit-learn MLflow model directory (y = 2 * surface), saved once."""
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LinearRegression

    X = pd.DataFrame(
        {
            "surface": np.arange(20.0),
            "occupation": np.ones(20),
            "temperature": np.linspace(0, 30, 20),
        }
    )
    model = LinearRegression().fit(X, 2 * X["surface"])
    path = tmp_path_factory.mktemp("sk") / "model"
    mlflow.sklearn.save_model(
        model,
        path,
        signature=infer_signature(X, model.predict(X)),
        input_example=X.head(3),
        pip_requirements=["scikit-learn", "pandas"],
        serialization_format="cloudpickle",
    )
    return path


def tar_model(model_dir: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        archive.add(model_dir, arcname="model")
    return buf.getvalue()


@dataclass
class World:
    """A running app (in-process) with one organisation per role and their tokens."""

    app: object
    client: object  # fastapi.testclient.TestClient
    services: object  # bibia.services.Services
    tokens: dict[str, str]  # role -> token ("member", "expert", "admin", "other_expert")

    def headers(self, role: str | None) -> dict[str, str]:
        return {} if role is None else {"Authorization": f"Bearer {self.tokens[role]}"}


def make_world(settings) -> World:
    from fastapi.testclient import TestClient

    from bibia import accounts
    from bibia.app import create_app
    from bibia.auth import SYSTEM

    app = create_app(settings)
    services = app.state.services
    with services.db.session() as session:
        accounts.create_organisation(
            session, SYSTEM, "nantes-metropole", "Nantes Métropole", "244400404"
        )
        accounts.create_organisation(
            session, SYSTEM, "lille", "Métropole Européenne de Lille", "200093201"
        )
        tokens = {
            "member": accounts.create_token(
                session, SYSTEM, "nantes-metropole", "member", "agent"
            ).token,
            "expert": accounts.create_token(
                session, SYSTEM, "nantes-metropole", "expert", "experte"
            ).token,
            "admin": accounts.create_token(
                session, SYSTEM, "nantes-metropole", "admin", "admin"
            ).token,
            "other_expert": accounts.create_token(
                session, SYSTEM, "lille", "expert", "expert-lille"
            ).token,
        }
    return World(app=app, client=TestClient(app), services=services, tokens=tokens)


@pytest.fixture
def settings(tmp_path: Path):
    from bibia.settings import Settings

    return Settings(data_dir=tmp_path / "data", seed_on_start=False, runner="none")


@pytest.fixture
def world(settings) -> Iterator[World]:
    w = make_world(settings)
    with w.client:
        yield w


def register(
    world: World,
    model_dir: Path,
    card: dict,
    name: str = "eau-batiments",
    role: str = "expert",
    alias: str | None = "production",
):
    """Register through the API; returns the response."""
    data = {"alias": alias} if alias else {}
    return world.client.post(
        f"/api/v1/models/{name}/versions",
        headers=world.headers(role),
        files={
            "card": (
                "fiche.yaml",
                yaml.safe_dump(card, allow_unicode=True).encode(),
                "application/yaml",
            ),
            "model": ("model.tar.gz", tar_model(model_dir), "application/gzip"),
        },
        data=data,
    )


@pytest.fixture
def registered(world: World, sklearn_model_dir: Path, card_data: dict) -> World:
    """The world with ``eau-batiments`` v1 registered, alias ``production``."""
    response = register(world, sklearn_model_dir, card_data)
    assert response.status_code == 201, response.text
    return world


@pytest.fixture(scope="module")
def host_listener() -> Iterator[tuple[int, list]]:
    """A TCP server on the host's 127.0.0.1 recording every connection (a sandbox must reach none)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    connections: list = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, peer = server.accept()
            except OSError:  # includes the accept timeout
                continue
            connections.append(peer)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], connections
    stop.set()
    thread.join(timeout=2)
    server.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    process: subprocess.Popen
    log: Path


@contextmanager
def running_service(
    data_dir: Path, log: Path, env: dict[str, str] | None = None, *, timeout: float = 90
) -> Iterator[LiveServer]:
    """Start ``bibia serve`` in a subprocess on a free loopback port; stop it afterwards.

    ``env`` overrides the environment (defaults: no seeding, no demonstrator runner).
    """
    port = free_port()
    full_env = {
        **os.environ,
        "BIBIA_DATA_DIR": str(data_dir),
        "BIBIA_PORT": str(port),
        "BIBIA_SEED_ON_START": "false",
        "BIBIA_RUNNER": "none",
        **(env or {}),
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bibia.cli", "serve", "--port", str(port)],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited early:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service did not become ready:\n{log.read_text()}")
            time.sleep(0.3)
        yield LiveServer(url=url, data_dir=data_dir, process=process, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A real bibia service (uvicorn in a subprocess) on a free loopback port, empty catalogue.

    Use the CLI (``python -m bibia.cli`` with ``BIBIA_DATA_DIR``) to create
    organisations and tokens against ``data_dir``.
    """
    with running_service(tmp_path / "live", tmp_path / "server.log") as server:
        yield server


def cli(
    data_dir: Path, *args: str, env: dict | None = None, input: str | None = None
) -> subprocess.CompletedProcess:
    """Run the real ``bibia`` CLI in a subprocess against ``data_dir``."""
    full_env = {**os.environ, "BIBIA_DATA_DIR": str(data_dir), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "bibia.cli", *args],
        env=full_env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        input=input,
        timeout=300,
    )
