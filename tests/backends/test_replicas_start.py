"""Replicas started at the same moment on an empty PostgreSQL (a rolling deployment) all come up.

Three ``bibia serve`` processes, both databases new and on PostgreSQL, seeding
on start: bibia's migrations run once, MLflow's schema is created once, the
seed registers each reference model once (advisory locks, ``Database.exclusive``),
and every replica answers ``/healthz``. The reference packages are stood in by
:mod:`tests.replica_references` (the real cards, a small model: nothing is
trained), the only change to ``bibia serve``'s start-up path.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.backends.conftest import PostgresServer, require_postgres
from tests.conftest import ROOT, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

REPLICAS = 3
REFERENCE_VERSIONS = {"cantine-nantes": 1, "pics-pollution-lille": 1}
#: ``bibia serve``, the reference packages stood in.
SERVE = (
    "import sys, bibia.seed; "
    "bibia.seed.REFERENCE_MODELS = "
    "('tests.replica_references.cantine', 'tests.replica_references.air'); "
    "from bibia.cli import main; main(sys.argv[1:])"
)


def test_three_replicas_started_together_on_new_databases_migrate_and_seed_once(
    postgres_server: PostgresServer, tmp_path: Path, sklearn_model_dir: Path
) -> None:
    require_postgres(postgres_server)
    bibia_url = postgres_server.create_database("replicas_bibia")
    mlflow_url = postgres_server.create_database("replicas_mlflow")
    artifacts = tmp_path / "artifacts"  # shared by the replicas, as an object store would be
    processes: list[tuple[subprocess.Popen, str, Path]] = []
    try:
        for i in range(REPLICAS):
            port = free_port()
            log = tmp_path / f"replica-{i}.log"
            env = {
                **_environ(),
                "BIBIA_DATA_DIR": str(tmp_path / f"replica-{i}"),
                "BIBIA_DATABASE_URL": bibia_url,
                "BIBIA_MLFLOW_TRACKING_URI": mlflow_url,
                "BIBIA_MLFLOW_ARTIFACT_ROOT": artifacts.as_uri(),
                "BIBIA_SECRET_KEY": "cle-partagee-par-les-replicas-de-test",
                "BIBIA_SEED_ON_START": "true",
                "BIBIA_RUNNER": "none",
                "BIBIA_EVALUATION_WORKERS": "0",
                "BIBIA_TEST_MODEL_DIR": str(sklearn_model_dir),
            }
            with open(log, "wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-c", SERVE, "serve", "--port", str(port)],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=ROOT,
                )
            processes.append((process, f"http://127.0.0.1:{port}", log))

        deadline = time.monotonic() + 180
        waiting = {url for _, url, _ in processes}
        while waiting:
            for process, url, log in processes:
                if process.poll() is not None:
                    raise AssertionError(f"a replica exited:\n{log.read_text()[-4000:]}")
                if url in waiting:
                    with contextlib.suppress(httpx.HTTPError):
                        if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                            waiting.discard(url)
            assert time.monotonic() < deadline, "replicas not ready:\n" + "\n".join(
                log.read_text()[-2000:] for _, _, log in processes
            )
            time.sleep(0.5)

        logs = [log.read_text() for _, _, log in processes]
        for name, versions in REFERENCE_VERSIONS.items():
            registered = sum(log.count(f"modèle {name} enregistré") for log in logs)
            assert registered == versions, (name, registered)
        for _, url, _ in processes:
            listing = httpx.get(f"{url}/api/v1/models", params={"per_page": 50}, timeout=10)
            assert listing.status_code == 200
            items = {m["name"]: m for m in listing.json()["items"]}
            assert set(items) == set(REFERENCE_VERSIONS)
            for name, versions in REFERENCE_VERSIONS.items():
                assert items[name]["latest_version"] == versions
                assert items[name]["card"]["identification"]["title"]
    finally:
        for process, _, _ in processes:
            process.terminate()
        for process, _, _ in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()

    bibia = create_engine(bibia_url)
    mlflow = create_engine(mlflow_url)
    try:
        with bibia.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM alembic_version")) == 1
            cards = conn.execute(
                text("SELECT model_name, count(*) FROM model_cards GROUP BY model_name")
            ).all()
            assert dict(cards) == REFERENCE_VERSIONS
        with mlflow.connect() as conn:
            versions = conn.execute(
                text("SELECT name, count(*) FROM model_versions GROUP BY name")
            ).all()
            assert dict(versions) == REFERENCE_VERSIONS
            assert conn.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    finally:
        bibia.dispose()
        mlflow.dispose()
        postgres_server.drop_database(bibia_url)
        postgres_server.drop_database(mlflow_url)


def _environ() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("BIBIA_")}
