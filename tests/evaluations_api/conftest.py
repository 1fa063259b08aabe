"""Fixtures for the evaluation API: the real service (in-process) on the fake runner.

``eval_world`` opens the app with a :class:`runners.fake.FakeRunner` whose
sandboxes answer the canteen task's predictions, with two organisations
(A: Nantes Métropole, B: Lille) and their tokens (``member`` and ``expert``
of A, ``other_member`` and ``other_expert`` of B, ``admin`` of A), the
canteen fixture model ``cantine-essai`` (alias production) registered by
A's expert, and three benchmarks of the canteen task registered by A's
expert, one per visibility.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runners.fake import Behaviour, FakeRunner
from tests.conftest import World
from tests.demos_service.conftest import open_world, register_model, short_tmp  # noqa: F401

MODEL = "cantine-essai"
TASK = "cantine-frequentation"
ROLES = (None, "member", "other_member", "expert", "admin")  # anonymous, A, B, A's expert, admin
BENCHMARKS = {
    "public": "cantines-essai-public",
    "membres": "cantines-essai-membres",
    "verite-cachee": "cantines-essai-cachee",
}
CANTEENS = ("Cantine Jean Jaurès", "Cantine Chantenay")


def cantine_csv(*, weeks: int = 6, sep: str = ";", extra: str = "") -> bytes:
    """A canteen benchmark the French way: ``;``, dd/mm/yyyy dates, a ``reel`` truth column."""
    lines = [sep.join(["date", "cantine_nom", "greve", "reel" + extra])]
    start = dt.date(2023, 9, 4)  # a Monday
    for day in range(weeks * 7):
        date = start + dt.timedelta(days=day)
        if date.weekday() >= 5:
            continue
        for i, canteen in enumerate(CANTEENS):
            served = 180 + 20 * i + (date.weekday() * 7) % 15 - (40 if date.weekday() == 2 else 0)
            greve = "oui" if day == 16 else "non"
            lines.append(sep.join([date.strftime("%d/%m/%Y"), canteen, greve, str(served)]))
    return ("\n".join(lines) + "\n").encode("utf-8")


def predict_canteen(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the fake sandbox answers: 185 meals everywhere (the truth never reaches it)."""
    for record in records:
        assert "reel" not in record, "the truth reached the sandbox"
    return [{"repas_prevus": 185.0} for _ in records]


def make_cantine_model(out_dir: Path) -> Path:
    """An MLflow model directory with the canteen task's signature (the fake runner never loads it)."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    inputs = pd.DataFrame(
        {
            "date": ["2023-09-04", "2023-09-05"],
            "cantine_nom": list(CANTEENS),
            "greve": [False, False],
        }
    )
    outputs = pd.DataFrame({"repas_prevus": [185.0, 185.0]})
    code = Path(__file__).parents[1] / "fixtures" / "model_code" / "ok.py"
    mlflow.pyfunc.save_model(
        str(out_dir),
        python_model=str(code),
        signature=infer_signature(inputs, outputs),
        input_example=inputs,
        pip_requirements=["pandas"],
    )
    (out_dir / "bibia").mkdir(exist_ok=True)
    inputs.to_csv(out_dir / "bibia" / "sample.csv", index=False)
    for root, dirs, files in os.walk(out_dir):
        for name in (*dirs, *files):
            os.chmod(os.path.join(root, name), 0o755 if name in dirs else 0o644)
    return out_dir


@dataclass
class EvalWorld:
    world: World
    benchmarks: dict[str, dict[str, Any]]  # visibility -> the registered benchmark (as JSON)

    @property
    def client(self) -> Any:
        return self.world.client

    def headers(self, role: str | None) -> dict[str, str]:
        return self.world.headers(role)

    @property
    def services(self) -> Any:
        return self.world.services


def register_benchmark(
    world: World,
    slug: str,
    visibility: str,
    data: bytes | None = None,
    role: str | None = "expert",
    **fields: str,
) -> Any:
    form = {
        "slug": slug,
        "task": TASK,
        "title": f"Cantines d'essai ({visibility})",
        "licence": "Licence Ouverte 2.0",
        "visibility": visibility,
        "producer": "Nantes Métropole",
        **fields,
    }
    return world.client.post(
        "/api/v1/benchmarks",
        headers=world.headers(role),
        files={"fichier": ("cantines.csv", cantine_csv() if data is None else data, "text/csv")},
        data=form,
    )


@contextlib.contextmanager
def open_eval_world(root: Path, model_root: Path, **overrides: Any) -> Iterator[EvalWorld]:
    """The service on the fake runner, ``cantine-essai`` and the three benchmarks registered."""
    from bibia.settings import Settings

    model_dir = make_cantine_model(model_root / "model")
    runner = FakeRunner(behaviour=lambda spec: Behaviour(predict=predict_canteen))
    settings = Settings(
        **{
            "data_dir": Path(tempfile.mkdtemp(dir=root)),
            "seed_on_start": False,
            "runner": "none",
            "auth_failure_limit": 100_000,
            "evaluation_max_upload_mb": 1,
            "evaluation_workers": 0,  # the tests run queued evaluations themselves (run_queued)
            "evaluation_quota_per_org": 50,
            "demo_pool_size": 0,
            **overrides,
        }
    )
    with open_world(settings, runner=runner) as world:
        register_model(world, MODEL, model_dir, "Cantines : modèle d'essai")
        benchmarks = {}
        for visibility, slug in BENCHMARKS.items():
            response = register_benchmark(world, slug, visibility)
            assert response.status_code == 201, response.text
            benchmarks[visibility] = response.json()
        try:
            yield EvalWorld(world=world, benchmarks=benchmarks)
        finally:
            for info in runner.list():
                runner.stop(info.demo_id, timeout=1)


@pytest.fixture(scope="module")
def eval_world(
    short_tmp: Path,  # noqa: F811 - the fixture imported above
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[EvalWorld]:
    with open_eval_world(short_tmp, tmp_path_factory.mktemp("cantine")) as world:
        yield world


def organisation_id(services: Any, slug: str) -> int:
    from sqlalchemy import select

    from bibia.db.models import Organisation

    with services.db.session() as session:
        found = session.scalar(select(Organisation.id).where(Organisation.slug == slug))
        assert found is not None
        return int(found)


def insert_evaluation(
    services: Any,
    *,
    organisation: str = "nantes-metropole",
    kind: str = "donnees",
    state: str = "done",
    benchmark_slug: str | None = None,
) -> str:
    """A finished evaluation row, as the worker leaves it (for the tests of who sees what)."""
    from sqlalchemy import select

    from bibia.db.models import Benchmark, Evaluation

    evaluation_id = secrets.token_hex(16)
    with services.db.session() as session:
        benchmark_id = None
        if benchmark_slug is not None:
            benchmark_id = session.scalar(
                select(Benchmark.id).where(Benchmark.slug == benchmark_slug)
            )
            assert benchmark_id is not None
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        done = state == "done"
        session.add(
            Evaluation(
                id=evaluation_id,
                kind=kind,
                state=state,
                progress=1.0 if done else 0.0,
                model_name=MODEL,
                model_version=1,
                model_ref=f"{MODEL}@production",
                task=TASK,
                benchmark_id=benchmark_id,
                data_name="mes-cantines.csv" if kind == "donnees" else None,
                n_rows=60,
                organisation_id=organisation_id(services, organisation),
                requested_by="agent@" + organisation,
                created_at=now,
                started_at=now if done else None,
                finished_at=now if done else None,
                metrics={"mae": 12.5, "wmape": 0.0671} if done else None,
                baseline_metrics={"mae": 20.0, "wmape": 0.1} if done else None,
            )
        )
    return evaluation_id


def assert_french_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """A 4xx answered as bibia answers errors: JSON with a code and a French message."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("message"), str) and len(body["message"]) > 10, body
    if code is not None:
        assert body["error"] == code, body
    for english in ("Field required", "Traceback", "Internal Server Error", "Exception"):
        assert english not in body["message"], body
    return body
