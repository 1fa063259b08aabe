"""The catalogue's search index (``catalogue_entries``), on SQLite and on PostgreSQL.

The search in SQL finds the same entries, in the same order, with the same counts, as
the search that read every model and filtered in Python (``tests/catalogue_reference.py``)
on a varied catalogue (accents and case, several owners, ties of titles); every write
path keeps the index in step with the cards and projects; the migration fills it from
the stored cards and projects; restricted fields are never matched nor counted.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from mlflow.exceptions import MlflowException
from sqlalchemy import create_engine, select, text

from bibia import accounts, catalogue, catalogue_index
from bibia.auth import ANONYMOUS, SYSTEM
from bibia.cards import DatabaseCards
from bibia.catalogue import SearchFilters
from bibia.db import Database
from bibia.db.engine import MIGRATIONS
from bibia.db.models import CatalogueEntry
from bibia.services import date_catalogue_entries
from domain.errors import RegistryUnavailable
from registry.card import Card, parse_project
from registry.cards import search_tags
from registry.entries import CARD_TAG, CatalogueQuery
from registry.store import Registry
from tests import catalogue_reference as before
from tests.backends.conftest import Backend

NANTES = {"name": "Nantes Métropole", "siren": "244400404"}
LILLE = {"name": "Métropole Européenne de Lille", "siren": "200093201"}
EVRY = {"name": "Ville d'Évry-Courcouronnes", "siren": "200059228"}
OWNERS = [NANTES, LILLE, EVRY]
TERRITORIES = {
    NANTES["siren"]: "Nantes Métropole (Loire-Atlantique)",
    LILLE["siren"]: "Métropole européenne de Lille (Nord)",
    EVRY["siren"]: "Évry-Courcouronnes (Essonne)",
}
TITLES = [
    "Fréquentation des cantines scolaires",
    "CANTINE : repas servis",
    "Énergie des écoles",
    "energie des ecoles",  # the same title once folded: the key decides
    "Comptages vélo",
    "Qualité de l'air à Lille",
    "Œuvres et musées",
    "Éclairage public nocturne",
    "Crèches : inscriptions",
    "Déchets 100% triés",
    "Arbres d'alignement",
    "Bus à haut niveau de service",
]
THEMES = ["education", "transition-ecologique", "mobilites", "sante", "maintenance"]
STATUSES = ["experimentation", "pilote", "production"]
TASKS = ["regression", "prevision-serie-temporelle", "detection-anomalies", "classification"]
SECRET = "zorglubien"  # only in restricted fields


def model_card(base: dict, i: int, project: str | None) -> Card:
    data = copy.deepcopy(base)
    owner = OWNERS[i % 3]
    ident = data["identification"]
    ident["title"] = TITLES[i % len(TITLES)] + ("" if i < len(TITLES) else f" ({i})")
    ident["summary"] = f"Modèle {i} : {TITLES[(i * 5) % len(TITLES)].lower()}."
    ident["owner"] = owner
    ident["territory"] = TERRITORIES[owner["siren"]]
    ident["theme"] = THEMES[i % len(THEMES)]
    ident["status"] = STATUSES[i % len(STATUSES)]
    ident["keywords"] = [["restauration", "gaspillage"], ["énergie"], [], ["vélo", "mobilité"]][
        i % 4
    ]
    ident.pop("project", None)
    if project:
        ident["project"] = project
    data["model"]["task"] = TASKS[i % len(TASKS)]
    data["accountability"]["lessons_learned"] = f"Retex réservé : {SECRET}."
    return Card.model_validate(data)


PROJECTS = [
    ("cantines-nantes", "Cantines nantaises", [NANTES], "education"),
    ("energie-ecoles", "Énergie des écoles", [NANTES, LILLE], "transition-ecologique"),
    ("air-lille", "Air de Lille", [LILLE], "sante"),
    ("mobilites-evry", "Mobilités à Évry", [EVRY, NANTES], "mobilites"),
]


@pytest.fixture(scope="module")
def varied(registry: Registry, db: Database, base_card: dict) -> dict[str, Card]:
    """Projects (one to two owners) and 30 models written as the registry writes them, without
    artifacts (MLflow's model and version with the searchable tags, the card in the store)."""
    with db.session() as session:
        for org in OWNERS:
            slug = f"org-{org['siren']}"
            accounts.create_organisation(session, SYSTEM, slug, org["name"], org["siren"])
    for slug, title, owners, theme in PROJECTS:
        project = {
            "slug": slug,
            "title": title,
            "summary": f"Le projet {title.lower()}, porté par {owners[0]['name']}.",
            "owners": owners,
            "territory": TERRITORIES[owners[0]["siren"]],
            "theme": theme,
            "keywords": ["cantine"] if "antine" in title else [],
            "lessons_learned": f"Retex : {SECRET}.",
        }
        with db.session() as session:
            catalogue.upsert_project(session, SYSTEM, parse_project(project))
    client = registry._client
    cards = {}
    for i in range(30):
        project = "cantines-nantes" if i % 3 == 0 and i % 2 == 0 else None
        card = model_card(base_card, i, project)
        name = f"modele-{i:02d}"
        client.create_registered_model(name, tags=search_tags(card))
        mv = client.create_model_version(name, source="file:///nulle-part")
        registry.cards.put(name, int(mv.version), card)
        cards[name] = card
    return cards


QUERIES = [None, "cantine", "CANTINE", "cantiné", "Cantines scolaires", "ÉNERGIE", "energie ecoles"]
QUERIES += ["lille", "244400404", "métropole nantes", "100%", "arbres_d", "introuvable", SECRET]
FILTERS = [
    {},
    {"owner": "nantes"},
    {"owner": "MÉTROPOLE"},
    {"owner": "244400404"},
    {"owner": "200093201", "type": "projet"},
    {"owner": "Evry"},
    {"territory": "loire"},
    {"territory": "ÉVRY", "theme": "mobilites"},
    {"theme": "education"},
    {"status": "pilote", "type": "modele"},
    {"task": "regression"},
    {"task": "classification", "owner": "lille"},
    {"type": "projet", "theme": "sante"},
]


def _compare(session, registry, filters: SearchFilters, sort: str, scores: dict) -> None:
    expected = before.search(session, registry, filters, sort=sort, scores=scores)
    found = catalogue.search(
        session, registry, ANONYMOUS, filters, sort=sort, scores=scores, page=1, per_page=1000
    )
    label = (filters, sort)
    assert [(h.kind, h.key) for h in found.hits] == expected.keys, label
    assert found.total == len(expected.keys), label
    assert found.facets == expected.facets, label
    assert found.scored == expected.scored, label


def test_the_sql_search_finds_what_the_search_in_python_found(
    registry: Registry, db: Database, varied: dict
) -> None:
    scores = {"modele-03": 0.4, "modele-07": 0.25, "modele-12": 0.4, "modele-29": -0.1}
    with db.session() as session:
        for q, extra in itertools.product(QUERIES, FILTERS):
            _compare(session, registry, SearchFilters(q=q, **extra), "recents", {})
        for sort, extra in itertools.product(("titre", "score", "recents"), FILTERS[:6]):
            _compare(session, registry, SearchFilters(**extra), sort, scores)
        # accents and case do not matter, on either side
        plain = catalogue.search(session, registry, ANONYMOUS, SearchFilters(q="energie"))
        accented = catalogue.search(session, registry, ANONYMOUS, SearchFilters(q="ÉNERGIÉ"))
        assert plain.total == accented.total >= 3
        assert [h.key for h in plain.hits] == [h.key for h in accented.hits]


def test_pages_cut_the_same_order(registry: Registry, db: Database, varied: dict) -> None:
    with db.session() as session:
        whole = catalogue.search(
            session, registry, ANONYMOUS, SearchFilters(), sort="titre", per_page=1000
        )
        pages = [
            catalogue.search(
                session, registry, ANONYMOUS, SearchFilters(), sort="titre", page=n, per_page=7
            )
            for n in range(1, whole.total // 7 + 3)
        ]
    assert [h.key for p in pages for h in p.hits] == [h.key for h in whole.hits]
    assert whole.total >= 34 and all(p.total == whole.total for p in pages)
    assert pages[-1].hits == []  # past the end: empty, same total


MODEL_QUERIES = [
    CatalogueQuery(),
    CatalogueQuery(q="cantine"),
    CatalogueQuery(q="Énergie écoles"),
    CatalogueQuery(owner="244400404"),
    CatalogueQuery(owner="Métropole Européenne"),
    CatalogueQuery(territory="Essonne"),
    CatalogueQuery(theme="education", status="experimentation"),
    CatalogueQuery(task="regression"),
    CatalogueQuery(project="cantines-nantes"),
    CatalogueQuery(q="velo", owner="200059228"),
]


@pytest.mark.parametrize("query", MODEL_QUERIES, ids=str)
def test_the_models_listing_finds_what_mlflow_found(
    registry: Registry, db: Database, varied: dict, query: CatalogueQuery
) -> None:
    expected = [n for n in before.list_models(registry, query) if n in varied]
    with db.session() as session:
        listed = catalogue.list_models(session, registry, ANONYMOUS, query, 1, 100)
        second = catalogue.list_models(session, registry, ANONYMOUS, query, 2, 3)
    names = [item["name"] for item in listed["items"] if item["name"] in varied]
    assert names == expected and expected, query
    assert listed["total"] >= len(expected)
    assert [i["name"] for i in second["items"]] == [i["name"] for i in listed["items"]][3:6]
    assert all("lessons_learned" not in i["card"]["accountability"] for i in listed["items"])


def test_a_folded_owner_or_territory_finds_more_than_mlflow_did(
    registry: Registry, db: Database, varied: dict
) -> None:
    """« nantes metropole » without its accent: MLflow's ILIKE on the tag missed it."""
    query = CatalogueQuery(owner="nantes metropole")
    assert [n for n in before.list_models(registry, query) if n in varied] == []
    with db.session() as session:
        listed = catalogue.list_models(session, registry, ANONYMOUS, query, 1, 100)
    assert {i["name"] for i in listed["items"]} >= {f"modele-{i:02d}" for i in range(0, 30, 3)}


def test_a_restricted_field_is_never_matched_nor_counted(
    registry: Registry, db: Database, varied: dict
) -> None:
    with db.session() as session:
        for caller in (ANONYMOUS, SYSTEM):  # nobody finds it: search covers public fields only
            found = catalogue.search(session, registry, caller, SearchFilters(q=SECRET))
            assert found.total == 0 and found.hits == []
            assert all(not counts for counts in found.facets.values())
            listed = catalogue.list_models(
                session, registry, caller, CatalogueQuery(q=SECRET), 1, 20
            )
            assert listed["total"] == 0
        assert all(SECRET not in e.search_text for e in session.scalars(select(CatalogueEntry)))


# ------------------------------------------------------------- write paths


def _entry(db: Database, kind: str, key: str) -> CatalogueEntry | None:
    with db.session() as session:
        return session.scalar(
            select(CatalogueEntry).where(CatalogueEntry.kind == kind, CatalogueEntry.key == key)
        )


def _found(registry: Registry, db: Database, q: str) -> list[str]:
    with db.session() as session:
        return [
            h.key for h in catalogue.search(session, registry, ANONYMOUS, SearchFilters(q=q)).hits
        ]


def test_registration_card_edit_and_a_failed_version_keep_the_index_in_step(
    registry: Registry,
    db: Database,
    base_card: dict,
    sklearn_model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = model_card(base_card, 40, None)
    first = first.model_copy(
        update={
            "identification": first.identification.model_copy(update={"title": "Ruches urbaines"})
        }
    )
    registry.register("ruches", sklearn_model_dir, first, actor="t", alias="production")
    entry = _entry(db, "modele", "ruches")
    assert entry is not None and entry.version == 1 and entry.title == "Ruches urbaines"
    assert _found(registry, db, "ruches") == ["ruches"]

    edited = first.model_copy(
        update={"identification": first.identification.model_copy(update={"title": "Abeilles"})}
    )
    registry.update_card("ruches", edited)
    assert _found(registry, db, "ruches") == [] and _found(registry, db, "abeilles") == ["ruches"]

    client = registry._client
    real_tag = client.set_registered_model_tag

    def fail(*_args, **_kwargs):
        raise MlflowException("panne injectée par le test")

    monkeypatch.setattr(client, "set_registered_model_tag", fail)
    second = edited.model_copy(
        update={"identification": edited.identification.model_copy(update={"title": "Frelons"})}
    )
    with pytest.raises(RegistryUnavailable):
        registry.register("ruches", sklearn_model_dir, second, actor="t")
    monkeypatch.setattr(client, "set_registered_model_tag", real_tag)
    entry = _entry(db, "modele", "ruches")  # the failed version's card is undone, and its entry
    assert entry is not None and entry.version == 1 and entry.title == "Abeilles"
    assert _found(registry, db, "frelons") == []

    latest = registry.register("ruches", sklearn_model_dir, second, actor="t").version
    entry = _entry(db, "modele", "ruches")
    assert entry is not None and entry.version == latest > 1 and entry.title == "Frelons"
    registry.cards.put("ruches", 1, first)  # an earlier version's card: the entry keeps the latest
    assert _entry(db, "modele", "ruches").title == "Frelons"  # type: ignore[union-attr]
    registry.cards.remove("ruches", latest)  # the latest card gone: the next one shows
    assert _entry(db, "modele", "ruches").title == "Ruches urbaines"  # type: ignore[union-attr]
    registry.cards.remove("ruches", 1)
    assert _entry(db, "modele", "ruches") is None


def test_a_failed_new_model_leaves_no_entry(
    registry: Registry, db: Database, base_card: dict, sklearn_model_dir: Path, monkeypatch
) -> None:
    monkeypatch.setattr(
        registry._client,
        "set_registered_model_alias",
        lambda *_a, **_k: (_ for _ in ()).throw(MlflowException("panne injectée")),
    )
    with pytest.raises(RegistryUnavailable):
        registry.register(
            "guepes",
            sklearn_model_dir,
            model_card(base_card, 41, None),
            actor="t",
            alias="production",
        )
    assert _entry(db, "modele", "guepes") is None


def test_a_legacy_card_moved_gets_its_entry_dated_by_mlflow(
    registry: Registry, db: Database, base_card: dict
) -> None:
    card = model_card(base_card, 42, None)
    client = registry._client
    client.create_registered_model(
        "heritage-index", tags={**search_tags(card), CARD_TAG: card.model_dump_json()}
    )
    client.create_model_version("heritage-index", source="file:///nulle-part")
    assert _entry(db, "modele", "heritage-index") is None
    assert "heritage-index" in registry.move_legacy_cards()
    entry = _entry(db, "modele", "heritage-index")
    created = registry.get("heritage-index").created
    assert entry is not None and entry.created is not None
    assert abs(entry.created.replace(tzinfo=dt.UTC) - created) < dt.timedelta(milliseconds=1)


def test_a_project_update_and_an_accepted_invitation_reach_the_index(
    db: Database, varied: dict
) -> None:
    from bibia.auth import Caller
    from registry.tiers import Tier

    def owners() -> set[str]:
        entry = _entry(db, "projet", "air-lille")
        assert entry is not None
        return {o.siren for o in entry.owners}

    with db.session() as session:
        row = catalogue.project_detail_raw(session, "air-lille")
        assert row is not None
        data = {k: v for k, v in row.items() if k not in ("invitations",)}
        data["title"] = "Qualité de l'air lilloise"
        lille = Caller(tier=Tier.EXPERT, user="experte", organisation_siren=LILLE["siren"])
        data["owners"] = [LILLE, EVRY]  # Évry is invited, not yet an owner
        catalogue.upsert_project(session, lille, parse_project(data))
    assert _entry(db, "projet", "air-lille").title == "Qualité de l'air lilloise"  # type: ignore[union-attr]
    assert owners() == {LILLE["siren"]}
    with db.session() as session:
        catalogue.answer_invitation(session, SYSTEM, "air-lille", accept=True, siren=EVRY["siren"])
    assert owners() == {LILLE["siren"], EVRY["siren"]}


# --------------------------------------------------------------- migration


def test_the_migration_fills_the_index_from_the_stored_cards_and_projects(
    fresh_backend: Backend, base_card: dict
) -> None:
    """A database at 0008 with cards (two versions of one model, one unreadable) and a project."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection_url"] = fresh_backend.bibia_uri
    engine = create_engine(fresh_backend.bibia_uri)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0008")
    old, new = model_card(base_card, 1, None), model_card(base_card, 2, "mobilites-evry")
    now = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    project = {
        "slug": "mobilites-evry",
        "title": "Mobilités à Évry",
        "summary": "Un projet.",
        "owners": [EVRY, NANTES],
        "invitations": [],
        "territory": "Évry",
        "theme": "mobilites",
        "status": "pilote",
        "keywords": [],
    }
    with engine.begin() as connection:
        insert = text(
            "INSERT INTO model_cards (model_name, version, card, project, owner_siren, theme, updated_at)"
            " VALUES (:n, :v, :c, NULL, NULL, NULL, :t)"
        )
        connection.execute(insert, {"n": "ancien", "v": 1, "c": old.model_dump_json(), "t": now})
        connection.execute(insert, {"n": "ancien", "v": 2, "c": new.model_dump_json(), "t": now})
        connection.execute(insert, {"n": "casse", "v": 1, "c": "{pas du json", "t": now})
        connection.execute(
            text(
                "INSERT INTO projects (slug, title, theme, status, territory, search_text, data,"
                " created_at, updated_at) VALUES ('mobilites-evry', 'Mobilités à Évry', 'mobilites',"
                " 'pilote', 'Évry', 'mobilites a evry §200059228§', :d, :t, :t)"
            ),
            {"d": __import__("json").dumps(project), "t": now},
        )
    engine.dispose()
    database = Database(fresh_backend.bibia_uri)
    try:
        database.upgrade()
        with database.session() as session:
            entries = {(e.kind, e.key): e for e in session.scalars(select(CatalogueEntry)).all()}
            assert set(entries) == {("modele", "ancien"), ("projet", "mobilites-evry")}
            model = entries[("modele", "ancien")]
            assert model.version == 2 and model.title == new.identification.title
            assert model.search_text == new.search_text() and model.created is None
            assert model.project == "mobilites-evry" and model.task == new.model.task.value
            assert [(o.siren, o.name) for o in model.owners] == [
                (new.identification.owner.siren, new.identification.owner.name)
            ]
            assert {o.siren for o in entries[("projet", "mobilites-evry")].owners} == {
                EVRY["siren"],
                NANTES["siren"],
            }
            assert catalogue_index.undated_models(session) == ["ancien"]
            found = catalogue_index.search(
                session, {"q": "Évry", "owner": "nantes"}, facets=("type",)
            )
            assert found.keys == [("projet", "mobilites-evry")] and found.total == 1
        # At start-up the service dates the model's entry with MLflow's registration date.
        registry = Registry(
            fresh_backend.mlflow_uri,
            (fresh_backend.root / "artifacts").as_uri(),
            fresh_backend.root / "cache",
            DatabaseCards(database),
        )
        registry._client.create_registered_model("ancien")
        date_catalogue_entries(database, registry)
        registered = registry.get("ancien").created
        with database.session() as session:
            assert catalogue_index.undated_models(session) == []
            entry = session.scalar(select(CatalogueEntry).where(CatalogueEntry.key == "ancien"))
            assert entry is not None and entry.created is not None
            assert entry.created.replace(tzinfo=dt.UTC) == registered
    finally:
        database.dispose()
