"""The administrators' pages in a real browser (Debian's Chromium driven by Playwright).

The service (in-process app, served over real HTTP by uvicorn in a thread)
is used as an administrator would: sign in with the token form, create an
organisation (a wrong SIREN key first), create a token and copy it from the
one page that shows it, check it works and that no later page shows it,
revoke it (the API then answers 401), set quotas (a wrong value first), and
find both token actions in the audit log, filtered, and in its CSV export
(downloaded by the browser). Every page and state is axe-clean (serious and
critical) and no wider than the window, at 1280 and 320 pixels. A member
gets the French 403 page.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import World, make_world
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


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from bibia.settings import Settings

    tmp = tmp_path_factory.mktemp("admin-browser")
    w = make_world(Settings(data_dir=tmp / "data", seed_on_start=False, runner="none"))
    with w.client:
        yield w


@pytest.fixture(scope="module")
def served(world: World) -> Iterator[str]:
    with served_over_http(world.app, "uvicorn-admin-pages") as url:
        yield url


@pytest.fixture
def tab(chromium: Any, served: str) -> Iterator[Any]:
    context = chromium.new_context(
        base_url=served,
        locale="fr-FR",
        viewport={"width": 1280, "height": 900},
        accept_downloads=True,
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def accessible(page: Any, name: str) -> None:
    """No serious or critical axe violation and no horizontal scrolling, at 1280 and 320 px."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        violations = axe_violations(page)
        assert not violations, f"{name} at {width} px: {describe(violations)}"
        wide = page_width(page)
        assert wide <= width, f"{name}: {wide} px wide at {width} px"
        screenshot(page, f"admin-{name}-{width}")
    page.set_viewport_size({"width": 1280, "height": 900})


def test_an_administrator_manages_organisations_tokens_quotas_and_reads_the_journal(
    tab: Any, world: World, served: str
) -> None:
    from playwright.sync_api import expect

    page = tab
    sign_in(page, world.tokens["admin"], "/admin")
    expect(page.get_by_role("link", name="Administration")).to_have_attribute(
        "aria-current", "page"
    )
    expect(page.get_by_role("heading", level=1)).to_have_text("Administration")
    accessible(page, "organisations")

    # an organisation, with a wrong SIREN key first
    page.get_by_label("Nom complet").fill("Rennes Métropole")
    page.get_by_label("Identifiant").fill("rennes-metropole")
    page.get_by_label("SIREN (facultatif)").fill("243500138")
    page.get_by_role("button", name="Créer l'organisation").click()
    siren = page.get_by_label("SIREN (facultatif)")
    expect(siren).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#erreur-siren")).to_contain_text("sa clé de contrôle est fausse")
    expect(page.get_by_role("alert")).to_contain_text("1 erreur empêche l'enregistrement")
    accessible(page, "organisation-erreur")
    assert "rennes-metropole" not in world.client.get("/api/v1/orgs").text

    siren.fill("243500139")
    page.get_by_role("button", name="Créer l'organisation").click()
    page.wait_for_url("**/admin/organisations/rennes-metropole?fait=creee")
    expect(page.get_by_role("status")).to_contain_text("L'organisation est créée")
    accessible(page, "organisation-creee")

    # a token, shown once
    page.get_by_label("Utilisateur").fill("script-import")
    page.get_by_label("Rôle", exact=True).select_option("expert")
    page.get_by_label("Libellé (facultatif)").fill("import nocturne")
    page.get_by_role("button", name="Créer le jeton").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Jeton créé")
    token = page.get_by_label("Valeur du jeton").input_value()
    assert token.startswith("bibia_")
    prefix = token.split("_")[1]
    expect(page.get_by_text("il ne sera plus jamais affiché")).to_be_visible()
    accessible(page, "jeton-cree")
    headers = {"Authorization": f"Bearer {token}"}
    assert world.client.get("/api/v1/me", headers=headers).json()["user"] == "script-import"

    page.get_by_role("link", name="J'ai copié le jeton").click()
    page.wait_for_url("**/admin/organisations/rennes-metropole")
    assert token not in page.content()
    row = page.get_by_role("row").filter(has_text=prefix)
    expect(row).to_contain_text("import nocturne")
    expect(row).to_contain_text("Actif")
    expect(page.get_by_role("row").filter(has_text="script-import").first).to_be_visible()
    accessible(page, "organisation-jeton")

    # revoked: the API refuses it
    page.get_by_role("button", name=f"Révoquer le jeton {prefix}").click()
    page.wait_for_url("**?fait=revoque")
    expect(page.get_by_role("status")).to_contain_text("Le jeton est révoqué")
    assert world.client.get("/api/v1/me", headers=headers).status_code == 401
    page.get_by_text("Jetons révoqués ou expirés (1)").click()
    expect(page.get_by_role("row").filter(has_text=prefix)).to_contain_text("Révoqué le")
    accessible(page, "organisation-jeton-revoque")

    # quotas, a wrong value first
    page.get_by_label("Démonstrateurs actifs à la fois").fill("beaucoup")
    page.get_by_role("button", name="Enregistrer les quotas").click()
    expect(page.locator("#erreur-quota-demos")).to_contain_text("Quota de démonstrateurs invalide")
    accessible(page, "quotas-erreur")
    page.get_by_label("Démonstrateurs actifs à la fois").fill("2")
    page.get_by_role("button", name="Enregistrer les quotas").click()
    page.wait_for_url("**?fait=quotas")
    expect(page.get_by_text("Les quotas sont enregistrés")).to_be_visible()

    # the journal: both token actions, filtered, then exported
    page.get_by_role("link", name="Journal d'audit", exact=True).click()
    page.wait_for_url("**/admin/journal")
    expect(page.get_by_role("cell", name=prefix).first).to_be_visible()
    accessible(page, "journal")
    page.get_by_label("Modèle ou objet").fill(prefix)
    page.get_by_role("button", name="Filtrer").click()
    expect(page.get_by_role("status")).to_have_text("2 événements pour ces filtres")
    expect(page.get_by_role("rowheader").filter(has_text="Jeton révoqué")).to_be_visible()
    expect(page.get_by_role("rowheader").filter(has_text="Jeton créé")).to_be_visible()
    accessible(page, "journal-filtre")
    with page.expect_download() as caught:
        page.get_by_role("link", name="Exporter ces événements").click()
    download = caught.value
    assert download.suggested_filename.startswith("journal-bibia-")
    content = Path(download.path()).read_bytes()
    assert content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig")), delimiter=";"))
    assert [r["Action (code)"] for r in rows] == ["token.revoke", "token.create"]
    assert token not in content.decode("utf-8-sig")

    page.get_by_label("Action", exact=True).select_option("org.create")
    page.get_by_label("Du", exact=True).fill("2026-03-02")
    page.get_by_label("Au (inclus)").fill("2026-03-01")
    page.get_by_role("button", name="Filtrer").click()
    expect(page.locator("#erreur-au")).to_contain_text("La date de fin est avant la date de début")
    expect(page.get_by_label("Au (inclus)")).to_have_attribute("aria-invalid", "true")
    accessible(page, "journal-erreur")
    page.goto("/admin/journal?qui=personne-de-ce-nom")
    expect(page.get_by_text("Aucun événement pour ces filtres.")).to_be_visible()
    accessible(page, "journal-vide")


def test_a_member_gets_the_french_403_page_and_no_administration_link(
    tab: Any, world: World
) -> None:
    from playwright.sync_api import expect

    page = tab
    sign_in(page, world.tokens["member"], "/")
    expect(page.get_by_role("link", name="Administration")).to_have_count(0)
    response = page.goto("/admin")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Accès refusé")
    expect(page.get_by_text("réservée aux administrateurs")).to_be_visible()
    accessible(page, "refus-membre")


def test_an_anonymous_visitor_is_sent_to_the_sign_in_page(tab: Any) -> None:
    page = tab
    page.goto("/admin/journal")
    assert page.url.endswith("/connexion?next=/admin/journal")
