"""An expert publishes a model from the browser (Debian's Chromium driven by Playwright).

The service is the in-process world served over real HTTP by uvicorn in a
thread. The expert signs in through the sign-in form, fills the card's form
generated from the schema, sends a wrong card first (the summary and the
errors next to the fields, nothing registered), then a right one, and lands
on the model page with its confirmation. Every new page, and its error
state, is axe-core clean (serious, critical) and no wider than the window at
1280 and 320 pixels.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bibia.web import cardform
from tests.conftest import EXAMPLE_CARD, World, make_world, register, tar_model
from tests.web.browser import (
    WIDTHS,
    axe_violations,
    describe,
    page_width,
    screenshot,
    served_over_http,
    sign_in,
)

pytestmark = pytest.mark.browser

EXISTING = "eau-batiments"
NEW = "eau-navigateur"


def good_card() -> dict[str, Any]:
    return json.loads(json.dumps(yaml.safe_load(EXAMPLE_CARD.read_text("utf-8")), default=str))


@pytest.fixture(scope="module")
def world(sklearn_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from bibia.settings import Settings

    w = make_world(
        Settings(
            data_dir=tmp_path_factory.mktemp("publier-nav") / "data",
            seed_on_start=False,
            runner="none",
        )
    )
    with w.client:
        assert register(w, sklearn_model_dir, good_card(), name=EXISTING).status_code == 201
        yield w


@pytest.fixture(scope="module")
def url(world: World) -> Iterator[str]:
    with served_over_http(world.app, "uvicorn-publier") as url:
        yield url


@pytest.fixture
def page(chromium: Any, url: str, world: World) -> Iterator[Any]:
    """A page of a context where the expert of Nantes Métropole signed in through the form."""
    context = chromium.new_context(
        base_url=url, locale="fr-FR", viewport={"width": 1280, "height": 900}
    )
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        sign_in(page, world.tokens["expert"], "/publier")
        yield page
    finally:
        context.close()


def clean_at_every_width(page: Any, name: str) -> None:
    """axe-core (serious, critical) finds nothing and the page fits its window, at each width."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        violations = axe_violations(page)
        assert not violations, f"{name} at {width}px:\n{describe(violations)}"
        wide = page_width(page)
        assert wide <= width, f"{name}: {wide}px wide at {width}px"
        screenshot(page, f"{name}-{width}")
    page.set_viewport_size({"width": 1280, "height": 900})


def fill(page: Any, values: dict[str, str]) -> None:
    """Type ``values`` into the card's form as a person would: text, choices, yes/no."""
    for name, value in values.items():
        field = page.locator(f'[name="{name}"]')
        kind = field.first.evaluate("e => e.tagName.toLowerCase() + ':' + (e.type || '')")
        if kind == "input:radio":
            page.locator(f'[name="{name}"][value="{value}"]').check()
        elif kind.startswith("select"):
            field.select_option(value)
        else:
            field.fill(value)


def test_an_expert_publishes_from_the_form_wrong_then_right(
    page: Any, world: World, sklearn_model_dir: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    archive = tmp_path / "modele.tar.gz"
    archive.write_bytes(tar_model(sklearn_model_dir))
    expect(page.get_by_role("link", name="Publier un modèle")).to_have_attribute(
        "aria-current", "page"
    )
    expect(page.get_by_label("SIREN (obligatoire)")).to_have_value("244400404")
    clean_at_every_width(page, "publier")

    values = cardform.flatten(good_card())
    page.get_by_label("Identifiant du modèle (obligatoire)").fill(NEW)
    page.get_by_label("Archive du modèle (obligatoire)").set_input_files(archive)
    page.get_by_label("Alias (facultatif)").fill("production")
    fill(
        page,
        {
            **values,
            "fiche.identification.title": "",
            "fiche.accountability.public_contact": "pas-une-adresse",
        },
    )
    page.get_by_role("button", name="Publier le modèle").click()

    summary = page.get_by_role("alert").filter(has_text="à corriger")
    expect(summary).to_contain_text("2 problèmes à corriger : rien n'a été enregistré")
    title = page.get_by_label("Titre (obligatoire)")
    expect(title).to_have_attribute("aria-invalid", "true")
    expect(title).to_have_accessible_description(
        "Titre en français Erreur : champ obligatoire manquant"
    )
    contact = page.get_by_label("Adresse de contact publique (obligatoire)")
    expect(contact).to_have_value("pas-une-adresse")
    expect(contact).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-accountability-public_contact-erreur")).to_contain_text(
        "format invalide"
    )
    expect(page.get_by_label("Identifiant du modèle (obligatoire)")).to_have_value(NEW)
    assert world.client.get(f"/api/v1/models/{NEW}").status_code == 404  # nothing registered
    clean_at_every_width(page, "publier-erreurs")

    summary.get_by_role("link", name="Identification › Titre : champ obligatoire manquant").click()
    assert page.url.endswith("#f-identification-title")
    title.fill(good_card()["identification"]["title"])
    contact.fill("donnees@nantesmetropole.fr")
    page.get_by_label("Archive du modèle (obligatoire)").set_input_files(archive)  # chosen again
    page.get_by_role("button", name="Publier le modèle").click()
    page.wait_for_url(f"**/modeles/{NEW}?publie=1*")
    expect(page.get_by_role("status").filter(has_text="publiée")).to_have_text(
        "La version 1 a été publiée."
    )
    detail = world.client.get(f"/api/v1/models/{NEW}").json()
    assert detail["aliases"] == {"production": 1}
    assert detail["card"]["identification"]["title"] == good_card()["identification"]["title"]


def test_the_version_and_card_pages_and_their_errors_are_accessible(
    page: Any, world: World
) -> None:
    from playwright.sync_api import expect

    page.goto(f"/modeles/{EXISTING}")
    page.get_by_role("link", name="Publier une nouvelle version").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Publier une nouvelle version")
    expect(page.get_by_label("Titre (obligatoire)")).to_have_value(
        good_card()["identification"]["title"]
    )
    clean_at_every_width(page, "publier-version")
    page.get_by_role("button", name="Publier la version").click()  # no archive chosen
    expect(page.locator("#modele-erreur")).to_contain_text("choisissez l'archive du modèle")
    clean_at_every_width(page, "publier-version-erreurs")

    page.goto(f"/modeles/{EXISTING}")
    page.get_by_role("link", name="Modifier la fiche").click()
    clean_at_every_width(page, "fiche")
    page.get_by_label("Résumé en langage courant (obligatoire)").fill("")
    page.locator('[name="fiche.data.dpia.done"][value="non"]').check()
    page.get_by_label("Raison").fill("")
    page.get_by_role("button", name="Enregistrer la fiche").click()
    expect(page.get_by_role("alert").filter(has_text="à corriger")).to_contain_text("2 problèmes")
    clean_at_every_width(page, "fiche-erreurs")
    page.get_by_label("Résumé en langage courant (obligatoire)").fill(
        "Un résumé corrigé dans le navigateur."
    )
    page.get_by_label("Raison").fill("Aucune donnée personnelle n'est traitée.")
    page.get_by_role("button", name="Enregistrer la fiche").click()
    page.wait_for_url(f"**/modeles/{EXISTING}?fiche=modifiee*")
    expect(page.get_by_role("status").filter(has_text="fiche")).to_have_text(
        "La fiche a été enregistrée."
    )
    card = world.client.get(f"/api/v1/models/{EXISTING}").json()["card"]
    assert card["identification"]["summary"] == "Un résumé corrigé dans le navigateur."
