"""The web pages in a real browser (Debian's Chromium driven by Playwright) against a real service.

The service runs in a subprocess (``live_server``); organisations and tokens
are created with the real CLI, models registered through the API.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import EXAMPLE_CARD, tar_model
from tests.web.webdata import (
    MODEL,
    OTHER,
    PROJECT,
    PROJECT_SLUG,
    RESTRICTED,
    model_card,
    model_with_chart,
    nantes_with_tokens,
    other_card,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def live_site(live_server, sklearn_model_dir: Path, tmp_path: Path) -> dict:
    """The live service with a project and two models, set up with the CLI and the API."""
    tokens = nantes_with_tokens(live_server.data_dir, "web")
    headers = {"Authorization": f"Bearer {tokens['expert']}"}
    card_data = yaml.safe_load(EXAMPLE_CARD.read_text(encoding="utf-8"))
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=60) as api:
        assert api.put(f"/api/v1/projects/{PROJECT_SLUG}", json=PROJECT).status_code == 201
        charted = model_with_chart(sklearn_model_dir, tmp_path / "charted")
        for name, model_dir, card, alias in (
            (MODEL, charted, model_card(card_data), "production"),
            (OTHER, sklearn_model_dir, other_card(card_data), None),
        ):
            files = {
                "card": (
                    "fiche.yaml",
                    yaml.safe_dump(card, allow_unicode=True).encode(),
                    "application/yaml",
                ),
                "model": ("model.tar.gz", tar_model(model_dir), "application/gzip"),
            }
            response = api.post(
                f"/api/v1/models/{name}/versions",
                files=files,
                data={"alias": alias} if alias else {},
            )
            assert response.status_code == 201, response.text
    return {"url": live_server.url, "tokens": tokens}


@pytest.fixture
def page(chromium, live_site: dict):
    context = chromium.new_context(
        base_url=live_site["url"], locale="fr-FR", viewport={"width": 1280, "height": 900}
    )
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    context.close()


def card_names(page) -> list[str]:
    return [
        href.rsplit("/", 1)[-1]
        for href in page.locator(".carte-titre a[href^='/modeles/']").evaluate_all(
            "els => els.map(e => e.getAttribute('href'))"
        )
    ]


def test_browse_search_filter_and_read_a_model_anonymously(page, live_site: dict) -> None:
    from playwright.sync_api import expect

    page.goto("/")
    expect(page.locator("h1")).to_have_text("Les modèles d'IA des collectivités, partagés")
    expect(page.locator(f".carte-titre a[href='/modeles/{MODEL}']")).to_have_text(
        "Prévision de la consommation d'eau des bâtiments municipaux"
    )
    assert page.locator(".chiffre").first.inner_text() == "2"

    # keyboard: the skip link first, then the search box within a few tabs
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Aller au contenu")).to_be_focused()
    for _ in range(12):
        if page.evaluate("document.activeElement.id") == "recherche":
            break
        page.keyboard.press("Tab")
    expect(page.get_by_label("Rechercher un modèle ou un projet")).to_be_focused()

    # search from the home page narrows the catalogue
    page.keyboard.type("fuites")
    page.keyboard.press("Enter")
    page.wait_for_url("**/catalogue?q=fuites")
    # the model, and the project whose summary speaks of leaks (« fuites »)
    assert card_names(page) == [MODEL]
    expect(page.locator(f".carte-titre a[href='/projets/{PROJECT_SLUG}']")).to_have_count(1)
    expect(page.locator(".resultats")).to_have_text("2 résultats pour « fuites »")

    # a filter narrows it the other way
    page.goto("/catalogue")
    assert sorted(card_names(page)) == sorted([MODEL, OTHER])
    page.get_by_label("Thème").select_option("mobilites")
    page.locator("form.filtres").get_by_role("button", name="Rechercher").click()
    page.wait_for_url("**theme=mobilites**")
    assert card_names(page) == [OTHER]

    # the model page: metrics beside the baseline, no restricted contact
    page.goto(f"/modeles/{MODEL}")
    row = page.locator("table.tableau tbody tr").first
    expect(row.locator("td.nombre")).to_have_text(["1,8", "2,9"])
    expect(row).to_contain_text("meilleur")
    chart = page.locator("figure.graphique img")
    assert (
        chart.evaluate("img => img.complete && img.naturalWidth") == 2
    )  # the served PNG really loads
    body = page.content()
    for value in RESTRICTED:
        assert value not in body
    # the contacts' reserved block first (the evaluation form has its own, further down)
    expect(page.locator(".reserve").first).to_contain_text(
        "réservés aux agents des collectivités membres"
    )
    expect(page.get_by_role("button", name="Lancer le démonstrateur")).to_have_count(0)

    # an unknown model: a French 404 page
    response = page.goto("/modeles/modele-inexistant")
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("Page introuvable")
    expect(page.locator(".erreur-page")).to_contain_text("introuvable")
    assert page.locator("html").get_attribute("lang") == "fr"


def test_a_member_logs_in_through_the_form_and_sees_the_contacts(page, live_site: dict) -> None:
    from playwright.sync_api import expect

    page.goto(f"/modeles/{MODEL}")
    page.locator(".reserve").first.get_by_role(
        "link", name="Se connecter avec un jeton d'accès"
    ).click()
    page.wait_for_url("**/connexion?next=**")

    page.get_by_label("Jeton d'accès").fill("bibia_00000000_" + "x" * 43)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("alert")).to_contain_text("jeton inconnu")

    page.get_by_label("Jeton d'accès").fill(live_site["tokens"]["member"])
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"**/modeles/{MODEL}")
    expect(page.locator(".restreint")).to_contain_text("patrimoine-donnees@nantesmetropole.fr")
    expect(page.locator(".compte")).to_contain_text("member-web")
    expect(page.get_by_role("button", name="Lancer le démonstrateur")).to_be_visible()

    page.goto(f"/projets/{PROJECT_SLUG}")
    expect(page.locator(".restreint")).to_contain_text("mission-eau@nantesmetropole.fr")

    page.get_by_role("button", name="Se déconnecter").click()
    expect(page.locator("h1")).to_have_text("Déconnexion")
    page.goto(f"/modeles/{MODEL}")
    assert "patrimoine-donnees@nantesmetropole.fr" not in page.content()
