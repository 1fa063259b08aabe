"""The catalogue's listings and pages read no model's tags: their SQL statements do not grow.

Statements are counted on every SQLAlchemy engine of the process (bibia's
database and MLflow's) for the projects API, a project's detail and the web
``/projets`` page, with 20 registered models then with 200: the same count, and
none of them on MLflow's database (the projects' members come from bibia's card store).
The same for the home page, ``/catalogue`` (search, filters, sorts, a second page), the
models' listing ``GET /api/v1/models`` and a project's page: filtered, counted and paged
in bibia's catalogue index, they read from MLflow only the models of the page shown.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bibia import catalogue
from bibia.auth import ANONYMOUS, SYSTEM
from registry.card import Card, parse_project
from registry.cards import search_tags
from tests.conftest import EXAMPLE_CARD, World, make_world

PROJECTS = 30
NANTES = {"name": "Nantes Métropole", "siren": "244400404"}


class Statements:
    """SQL statements run on any engine of this process."""

    def __init__(self) -> None:
        self.count = 0
        self.mlflow = 0

    def seen(self, conn: Any, *_args: object) -> None:
        self.count += 1
        if str(conn.engine.url.database or "").endswith("mlflow.db"):
            self.mlflow += 1

    def during(self, fn: Callable[[], object], mlflow: bool = False) -> int:
        before, on_mlflow = self.count, self.mlflow
        fn()
        assert mlflow or self.mlflow == on_mlflow, "a projects' listing read MLflow"
        return self.count - before


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from bibia.settings import Settings

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("projects-scale") / "data",
        seed_on_start=False,
        runner="none",
    )
    made = make_world(settings)
    with made.services.db.session() as session:
        for i in range(PROJECTS):
            project = parse_project(
                {
                    "slug": f"projet-{i:03d}",
                    "title": f"Projet numéro {i}",
                    "summary": "Un projet de test.",
                    "owners": [NANTES],
                    "territory": "Nantes Métropole (Loire-Atlantique)",
                    "theme": "mobilites",
                }
            )
            catalogue.upsert_project(session, SYSTEM, project)
    with made.client:
        yield made


def _add_models(world: World, start: int, stop: int) -> None:
    """Models ``start`` to ``stop - 1`` as the facade writes them, without artifacts (fast)."""
    registry = world.services.registry
    client = registry._client
    base = yaml.safe_load(EXAMPLE_CARD.read_text(encoding="utf-8"))
    for i in range(start, stop):
        data = copy.deepcopy(base)
        data["identification"]["owner"] = NANTES
        data["identification"]["project"] = f"projet-{i % PROJECTS:03d}"
        card = Card.model_validate(data)
        name = f"modele-{i:04d}"
        client.create_registered_model(name, tags=search_tags(card))
        mv = client.create_model_version(name, source="file:///nulle-part")
        registry.cards.put(name, int(mv.version), card)


def _listings(world: World, counter: Statements) -> dict[str, int]:
    def api() -> None:
        assert world.client.get("/api/v1/projects").status_code == 200

    def detail() -> None:
        assert world.client.get("/api/v1/projects/projet-001").status_code == 200

    def page() -> None:
        assert world.client.get("/projets").status_code == 200

    def listing_call() -> None:
        with world.services.db.session() as session:
            catalogue.list_projects(
                session,
                world.services.registry,
                ANONYMOUS,
                q=None,
                theme=None,
                status=None,
                owner=None,
                territory=None,
                page=1,
                per_page=20,
            )

    def home() -> None:
        assert world.client.get("/").status_code == 200

    def getter(path: str) -> Callable[[], None]:
        def call() -> None:
            response = world.client.get(path)
            assert response.status_code == 200, (path, response.text[:300])

        return call

    # Each shows a full page of models at 20 models as at 200 (only its models are read).
    pages = {
        path: getter(path)
        for path in (
            "/catalogue",
            "/catalogue?q=batiments+EAU&sort=titre",
            "/catalogue?owner=nantes&theme=transition-ecologique&page=2",
            "/catalogue?sort=score&type=modele",
            "/catalogue?q=projet&type=projet&territory=loire",
            "/projets?q=num%C3%A9ro",
            "/projets/projet-001",
            "/api/v1/models",
            "/api/v1/models?q=eau&owner=Nantes+M%C3%A9tropole&per_page=5&page=2",
        )
    }
    for fn in (api, detail, page, listing_call, home, *pages.values()):
        fn()  # warm: first-use queries (caches, sessions) are not the request's
    return {
        "api": counter.during(api),
        "detail": counter.during(detail),
        "page": counter.during(page),
        "list_projects": counter.during(listing_call),
        "home": counter.during(home, mlflow=True),  # the six newest models only
        **{path: counter.during(fn, mlflow=True) for path, fn in pages.items()},
    }


def test_statements_per_projects_listing_do_not_grow_with_the_models(world: World) -> None:
    counter = Statements()
    event.listen(Engine, "before_cursor_execute", counter.seen)
    try:
        _add_models(world, 0, 20)
        small = _listings(world, counter)
        body = world.client.get("/api/v1/projects/projet-001").json()
        assert body["models"] == ["modele-0001"]
        _add_models(world, 20, 200)
        large = _listings(world, counter)
    finally:
        event.remove(Engine, "before_cursor_execute", counter.seen)
    assert large == small, (small, large)
    body = world.client.get("/api/v1/projects/projet-001").json()
    assert body["models"] == [f"modele-{i:04d}" for i in range(1, 200, PROJECTS)]
    page = world.client.get("/projets").text
    assert "Projet numéro 1" in page
    home = world.client.get("/").text
    assert "modele-0199" in home and "modele-0193" not in home  # the six newest
    listing = world.client.get("/api/v1/models?q=eau&per_page=5&page=2").json()
    assert listing["total"] == 200
    assert [m["name"] for m in listing["items"]] == [f"modele-{i:04d}" for i in range(5, 10)]
    catalogue_page = world.client.get("/catalogue").text
    assert "230 résultats" in catalogue_page and "/modeles/modele-0199" in catalogue_page
