"""The evaluation pages in a real browser (Debian's Chromium driven by Playwright).

The service is the evaluation API's world (:mod:`tests.evaluations_api.conftest`:
the real evaluation service and worker on the fake runner, whose sandbox
answers 185 meals a day), served over real HTTP by uvicorn in a thread; the
test runs the queued evaluations itself (``run_queued``), as a worker would.
Verified results are recorded as the worker leaves them (``verified``).
Covered: the leaderboard (sorting by links, the highlighted baseline, a
row's evaluation), the comparison form, « Évaluer sur mes données » from the
model page (upload, progress, « Actualiser », the result, publishing it),
and every page at 320 pixels wide.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.evaluations_api import conftest as evaluation_world
from tests.evaluations_api.conftest import BENCHMARKS, MODEL, TASK, EvalWorld, cantine_csv
from tests.web.browser import served_over_http, sign_in
from tests.web.test_evaluation_pages import verified

pytestmark = pytest.mark.browser

PUBLIC = BENCHMARKS["public"]

eval_world = evaluation_world.eval_world  # the evaluation API's world, shared by this module
short_tmp = evaluation_world.short_tmp


@pytest.fixture(scope="module")
def served(eval_world: EvalWorld) -> Iterator[str]:
    """The world's app over real HTTP (its lifespan already runs under the world's client)."""
    with served_over_http(eval_world.world.app, "uvicorn-evaluation-pages") as url:
        yield url


@pytest.fixture
def tab(chromium: Any, served: str) -> Iterator[Any]:
    context = chromium.new_context(
        base_url=served, locale="fr-FR", viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def run(ev: EvalWorld) -> None:
    ev.world.app.state.evaluations.run_queued()


WIDER = """() => [...document.querySelectorAll("body *")]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
    .filter(e => !e.closest(".tableau-conteneur"))
    .slice(0, 8).map(e => `${e.tagName}.${e.className}: ${Math.round(e.getBoundingClientRect().right)}px`)"""


def no_horizontal_scroll(page: Any) -> None:
    """The page fits the window: only a table may scroll, inside its own container."""
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.evaluate("window.innerWidth")
    assert width <= viewport, f"{page.url}: {width}px wide in {viewport}px: {page.evaluate(WIDER)}"


def test_a_leaderboard_sorted_by_links_down_to_an_evaluation(
    tab: Any, eval_world: EvalWorld
) -> None:
    from playwright.sync_api import expect

    evaluation_id = verified(eval_world)
    page = tab
    page.goto("/taches")
    page.get_by_role(
        "link", name="Prévision de la fréquentation des cantines scolaires"
    ).first.click()
    page.wait_for_url(f"**/taches/{TASK}")
    if page.get_by_role("combobox", name="Jeu d'évaluation").count():
        page.get_by_role("combobox", name="Jeu d'évaluation").select_option(PUBLIC)
        page.get_by_role("button", name="Afficher").click()
        page.wait_for_url(f"**jeu={PUBLIC}**")
    board = page.locator("table.classement")
    expect(board.locator("tr.ligne-reference")).to_have_count(1)
    expect(board.locator("tr.ligne-reference")).to_contain_text("Référence")
    background = board.locator("tr.ligne-reference").evaluate(
        "row => getComputedStyle(row).backgroundColor"
    )
    plain = board.locator("tbody tr:not(.ligne-reference)").first.evaluate(
        "row => getComputedStyle(row).backgroundColor"
    )
    assert background != plain  # the baseline's row stands out

    # sort by the MAE, then reverse it, by clicking the column's link
    board.locator("thead a", has_text="Erreur absolue moyenne").first.click()
    page.wait_for_url("**tri=mae**")
    header = page.locator("table.classement thead th[aria-sort]")
    expect(header).to_have_count(1)
    first = header.get_attribute("aria-sort")
    page.locator("table.classement thead th[aria-sort] a").click()
    page.wait_for_url("**tri=mae**")
    expect(page.locator("table.classement thead th[aria-sort]")).not_to_have_attribute(
        "aria-sort", first
    )

    # a row's evaluation: the verdict in French, the chart as an image with its data table
    page.locator(f"table.classement a[href='/evaluations/{evaluation_id}']").click()
    page.wait_for_url(f"**/evaluations/{evaluation_id}")
    expect(page.locator("h1")).to_contain_text(f"Évaluation de {MODEL}")
    expect(page.locator(".resume-resultat")).to_contain_text("que la référence")
    expect(page.locator(".marque-verifie").first).to_be_visible()
    chart = page.locator("svg.graphe[role='img']")
    if chart.count():
        expect(chart.first).to_be_visible()
        assert chart.first.locator("title").first.text_content()
        page.get_by_text("Voir les données du graphique").first.click()
        expect(page.locator(".graphe-donnees table").first).to_be_visible()
    assert page.locator("script").count() == 0


def test_comparing_versions_through_the_form(tab: Any, eval_world: EvalWorld) -> None:
    from playwright.sync_api import expect

    verified(eval_world)
    page = tab
    page.goto("/comparer")
    page.get_by_role("textbox", name="Modèles à comparer").fill(f"{MODEL}@production, {MODEL}/1")
    page.get_by_role("button", name="Comparer").click()
    page.wait_for_url("**/comparer?modeles=**")
    table = page.locator("table.comparaison")
    expect(table.locator("thead th")).to_have_count(3)
    expect(table).to_contain_text("vérifié par la plateforme")

    page.get_by_role("textbox", name="Modèles à comparer").fill("Ceci n'est pas un modèle")
    page.get_by_role("button", name="Comparer").click()
    expect(page.locator(".erreur-page")).to_contain_text("nom de modèle invalide")


def test_a_member_evaluates_the_model_on_their_data_and_publishes_it(
    tab: Any, eval_world: EvalWorld, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = tab
    sign_in(page, eval_world.world.tokens["member"], f"/modeles/{MODEL}")
    form = page.locator(f"form[action='/modeles/{MODEL}/evaluer']")
    expect(form).to_be_visible()
    data = tmp_path / "mes-cantines.csv"
    data.write_bytes(cantine_csv(weeks=6))
    form.get_by_label("Version").select_option(label="production (version 1)")
    form.get_by_label("Fichier CSV").set_input_files(str(data))
    form.get_by_role("button", name="Évaluer").click()
    page.wait_for_url("**/evaluations/*")
    expect(page.locator("progress")).to_be_visible()
    refresh = page.get_by_role("link", name="Actualiser")
    expect(refresh).to_be_visible()

    run(eval_world)
    refresh.click()
    expect(page.locator(".etat")).to_have_text("terminée")
    expect(page.locator(".resume-resultat")).to_contain_text("que la référence")
    expect(page.locator("progress")).to_have_count(0)
    expect(page.get_by_role("link", name="Actualiser")).to_have_count(0)

    page.get_by_label("Votre retour").fill("Essai sur six semaines de nos cantines : à suivre.")
    page.get_by_label("tout le monde").check()
    page.get_by_role("button", name="Publier le retour").click()
    page.wait_for_url(f"**/modeles/{MODEL}#retours")
    expect(page.locator("#retours")).to_contain_text("Essai sur six semaines de nos cantines")


@pytest.mark.parametrize(
    "path",
    [
        "/taches",
        f"/taches/{TASK}?jeu={PUBLIC}",
        f"/comparer?modeles={MODEL}@production,{MODEL}/1",
        f"/modeles/{MODEL}",
        "evaluation",
    ],
)
def test_every_evaluation_page_fits_320_pixels(
    chromium: Any, served: str, eval_world: EvalWorld, path: str
) -> None:
    if path == "evaluation":
        path = f"/evaluations/{verified(eval_world)}"
    context = chromium.new_context(
        base_url=served, locale="fr-FR", viewport={"width": 320, "height": 640}
    )
    try:
        page = context.new_page()
        response = page.goto(path)
        assert response is not None and response.status == 200
        no_horizontal_scroll(page)
    finally:
        context.close()
