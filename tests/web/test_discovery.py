"""Discovery in-process: one search over projects and models, filters with counts, sorts, one empty state.

The world is the web tests' (a project and two models of Nantes) plus a
canteen project of Lille (with a retex that only members may read), a canteen
model of each collectivité, a reference benchmark of the canteen task and
verified evaluations of both canteen models on it (rows as the worker leaves
them), and one verified evaluation on a benchmark that is not the reference.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from evaluation import tasks
from tests.conftest import EXAMPLE_CARD, World, make_world, register
from tests.evaluations_api.conftest import register_benchmark
from tests.web.webdata import (
    MODEL,
    OTHER,
    PROJECT,
    PROJECT_SLUG,
    model_card,
    model_with_chart,
    other_card,
)

HTML = {"accept": "text/html"}

CANTINE_PROJECT = "cantines-lille"
CANTINE_LILLE = "cantine-lille"
CANTINE_NANTES = "cantine-nantes-essai"
REFERENCE = "cantines-reference"
OTHER_BENCHMARK = "cantines-autre"
SECRET = "zorglub"  # a word of the Lille project's retex (restricted): never matched nor shown
LILLE = {"name": "Métropole Européenne de Lille", "siren": "200093201"}

LILLE_PROJECT = {
    "slug": CANTINE_PROJECT,
    "title": "Prévoir la fréquentation des cantines scolaires",
    "summary": "Commander au plus juste les repas des écoles pour réduire le gaspillage.",
    "owners": [LILLE],
    "territory": "Métropole Européenne de Lille",
    "theme": "education",
    "status": "experimentation",
    "keywords": ["restauration scolaire", "gaspillage"],
    "public_contact": "donnees@lillemetropole.fr",
    "lessons_learned": f"Retex du projet : le mot {SECRET} ne doit jamais sortir des membres.",
}

# name -> (title, owner, territory, theme, status, project)
CANTINE_MODELS = {
    CANTINE_LILLE: (
        "Prévision de la fréquentation des cantines de Lille",
        LILLE,
        "Métropole Européenne de Lille",
        "education",
        "pilote",
        CANTINE_PROJECT,
    ),
    CANTINE_NANTES: (
        "Cantines nantaises : repas servis",
        {"name": "Nantes Métropole", "siren": "244400404"},
        "Nantes Métropole (Loire-Atlantique)",
        "education",
        "production",
        None,
    ),
}
# Verified wMAPE (baseline 0.20): Nantes 0.12 (40 % better), Lille 0.15 (25 % better).
WMAPE = {CANTINE_NANTES: 0.12, CANTINE_LILLE: 0.15}
BASELINE_WMAPE = 0.20


def cantine_card(card_data: dict, name: str) -> dict:
    title, owner, territory, theme, status, project = CANTINE_MODELS[name]
    card = json.loads(json.dumps(card_data, default=str))
    card["identification"].update(
        title=title,
        summary="Prévoit chaque jour le nombre de repas servis dans chaque cantine.",
        owner=owner,
        territory=territory,
        theme=theme,
        status=status,
        keywords=["repas", "écoles"],
    )
    if project:
        card["identification"]["project"] = project
    card["model"]["task"] = "prevision-serie-temporelle"
    for key in ("contacts", "team", "lessons_learned"):
        card["accountability"].pop(key, None)
    return card


def _evaluation(world: World, model: str, benchmark: str, wmape: float, minutes: int) -> None:
    """A done verified evaluation of ``model`` v1 on ``benchmark``, as the worker leaves it."""
    from sqlalchemy import select

    from bibia.db.models import Benchmark, Evaluation, Organisation

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=minutes)
    with world.services.db.session() as session:
        bench = session.scalar(select(Benchmark).where(Benchmark.slug == benchmark))
        org = session.scalar(select(Organisation.id).where(Organisation.slug == "nantes-metropole"))
        assert bench is not None and org is not None
        session.add(
            Evaluation(
                id=secrets.token_hex(16),
                kind="benchmark",
                state="done",
                progress=1.0,
                model_name=model,
                model_version=1,
                model_ref=f"{model}/1",
                task=bench.task,
                benchmark_id=bench.id,
                n_rows=60,
                organisation_id=org,
                requested_by="experte@nantes-metropole",
                created_at=now,
                started_at=now,
                finished_at=now,
                metrics={"wmape": wmape, "mae": wmape * 100},
                baseline_metrics={"wmape": BASELINE_WMAPE, "mae": BASELINE_WMAPE * 100},
            )
        )


def build_discovery(world: World, model_dir: Path, tmp: Path) -> None:
    """Fill ``world`` (its client open) with the discovery data, in creation order (the « récents » sort)."""
    from sqlalchemy import update

    from bibia.db.models import Benchmark

    card_data = yaml.safe_load(EXAMPLE_CARD.read_text(encoding="utf-8"))
    expert, lille = world.headers("expert"), world.headers("other_expert")
    response = world.client.put(f"/api/v1/projects/{PROJECT_SLUG}", json=PROJECT, headers=expert)
    assert response.status_code == 201, response.text
    charted = model_with_chart(model_dir, tmp / "charted")
    response = register(world, charted, model_card(card_data), name=MODEL)
    assert response.status_code == 201, response.text
    response = register(world, model_dir, other_card(card_data), name=OTHER, alias=None)
    assert response.status_code == 201, response.text
    response = world.client.put(
        f"/api/v1/projects/{CANTINE_PROJECT}", json=LILLE_PROJECT, headers=lille
    )
    assert response.status_code == 201, response.text
    lille_card = cantine_card(card_data, CANTINE_LILLE)
    response = register(world, model_dir, lille_card, name=CANTINE_LILLE, role="other_expert")
    assert response.status_code == 201, response.text
    response = register(
        world, model_dir, cantine_card(card_data, CANTINE_NANTES), name=CANTINE_NANTES
    )
    assert response.status_code == 201, response.text
    for slug in (REFERENCE, OTHER_BENCHMARK):
        response = register_benchmark(world, slug, "public")
        assert response.status_code == 201, response.text
    with world.services.db.session() as session:  # as `bibia seed` registers a reference build's
        session.execute(update(Benchmark).where(Benchmark.slug == REFERENCE).values(reference=True))
    for minutes, (model, wmape) in enumerate(WMAPE.items()):
        _evaluation(world, model, REFERENCE, wmape, minutes + 1)
    # A better score of the bike model, on a benchmark that is not the reference: it does not count.
    _evaluation(world, OTHER, OTHER_BENCHMARK, 0.01, 3)


@pytest.fixture(scope="module")
def disco(sklearn_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from bibia.settings import Settings

    tmp = tmp_path_factory.mktemp("decouverte")
    world = make_world(Settings(data_dir=tmp / "data", seed_on_start=False, runner="none"))
    with world.client:
        build_discovery(world, sklearn_model_dir, tmp)
        yield world


# ------------------------------------------------------------------ helpers


def get(world: World, path: str, role: str | None = None) -> str:
    response = world.client.get(path, headers={**HTML, **world.headers(role)})
    assert response.status_code == 200, (path, response.status_code, response.text[:500])
    return response.text


def results(page: str) -> list[tuple[str, str]]:
    """The results in order, as (kind label, link) — « Modèle » or « Projet », and the card's page."""
    return re.findall(
        r'<p class="carte-type[^"]*">(\w+)</p>\s*<h2 class="carte-titre"><a href="(/[^"]+)"', page
    )


def options(page: str, name: str) -> dict[str, str]:
    """A filter's options: value -> its shown text (without the « all » option)."""
    select = re.search(rf'<select id="f-{name}" name="{name}">(.*?)</select>', page, re.S)
    assert select, f"no {name} filter"
    found = re.findall(r'<option value="([^"]+)"[^>]*>([^<]*)</option>', select.group(1))
    return {html.unescape(v): html.unescape(t) for v, t in found}


def selected(page: str, name: str) -> str | None:
    select = re.search(rf'<select id="f-{name}" name="{name}">(.*?)</select>', page, re.S)
    assert select
    found = re.search(r'<option value="([^"]*)" selected>', select.group(1))
    return html.unescape(found.group(1)) if found else None


def status_line(page: str) -> str:
    found = re.findall(r'<p class="resultats" role="status">(.*?)</p>', page, re.S)
    assert len(found) == 1, found
    return html.unescape(re.sub(r"<[^>]+>", "", found[0])).strip()


# ------------------------------------------------------------------ search


def test_one_search_finds_the_project_and_the_models_each_labelled(disco: World) -> None:
    page = get(disco, "/catalogue?q=cantine")
    assert sorted(results(page)) == [
        ("Modèle", f"/modeles/{CANTINE_LILLE}"),
        ("Modèle", f"/modeles/{CANTINE_NANTES}"),
        ("Projet", f"/projets/{CANTINE_PROJECT}"),
    ]
    assert status_line(page) == "3 résultats pour « cantine »"
    assert "<h1>Rechercher dans le catalogue</h1>" in page
    # accents and case do not matter, every word must match
    assert len(results(get(disco, "/catalogue?q=CANTINES+Fréquentation"))) == 2


def test_the_words_match_the_collectivite_and_the_territory_as_the_api_does(disco: World) -> None:
    for q, expected in (
        ("lille", {f"/modeles/{CANTINE_LILLE}", f"/projets/{CANTINE_PROJECT}"}),
        ("200093201", {f"/modeles/{CANTINE_LILLE}", f"/projets/{CANTINE_PROJECT}"}),  # its SIREN
        ("loire-atlantique", {f"/modeles/{n}" for n in (MODEL, OTHER, CANTINE_NANTES)}),
    ):
        assert {link for _, link in results(get(disco, f"/catalogue?q={q}"))} == expected, q
        models = disco.client.get("/api/v1/models", params={"q": q}).json()["items"]
        projects = disco.client.get("/api/v1/projects", params={"q": q}).json()["items"]
        api = {f"/modeles/{m['name']}" for m in models} | {
            f"/projets/{p['slug']}" for p in projects
        }
        assert api == expected, q


def test_the_type_filter_and_its_counts(disco: World) -> None:
    page = get(disco, "/catalogue?q=cantine")
    assert options(page, "type") == {"modele": "Modèles (2)", "projet": "Projets (1)"}
    page = get(disco, "/catalogue?q=cantine&type=projet")
    assert results(page) == [("Projet", f"/projets/{CANTINE_PROJECT}")]
    assert selected(page, "type") == "projet"
    # the type's own counts ignore the type chosen; the others count projects only
    assert options(page, "type") == {"modele": "Modèles (2)", "projet": "Projets (1)"}
    assert options(page, "theme") == {"education": "Éducation (1)"}
    page = get(disco, "/catalogue?type=modele")
    assert {kind for kind, _ in results(page)} == {"Modèle"} and len(results(page)) == 4


def test_each_filter_lists_only_options_with_results_and_their_counts(disco: World) -> None:
    page = get(disco, "/catalogue")
    assert options(page, "theme") == {
        "transition-ecologique": "Transition écologique (2)",
        "mobilites": "Mobilités (1)",
        "education": "Éducation (3)",
    }
    assert options(page, "owner") == {
        "Métropole Européenne de Lille": "Métropole Européenne de Lille (2)",
        "Nantes Métropole": "Nantes Métropole (4)",
    }
    assert options(page, "task") == {
        "regression": "Régression (1)",
        "detection-anomalies": "Détection d'anomalies (1)",
        "prevision-serie-temporelle": "Prévision de série temporelle (2)",
    }
    assert options(page, "status") == {
        "experimentation": "Expérimentation (2)",
        "pilote": "Pilote (3)",
        "production": "En production (1)",
    }
    assert "Retiré" not in page and "Santé" not in page  # options with nothing behind them
    page = get(disco, "/catalogue?q=cantine")
    assert options(page, "theme") == {"education": "Éducation (3)"}
    assert options(page, "owner") == {
        "Métropole Européenne de Lille": "Métropole Européenne de Lille (2)",
        "Nantes Métropole": "Nantes Métropole (1)",
    }
    assert options(page, "territory") == {
        "Métropole Européenne de Lille": "Métropole Européenne de Lille (2)",
        "Nantes Métropole (Loire-Atlantique)": "Nantes Métropole (Loire-Atlantique) (1)",
    }
    # a filter narrows the others' counts, not its own
    page = get(disco, "/catalogue?owner=Nantes+M%C3%A9tropole")
    assert options(page, "owner")["Métropole Européenne de Lille"].endswith("(2)")
    assert options(page, "theme") == {
        "transition-ecologique": "Transition écologique (2)",
        "mobilites": "Mobilités (1)",
        "education": "Éducation (1)",
    }
    assert len(results(page)) == 4


def test_the_chosen_option_stays_visible_at_zero(disco: World) -> None:
    page = get(disco, "/catalogue?q=cantine&theme=mobilites")
    assert selected(page, "theme") == "mobilites"
    assert options(page, "theme") == {"mobilites": "Mobilités (0)", "education": "Éducation (3)"}
    # a part of a name (as a link may carry it) stays chosen, with its count
    page = get(disco, "/catalogue?owner=Lille")
    assert selected(page, "owner") == "Lille"
    assert options(page, "owner")["Lille"] == "Lille (2)"
    assert len(results(page)) == 2


def test_the_projects_page_shares_the_search(disco: World) -> None:
    page = get(disco, "/projets?q=cantine")
    assert re.findall(r'<h2 class="carte-titre"><a href="(/[^"]+)"', page) == [
        f"/projets/{CANTINE_PROJECT}"
    ]
    assert status_line(page) == "1 projet pour « cantine »"
    assert 'id="f-type"' not in page and 'id="f-task"' not in page
    assert options(get(disco, "/projets"), "theme") == {
        "transition-ecologique": "Transition écologique (1)",
        "education": "Éducation (1)",
    }
    assert "Meilleur score vérifié" not in page  # projects have no score
    assert status_line(get(disco, "/projets")) == "2 projets"


# ------------------------------------------------------------------ sorts


def links(page: str) -> list[str]:
    return [link for _, link in results(page)]


def test_sort_most_recent_first_by_default(disco: World) -> None:
    newest_first = [
        f"/modeles/{CANTINE_NANTES}",
        f"/modeles/{CANTINE_LILLE}",
        f"/projets/{CANTINE_PROJECT}",
        f"/modeles/{OTHER}",
        f"/modeles/{MODEL}",
        f"/projets/{PROJECT_SLUG}",
    ]
    page = get(disco, "/catalogue")
    assert links(page) == newest_first
    assert selected(page, "sort") == "recents"
    assert links(get(disco, "/catalogue?sort=recents")) == newest_first


def test_sort_by_title(disco: World) -> None:
    assert links(get(disco, "/catalogue?sort=titre")) == [
        f"/modeles/{CANTINE_NANTES}",  # Cantines nantaises
        f"/modeles/{OTHER}",  # Détection d'anomalies
        f"/modeles/{MODEL}",  # Prévision de la consommation
        f"/modeles/{CANTINE_LILLE}",  # Prévision de la fréquentation
        f"/projets/{CANTINE_PROJECT}",  # Prévoir
        f"/projets/{PROJECT_SLUG}",  # Suivi
    ]


def test_sort_by_best_verified_score_explains_itself(disco: World) -> None:
    page = get(disco, "/catalogue?sort=score")
    assert selected(page, "sort") == "score"
    assert links(page) == [
        f"/modeles/{CANTINE_NANTES}",  # 40 % better than the baseline
        f"/modeles/{CANTINE_LILLE}",  # 25 % better
        # then the rest, newest first: the bike model's score is on another benchmark
        f"/projets/{CANTINE_PROJECT}",
        f"/modeles/{OTHER}",
        f"/modeles/{MODEL}",
        f"/projets/{PROJECT_SLUG}",
    ]
    text = html.unescape(page)
    assert "jeu d'évaluation de référence de la tâche" in text  # the definition, on the page
    wmape = next(m.label for m in tasks.get("cantine-frequentation").metrics if m.name == "wmape")
    assert (
        "Score vérifié par bibia</strong> (version 1) : 40\u202f% meilleur que la référence"
        f" — {wmape}</p>"
    ) in text
    assert "25\u202f% meilleur que la référence" in text
    assert text.count("Pas encore de score vérifié") == 2  # the two other models
    # the sort is kept by the filters' links and the pagination
    empty = html.unescape(get(disco, "/catalogue?sort=score&q=cantine&theme=mobilites"))
    assert 'href="/catalogue?q=cantine&sort=score"' in empty


def test_an_unknown_sort_or_filter_is_said_and_ignored(disco: World) -> None:
    page = html.unescape(get(disco, "/catalogue?sort=prix&type=video&page=abc"))
    assert "tri « prix » inconnu : les résultats vont du plus récent au plus ancien." in page
    assert "type « video » inconnu : ce filtre est ignoré." in page
    assert len(results(page)) == 6


# ------------------------------------------------------------------ empty state, plurals, tiers


def test_one_empty_state_with_removable_filters(disco: World) -> None:
    page = html.unescape(get(disco, "/catalogue?q=cantine&theme=mobilites&status=pilote"))
    assert results(page) == []
    assert page.count("ne correspond") == 1 and 'class="resultats"' not in page
    assert "Aucun résultat ne correspond</strong> à « cantine » avec ces filtres." in page
    removals = dict(
        (text, href)
        for href, text in re.findall(r'<li><a href="([^"]+)">Retirer ([^<]+)</a></li>', page)
    )
    assert removals == {
        "la recherche « cantine »": "/catalogue?theme=mobilites&status=pilote",
        "le filtre « Thème : Mobilités »": "/catalogue?q=cantine&status=pilote",
        "le filtre « Statut : Pilote »": "/catalogue?q=cantine&theme=mobilites",
    }
    assert "Effacer tous les filtres" in page
    # words alone: one message, the search to remove
    page = html.unescape(get(disco, "/catalogue?q=introuvable"))
    assert page.count("ne correspond") == 1
    assert "Aucun résultat ne correspond</strong> à « introuvable »." in page
    page = html.unescape(get(disco, "/projets?q=introuvable"))
    assert "Aucun projet ne correspond</strong> à « introuvable »." in page


def test_french_plurals_and_no_raw_codes(disco: World) -> None:
    assert status_line(get(disco, "/catalogue?q=gaspillage")) == "1 résultat pour « gaspillage »"
    assert status_line(get(disco, "/catalogue?q=cantine")) == "3 résultats pour « cantine »"
    home = html.unescape(get(disco, "/"))
    assert "1 modèle · 0 projet" in home  # Mobilités: the bike model only
    assert "2 modèles · 1 projet" in home  # Éducation
    assert "0 modèles" not in home and "0 projets" not in home
    project = html.unescape(get(disco, "/catalogue?q=cantine&type=projet"))
    assert "1 modèle partagé" in project
    for page in (home, project, html.unescape(get(disco, "/catalogue?sort=score"))):
        assert "None" not in page
        for raw in ("prevision-serie-temporelle</", "transition-ecologique</", ">education<"):
            assert raw not in page


def test_a_restricted_field_is_never_matched_nor_counted(disco: World) -> None:
    for role in (None, "member", "expert"):
        page = get(disco, f"/catalogue?q={SECRET}", role)
        assert results(page) == [] and "Aucun résultat ne correspond" in html.unescape(page)
        assert options(page, "type") == {} and options(page, "theme") == {}
        assert get(disco, f"/projets?q={SECRET}", role).count("carte-titre") == 0
    # the API's search agrees (the retex is a restricted field, whoever asks)
    assert disco.client.get("/api/v1/projects", params={"q": SECRET}).json()["total"] == 0
    # the project itself is found by its public words, and its retex is not on the public page
    page = get(disco, "/catalogue?q=gaspillage")
    assert links(page) == [f"/projets/{CANTINE_PROJECT}"] and SECRET not in page


def test_the_header_search_box_on_every_page_and_the_home_points_to_the_search(
    disco: World,
) -> None:
    for path in ("/", "/catalogue", f"/modeles/{MODEL}", f"/projets/{PROJECT_SLUG}", "/taches"):
        page = get(disco, path)
        header = re.search(r'<form class="recherche-entete"[^>]*>(.*?)</form>', page, re.S)
        assert header, path
        assert 'action="/catalogue"' in page and 'role="search"' in page
        assert '<input id="recherche-entete" name="q"' in header.group(1)
        assert '<label for="recherche-entete">' in header.group(1)
    home = get(disco, "/")
    hero = re.search(r'<form class="recherche" method="get" action="/catalogue"', home)
    assert hero and 'href="/catalogue?type=modele"' in home
