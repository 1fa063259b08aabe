"""Demonstrators managed from the web, in a real browser (Debian's Chromium driven by Playwright).

The service runs on the fake runner (:mod:`tests.demos_fast.conftest`: real
Unix sockets, health checks and proxy), served over real HTTP by uvicorn in
a thread. Its sandboxes wait for :data:`GATE` before they load, so the test
sees the waiting page first, then opens the gate and watches the page's
script turn it into the ready page without a reload. Covered: launch,
waiting → ready, « Lancer » twice, « Mes démonstrateurs » (extend, stop),
and axe-core (serious, critical) with the page's width on every state at
1280 and 320 pixels.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runners.base import DemoSpec
from runners.fake import Behaviour, FakeRunner
from tests.conftest import World
from tests.demos_fast import conftest as fast
from tests.demos_fast.conftest import READY, add_row, fake_world, settle
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

MODEL = "double-x"
TITLE = "Modèle d'essai : le double de x"

short_tmp = fast.short_tmp
fast_tmp = fast.fast_tmp
ok_model = fast.ok_model

GATE = threading.Event()  # set: the fake sandboxes load and serve


def gated(spec: DemoSpec) -> Behaviour:
    GATE.wait(timeout=120)
    return READY


@pytest.fixture(scope="module")
def world(fast_tmp: Path, ok_model: Path) -> Iterator[World]:
    runner = FakeRunner(behaviour=gated)
    try:
        with fake_world(fast_tmp, ok_model, runner, demo_start_timeout_s=120.0) as w:
            yield w
    finally:
        GATE.set()  # no sandbox thread left waiting


@pytest.fixture(scope="module")
def served(world: World) -> Iterator[str]:
    """The world's app over real HTTP (its lifespan already runs under the world's client)."""
    with served_over_http(world.app, "uvicorn-demo-pages") as url:
        yield url


@pytest.fixture
def tab(chromium: Any, served: str) -> Iterator[Any]:
    context = chromium.new_context(
        base_url=served, locale="fr-FR", viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def accessible_at_both_widths(page: Any, name: str) -> None:
    """No serious or critical axe violation, and no horizontal scrolling at 320 px; screenshots."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        violations = axe_violations(page)
        assert not violations, f"{name} at {width} px: {describe(violations)}"
        if width == 320:
            assert page_width(page) <= 320, f"{name}: {page_width(page)} px wide at 320 px"
        screenshot(page, f"demonstrateurs-{name}-{width}")
    page.set_viewport_size({"width": 1280, "height": 900})


def live_demos(world: World) -> list[dict]:
    response = world.client.get("/api/v1/demos", headers=world.headers("member"))
    assert response.status_code == 200, response.text
    return list(response.json())


def test_launch_wait_reuse_extend_and_stop_in_the_browser(tab: Any, world: World) -> None:
    from playwright.sync_api import expect

    page = tab
    GATE.clear()
    sign_in(page, world.tokens["member"], "/mes-demonstrateurs")
    expect(
        page.get_by_text("Aucun démonstrateur ne tourne pour votre collectivité")
    ).to_be_visible()
    accessible_at_both_widths(page, "liste-vide")

    page.goto(f"/modeles/{MODEL}")
    page.get_by_role("button", name="Lancer le démonstrateur").click()
    page.wait_for_url(re.compile(r"/demonstrateurs/[0-9a-f]{16}$"))
    demo_id = page.url.rsplit("/", 1)[-1]
    status = page.locator("#attente-message")
    expect(status).to_have_attribute("role", "status")
    expect(status).to_contain_text("Démarrage en cours")
    expect(page.get_by_role("link", name="Actualiser")).to_be_visible()
    expect(page.get_by_role("link", name="Ouvrir le démonstrateur")).to_be_hidden()
    accessible_at_both_widths(page, "attente")

    page.evaluate("() => { window.bibiaSamePage = true; }")  # gone if the page reloads
    GATE.set()
    expect(page.get_by_role("link", name="Ouvrir le démonstrateur")).to_be_visible()
    expect(status).to_contain_text("Le démonstrateur est prêt.")
    expect(page.locator("#attente-duree")).to_contain_text("(heure de Paris)")
    expect(page.get_by_role("link", name="Actualiser")).to_be_hidden()
    assert page.evaluate("() => window.bibiaSamePage === true"), "the page reloaded"
    settle(world)

    # the ready page, as it is served from now on
    page.reload()
    expect(page.get_by_text("Le démonstrateur est prêt.")).to_be_visible()
    expect(
        page.get_by_text(re.compile(r"Il reste disponible jusqu'à .* \(heure de Paris\), dans"))
    ).to_be_visible()
    expect(page.get_by_role("link", name="Revenir à la page du modèle")).to_be_visible()
    accessible_at_both_widths(page, "pret")

    # « Lancer » again: the running one, not a second sandbox
    page.goto(f"/modeles/{MODEL}")
    expect(
        page.get_by_role("link", name=re.compile("^Ouvrir le démonstrateur en cours"))
    ).to_be_visible()
    page.get_by_role("button", name="Lancer le démonstrateur").click()
    page.wait_for_url(f"**/demonstrateurs/{demo_id}?deja=1")
    expect(
        page.get_by_text(
            "Un démonstrateur de cette version tourne déjà pour votre collectivité ; le voici."
        )
    ).to_be_visible()
    expect(page.get_by_role("button", name="En lancer un autre")).to_be_visible()
    accessible_at_both_widths(page, "deja")
    assert [d["id"] for d in live_demos(world)] == [demo_id]

    # « Mes démonstrateurs »: extend, then stop
    page.get_by_role("navigation", name="Navigation principale").get_by_role(
        "link", name="Mes démonstrateurs"
    ).click()
    page.wait_for_url("**/mes-demonstrateurs")
    item = page.locator(".demo", has_text=TITLE)
    expect(item).to_contain_text("Lancé par")
    expect(item).to_contain_text("agent")
    expect(item).to_contain_text("(heure de Paris)")
    accessible_at_both_widths(page, "liste")
    before = dt.datetime.fromisoformat(live_demos(world)[0]["expires_at"])
    item.get_by_role("button", name=re.compile("^Prolonger")).click()
    expect(page.get_by_text("Le démonstrateur est prolongé.")).to_be_visible()
    after = dt.datetime.fromisoformat(live_demos(world)[0]["expires_at"])
    assert after - before == dt.timedelta(minutes=world.services.settings.demo_ttl_minutes)
    page.locator(".demo", has_text=TITLE).get_by_role("button", name=re.compile("^Arrêter")).click()
    expect(page.get_by_text("Le démonstrateur est arrêté.")).to_be_visible()
    expect(
        page.get_by_text("Aucun démonstrateur ne tourne pour votre collectivité")
    ).to_be_visible()
    expect(page.get_by_role("heading", name="Terminés ces dernières 24 heures")).to_be_visible()
    assert live_demos(world) == []
    accessible_at_both_widths(page, "liste-terminee")


def test_ended_states_are_accessible_and_neutral_unless_failed(tab: Any, world: World) -> None:
    from playwright.sync_api import expect

    from bibia.db.models import DemoSession

    now = dt.datetime.now(dt.UTC)
    ids = {state: add_row(world, state, now) for state in ("stopped", "expired", "failed")}
    with world.services.db.session() as session:
        session.get(DemoSession, ids["failed"]).error = "le modèle n'a pas pu être chargé"
    page = tab
    sign_in(page, world.tokens["member"], "/mes-demonstrateurs")
    expected = {
        "stopped": "Ce démonstrateur est arrêté.",
        "expired": "Ce démonstrateur a expiré (sa durée de vie est écoulée).",
        "failed": "Ce démonstrateur n'a pas pu démarrer ou s'est arrêté sur une erreur.",
    }
    for state, message in expected.items():
        page.goto(f"/demonstrateurs/{ids[state]}")
        expect(page.get_by_text(message)).to_be_visible()
        assert (page.get_by_role("alert").count() == 1) is (state == "failed"), state
        expect(
            page.get_by_role("link", name="Revenir au modèle pour en lancer un autre")
        ).to_be_visible()
        accessible_at_both_widths(page, state)
