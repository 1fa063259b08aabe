"""Catalogue pages at scale: 1,000 registered models and 200 projects, in one run.

Run by hand (not a test)::

    .venv/bin/python benchmarks/pages.py [--models 1000] [--projects 200] [--repeat 20]

Setup (not measured): a fresh data directory (SQLite for both databases), 200
projects of one collectivité and 1,000 models with real cards (the example
card, searchable tags in MLflow, the card in bibia's database), each attached
to a project, written directly for speed.

Measured in-process (FastAPI's test client, so the figures are the server's
time without the network): the projects API, the ``/projets`` page, a
project's page, the home page, the ``/catalogue`` page (plain, and searched,
filtered and sorted on its second page) and the models' listing ``GET
/api/v1/models``; "before" is the same request plus the read it used to make,
measured interleaved in the same run: every model's tags and cards for the
projects' members and the home page's figures; for ``/catalogue``, the search
that read every model and project and filtered them in Python
(``tests/catalogue_reference.py``, the code it replaced); for the models'
listing, MLflow's filtered search of a page and its count. For each request, the SQL statements it runs on every engine
(bibia's and MLflow's), counted with an SQLAlchemy event listener, with 20
models then with all of them.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

import yaml
from sqlalchemy import event
from sqlalchemy.engine import Engine

from registry.card import Card, parse_project
from registry.cards import search_tags

NANTES = {"name": "Nantes Métropole", "siren": "244400404"}
THEMES = ["mobilites", "transition-ecologique", "education", "sante", "maintenance"]


class Statements:
    def __init__(self) -> None:
        self.count = 0
        event.listen(Engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: object) -> None:
        self.count += 1

    def during(self, fn: Callable[[], object]) -> int:
        before = self.count
        fn()
        return self.count - before


def timed(plans: list[tuple[str, Callable[[], object]]], repeat: int) -> dict[str, list[float]]:
    """Milliseconds per call of each plan, interleaved (one call of each per round)."""
    for _, fn in plans:
        fn()
    samples: dict[str, list[float]] = {label: [] for label, _ in plans}
    for _ in range(repeat):
        for label, fn in plans:
            started = time.perf_counter()
            fn()
            samples[label].append((time.perf_counter() - started) * 1000)
    return samples


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--projects", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bibia-bench-pages-"))
    try:
        return run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, workdir: Path) -> int:
    from fastapi.testclient import TestClient

    from bibia import accounts, catalogue
    from bibia.app import create_app
    from bibia.auth import SYSTEM
    from bibia.catalogue import SearchFilters
    from bibia.db.models import ProjectRecord
    from bibia.settings import Settings
    from registry.entries import CatalogueQuery
    from tests import catalogue_reference as reference

    print(
        f"bibia pages benchmark — {args.models} models, {args.projects} projects, SQLite, "
        f"{args.repeat} repetitions"
    )
    print(
        f"machine: {platform.node()} · {platform.machine()} · {os.cpu_count()} CPUs · "
        f"Python {platform.python_version()}"
    )
    app = create_app(Settings(data_dir=workdir / "data", seed_on_start=False, runner="none"))
    services = app.state.services
    registry = services.registry
    with services.db.session() as session:
        accounts.create_organisation(session, SYSTEM, "nantes", NANTES["name"], NANTES["siren"])
        for i in range(args.projects):
            project = {
                "slug": f"projet-{i:03d}",
                "title": f"Projet numéro {i}",
                "summary": "Un projet du banc d'essai.",
                "owners": [NANTES],
                "territory": "Nantes Métropole (Loire-Atlantique)",
                "theme": THEMES[i % len(THEMES)],
            }
            catalogue.upsert_project(session, SYSTEM, parse_project(project))
    base = yaml.safe_load((ROOT / "examples" / "fiche-exemple.yaml").read_text(encoding="utf-8"))

    def populate(start: int, stop: int) -> None:
        client = registry._client
        for i in range(start, stop):
            data = copy.deepcopy(base)
            data["identification"]["owner"] = NANTES
            data["identification"]["title"] = f"Modèle numéro {i}"
            data["identification"]["theme"] = THEMES[i % len(THEMES)]
            data["identification"]["project"] = f"projet-{i % args.projects:03d}"
            card = Card.model_validate(data)
            name = f"modele-{i:05d}"
            client.create_registered_model(name, tags=search_tags(card))
            mv = client.create_model_version(name, source="file:///nulle-part")
            client.set_registered_model_alias(name, "production", mv.version)
            registry.cards.put(name, int(mv.version), card)

    http = TestClient(app)

    def get(path: str) -> Callable[[], object]:
        def call() -> object:
            response = http.get(path)
            response.raise_for_status()
            return response

        return call

    def projects_before() -> object:
        # What the listing read before: every model (tags and cards), to find the members.
        with services.db.session() as session:
            rows = list(session.query(ProjectRecord).order_by(ProjectRecord.slug).limit(20))
            reference.members(rows, registry.search())
        return get("/api/v1/projects")()

    def home_before() -> object:
        # What the home page read before: every model (tags and cards), for its figures.
        registry.search()
        return get("/")()

    searched = "/catalogue?q=batiments&owner=nantes&sort=titre&page=2"
    searched_filters = SearchFilters(q="batiments", owner="nantes")

    def catalogue_before(path: str, filters: SearchFilters, sort: str) -> Callable[[], object]:
        # What /catalogue did before: read every model and project, filter and sort in Python.
        def call() -> object:
            with services.db.session() as session:
                reference.search(session, registry, filters, sort=sort)
            return get(path)()

        return call

    listing = "/api/v1/models?q=eau&owner=244400404&page=2&per_page=10"

    def listing_before() -> object:
        # What the listing did before: MLflow's search of the page on the tags, and its count.
        registry.search_page(CatalogueQuery(q="eau", owner="244400404"), 2, 10)
        return get(listing)()

    requests = [
        ("GET /api/v1/projects (before: + every model read)", projects_before),
        ("GET /api/v1/projects", get("/api/v1/projects")),
        ("GET /api/v1/projects/projet-001", get("/api/v1/projects/projet-001")),
        ("GET /projets", get("/projets")),
        ("GET /projets/projet-001", get("/projets/projet-001")),
        ("GET / (home) (before: + every model read)", home_before),
        ("GET / (home)", get("/")),
        (
            "GET /catalogue (before: + search in Python)",
            catalogue_before("/catalogue", SearchFilters(), "recents"),
        ),
        ("GET /catalogue", get("/catalogue")),
        (
            "GET /catalogue?q&owner&sort=titre&page=2 (before)",
            catalogue_before(searched, searched_filters, "titre"),
        ),
        ("GET /catalogue?q&owner&sort=titre&page=2", get(searched)),
        ("GET /api/v1/models?q&owner&page=2 (before: MLflow)", listing_before),
        ("GET /api/v1/models?q&owner&page=2", get(listing)),
    ]
    counter = Statements()
    small = 20
    populate(0, small)
    for _, fn in requests:
        fn()
    few = {label: counter.during(fn) for label, fn in requests}
    started = time.perf_counter()
    populate(small, args.models)
    print(f"setup: {args.models} models written in {time.perf_counter() - started:.1f} s")
    for _, fn in requests:
        fn()
    many = {label: counter.during(fn) for label, fn in requests}
    samples = timed(requests, args.repeat)
    print()
    print(
        f"{'request':<54} {'median ms':>10} {'p95 ms':>8} {'SQL ' + str(small):>8} "
        f"{'SQL ' + str(args.models):>9}"
    )
    for label, _ in requests:
        values = samples[label]
        print(
            f"{label:<54} {statistics.median(values):>10.1f} {p95(values):>8.1f} "
            f"{few[label]:>8} {many[label]:>9}"
        )
    before = statistics.median(samples[requests[0][0]])
    after = statistics.median(samples[requests[1][0]])
    print()
    print(
        f"projects' listing: {after:.1f} ms against {before:.1f} ms before ({before / after:.0f}×)"
    )
    for label, after_label in (
        ("GET / (home) (before: + every model read)", "GET / (home)"),
        ("GET /catalogue (before: + search in Python)", "GET /catalogue"),
        (
            "GET /catalogue?q&owner&sort=titre&page=2 (before)",
            "GET /catalogue?q&owner&sort=titre&page=2",
        ),
        ("GET /api/v1/models?q&owner&page=2 (before: MLflow)", "GET /api/v1/models?q&owner&page=2"),
    ):
        was, now = statistics.median(samples[label]), statistics.median(samples[after_label])
        print(f"{after_label}: {now:.1f} ms against {was:.1f} ms before ({was / now:.1f}×)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
