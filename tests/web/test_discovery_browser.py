"""Discovery in a real browser (Debian's Chromium driven by Playwright): a visitor searches, filters, sorts.

The world is the discovery pages' (:mod:`tests.web.test_discovery`: a canteen
project of Lille, canteen models of Lille and Nantes with verified scores on
the task's reference benchmark, and the web tests' project and models), served
over real HTTP by uvicorn in a thread. Each state is checked with axe-core (no
serious or critical violation) at 1280 and 320 px, and fits a 320 px window.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import World
from tests.web.browser import (
    WIDTHS,
    axe_violations,
    describe,
    page_width,
    screenshot,
    served_over_http,
)
from tests.web.test_discovery import (
    CANTINE_LILLE,
    CANTINE_NANTES,
    CANTINE_PROJECT,
    disco,  # noqa: F401 - the module's world
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def url(disco: World) -> Iterator[str]:  # noqa: F811 - the fixture imported above
    """The discovery world over real HTTP."""
    with served_over_http(disco.app, "uvicorn-discovery") as served:
        yield served


@pytest.fixture(params=WIDTHS, ids=lambda w: f"{w}px")
def page(chromium: Any, url: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = chromium.new_context(
        base_url=url, locale="fr-FR", viewport={"width": request.param, "height": 900}
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


def check(page: Any, name: str) -> None:
    """The page as it is now: axe-clean, no wider than its window; photographed."""
    width = page.viewport_size["width"]
    violations = axe_violations(page)
    assert not violations, f"{name} at {width}px:\n{describe(violations)}"
    assert page_width(page) <= width, f"{name}: {page_width(page)}px wide at {width}px"
    screenshot(page, f"recherche-{name}-{width}")


def results(page: Any) -> list[tuple[str, str]]:
    """(kind, link) of every result card, in order."""
    cards = page.locator("main .grille .carte")
    return [
        (
            cards.nth(i).locator(".carte-type").inner_text().strip().capitalize(),
            cards.nth(i).locator(".carte-titre a").get_attribute("href"),
        )
        for i in range(cards.count())
    ]


def test_a_visitor_searches_finds_a_project_and_models_filters_and_sorts(page: Any) -> None:
    from playwright.sync_api import expect

    # the header's search box, from any page
    page.goto("/taches")
    page.get_by_label("Rechercher dans le catalogue").fill("cantine")
    page.get_by_label("Rechercher dans le catalogue").press("Enter")
    page.wait_for_url("**/catalogue?q=cantine")
    expect(page.locator("h1")).to_have_text("Rechercher dans le catalogue")
    expect(page.locator(".resultats")).to_have_text("3 résultats pour « cantine »")
    found = results(page)
    assert ("Projet", f"/projets/{CANTINE_PROJECT}") in found
    assert {link for kind, link in found if kind == "Modèle"} == {
        f"/modeles/{CANTINE_LILLE}",
        f"/modeles/{CANTINE_NANTES}",
    }
    check(page, "resultats")

    # a filter, with its count
    form = page.locator("form.filtres")
    kind = form.get_by_label("Type", exact=True)
    expect(kind.locator("option")).to_have_text(["Tout", "Modèles (2)", "Projets (1)"])
    kind.select_option(label="Modèles (2)")
    form.get_by_role("button", name="Rechercher").click()
    page.wait_for_url("**type=modele**")
    assert {k for k, _ in results(page)} == {"Modèle"} and len(results(page)) == 2
    expect(page.locator(".resultats")).to_have_text("2 résultats pour « cantine »")

    # sorted by the best verified score: Nantes (40 % better than the baseline), then Lille (25 %)
    page.locator("form.filtres").get_by_label("Trier par").select_option("score")
    page.locator("form.filtres").get_by_role("button", name="Rechercher").click()
    page.wait_for_url("**sort=score**")
    assert [link for _, link in results(page)] == [
        f"/modeles/{CANTINE_NANTES}",
        f"/modeles/{CANTINE_LILLE}",
    ]
    expect(page.locator(".explication-tri")).to_contain_text("référence naïve")
    expect(page.locator(".carte-score").first).to_contain_text("40\u202f% meilleur")
    check(page, "tri-score")


def test_the_empty_state_says_what_to_do_and_its_links_remove_a_filter(page: Any) -> None:
    from playwright.sync_api import expect

    page.goto("/catalogue?q=cantine&theme=mobilites")
    empty = page.locator(".etat-vide")
    expect(empty).to_have_count(1)
    expect(empty).to_contain_text("Aucun résultat ne correspond à « cantine » avec ces filtres.")
    expect(page.locator(".resultats")).to_have_count(0)
    expect(page.get_by_label("Thème")).to_have_value("mobilites")  # chosen, shown at 0
    expect(page.get_by_label("Thème").locator("option:checked")).to_have_text("Mobilités (0)")
    check(page, "vide")
    page.get_by_role("link", name="Retirer le filtre « Thème : Mobilités »").click()
    page.wait_for_url("**/catalogue?q=cantine")
    expect(page.locator(".resultats")).to_have_text("3 résultats pour « cantine »")
