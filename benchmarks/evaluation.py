"""Evaluation benchmark: a verified evaluation against the same scoring on the host, in one run.

Run by hand (not a test)::

    .venv/bin/python benchmarks/evaluation.py [--runs 3] [--evaluations 1000] [--calls 50]
    .venv/bin/python benchmarks/evaluation.py --skip-sandbox          # the leaderboard only, no Docker
    .venv/bin/python benchmarks/evaluation.py --postgres postgresql+psycopg://postgres@127.0.0.1:54329

1. A verified evaluation of ``cantine-nantes`` on its reference benchmark
   ``cantine-nantes-2017-2018`` (11,245 canteen-days), end to end: ``POST
   /api/v1/evaluations`` on an in-process app (its lifespan running, a Docker
   runner), the queue run in this thread (``EvaluationService.run_queued``),
   ``GET /api/v1/evaluations/{id}`` until done. The baseline is the same model
   loaded, run and scored on the same rows in one plain host process, with no
   sandbox: ``mlflow.pyfunc.load_model`` + ``predict`` + ``evaluation.scoring.evaluate``
   (imports already done, as in a warm sandbox; and, beside it, the same in a
   new Python process, imports included). bibia is measured with a warm
   sandbox (``demo_pool_size=1``; before each timed run the pool is full and
   its member has logged that it waits for a model) and cold
   (``demo_pool_size=0``: a second app). The three are alternated, median of
   ``--runs``. The scores of both sides are compared: the same model on the
   same rows must give the same figures.
2. The leaderboard with many recorded evaluations: ``--evaluations`` done
   ``Evaluation`` rows inserted on the benchmark for ``--versions`` model
   versions, then the façade's ``leaderboard()``, ``GET /taches/cantine-frequentation``
   and ``GET /api/v1/tasks/cantine-frequentation/leaderboard`` timed in-process
   (median and p95 of ``--calls``, interleaved), and the SQL statements of one
   call counted (``before_cursor_execute`` on ``services.db.engine``, and on
   every engine, MLflow's included), first with 10 evaluations, then with all.

Everything it starts is stopped in ``finally``: the apps (their lifespan), any
container carrying one of their instance labels, the work directory (its
sandboxes' tmpfs mounts included) and, with ``--postgres``, the databases it
created.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import json
import os
import pickle
import platform
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# This script is named like the ``evaluation`` package: keep its own folder off
# the import path, so that ``import evaluation`` finds the project's package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

PYTHON = sys.executable
PACKAGE = "demos.cantine"
MODEL = "cantine-nantes"
TASK = "cantine-frequentation"
SIREN = "244400404"  # Nantes Métropole, the model's and the benchmark's owner
SMALL = 10  # evaluations of the leaderboard's first measure
VERSIONS_PER_MODEL = 5
GOALS = {
    "warm": 1.5,  # verified evaluation, warm sandbox: at most this many times the host baseline
    "board_ms": 100.0,  # leaderboard, server side
}
PAGE = f"/taches/{TASK}"
API = f"/api/v1/tasks/{TASK}/leaderboard"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


# ------------------------------------------------------------------ backends


def _libpq(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


@dataclass
class Databases:
    """Fresh PostgreSQL databases for bibia's own store (``--postgres``), dropped at the end."""

    server: str | None
    created: list[str] = field(default_factory=list)

    def url(self) -> str | None:
        if self.server is None:
            return None
        import psycopg

        name = f"bibia_bench_eval_{secrets.token_hex(4)}"
        admin = _libpq(f"{self.server.rstrip('/')}/postgres")
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return f"{self.server.rstrip('/')}/{name}"

    def drop(self) -> None:
        if self.server is None or not self.created:
            return
        import psycopg

        admin = _libpq(f"{self.server.rstrip('/')}/postgres")
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            for name in self.created:
                with contextlib.suppress(psycopg.Error):
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


# ------------------------------------------------------------------ the reference model


def reference_build(out: Path, cache: Path | None) -> Any:
    """``demos.cantine.build(out)``, or the same build from ``cache`` (the tests' layout:
    ``<cache>/demos.cantine/<fingerprint>/{build.pickle, model}``) when it holds one."""
    from bibia.seed import fingerprint

    module = importlib.import_module(PACKAGE)
    if cache is not None:
        slot = cache / PACKAGE / fingerprint(PACKAGE)
        meta = slot / "build.pickle"
        if meta.is_file():
            log(f"reference model reused from {slot}")
            return replace(pickle.loads(meta.read_bytes()), model_dir=slot / "model")
    log(f"building the reference model {PACKAGE} (about two minutes; not measured)")
    build = module.build(out)
    if cache is not None:
        slot = cache / PACKAGE / fingerprint(PACKAGE)
        with contextlib.suppress(OSError):
            shutil.rmtree(slot.parent, ignore_errors=True)
            slot.parent.mkdir(parents=True)
            tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=slot.parent))
            shutil.copytree(out, tmp / "model")
            (tmp / "build.pickle").write_bytes(
                pickle.dumps(replace(build, model_dir=Path("model")))
            )
            os.replace(tmp, slot)
    return build


def benchmark_without_training() -> Any:
    """The reference benchmark's rows, without training the model (the leaderboard needs no model).

    The same rows as the build's benchmark: :func:`demos.cantine.train.protocol_rows`
    of the test year, which is what the build scores.
    """
    from demos.cantine import builder, data, train

    served = data.served()
    return builder.benchmark(
        train.protocol_rows(served, data.tables(history=served), train.TEST_YEAR)
    )


# ------------------------------------------------------------------ apps


@dataclass
class App:
    """An in-process bibia app, its lifespan running (workers off: the queue runs in this thread)."""

    name: str
    data_dir: Path
    pool: int
    runner: str
    database_url: str | None
    app: Any = None
    client: Any = None
    token: str = ""
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def open(self) -> None:
        from fastapi.testclient import TestClient

        from bibia.app import create_app
        from bibia.settings import Settings

        self.data_dir.mkdir(parents=True, exist_ok=True)
        values: dict[str, Any] = {
            "data_dir": self.data_dir,
            "seed_on_start": False,
            "runner": self.runner,
            "demo_pool_size": self.pool,
            "demo_reap_interval_s": 3600.0,  # the pool is filled here, before each timed run
            "demo_start_timeout_s": 300.0,
            "evaluation_workers": 0,
            "evaluation_quota_per_org": 50,
        }
        if self.database_url is not None:
            values["database_url"] = self.database_url
        self.app = create_app(Settings(**values))
        self.client = self._stack.enter_context(TestClient(self.app))

    @property
    def services(self) -> Any:
        return self.app.state.services

    @property
    def evaluations(self) -> Any:
        return self.app.state.evaluations

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def organisation(self) -> Any:
        from bibia import accounts
        from bibia.auth import SYSTEM

        with self.services.db.session() as session:
            org = accounts.organisation_by_siren(session, SIREN)
            if org is None:
                org = accounts.create_organisation(
                    session, SYSTEM, "nantes-metropole", "Nantes Métropole", SIREN
                )
            return org

    def member_token(self) -> None:
        from bibia import accounts
        from bibia.auth import SYSTEM

        org = self.organisation()
        with self.services.db.session() as session:
            self.token = accounts.create_token(session, SYSTEM, org.slug, "member", "banc").token

    def seed(self, build: Any) -> None:
        """The real ``bibia seed`` for cantine-nantes, with the prebuilt model directory."""
        import bibia.seed

        module = importlib.import_module(PACKAGE)
        saved = (bibia.seed.REFERENCE_MODELS, module.build)  # restored in ``finally``

        def prebuilt(out_dir: Path) -> Any:
            shutil.copytree(build.model_dir, out_dir)
            return replace(build, model_dir=out_dir)

        self.organisation()
        setattr(bibia.seed, "REFERENCE_MODELS", (PACKAGE,))  # noqa: B010 (a module's attribute, for mypy)
        setattr(module, "build", prebuilt)  # noqa: B010
        try:
            report = bibia.seed.seed(self.services)
        finally:
            setattr(bibia.seed, "REFERENCE_MODELS", saved[0])  # noqa: B010
            setattr(module, "build", saved[1])  # noqa: B010
        if MODEL not in report.models_registered + report.models_unchanged:
            raise RuntimeError(f"the seed did not register {MODEL}: {report.summary()}")

    def wait_pool(self, timeout: float = 300.0) -> None:
        """The pool full, every member having done its imports and waiting for a model (not timed)."""
        if self.pool == 0:
            return
        demos = self.app.state.demos
        demos.maintain_pool()
        deadline = time.monotonic() + timeout
        while True:
            members = [m for m in demos.pool.members() if m.status.state.value == "running"]
            waiting = [
                m
                for m in members
                if "en attente d'un modèle" in demos.runner.logs(m.demo_id, tail=20)
            ]
            if len(members) == self.pool and len(waiting) == self.pool:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the warm pool of {self.name} was not ready within {timeout:.0f} s"
                )
            time.sleep(0.2)

    def close(self) -> None:
        instance = self.services.instance if self.app is not None else None
        with contextlib.suppress(Exception):
            self._stack.close()
        if instance is not None and self.runner == "docker":
            remove_containers(instance)


def remove_containers(instance: str) -> None:
    """Backstop: remove the containers labelled with this app's instance, never others."""
    from bibia.demos import LABEL_INSTANCE
    from runners.docker import DockerRunner

    with contextlib.suppress(Exception):
        runner = DockerRunner()
        left = [i for i in runner.list() if i.labels.get(LABEL_INSTANCE) == instance]
        if left:
            log(f"removing {len(left)} leftover container(s)")
        for info in left:
            with contextlib.suppress(Exception):
                runner.stop(info.demo_id, timeout=0)


# ------------------------------------------------------------------ 1. a verified evaluation


@dataclass
class Run:
    seconds: float
    rows: int
    metrics: dict[str, float]
    predict_s: float | None = None
    job_s: float | None = None
    cpu_seconds: float | None = None
    marks: dict[str, float] = field(default_factory=dict)


def host_inputs(frame: Any) -> tuple[Any, Any]:
    from evaluation import frames, tasks

    task = tasks.get(TASK)
    return frames.conform(frame, task.inputs, "entrées"), frames.conform(
        frame, task.truth, "vérité"
    )


def host_once(
    model_dir: Path, inputs: Any, truth: Any
) -> tuple[dict[str, float], dict[str, float]]:
    """Load, predict, score: what a data scientist does on the host, no sandbox.

    Returns ``(metrics, phases in seconds)``.
    """
    import mlflow.pyfunc
    import pandas as pd

    from evaluation import scoring, tasks

    task = tasks.get(TASK)
    started = time.perf_counter()
    model = mlflow.pyfunc.load_model(str(model_dir))
    loaded = time.perf_counter()
    predicted = model.predict(inputs)
    if not isinstance(predicted, pd.DataFrame):
        predicted = pd.DataFrame(predicted)
    done = time.perf_counter()
    outcome = scoring.evaluate(task, inputs, truth, predicted.reset_index(drop=True))
    scored = time.perf_counter()
    return outcome.metrics, {
        "load": loaded - started,
        "predict": done - loaded,
        "score": scored - done,
    }


def host_child(model_dir: str, data_file: str) -> int:
    """``--host-child``: the same, in a new process (its imports included); prints the metrics."""
    import pandas as pd

    frame = pd.read_pickle(data_file)
    inputs, truth = host_inputs(frame)
    metrics, _ = host_once(Path(model_dir), inputs, truth)
    print(json.dumps(metrics))
    return 0


def host_fresh(model_dir: Path, data_file: Path, rows: int) -> Run:
    started = time.perf_counter()
    result = subprocess.run(
        [PYTHON, str(Path(__file__).resolve()), "--host-child", str(model_dir), str(data_file)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"the host process failed:\n{result.stderr[-3000:]}")
    return Run(seconds, rows, json.loads(result.stdout.strip().splitlines()[-1]))


class Stages:
    """Watches a running job from another thread (every 50 ms, not part of the measure):
    when its stage changed and when its sandbox became ready, in seconds from ``started``."""

    def __init__(self, app: App, job_id: str, started: float) -> None:
        self.app, self.job_id, self.started = app, job_id, started
        self.marks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="bench-stages", daemon=True)
        self._thread.start()

    def _mark(self, key: str) -> None:
        self.marks.setdefault(key, time.perf_counter() - self.started)

    def _watch(self) -> None:
        from bibia.db.models import DemoSession, Evaluation

        while not self._stop.wait(0.05):
            with contextlib.suppress(Exception), self.app.services.db.session() as session:
                row = session.get(Evaluation, self.job_id)
                if row is None:
                    continue
                stage = row.stage or ""
                if stage.startswith("démarrage"):
                    self._mark("sandbox")
                elif stage.startswith("prédictions"):
                    self._mark("predicting")
                elif stage.startswith("calcul"):
                    self._mark("scoring")
                if row.sandbox_id:
                    demo = session.get(DemoSession, row.sandbox_id)
                    if demo is not None and demo.state == "ready":
                        self._mark("ready")
                    if demo is not None and demo.state in ("stopped", "expired", "failed"):
                        self._mark("sandbox_gone")

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.marks


def bibia_once(app: App, benchmark: str) -> Run:
    """``POST /api/v1/evaluations`` → the queue run here → ``GET`` done; seconds end to end."""
    from bibia.db.models import Evaluation

    started = time.perf_counter()
    reply = app.client.post(
        "/api/v1/evaluations",
        headers=app.headers,
        json={"model": f"{MODEL}@production", "benchmark": benchmark},
    )
    if reply.status_code != 202:
        raise RuntimeError(f"evaluation refused ({reply.status_code}): {reply.text}")
    job_id = reply.json()["id"]
    submitted = time.perf_counter() - started
    stages = Stages(app, job_id, started)
    try:
        app.evaluations.run_queued()
    finally:
        marks = stages.stop()
    marks["queued"] = submitted
    marks["run"] = time.perf_counter() - started
    job = app.client.get(f"/api/v1/evaluations/{job_id}", headers=app.headers).json()
    seconds = time.perf_counter() - started
    if job.get("state") != "done":
        raise RuntimeError(f"evaluation {job_id} ended {job.get('state')}: {job.get('error')}")
    with app.services.db.session() as session:
        row = session.get(Evaluation, job_id)
        predict_s, job_s = row.predict_s, row.duration_s
    return Run(
        seconds,
        int(job["n_rows"]),
        dict(job["metrics"]),
        predict_s=predict_s,
        job_s=job_s,
        cpu_seconds=(job.get("cost") or {}).get("cpu_seconds"),
        marks=marks,
    )


@dataclass
class Sandboxed:
    host: list[Run] = field(default_factory=list)
    host_phases: list[dict[str, float]] = field(default_factory=list)
    fresh: list[Run] = field(default_factory=list)
    warm: list[Run] = field(default_factory=list)
    cold: list[Run] = field(default_factory=list)
    same_scores: bool | None = None
    differences: list[str] = field(default_factory=list)


def sandboxed(args: argparse.Namespace, work: Path, dbs: Databases, apps: list[App]) -> Sandboxed:
    out = Sandboxed()
    build = reference_build(work / "model", Path(args.build_cache) if args.build_cache else None)
    bench = build.benchmark
    if bench is None:
        raise RuntimeError(f"{PACKAGE}'s build hands over no benchmark")
    inputs, truth = host_inputs(bench.frame)
    data_file = work / "benchmark.pkl"
    bench.frame.to_pickle(data_file)
    warm = App("warm", work / "w" / "data", 1, "docker", dbs.url())
    cold = App("cold", work / "c" / "data", 0, "docker", dbs.url())
    for each in (warm, cold):
        apps.append(each)
        log(f"opening the {each.name} app (docker runner, pool {each.pool}) and seeding {MODEL}")
        each.open()
        each.seed(build)
        each.member_token()
    log("host warm-up (imports and the model's first load, not measured)")
    host_once(build.model_dir, inputs.head(50), truth.head(50))
    for i in range(args.runs):
        warm.wait_pool()
        metrics, phases = host_once(build.model_dir, inputs, truth)
        run = Run(sum(phases.values()), len(inputs), metrics)
        out.host.append(run)
        out.host_phases.append(phases)
        log(
            f"host {i + 1}: {run.seconds:.2f} s ({', '.join(f'{k} {v:.2f}' for k, v in phases.items())})"
        )
        warm.wait_pool()
        run = host_fresh(build.model_dir, data_file, len(inputs))
        out.fresh.append(run)
        log(f"host, new process {i + 1}: {run.seconds:.2f} s")
        warm.wait_pool()
        run = bibia_once(warm, bench.slug)
        out.warm.append(run)
        log(f"bibia warm {i + 1}: {run.seconds:.2f} s (predictions {run.predict_s or 0:.2f} s)")
        warm.wait_pool()
        run = bibia_once(cold, bench.slug)
        out.cold.append(run)
        log(f"bibia cold {i + 1}: {run.seconds:.2f} s (predictions {run.predict_s or 0:.2f} s)")
    reference = out.host[-1].metrics
    for run in (*out.fresh, *out.warm, *out.cold):
        for name, value in reference.items():
            other = run.metrics.get(name)
            if other is None or abs(other - value) > 1e-9 * max(1.0, abs(value)):
                out.differences.append(f"{name}: hôte {value} / bibia {other}")
    out.same_scores = not out.differences
    return out


# ------------------------------------------------------------------ 2. the leaderboard


class Counter:
    """SQL statements run on bibia's engine, and on every engine of the process (MLflow's too)."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        self.bibia = 0
        self.every = 0
        self._engine = engine
        event.listen(engine, "before_cursor_execute", self._bibia)
        event.listen(Engine, "before_cursor_execute", self._every)

    def _bibia(self, *_args: object) -> None:
        self.bibia += 1

    def _every(self, *_args: object) -> None:
        self.every += 1

    def during(self, fn: Callable[[], object]) -> tuple[int, int]:
        bibia, every = self.bibia, self.every
        fn()
        return self.bibia - bibia, self.every - every

    def close(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        with contextlib.suppress(Exception):
            event.remove(self._engine, "before_cursor_execute", self._bibia)
        with contextlib.suppress(Exception):
            event.remove(Engine, "before_cursor_execute", self._every)


def insert_evaluations(
    app: App, benchmark_id: int, organisation_id: int, start: int, count: int, versions: int
) -> None:
    """``count`` done verified evaluations on the benchmark, spread over ``versions`` model versions."""
    from bibia.db.models import Evaluation

    base = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
    # As large as a real one: the daily totals of the 137 days scored, three series.
    days = [(dt.date(2017, 9, 4) + dt.timedelta(days=d)).isoformat() for d in range(137)]
    chart = {
        "kind": "series",
        "x": days,
        "observed": [15000.0 + 37 * d for d in range(137)],
        "model": [14900.0 + 36 * d for d in range(137)],
        "baseline": [15200.0 + 35 * d for d in range(137)],
        "x_label": "jour",
        "y_label": "repas servis (total des cantines)",
    }
    with app.services.db.session() as session:
        for i in range(start, start + count):
            slot = i % versions
            rnd = random.Random(i)
            wmape = 0.08 + rnd.random() * 0.1
            finished = base + dt.timedelta(minutes=i)
            session.add(
                Evaluation(
                    id=secrets.token_hex(16),
                    kind="benchmark",
                    state="done",
                    progress=1.0,
                    stage="terminée",
                    model_name=f"cantine-banc-{slot // VERSIONS_PER_MODEL + 1:02d}",
                    model_version=slot % VERSIONS_PER_MODEL + 1,
                    model_ref="banc@production",
                    task=TASK,
                    benchmark_id=benchmark_id,
                    data_hash="0" * 64,
                    n_rows=11245,
                    organisation_id=organisation_id,
                    requested_by="banc (nantes-metropole)",
                    created_at=finished - dt.timedelta(seconds=30),
                    started_at=finished - dt.timedelta(seconds=25),
                    finished_at=finished,
                    attempts=1,
                    metrics={
                        "mae": 20 + rnd.random() * 10,
                        "wmape": wmape,
                        "surproduction": 0.05 + rnd.random() * 0.05,
                        "jours_en_deficit": float(rnd.randint(0, 20)),
                        "part_cantine_jours_en_deficit": rnd.random() * 0.1,
                        "n_jours_test": 137.0,
                    },
                    baseline_metrics={
                        "mae": 35.0,
                        "wmape": 0.21,
                        "surproduction": 0.12,
                        "jours_en_deficit": 40.0,
                        "part_cantine_jours_en_deficit": 0.3,
                        "n_jours_test": 137.0,
                    },
                    chart=chart,
                    bibia_version="banc",
                    runner="docker",
                    duration_s=25.0,
                    predict_s=5.0,
                    cpu_seconds=6.0,
                    peak_memory_bytes=300 * 2**20,
                    energy_wh=0.1,
                    co2e_g=0.005,
                )
            )


@dataclass
class Measure:
    evaluations: int
    rows: int
    samples: dict[str, list[float]]
    statements: dict[str, tuple[int, int]]


@dataclass
class Board:
    small: Measure | None = None
    full: Measure | None = None
    versions: int = 0
    backend: str = ""


def leaderboard(args: argparse.Namespace, work: Path, dbs: Databases, apps: list[App]) -> Board:
    from bibia.auth import ANONYMOUS, Caller
    from bibia.db.models import Benchmark
    from bibia.evaluations.benchmarks import Provenance
    from registry.tiers import Tier

    out = Board()
    app = App("board", work / "b" / "data", 0, "none", dbs.url())
    apps.append(app)
    out.backend = "PostgreSQL" if app.database_url else "SQLite"
    log(f"opening the leaderboard app (bibia's database on {out.backend})")
    app.open()
    log("registering the reference benchmark (its rows, without training the model)")
    data = benchmark_without_training()
    org = app.organisation()
    operator = Caller(
        tier=Tier.ADMIN,
        organisation=org.slug,
        organisation_id=org.id,
        organisation_siren=org.siren,
        user="banc",
    )
    view = app.evaluations.register_benchmark_frame(
        operator,
        slug=data.slug,
        task=data.task,
        frame=data.frame,
        provenance=Provenance.of_reference(data),
    )
    with app.services.db.session() as session:
        from sqlalchemy import select

        bench_id = session.scalar(
            select(Benchmark.id).where(
                Benchmark.slug == view.slug, Benchmark.version == view.version
            )
        )
    total = max(1, args.evaluations)
    out.versions = max(1, min(args.versions, total))
    small = min(SMALL, total)
    counter = Counter(app.services.db.engine)
    try:

        def facade() -> object:
            return app.evaluations.leaderboard(ANONYMOUS, TASK)

        def get(path: str) -> Callable[[], object]:
            def call() -> object:
                reply = app.client.get(path)
                if reply.status_code != 200:
                    raise RuntimeError(f"GET {path}: {reply.status_code} {reply.text[:300]}")
                return reply

            return call

        plans = [
            ("façade EvaluationService.leaderboard()", facade),
            (f"GET {PAGE}", get(PAGE)),
            (f"GET {API}", get(API)),
        ]

        def measure(count: int) -> Measure:
            rows = len(app.evaluations.leaderboard(ANONYMOUS, TASK).rows)
            statements = {label: counter.during(fn) for label, fn in plans}
            for _ in range(3):  # warm-up
                for _, fn in plans:
                    fn()
            samples: dict[str, list[float]] = {label: [] for label, _ in plans}
            for _ in range(args.calls):
                for label, fn in plans:
                    started = time.perf_counter()
                    fn()
                    samples[label].append((time.perf_counter() - started) * 1000)
            return Measure(count, rows, samples, statements)

        insert_evaluations(app, bench_id, org.id, 0, small, out.versions)
        log(f"{small} evaluations recorded: measuring ({args.calls} calls each, interleaved)")
        out.small = measure(small)
        if total > small:
            insert_evaluations(app, bench_id, org.id, small, total - small, out.versions)
            log(f"{total} evaluations recorded: measuring")
            out.full = measure(total)
    finally:
        counter.close()
    return out


# ------------------------------------------------------------------ report

STEPS = (
    ("queued", "POST /api/v1/evaluations (vérifications, file)"),
    ("sandbox", "travail pris, modèle et jeu lus"),
    ("ready", "bac à sable prêt (modèle chargé)"),
    ("predicting", "1er lot prédit et validé"),
    ("scoring", "autres lots prédits, mesure et arrêt du bac à sable"),
    ("run", "scores calculés, résultat écrit"),
)


def phases_of(marks: dict[str, float]) -> list[tuple[str, float]]:
    """Durations of the steps that were seen, in order (a step too short for the watcher is merged)."""
    out, previous = [], 0.0
    for key, label in STEPS:
        if key in marks and marks[key] >= previous:
            out.append((label, marks[key] - previous))
            previous = marks[key]
    return out


def print_report(args: argparse.Namespace, s: Sandboxed | None, b: Board) -> None:
    def verdict(ok: bool) -> str:
        return "atteint" if ok else "MANQUÉ"

    def table(rows: list[tuple[str, ...]]) -> None:
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for i, row in enumerate(rows):
            print(" | ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)))
            if i == 0:
                print("-+-".join("-" * w for w in widths))

    print()
    print(
        f"Évaluation — {dt.date.today().isoformat()}, {platform.node()}, {os.cpu_count()} cœurs, "
        f"Python {platform.python_version()}, base de bibia : {b.backend or '—'}"
    )
    if s is not None and s.host:
        print()
        rows_n = s.host[0].rows
        base = statistics.median(r.seconds for r in s.host)
        rows: list[tuple[str, ...]] = [
            (
                "évaluation de cantine-nantes",
                f"durée (médiane de {len(s.host)})",
                "lignes/s",
                "÷ hôte",
                "objectif",
            )
        ]

        def line(label: str, runs: list[Run], goal: str = "") -> None:
            if not runs:
                return
            seconds = statistics.median(r.seconds for r in runs)
            rows.append(
                (
                    label,
                    f"{seconds:.2f} s",
                    f"{rows_n / seconds:,.0f}".replace(",", " "),
                    f"{seconds / base:.2f}",
                    goal,
                )
            )

        line("hôte, sans bac à sable : chargement + prédiction + scores (référence)", s.host)
        line("hôte, nouveau processus Python (imports compris)", s.fresh)
        warm = statistics.median(r.seconds for r in s.warm) if s.warm else None
        line(
            "bibia, vérifiée, bac à sable chaud (demo_pool_size=1)",
            s.warm,
            f"≤ {GOALS['warm']:.1f}× : {verdict(warm is not None and warm <= GOALS['warm'] * base)}",
        )
        line("bibia, vérifiée, à froid (demo_pool_size=0)", s.cold)
        table(rows)
        print(f"\n{rows_n} lignes ({s.host[0].rows} couples cantine-jour) ; durées une à une (s) :")
        for label, runs in (
            ("hôte", s.host),
            ("nouveau processus", s.fresh),
            ("chaud", s.warm),
            ("froid", s.cold),
        ):
            print(f"  {label:<18} " + ", ".join(f"{r.seconds:.2f}" for r in runs))
        phases = {k: statistics.median(p[k] for p in s.host_phases) for k in s.host_phases[0]}
        print(
            "hôte, par étape (médiane, s) : " + ", ".join(f"{k} {v:.2f}" for k, v in phases.items())
        )
        for label, runs in (("chaud", s.warm), ("froid", s.cold)):
            pred = [r.predict_s for r in runs if r.predict_s is not None]
            job = [r.job_s for r in runs if r.job_s is not None]
            cpu = [r.cpu_seconds for r in runs if r.cpu_seconds is not None]
            if pred and job:
                total = statistics.median(r.seconds for r in runs)
                p, j = statistics.median(pred), statistics.median(job)
                print(
                    f"bibia {label}, par étape (médiane, s) : prédictions dans le bac à sable {p:.2f}, "
                    f"reste du travail (lecture, bac à sable prêt, scores, écritures) {j - p:.2f}, "
                    f"hors travail (API, file) {total - j:.2f}"
                    + (f" ; CPU du bac à sable {statistics.median(cpu):.2f} s" if cpu else "")
                )
        for label, runs in (("chaud", s.warm), ("froid", s.cold)):
            steps = [phases_of(r.marks) for r in runs if r.marks]
            if steps:
                print(f"bibia {label}, étape par étape (médiane, s) :")
                for name, _ in steps[-1]:
                    values = [d for one in steps for n, d in one if n == name]
                    print(f"  {name:<70} {statistics.median(values):6.2f}")
        if s.same_scores is not None:
            print(
                "mêmes scores des deux côtés : "
                + ("oui" if s.same_scores else "NON — " + "; ".join(s.differences[:5]))
            )
    if b.small is not None:
        print()
        full = b.full or b.small
        header = (
            "classement",
            f"{b.small.evaluations} éval. médiane / p95",
            f"{full.evaluations} éval. médiane / p95",
            f"requêtes SQL bibia {b.small.evaluations} → {full.evaluations}",
            "toutes bases",
            "objectif",
        )
        rows = [header]
        for label in b.small.samples:
            a, z = b.small.samples[label], full.samples[label]
            sa, sz = b.small.statements[label], full.statements[label]
            median = statistics.median(z)
            rows.append(
                (
                    label,
                    f"{statistics.median(a):.1f} / {quantile(a, 0.95):.1f} ms",
                    f"{median:.1f} / {quantile(z, 0.95):.1f} ms",
                    f"{sa[0]} → {sz[0]}",
                    f"{sa[1]} → {sz[1]}",
                    f"< {GOALS['board_ms']:.0f} ms, même nombre : "
                    + verdict(median < GOALS["board_ms"] and sa[0] == sz[0]),
                )
            )
        table(rows)
        print(
            f"\n{full.evaluations} évaluations terminées sur {b.versions} versions de modèles "
            f"({full.rows - 1} lignes de classement + la référence naïve) ; "
            f"{args.calls} appels de chaque, entrelacés"
        )
    print(f"charge moyenne à la fin : {os.getloadavg()[0]:.1f}")


# ------------------------------------------------------------------ the run


def run(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="bibia-bench-eval-", dir="/tmp"))
    dbs = Databases(args.postgres)
    apps: list[App] = []
    s: Sandboxed | None = None
    b = Board()
    try:
        if not args.skip_sandbox:
            s = sandboxed(args, work, dbs, apps)
        b = leaderboard(args, work, dbs, apps)
    finally:
        log("stopping the apps and every container they started")
        for app in reversed(apps):
            app.close()
        dbs.drop()
        from runners import hostfs

        if args.keep:
            for point in hostfs.mounts_under(work):
                hostfs.unmount(point)
            log(f"work directory kept: {work}")
        else:
            hostfs.remove_tree(work)
    print_report(args, s, b)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--host-child", nargs=2, metavar=("MODEL_DIR", "DATA"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="evaluations timed on each side (median)"
    )
    parser.add_argument(
        "--evaluations", type=int, default=1000, help="evaluations recorded for the leaderboard"
    )
    parser.add_argument(
        "--versions", type=int, default=50, help="model versions they are spread over"
    )
    parser.add_argument("--calls", type=int, default=50, help="timed calls per leaderboard measure")
    parser.add_argument(
        "--skip-sandbox",
        action="store_true",
        help="only the leaderboard (no Docker, no model training)",
    )
    parser.add_argument(
        "--build-cache",
        metavar="DIR",
        help="reuse (or store) the reference build there, e.g. .pytest_cache/v/bibia-reference-models",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="bibia's database on this PostgreSQL server (fresh, dropped)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory under /tmp")
    args = parser.parse_args(argv)
    if args.host_child:
        return host_child(*args.host_child)
    if args.runs < 1 or args.calls < 1 or args.evaluations < 1 or args.versions < 1:
        print("--runs, --calls, --evaluations et --versions valent au moins 1", file=sys.stderr)
        return 2
    if not args.skip_sandbox and shutil.which("docker") is None:
        print(
            "docker introuvable : l'évaluation vérifiée lance de vrais conteneurs (--skip-sandbox "
            "pour le classement seul)",
            file=sys.stderr,
        )
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
