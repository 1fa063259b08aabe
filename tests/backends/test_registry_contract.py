"""The registry facade's contract, on MLflow with SQLite and with PostgreSQL.

A module-scoped catalogue of four models (registered once per backend) serves
the read-only tests; tests that write use their own model names.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException

from bibia import catalogue
from bibia.auth import ANONYMOUS
from domain.errors import InvalidInput, NotFound, RegistryUnavailable
from registry.card import Card
from registry.entries import CARD_TAG, CatalogueQuery
from registry.refs import ModelRef
from registry.store import Registry
from tests.reference_cards import reference_card

NANTES = ("Nantes Métropole", "244400404", "Nantes Métropole (Loire-Atlantique)")
LILLE = ("Métropole Européenne de Lille", "200093201", "Métropole européenne de Lille (Nord)")


def make_card(
    base: dict,
    *,
    title: str,
    owner=NANTES,
    theme="transition-ecologique",
    status="experimentation",
    task="regression",
    project: str | None = None,
    keywords: list[str] | None = None,
) -> Card:
    data = copy.deepcopy(base)
    ident = data["identification"]
    ident["title"] = title
    ident["summary"] = f"{title} : fiche de test."
    ident["owner"] = {"name": owner[0], "siren": owner[1]}
    ident["territory"] = owner[2]
    ident["theme"], ident["status"] = theme, status
    ident["keywords"] = keywords or []
    if project:
        ident["project"] = project
    data["model"]["task"] = task
    return Card.model_validate(data)


@pytest.fixture(scope="module")
def catalogue_models(
    registry: Registry, base_card: dict, sklearn_model_dir: Path
) -> dict[str, Card]:
    """Four models with distinct owners, themes, statuses, tasks and projects.

    Three carry the reference models' real cards (about 10,000 to 15,000 characters: past
    MLflow's 5,000-character tag limit on PostgreSQL), their searchable fields set here.
    """
    real = {name: reference_card(name).model_dump(mode="json") for name in REAL_SIZED}
    cards = {
        "eau-batiments": make_card(
            base_card,
            title="Consommation d'eau des bâtiments",
            keywords=["canalisations"],
            project="eau-patrimoine",
        ),
        "cantine-nantes": make_card(
            real["cantine-nantes"],
            title="Fréquentation des cantines scolaires",
            theme="education",
            status="production",
            task="prevision-serie-temporelle",
            project="cantines",
        ),
        "velo-comptages": make_card(
            real["velo-comptages"],
            title="Anomalies des compteurs vélo",
            theme="mobilites",
            status="pilote",
            task="detection-anomalies",
        ),
        "air-lille": make_card(
            real["air-lille"],
            title="Pics de pollution de l'air",
            owner=LILLE,
            theme="sante",
            status="pilote",
            task="prevision-serie-temporelle",
        ),
    }
    for name, card in cards.items():
        registry.register(name, sklearn_model_dir, card, actor="test", alias="production")
    return cards


REAL_SIZED = ("cantine-nantes", "velo-comptages", "air-lille")


def names(found) -> list[str]:
    return sorted(s.name for s in found)


# ------------------------------------------------------------- registration


def test_register_new_model_then_new_version_and_alias(
    registry: Registry, base_card: dict, sklearn_model_dir: Path
) -> None:
    card = make_card(base_card, title="Prévision des déchets verts", keywords=["déchets"])
    v1 = registry.register(
        "dechets-verts", sklearn_model_dir, card, actor="experte@nantes", alias="production"
    )
    assert (v1.name, v1.version, v1.aliases) == ("dechets-verts", 1, ["production"])
    assert v1.metrics == {"mae": 1.8} and v1.baseline_metrics == {"mae": 2.9}
    assert v1.registered_by == "experte@nantes"
    assert [i["name"] for i in v1.signature["inputs"]] == ["surface", "occupation", "temperature"]

    summary = registry.get("dechets-verts")
    assert summary.card == card
    assert summary.owner_siren == "244400404"
    assert summary.aliases == {"production": 1} and summary.latest_version == 1
    assert summary.tags["bibia.theme"] == "transition-ecologique"

    v2 = registry.register(
        "dechets-verts", sklearn_model_dir, card, actor="experte@nantes", metrics={"mae": 1.5}
    )
    assert v2.version == 2 and v2.aliases == [] and v2.metrics == {"mae": 1.5}
    registry.set_alias("dechets-verts", "candidat", 2)

    assert [(v.version, v.aliases) for v in registry.versions("dechets-verts")] == [
        (2, ["candidat"]),
        (1, ["production"]),
    ]
    assert registry.resolve(ModelRef.parse("dechets-verts@production")).version == 1
    assert registry.resolve(ModelRef.parse("dechets-verts/2")).version == 2
    assert registry.resolve(ModelRef.parse("dechets-verts")).version == 2  # the newest
    assert registry.get("dechets-verts").latest_version == 2

    registry.delete_alias("dechets-verts", "candidat")
    assert registry.get("dechets-verts").aliases == {"production": 1}


def test_unknown_model_version_and_alias_are_not_found(
    registry: Registry, catalogue_models: dict
) -> None:
    with pytest.raises(NotFound):
        registry.get("inconnu")
    assert not registry.exists("inconnu") and registry.exists("eau-batiments")
    with pytest.raises(NotFound):
        registry.version("eau-batiments", 99)
    with pytest.raises(NotFound):
        registry.resolve(ModelRef.parse("eau-batiments@absent"))
    with pytest.raises(NotFound):
        registry.delete_alias("eau-batiments", "absent")


# -------------------------------------------------------------------- search


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (CatalogueQuery(), ["air-lille", "cantine-nantes", "eau-batiments", "velo-comptages"]),
        (CatalogueQuery(q="batiments"), ["eau-batiments"]),  # accent-insensitive: "bâtiments"
        (CatalogueQuery(q="BÂTIMENTS eau"), ["eau-batiments"]),  # case-insensitive, words ANDed
        (CatalogueQuery(q="canalisations"), ["eau-batiments"]),  # keywords are searched too
        (CatalogueQuery(q="fréquentation"), ["cantine-nantes"]),
        (CatalogueQuery(q="introuvable"), []),
        (CatalogueQuery(q="l'air pollution"), ["air-lille"]),  # a quote in the query is harmless
        (CatalogueQuery(q="50%_"), []),  # LIKE wildcards are not wildcards
        (CatalogueQuery(theme="mobilites"), ["velo-comptages"]),
        (CatalogueQuery(owner="200093201"), ["air-lille"]),  # by SIREN
        (
            CatalogueQuery(owner="nantes"),
            ["cantine-nantes", "eau-batiments", "velo-comptages"],
        ),  # by name
        (CatalogueQuery(owner="Européenne"), ["air-lille"]),
        (
            CatalogueQuery(territory="loire-atlantique"),
            ["cantine-nantes", "eau-batiments", "velo-comptages"],
        ),
        (CatalogueQuery(status="pilote"), ["air-lille", "velo-comptages"]),
        (CatalogueQuery(task="prevision-serie-temporelle"), ["air-lille", "cantine-nantes"]),
        (CatalogueQuery(project="cantines"), ["cantine-nantes"]),
        (CatalogueQuery(status="pilote", theme="sante", owner="200093201"), ["air-lille"]),
        (CatalogueQuery(status="pilote", theme="education"), []),
    ],
)
def test_search_filters(
    registry: Registry, catalogue_models: dict, query: CatalogueQuery, expected: list[str]
) -> None:
    everything = registry.search(query)
    found = [s for s in everything if s.name in catalogue_models]
    assert names(found) == expected
    for summary in found:
        assert summary.card == catalogue_models[summary.name]
    # the paged search agrees with the full one: same order, same total (counted, not loaded)
    first, total = registry.search_page(query, 1, 2)
    assert total == len(everything)
    assert [s.name for s in first] == [s.name for s in everything[:2]]
    assert all(s.card is not None for s in first)


def test_search_is_sorted_by_name_and_pages_count_every_match(
    registry: Registry, db, catalogue_models: dict
) -> None:
    everything = registry.search()
    assert [s.name for s in everything] == sorted(s.name for s in everything)
    query = CatalogueQuery(owner="244400404")
    total = len(registry.search(query))
    assert total >= 3
    with db.session() as session:  # the listing pages in bibia's catalogue index
        pages = [
            catalogue.list_models(session, registry, ANONYMOUS, query, page, 2)
            for page in range(1, total // 2 + 3)
        ]
    assert all(p["total"] == total for p in pages)
    seen = [item["name"] for p in pages for item in p["items"]]
    assert seen == [s.name for s in registry.search(query)]  # every match once, in order
    assert (
        len(pages[0]["items"]) == 2 and pages[-1]["items"] == []
    )  # past the end: empty, same total
    with pytest.raises(InvalidInput):
        registry.search_page(query, 0, 20)
    # a public caller never sees restricted fields
    first = pages[0]["items"][0]
    assert "lessons_learned" not in first["card"]["accountability"]


# -------------------------------------------------------------------- card


def test_card_update_replaces_the_card_and_its_search_tags(
    registry: Registry, base_card: dict, sklearn_model_dir: Path
) -> None:
    registry.register(
        "eclairage-public",
        sklearn_model_dir,
        make_card(base_card, title="Éclairage public nocturne"),
        actor="t",
    )
    updated = make_card(
        base_card,
        title="Maintenance prédictive des lampadaires",
        theme="maintenance",
        status="pilote",
    )
    summary = registry.update_card("eclairage-public", updated)
    assert summary.card == updated
    assert summary.tags["bibia.theme"] == "maintenance" and summary.tags["bibia.status"] == "pilote"
    assert "eclairage-public" in names(registry.search(CatalogueQuery(q="lampadaires")))
    assert "eclairage-public" not in names(registry.search(CatalogueQuery(q="nocturne")))
    assert "eclairage-public" in names(registry.search(CatalogueQuery(theme="maintenance")))
    # versions keep the card they were registered with
    with pytest.raises(NotFound):
        registry.update_card("absent-du-catalogue", updated)


def test_real_sized_cards_live_in_the_card_store_and_tags_stay_within_mlflow_limits(
    registry: Registry, catalogue_models: dict, base_card: dict, sklearn_model_dir: Path
) -> None:
    for name in REAL_SIZED:
        card = catalogue_models[name]
        assert len(card.model_dump_json()) > 5000  # the tag limit on PostgreSQL
        summary = registry.get(name)
        assert summary.card == card and CARD_TAG not in summary.tags
        assert registry.cards.of_version(name, 1) == card
    client = registry._client
    assert all(
        len(value) <= 5000 for value in client.get_registered_model("velo-comptages").tags.values()
    )
    # Searchable text past the limit (30 keywords of 300 characters) is cut, at a word, and found.
    long_words = [f"mot{i:02d} " + "x" * 290 for i in range(30)]
    long_card = make_card(base_card, title="Mots-clés très longs", keywords=long_words)
    assert len(long_card.search_text()) > 5000
    registry.register("mots-longs", sklearn_model_dir, long_card, actor="t")
    tags = client.get_registered_model("mots-longs").tags
    assert 4800 < len(tags["bibia.search"]) <= 5000 and not tags["bibia.search"].endswith("x x")
    assert registry.get("mots-longs").card == long_card
    assert names(registry.search(CatalogueQuery(q="mot00"))) == ["mots-longs"]


def test_a_card_left_in_the_tag_by_an_earlier_catalogue_is_read_then_moved(
    registry: Registry, base_card: dict
) -> None:
    """A catalogue deployed before the card store kept the card in ``bibia.card``."""
    card = make_card(base_card, title="Catalogue ancien", keywords=["heritage"])
    client = registry._client
    tags = {**card.search_tags(), CARD_TAG: card.model_dump_json()}
    client.create_registered_model("ancien-modele", tags=tags)
    client.create_model_version("ancien-modele", source="file:///nulle-part", tags={})
    assert registry.get("ancien-modele").card == card  # read from the tag
    assert "ancien-modele" in names(registry.search(CatalogueQuery(q="heritage")))

    assert "ancien-modele" in registry.move_legacy_cards()
    assert CARD_TAG not in client.get_registered_model("ancien-modele").tags
    assert registry.cards.of_version("ancien-modele", 1) == card
    summary = registry.get("ancien-modele")
    assert summary.card == card
    assert registry.move_legacy_cards() == []  # once only


# -------------------------------------------------------- all or nothing


def _boom(*_args, **_kwargs):
    raise MlflowException("panne injectée par le test")


def _leftovers(registry: Registry, name: str) -> dict:
    client = registry._client
    experiment = client.get_experiment_by_name(f"bibia/{name}")
    active_runs = [] if experiment is None else client.search_runs([experiment.experiment_id])
    return {
        "models": [
            rm.name for rm in client.search_registered_models(filter_string=f"name = '{name}'")
        ],
        "versions": [mv.version for mv in client.search_model_versions(f"name = '{name}'")],
        "active_runs": [r.info.run_id for r in active_runs],
    }


def test_failed_registration_of_a_new_model_leaves_nothing(
    registry: Registry, base_card: dict, sklearn_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The alias is the last step: the run, artifacts, model, version and card tags exist when it fails.
    monkeypatch.setattr(registry._client, "set_registered_model_alias", _boom)
    with pytest.raises(RegistryUnavailable):
        registry.register(
            "rate-en-route",
            sklearn_model_dir,
            make_card(base_card, title="Échec"),
            actor="t",
            alias="production",
        )
    assert _leftovers(registry, "rate-en-route") == {
        "models": [],
        "versions": [],
        "active_runs": [],
    }
    assert not registry.exists("rate-en-route")
    assert "rate-en-route" not in names(registry.search(CatalogueQuery(q="echec")))


def test_failed_new_version_keeps_the_previous_card_and_versions(
    registry: Registry, base_card: dict, sklearn_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make_card(base_card, title="Arrosage des espaces verts", keywords=["arrosage"])
    registry.register("arrosage", sklearn_model_dir, first, actor="t", alias="production")
    before = registry.get("arrosage")
    client = registry._client
    real_tag = client.set_registered_model_tag
    calls = {"n": 0}

    def tag_then_fail(name, key, value):
        calls["n"] += 1
        if calls["n"] == 4:  # midway through the card tags, after the new version exists
            raise MlflowException("panne injectée par le test")
        return real_tag(name, key, value)

    monkeypatch.setattr(client, "set_registered_model_tag", tag_then_fail)
    second = make_card(
        base_card, title="Irrigation intelligente", theme="urbanisme", status="production"
    )
    with pytest.raises(RegistryUnavailable):
        registry.register("arrosage", sklearn_model_dir, second, actor="t", alias="production")
    monkeypatch.undo()

    after = registry.get("arrosage")
    assert after.card == first and after.tags == before.tags
    assert after.aliases == {"production": 1}
    assert [v.version for v in registry.versions("arrosage")] == [1]
    assert registry.cards.of_version("arrosage", 2) is None
    assert _leftovers(registry, "arrosage")["active_runs"] == [
        registry.version("arrosage", 1).run_id
    ]


# ---------------------------------------------------------------- artifacts


def test_artifacts_listing_and_local_copy(registry: Registry, catalogue_models: dict) -> None:
    listing = {f.path: f for f in registry.list_artifacts("eau-batiments", 1)}
    assert {"MLmodel", "README.md", "bibia"} <= set(listing)
    assert listing["bibia"].is_dir and listing["MLmodel"].size > 0
    assert [f.path for f in registry.list_artifacts("eau-batiments", 1, "bibia")] == [
        "bibia/card.json"
    ]
    card_file = registry.artifact_path("eau-batiments", 1, "bibia/card.json")
    assert (
        Card.model_validate_json(card_file.read_text(encoding="utf-8"))
        == catalogue_models["eau-batiments"]
    )
    copy_dir = registry.local_copy("eau-batiments", 1)
    assert (copy_dir / "MLmodel").is_file() and copy_dir == registry.local_copy("eau-batiments", 1)
    assert registry.local_copy_of(registry.version("eau-batiments", 1)) == copy_dir
    assert "Consommation d'eau" in (copy_dir / "README.md").read_text(encoding="utf-8")
    with pytest.raises(InvalidInput):
        registry.artifact_path("eau-batiments", 1, "../../mlflow.db")
    with pytest.raises(NotFound):
        registry.artifact_path("eau-batiments", 1, "absent.txt")
