"""The demonstrator's own pages in a real browser: axe-core (serious, critical) clean and no
horizontal scrolling, at 1280 and 320 px — the home page, a result page and an error page.

The app (the cantine reference model, as bibia places it) is served over real HTTP by uvicorn in a
thread; Debian's Chromium drives it through Playwright.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.web.browser import (
    axe_violations,
    describe,
    launched_chromium,
    page_width,
    screenshot,
    served_over_http,
)

pytestmark = pytest.mark.browser

WIDTHS = (1280, 320)
FRENCH = "\ufeffdate;cantine_nom;greve\r\n06/11/2017;LONGCHAMP;\r\n07/11/2017;JEAN ZAY M;oui\r\n"


@pytest.fixture(scope="module")
def url(cantine_client) -> Iterator[str]:
    with served_over_http(cantine_client.app, "uvicorn-demo-a11y", lifespan="auto") as served:
        yield served


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with launched_chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def paths(url: str, chromium: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The pages to check: the home, a result reached by the upload form, a refused upload."""
    data = tmp_path_factory.mktemp("a11y")
    good, bad = data / "cantines.csv", data / "inconnue.csv"
    good.write_text(FRENCH, encoding="utf-8")
    bad.write_text("date;cantine_nom\n06/11/2017;LONGCHAMPS\n", encoding="utf-8")
    context = chromium.new_context(base_url=url, locale="fr-FR")
    try:
        page = context.new_page()
        page.goto("/")
        page.get_by_label("Fichier CSV").set_input_files(str(good))
        page.get_by_role("button", name="Calculer les prédictions").click()
        page.wait_for_url("**/resultats/*")
        result = page.url.removeprefix(url)
    finally:
        context.close()
    return {"accueil": "/", "resultat": result, "introuvable": "/resultats/inconnu", "refus": ""}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ["accueil", "resultat", "introuvable", "refus"])
def test_demonstrator_pages_are_axe_clean_and_fit_the_screen(
    url: str, chromium: Any, paths: dict[str, str], tmp_path: Any, name: str, width: int
) -> None:
    context = chromium.new_context(
        base_url=url, locale="fr-FR", viewport={"width": width, "height": 800}
    )
    try:
        page = context.new_page()
        if name == "refus":  # the home page again, with the reason the file was refused
            bad = tmp_path / "inconnue.csv"
            bad.write_text("date;cantine_nom\n06/11/2017;LONGCHAMPS\n", encoding="utf-8")
            page.goto("/")
            page.get_by_label("Fichier CSV").set_input_files(str(bad))
            page.get_by_role("button", name="Calculer les prédictions").click()
            page.get_by_role("alert").wait_for()
        else:
            page.goto(paths[name])
        assert page.locator("html").get_attribute("lang") == "fr"
        assert page.get_by_role("link", name="Revenir à la fiche du modèle").count() == 1
        violations = axe_violations(page)
        screenshot(page, f"demonstrateur-{name}-{width}")
        assert not violations, describe(violations)
        assert page_width(page) <= width, f"{name} is {page_width(page)} px wide at {width} px"
    finally:
        context.close()
