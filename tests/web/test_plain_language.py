"""Plain language on bibia's pages: French labels and explanations, French figures, no codes or None.

The model registered here carries the real reference card of cantine-nantes
(``demos/cantine/card.yaml``, filled by ``demos.cantine.card`` with made-up
figures), so the page shows what a visitor of the real catalogue reads.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from demos.cantine.card import card as cantine_card
from tests.conftest import World, make_world, register
from tests.web.webdata import sign_in

NAME = "cantine-nantes"
METRICS = {
    "mae": 12.345,
    "wmape": 0.0812,
    "surproduction": 0.0541,
    "jours_en_deficit": 1.0,
    "part_cantine_jours_en_deficit": 0.171,
    "n_jours_test": 131.0,
}
BASELINE = {
    "mae": 15.01,
    "wmape": 0.1046,
    "surproduction": 0.064,
    "jours_en_deficit": 0.0,
    "part_cantine_jours_en_deficit": 0.02,
    "n_jours_test": 131.0,
}

# What no person should ever read on a page: Python's None, « (s) » plurals, FastAPI's English,
# tiers by their code, a figure in English notation, a test-day count judged against a baseline.
FORBIDDEN = [
    re.compile(r"\bNone\b"),
    re.compile(r"\bnan\b"),
    re.compile(r"\(s\)"),
    re.compile(r"\(x\)"),
    re.compile(r"Successful Response|Validation Error"),
    re.compile(r"\brestricted\b"),
    re.compile(r"\d\.\d+\s?%"),  # « 5.4% »
    re.compile(r"\d%"),  # a percent sign glued to its number
    re.compile(r"\bwMAPE\b|\bMAE\b"),
    re.compile(r"`"),
]


@pytest.fixture(scope="module")
def world(sklearn_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from bibia.settings import Settings

    tmp = tmp_path_factory.mktemp("plain")
    world = make_world(Settings(data_dir=tmp / "data", seed_on_start=False, runner="none"))
    with world.client:
        card = cantine_card(METRICS, BASELINE, validation={"part_deficit_visee": 0.17})
        card["identification"].pop("project")  # the project records are the seed's
        response = register(world, sklearn_model_dir, card, name=NAME)
        assert response.status_code == 201, response.text
        yield world


def text_of(page: str) -> str:
    """What a person reads: the page without its tags, scripts and styles, entities decoded."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def flat(page: str) -> str:
    """The text of ``page`` on one line (no-break spaces kept: they are part of the figures)."""
    return re.sub(r"[ \t\n]+", " ", text_of(page))


def assert_plain(page: str, where: str) -> None:
    shown = text_of(page)
    found = [(p.pattern, m.group(0)) for p in FORBIDDEN for m in [p.search(shown)] if m]
    assert not found, f"{where} shows {found}"
    for value in re.findall(r'(?:value|content|alt|title|aria-label)="([^"]*)"', page):
        assert value != "None", f"{where}: an attribute reads None"


def model_page(client: TestClient) -> str:
    response = client.get(f"/modeles/{NAME}")
    assert response.status_code == 200, response.text
    return response.text


def test_each_metric_has_its_french_label_explanation_and_unit(world: World) -> None:
    page = model_page(world.client)
    shown = flat(page)
    nn, nb = "\u202f", "\u00a0"
    assert "Erreur absolue moyenne" in shown
    assert "Écart moyen entre les repas prévus et les repas servis" in shown  # the explanation
    assert f"12,35{nb}repas" in page and f"15,01{nb}repas" in page
    assert f"8,1{nn}%" in page and f"10,5{nn}%" in page  # wMAPE, as a percentage
    assert f"5,4{nn}%" in page and f"6,4{nn}%" in page  # surproduction
    assert f"1{nb}jour<" in page  # one day short, in the singular
    assert "(code : <code>mae</code>)" in page  # the code only as a secondary mention
    # the card's prose: French figures, the day in the singular, no column name
    # against the named baseline, the staff's orders, never an internal target
    assert f"repas commandés en trop 5,4{nn}% contre 6,4{nn}% pour les équipes" in shown
    assert "commande totale insuffisante 1 jour sur 131 (équipes : 0 jour)" in shown
    assert not re.search(r"\bvisés\b|Objectif non atteint", shown)


def test_a_count_of_test_days_is_a_fact_not_a_metric_with_a_verdict(world: World) -> None:
    page = model_page(world.client)
    facts = re.search(r'<ul class="liste-simple contexte-evaluation".*?</ul>', page, re.S)
    assert facts and "Jours évalués" in facts.group(0) and "131\u00a0jours" in facts.group(0)
    table = re.search(
        r"<table class=\"tableau[^\"]*\">\s*<caption>Métriques du modèle.*?</table>", page, re.S
    )
    assert table, "the declared metrics' table"
    rows = re.findall(r"<tr>.*?</tr>", table.group(0), re.S)
    assert len(rows) == 1 + 5  # the header and the five scores
    assert "Jours évalués" not in table.group(0) and "n_jours_test" not in table.group(0)
    # the versions table states the fact too, without comparing it
    versions = page[page.index('id="s-versions"') :]
    line = re.search(r"<li>Jours évalués : .*?</li>", versions, re.S)
    assert line and "contre" not in line.group(0) and "verdict" not in line.group(0)


def test_the_version_is_registered_by_a_person_not_a_token(world: World) -> None:
    member = TestClient(world.app)
    sign_in(member, world.tokens["member"], f"/modeles/{NAME}")
    page = model_page(member)
    versions = page[page.index('id="s-versions"') :]
    assert "jeton" not in versions and "None" not in versions


def test_the_catalogue_card_shows_the_key_metric_in_french(world: World) -> None:
    response = world.client.get("/catalogue", params={"q": "cantine"})
    assert response.status_code == 200
    shown = flat(response.text)
    assert "Erreur absolue moyenne" in shown
    assert "12,35\u00a0repas contre 15,01\u00a0repas pour la référence" in shown
    assert "meilleur que la référence" in shown


PUBLIC_PAGES = [
    ("/", 200),
    ("/catalogue", 200),
    ("/catalogue?q=cantine", 200),
    ("/catalogue?q=rien-ne-correspond", 200),
    ("/projets", 200),
    (f"/modeles/{NAME}", 200),
    ("/taches", 200),
    ("/taches/cantine-frequentation", 200),
    (f"/comparer?modeles={NAME}/1", 200),
    ("/connexion", 200),
    ("/page-qui-n-existe-pas", 404),
    ("/modeles/inconnu", 404),
]


@pytest.mark.parametrize(("path", "status"), PUBLIC_PAGES)
def test_no_page_shows_codes_none_or_english_figures(world: World, path: str, status: int) -> None:
    response = world.client.get(path, headers={"Accept": "text/html"})
    assert response.status_code == status, (path, response.status_code)
    assert_plain(response.text, path)


@pytest.mark.parametrize("role", ["member", "expert", "admin"])
def test_signed_in_pages_are_plain_too(world: World, role: str) -> None:
    client = TestClient(world.app)
    sign_in(client, world.tokens[role], "/")
    for path in [f"/modeles/{NAME}", "/catalogue", "/mes-demonstrateurs", "/taches"]:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        assert_plain(response.text, f"{path} ({role})")


def test_a_refusal_names_the_tier_as_people_say_it(world: World) -> None:
    """A member asking what is for administrators is told their level is « membre »."""
    response = world.client.get("/api/v1/tokens", headers=world.headers("member"))
    assert response.status_code == 403
    body = response.json()
    assert "« membre »" in body["message"] and "restricted" not in body["message"], body
    assert body["error"] == "acces_refuse"  # the machine code stays stable
