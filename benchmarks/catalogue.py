"""Catalogue benchmark: the bibia API against a direct MLflow call, side by side, in one run.

Run by hand (not a test)::

    .venv/bin/python benchmarks/catalogue.py [--models 1000] [--repeat 40]
    .venv/bin/python benchmarks/catalogue.py --postgres postgresql+psycopg://postgres@127.0.0.1:54329

Setup (not measured): a fresh MLflow store (SQLite in a temporary directory,
or a fresh database on the given PostgreSQL server) is filled with ``--models``
registered models, each with a real card (the same ``bibia.*`` tags the
facade writes, the card itself in bibia's database), one version and a
``production`` alias. They are written directly through ``MlflowClient`` for speed.

Measured: the real service (uvicorn in a subprocess on a free loopback port)
answering ``GET /api/v1/models?per_page=20`` and a filtered search, against
``MlflowClient.search_registered_models`` on the same store, unfiltered and
with the equivalent filter string. Median and p95 over ``--repeat``
repetitions. Then, in-process, the number of SQL statements MLflow runs per
catalogue request (an SQLAlchemy event listener on every engine), at two
catalogue sizes, to show there is no query per model (no N+1).
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

import httpx
import yaml
from mlflow.tracking import MlflowClient
from sqlalchemy import event
from sqlalchemy.engine import Engine

from registry.card import Card
from registry.cards import CardStore, search_tags
from registry.catalogue import filter_string_of
from registry.entries import CatalogueQuery
from registry.store import Registry

OWNERS = [
    ("Nantes Métropole", "244400404", "Nantes Métropole (Loire-Atlantique)"),
    ("Métropole Européenne de Lille", "200093201", "Métropole européenne de Lille (Nord)"),
    ("Rennes Métropole", "243500139", "Rennes Métropole (Ille-et-Vilaine)"),
    ("Brest Métropole", "242900314", "Brest Métropole (Finistère)"),
    ("Angers Loire Métropole", "244900015", "Angers Loire Métropole (Maine-et-Loire)"),
    ("Ville de Paris", "217500016", "Paris"),
    ("Grand Lyon", "200046977", "Métropole de Lyon (Rhône)"),
]
SUBJECTS = [
    ("transition-ecologique", "Consommation d'énergie des écoles", ["énergie", "bâtiments"]),
    ("mobilites", "Fréquentation des pistes cyclables", ["vélo", "comptages"]),
    ("education", "Fréquentation des cantines scolaires", ["cantine", "repas"]),
    ("sante", "Pics de pollution de l'air", ["qualité de l'air", "PM10"]),
    ("maintenance", "Maintenance prédictive de l'éclairage public", ["lampadaires"]),
    ("relation-usager", "Tri des demandes des usagers", ["courriels", "accueil"]),
    ("urbanisme", "Détection des toitures végétalisables", ["toitures", "images aériennes"]),
]
STATUSES = ["experimentation", "pilote", "production", "retire"]
TASKS = ["regression", "prevision-serie-temporelle", "classification", "detection-anomalies"]
# The filtered search: one word of the titles and one theme (1/7 of the models match the theme).
FILTER = {"q": "cantines", "theme": "education"}


def make_card(base: dict, i: int) -> Card:
    owner = OWNERS[i % len(OWNERS)]
    theme, subject, keywords = SUBJECTS[i % len(SUBJECTS)]
    data = copy.deepcopy(base)
    ident = data["identification"]
    ident.update(
        title=f"{subject} — modèle {i}",
        summary=f"{subject} sur le territoire de {owner[0]} (modèle de test n° {i}).",
        owner={"name": owner[0], "siren": owner[1]},
        territory=owner[2],
        theme=theme,
        status=STATUSES[i % len(STATUSES)],
        keywords=keywords,
    )
    data["model"]["task"] = TASKS[i % len(TASKS)]
    return Card.model_validate(data)


def populate(
    tracking_uri: str, artifact_dir: Path, start: int, count: int, cards: CardStore
) -> float:
    """Register models ``start`` to ``start + count - 1`` with cards, one version and an alias each.

    Returns:
        The seconds it took.
    """
    base = yaml.safe_load((ROOT / "examples" / "fiche-exemple.yaml").read_text(encoding="utf-8"))
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    source = (artifact_dir / "model").as_uri()
    started = time.perf_counter()
    for i in range(start, start + count):
        card = make_card(base, i)
        name = f"modele-{i:05d}"
        client.create_registered_model(
            name, tags=search_tags(card), description=card.identification.summary
        )
        mv = client.create_model_version(
            name, source=source, tags={"bibia.metrics": '{"model": {"mae": 1.8}}'}
        )
        cards.put(name, int(mv.version), card)
        client.set_registered_model_alias(name, "production", mv.version)
    return time.perf_counter() - started


# ------------------------------------------------------------------ backends


def _libpq(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    import psycopg

    name = f"bibia_bench_{secrets.token_hex(4)}"
    admin = _libpq(f"{server_url.rstrip('/')}/postgres")
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server_url.rstrip('/')}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def service(data_dir: Path, tracking_uri: str) -> Iterator[str]:
    """The real service (uvicorn in a subprocess) on a free loopback port; yields its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "BIBIA_DATA_DIR": str(data_dir),
        "BIBIA_MLFLOW_TRACKING_URI": tracking_uri,
        "BIBIA_SEED_ON_START": "false",
        "BIBIA_RUNNER": "none",
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "bibia.app:app_from_env",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited early:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service did not become ready:\n{log.read_text()}")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


# ------------------------------------------------------------------ measures


def timed(
    plans: list[tuple[str, Callable[[], object]]], repeat: int, warmup: int = 3
) -> list[tuple[str, list[float]]]:
    """Milliseconds per call of each plan, interleaved (one call of each per round).

    Interleaving spreads the load of a shared machine evenly over the plans,
    so the ratios hold even when the absolute figures drift.
    """
    for _ in range(warmup):
        for _, fn in plans:
            fn()
    samples: dict[str, list[float]] = {label: [] for label, _ in plans}
    for _ in range(repeat):
        for label, fn in plans:
            started = time.perf_counter()
            fn()
            samples[label].append((time.perf_counter() - started) * 1000)
    return [(label, samples[label]) for label, _ in plans]


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


class QueryCounter:
    """Counts SQL statements run on any SQLAlchemy engine in this process."""

    def __init__(self) -> None:
        self.count = 0
        event.listen(Engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: object) -> None:
        self.count += 1

    def during(self, fn: Callable[[], object]) -> int:
        before = self.count
        fn()
        return self.count - before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models", type=int, default=1000, help="registered models to create (default 1000)"
    )
    parser.add_argument(
        "--repeat", type=int, default=40, help="repetitions per measure (default 40)"
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="PostgreSQL server URL (a fresh database is created on it)",
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bibia-bench-"))
    try:
        with postgres_database(args.postgres) if args.postgres else _nothing() as pg_url:
            tracking_uri = pg_url or f"sqlite:///{workdir / 'mlflow.db'}"
            return run(args, workdir, tracking_uri)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def run(args: argparse.Namespace, workdir: Path, tracking_uri: str) -> int:
    backend = "PostgreSQL" if tracking_uri.startswith("postgresql") else "SQLite"
    (workdir / "model").mkdir()
    print(
        f"bibia catalogue benchmark — {args.models} models, MLflow on {backend}, {args.repeat} repetitions"
    )
    print(
        f"machine: {platform.node()} · {platform.machine()} · {os.cpu_count()} CPUs · Python {platform.python_version()}"
    )

    # A small catalogue first, for the query count at two sizes.
    from bibia.cards import DatabaseCards
    from bibia.db import Database

    (workdir / "data").mkdir()
    db = Database(f"sqlite:///{workdir / 'data' / 'bibia.db'}")  # the service's, on its data dir
    db.upgrade()
    cards = DatabaseCards(db)
    small = min(20, args.models)
    seconds = populate(tracking_uri, workdir, 0, small, cards)
    registry = Registry(tracking_uri, (workdir / "artifacts").as_uri(), workdir / "cache", cards)
    counter = QueryCounter()
    from bibia import catalogue
    from bibia.auth import ANONYMOUS

    def api_inprocess(query: CatalogueQuery) -> Callable[[], object]:
        def call() -> object:
            with db.session() as session:  # the listing pages in bibia's catalogue index
                return catalogue.list_models(session, registry, ANONYMOUS, query, 1, 20)

        return call

    filtered = CatalogueQuery(**FILTER)
    queries_small = (
        counter.during(api_inprocess(CatalogueQuery())),
        counter.during(api_inprocess(filtered)),
    )
    rest = args.models - small
    seconds += populate(tracking_uri, workdir, small, rest, cards)
    print(
        f"setup: {args.models} models registered directly through MlflowClient in {seconds:.1f} s (not measured)"
    )
    queries_full = (
        counter.during(api_inprocess(CatalogueQuery())),
        counter.during(api_inprocess(filtered)),
    )

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    filter_string = filter_string_of(filtered)
    direct_queries = counter.during(lambda: client.search_registered_models(max_results=20))
    matches = len(registry.search(filtered))

    with (
        service(workdir / "data", tracking_uri) as url,
        httpx.Client(base_url=url, timeout=60) as http,
    ):

        def get(params: dict) -> Callable[[], object]:
            def call() -> object:
                response = http.get("/api/v1/models", params=params)
                response.raise_for_status()
                return response

            return call

        listing = get({"per_page": 20}).__call__().json()
        found = get({**FILTER, "per_page": 20}).__call__().json()
        if listing["total"] != args.models or found["total"] != matches:
            raise SystemExit(
                f"unexpected totals: {listing['total']} / {found['total']} (expected {args.models} / {matches})"
            )
        plans = [
            ("API  GET /api/v1/models?per_page=20", get({"per_page": 20})),
            ("API  GET /api/v1/models?q=…&theme=…&per_page=20", get({**FILTER, "per_page": 20})),
            ("API  in-process catalogue.list_models, unfiltered", api_inprocess(CatalogueQuery())),
            ("API  in-process catalogue.list_models, filtered", api_inprocess(filtered)),
            (
                "MLflow search_registered_models() (100 models)",
                lambda: client.search_registered_models(),
            ),
            (
                "MLflow search_registered_models(max_results=20)",
                lambda: client.search_registered_models(max_results=20),
            ),
            (
                "MLflow search_registered_models(filter_string=…)",
                lambda: client.search_registered_models(filter_string=filter_string),
            ),
            (
                "MLflow search_registered_models(filter_string=…, max_results=20)",
                lambda: client.search_registered_models(
                    filter_string=filter_string, max_results=20
                ),
            ),
            (
                "MLflow search_registered_models(max_results=1000)",
                lambda: client.search_registered_models(max_results=1000),
            ),
        ]
        rows = timed(plans, args.repeat)

    medians = {label: statistics.median(s) for label, s in rows}
    print()
    print(f"{'request':<66} {'median ms':>10} {'p95 ms':>9}")
    for label, samples in rows:
        print(f"{label:<66} {statistics.median(samples):>10.1f} {p95(samples):>9.1f}")
    print()
    ratio_list = medians[rows[0][0]] / medians[rows[4][0]]
    ratio_filtered = medians[rows[1][0]] / medians[rows[6][0]]
    ratio_filtered_20 = medians[rows[1][0]] / medians[rows[7][0]]
    print(f"ratio API listing / MLflow unfiltered search():        {ratio_list:5.2f}×")
    print(
        f"ratio API filtered page / MLflow filtered search():     {ratio_filtered:5.2f}×  (goal: under 2×)"
    )
    print(f"ratio API filtered page / MLflow filtered, 20 results:  {ratio_filtered_20:5.2f}×")
    print(f"filter string: {filter_string}  ({matches} of {args.models} models match)")
    print()
    print(
        "SQL statements MLflow runs per catalogue request (in-process, SQLAlchemy event listener):"
    )
    print(
        f"  catalogue of {small:>5} models: listing {queries_small[0]}, filtered {queries_small[1]}"
    )
    print(
        f"  catalogue of {args.models:>5} models: listing {queries_full[0]}, filtered {queries_full[1]}"
    )
    print(f"  one direct search_registered_models(max_results=20): {direct_queries}")
    grows = queries_full[0] > queries_small[0] + (args.models // 1000) * 2 + 2
    print(
        "  N+1: "
        + (
            "YES — the count grows with the catalogue"
            if grows
            else "no — the count does not grow per model"
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
