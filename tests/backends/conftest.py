"""Both databases on both backends: SQLite (embedded default) and PostgreSQL (scale).

``backend`` is parametrised over ``sqlite`` and ``postgres``; every test that
uses it (directly or through ``registry``/``db``) runs once per backend, so the
same contract holds on both. PostgreSQL tests get fresh databases per test
module on the server of ``BIBIA_TEST_POSTGRES_URL`` (default: the one
``.ci/start-postgres.sh`` starts, ``postgresql+psycopg://postgres@127.0.0.1:54329``);
they skip when it does not answer, and fail instead when ``CI`` is set.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import EXAMPLE_CARD, need

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:54329"


def postgres_server_url() -> str:
    """The server URL without a database name (SQLAlchemy form, psycopg 3 driver)."""
    return os.environ.get("BIBIA_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL).rstrip("/")


def _libpq(url: str) -> str:
    """``postgresql+psycopg://...`` as libpq (psycopg.connect) reads it."""
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


class PostgresServer:
    """Creates and drops throw-away databases on the test server."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.created: list[str] = []
        self._answers: bool | None = None
        self.problem = ""

    def answers(self) -> bool:
        if self._answers is None:
            import psycopg

            try:
                with psycopg.connect(_libpq(f"{self.url}/postgres"), connect_timeout=3) as conn:
                    conn.execute("SELECT 1")
                self._answers = True
            except psycopg.Error as exc:
                self.problem = (
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                )
                self._answers = False
        return self._answers

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            _libpq(f"{self.url}/postgres"), autocommit=True, connect_timeout=5
        ) as conn:
            conn.execute(sql)

    def create_database(self, label: str) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        name = f"bibia_test_{label}_{secrets.token_hex(4)}"
        self._admin(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return f"{self.url}/{name}"

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        # FORCE (PostgreSQL 13+): MLflow keeps pooled connections open in its cached store.
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.created:
            self.created.remove(name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer(postgres_server_url())
    yield server
    if server.created and server.answers():
        for name in list(server.created):
            server.drop_database(f"{server.url}/{name}")


def require_postgres(server: PostgresServer) -> None:
    need(
        server.answers(),
        f"no PostgreSQL server answers at {server.url} ({server.problem}); "
        "start one with `sudo bash .ci/start-postgres.sh` or set BIBIA_TEST_POSTGRES_URL",
    )


@dataclass(frozen=True)
class Backend:
    """Where both databases live for one backend kind."""

    kind: str  # "sqlite" | "postgres"
    mlflow_uri: str
    bibia_uri: str
    root: Path  # local directory for artifacts and caches


def _new_backend(kind: str, root: Path, server: PostgresServer) -> Backend:
    root.mkdir(parents=True, exist_ok=True)
    if kind == "sqlite":
        return Backend(
            kind, f"sqlite:///{root / 'mlflow.db'}", f"sqlite:///{root / 'bibia.db'}", root
        )
    require_postgres(server)
    return Backend(kind, server.create_database("mlflow"), server.create_database("bibia"), root)


def _drop_backend(backend: Backend, server: PostgresServer) -> None:
    if backend.kind == "postgres":
        server.drop_database(backend.mlflow_uri)
        server.drop_database(backend.bibia_uri)


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: PostgresServer,
) -> Iterator[Backend]:
    """Fresh databases of one kind, shared by the tests of one module."""
    made = _new_backend(
        request.param, tmp_path_factory.mktemp(f"backend-{request.param}"), postgres_server
    )
    yield made
    _drop_backend(made, postgres_server)


@pytest.fixture(params=BACKENDS)
def fresh_backend(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: PostgresServer
) -> Iterator[Backend]:
    """Fresh databases of one kind for a single test (end-to-end checks)."""
    made = _new_backend(request.param, tmp_path / f"backend-{request.param}", postgres_server)
    yield made
    _drop_backend(made, postgres_server)


@pytest.fixture(scope="module")
def registry(backend: Backend, db):
    """The registry facade on MLflow with ``backend``'s store (schema created on first use),
    its cards in bibia's database on the same backend."""
    from bibia.cards import DatabaseCards
    from registry.store import Registry

    (backend.root / "artifacts").mkdir(exist_ok=True)
    return Registry(
        backend.mlflow_uri,
        (backend.root / "artifacts").as_uri(),
        backend.root / "cache",
        DatabaseCards(db),
    )


@pytest.fixture(scope="module")
def db(backend: Backend):
    """bibia's own database on ``backend``, migrated to the newest schema."""
    from bibia.db import Database

    database = Database(backend.bibia_uri)
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def base_card() -> dict:
    """The example card as a dict (copy it before changing it)."""
    return yaml.safe_load(EXAMPLE_CARD.read_text(encoding="utf-8"))
