"""« Fichiers et versions » in a real browser (Debian's Chromium driven by Playwright), on a live service.

An expert signs in with the form, opens a version's files from the model
page, downloads a file with the browser's session (the bytes the MLflow
gateway serves), and moves then removes an alias; axe-core finds nothing
serious or critical and no page is wider than a 320 px screen, in every
state of the page (files, confirmation, refused alias).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import EXAMPLE_CARD, tar_model
from tests.web.browser import (
    WIDTHS,
    axe_violations,
    describe,
    page_width,
    screenshot,
)
from tests.web.webdata import model_card, nantes_with_tokens

pytestmark = pytest.mark.browser

NAME = "eau-fichiers-navigateur"
HTML = "<html><body><script>document.title='pris'</script></body></html>"


@pytest.fixture
def live_site(live_server, sklearn_model_dir: Path, tmp_path: Path) -> dict:
    """The live service with ``NAME`` v1 (production, a hostile HTML file) and v2, set up with the CLI and the API."""
    tokens = nantes_with_tokens(live_server.data_dir, "fichiers")
    card = model_card(yaml.safe_load(EXAMPLE_CARD.read_text(encoding="utf-8")))
    card["identification"].pop("project", None)
    hostile = tmp_path / "hostile"
    shutil.copytree(sklearn_model_dir, hostile)
    (hostile / "extras").mkdir()
    (hostile / "extras" / "page.html").write_text(HTML, encoding="utf-8")
    headers = {"Authorization": f"Bearer {tokens['expert']}"}
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=60) as api:
        for model_dir, alias in ((hostile, "production"), (sklearn_model_dir, None)):
            files = {
                "card": (
                    "fiche.yaml",
                    yaml.safe_dump(card, allow_unicode=True).encode(),
                    "application/yaml",
                ),
                "model": ("model.tar.gz", tar_model(model_dir), "application/gzip"),
            }
            response = api.post(
                f"/api/v1/models/{NAME}/versions",
                files=files,
                data={"alias": alias} if alias else {},
            )
            assert response.status_code == 201, response.text
    return {"url": live_server.url, "tokens": tokens}


@pytest.fixture
def page(chromium, live_site: dict):
    context = chromium.new_context(
        base_url=live_site["url"],
        locale="fr-FR",
        viewport={"width": 1280, "height": 900},
        accept_downloads=True,
    )
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    context.close()


def sign_in(page, token: str, next_url: str) -> None:
    page.goto(f"/connexion?next={next_url}")
    field = page.locator("input[name=token]")
    field.fill(token)
    field.press("Enter")
    page.wait_for_url(f"**{next_url}")


def check_page(page, name: str) -> None:
    """axe-core (serious, critical) and the width at 1280 and 320 px; back to 1280 afterwards."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        found = axe_violations(page)
        screenshot(page, f"versions-{name}-{width}")
        assert not found, f"{name} at {width} px: {describe(found)}"
        if width == 320:
            assert page_width(page) <= 320, f"{name}: {page_width(page)} px wide at 320 px"
    page.set_viewport_size({"width": 1280, "height": 900})


def test_an_expert_downloads_a_file_and_moves_an_alias(page, live_site: dict) -> None:
    from playwright.sync_api import expect

    sign_in(page, live_site["tokens"]["expert"], f"/modeles/{NAME}")
    page.get_by_role("link", name="Fichiers et alias de la version 1").click()
    page.wait_for_url(f"**/modeles/{NAME}/versions/1/fichiers")
    expect(page.locator("h1")).to_contain_text("Fichiers et versions")
    expect(page.locator("table.fichiers")).to_contain_text("extras/page.html")
    expect(page.locator("#recuperer")).to_contain_text(f"models:/{NAME}@production")
    check_page(page, "fichiers")

    # a download with the browser's session: the same bytes as the MLflow gateway's
    gateway = httpx.get(
        f"{live_site['url']}/api/2.0/mlflow-artifacts/artifacts/bibia-models/{NAME}/1/MLmodel",
        headers={"Authorization": f"Bearer {live_site['tokens']['expert']}"},
    )
    assert gateway.status_code == 200
    with page.expect_download() as info:
        page.get_by_role("link", name="MLmodel", exact=True).click()
    download = info.value
    assert download.suggested_filename == "MLmodel"
    assert Path(download.path()).read_bytes() == gateway.content
    # a hostile HTML file is saved, never opened in bibia's origin
    with page.expect_download() as info:
        page.get_by_role("link", name="extras/page.html").click()
    assert info.value.suggested_filename == "page.html"
    assert page.url.endswith(f"/modeles/{NAME}/versions/1/fichiers")
    assert page.title() != "pris"

    # an alias refused (its name), then moved onto version 2, then removed
    page.goto(f"/modeles/{NAME}/versions/2/fichiers")
    field = page.get_by_label("Faire pointer un alias sur la version 2")
    field.fill("Pas Valide")
    page.get_by_role("button", name="Faire pointer sur la version 2").click()
    expect(page.get_by_role("alert")).to_contain_text("alias invalide")
    check_page(page, "alias-refuse")

    page.get_by_label("Faire pointer un alias sur la version 2").fill("candidat")
    page.get_by_role("button", name="Faire pointer sur la version 2").click()
    expect(page.get_by_role("status")).to_contain_text(
        "L'alias « candidat » désigne maintenant la version 2."
    )
    check_page(page, "alias-deplace")
    page.get_by_role("button", name="Supprimer l'alias « candidat »").click()
    expect(page.get_by_role("status")).to_contain_text("L'alias « candidat » est supprimé.")

    api = httpx.get(f"{live_site['url']}/api/v1/models/{NAME}").json()
    assert api["aliases"] == {"production": 1}


def test_a_member_reads_that_files_are_for_experts(page, live_site: dict) -> None:
    from playwright.sync_api import expect

    sign_in(page, live_site["tokens"]["member"], f"/modeles/{NAME}")
    assert page.get_by_role("link", name="Fichiers et alias de la version 1").count() == 0
    page.goto(f"/modeles/{NAME}/versions/1/fichiers")
    expect(page.locator("h1")).to_have_text("Accès refusé")
    expect(page.locator(".erreur-page")).to_contain_text("réservés aux experts")
    check_page(page, "membre-refuse")
