"""Every page and state of the web site in a real browser, at 1280 and 320 pixels: axe-core and reflow.

For each (page, width): axe-core finds no serious or critical violation
(WCAG 2.x A/AA and best practices, among them ``scrollable-region-focusable``:
every region that scrolls can be reached by keyboard), and the page is no
wider than the window (WCAG 1.4.10: no horizontal scrolling at 320 px). The
main pages are also photographed at both widths into test-outputs/screenshots/.

The world is built once for the module: the evaluation API's world (the real
service on the fake runner, two organisations and their tokens, the canteen
model ``cantine-essai`` and its three benchmarks), plus the web tests' project
and model with a full card (contacts, retex, code link), a verified
evaluation, evaluations of a member's data (done and queued), and one
demonstrator in each lifecycle state (rows, as the manager leaves them). It is
served over real HTTP by uvicorn in a thread; each role signs in once through
the sign-in form and its cookies are reused by every page of that role.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import EXAMPLE_CARD, register
from tests.evaluations_api import conftest as evaluation_world
from tests.evaluations_api.conftest import (
    BENCHMARKS,
    MODEL,
    TASK,
    EvalWorld,
    insert_evaluation,
    open_eval_world,
)
from tests.web.browser import (
    WIDTHS,
    axe_violations,
    describe,
    page_width,
    screenshot,
    served_over_http,
    sign_in,
)
from tests.web.test_evaluation_pages import verified
from tests.web.webdata import PROJECT, PROJECT_SLUG, model_card, model_with_chart

pytestmark = pytest.mark.browser

short_tmp = evaluation_world.short_tmp

CARD_MODEL = "eau-batiments"  # the web tests' model: a full card, a chart, a project
PUBLIC = BENCHMARKS["public"]
DEMO_STATES = ("pending", "starting", "ready", "stopped", "expired", "failed")


@dataclass(frozen=True)
class Case:
    """One page in one state, seen by one role (None: anonymous)."""

    name: str
    path: str  # may name the world's ids: {verified}, {donnees}, {queued}, {demo_<state>}
    role: str | None = None
    status: int = 200
    photo: bool = False  # a main page: photographed at both widths


CASES = [
    # public
    Case("accueil", "/", photo=True),
    Case("catalogue", "/catalogue", photo=True),
    Case("catalogue-filtre", "/catalogue?theme=transition-ecologique&q=eau"),
    Case("catalogue-vide", "/catalogue?q=aucun-modele-ne-porte-ce-nom"),
    Case("modele", f"/modeles/{CARD_MODEL}", photo=True),
    Case("modele-evalue", f"/modeles/{MODEL}", photo=True),
    Case("projets", "/projets", photo=True),
    Case("projet", f"/projets/{PROJECT_SLUG}", photo=True),
    Case("taches", "/taches", photo=True),
    Case("classement", f"/taches/{TASK}?jeu={PUBLIC}", photo=True),
    Case("comparer-formulaire", "/comparer"),
    Case("comparer", f"/comparer?modeles={MODEL}@production,{MODEL}/1", photo=True),
    Case("evaluation", "/evaluations/{verified}", photo=True),
    Case("connexion", "/connexion", photo=True),
    Case("introuvable", "/cette-page-n-existe-pas", status=404, photo=True),
    Case("modele-introuvable", "/modeles/aucun-modele", status=404),
    Case("erreur-saisie", "/comparer?modeles=ceci+n'est+pas+un+modele", status=400),
    # a member of Nantes Métropole
    Case("membre-modele", f"/modeles/{CARD_MODEL}", "member", photo=True),
    Case("membre-modele-evalue", f"/modeles/{MODEL}", "member"),
    Case("membre-projet", f"/projets/{PROJECT_SLUG}", "member"),
    Case("membre-sessions", "/compte/sessions", "member", photo=True),
    Case("membre-evaluation-donnees", "/evaluations/{donnees}", "member"),
    Case("membre-evaluation-en-attente", "/evaluations/{queued}", "member"),
    *(
        Case(f"demonstrateur-{state}", f"/demonstrateurs/{{demo_{state}}}", "member")
        for state in DEMO_STATES
    ),
    Case("mes-demonstrateurs", "/mes-demonstrateurs", "member", photo=True),
    Case("demonstrateur-autre-collectivite", "/demonstrateurs/{demo_ready}", "other_member", 404),
    # an expert of Nantes Métropole: versions, code link, the pull snippet
    Case("expert-modele", f"/modeles/{CARD_MODEL}", "expert", photo=True),
    Case("expert-modele-evalue", f"/modeles/{MODEL}", "expert"),
    Case("expert-demonstrateur-failed", "/demonstrateurs/{demo_failed}", "expert"),
    # publication (their error states: tests/web/test_publish_browser.py)
    Case("expert-publier", "/publier", "expert", photo=True),
    Case("expert-publier-version", f"/modeles/{CARD_MODEL}/publier", "expert"),
    Case("expert-fiche", f"/modeles/{CARD_MODEL}/fiche", "expert"),
    # an administrator: the administration pages (their flow: tests/web/test_admin_browser.py)
    Case("admin-modele", f"/modeles/{CARD_MODEL}", "admin"),
    Case("admin-sessions", "/compte/sessions", "admin"),
    Case("admin-organisations", "/admin", "admin", photo=True),
    Case("admin-organisation", "/admin/organisations/nantes-metropole", "admin", photo=True),
    Case("admin-journal", "/admin/journal", "admin", photo=True),
    Case("admin-journal-filtre", "/admin/journal?action=demo.launch&objet=cantine", "admin"),
    Case("admin-journal-erreur", "/admin/journal?du=2026-02-30&au=hier", "admin", status=400),
    Case("membre-administration-refusee", "/admin", "member", status=403),
]


@dataclass
class Site:
    url: str
    ids: dict[str, str]  # what the cases' paths name
    cookies: dict[str, list[dict[str, Any]]]  # role -> its signed-in cookies


def _demo(ev: EvalWorld, state: str) -> str:
    """A demonstrator of ``cantine-essai`` v1 in ``state``, launched by the member, as the manager leaves it."""
    import secrets

    from bibia.db.models import DemoSession, Organisation, User

    demo_id = secrets.token_hex(8)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    ended = state in ("stopped", "expired", "failed")
    with ev.services.db.session() as session:
        org = session.query(Organisation).filter_by(slug="nantes-metropole").one()
        user = session.query(User).filter_by(organisation_id=org.id).first()
        session.add(
            DemoSession(
                id=demo_id,
                organisation_id=org.id,
                user_id=user.id if user is not None else None,
                model_name=MODEL,
                model_version=1,
                state=state,
                runner="fake",
                error="Le démonstrateur n'a pas répondu à temps." if state == "failed" else None,
                failure_logs="Traceback: dernière ligne du journal" if state == "failed" else None,
                created_at=now - dt.timedelta(minutes=5),
                expires_at=now + (dt.timedelta(minutes=-1) if ended else dt.timedelta(minutes=25)),
                finished_at=now if ended else None,
            )
        )
    return demo_id


def _build(ev: EvalWorld, model_dir: Path, tmp: Path) -> dict[str, str]:
    """The web tests' project and model beside the canteen world, and the rows the cases name."""
    from tests.conftest import World

    world: World = ev.world
    response = world.client.put(
        f"/api/v1/projects/{PROJECT_SLUG}", json=PROJECT, headers=world.headers("expert")
    )
    assert response.status_code == 201, response.text
    card_data = yaml.safe_load(EXAMPLE_CARD.read_text(encoding="utf-8"))
    charted = model_with_chart(model_dir, tmp / "charted")
    response = register(world, charted, model_card(card_data), name=CARD_MODEL)
    assert response.status_code == 201, response.text
    ids = {
        "verified": verified(ev, PUBLIC),
        "donnees": insert_evaluation(ev.services, kind="donnees"),
        "queued": insert_evaluation(ev.services, kind="donnees", state="queued"),
    }
    ids.update({f"demo_{state}": _demo(ev, state) for state in DEMO_STATES})
    return ids


@pytest.fixture(scope="module")
def eval_world(short_tmp: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EvalWorld]:
    with open_eval_world(short_tmp, tmp_path_factory.mktemp("cantine")) as world:
        yield world


@pytest.fixture(scope="module")
def site(
    eval_world: EvalWorld,
    chromium: Any,
    sklearn_model_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Site]:
    """The world over real HTTP, with its ids and each role's signed-in cookies."""
    ids = _build(eval_world, sklearn_model_dir, tmp_path_factory.mktemp("eau"))
    # the world's client already runs the app's lifespan
    with served_over_http(eval_world.world.app, "uvicorn-accessibility") as url:
        cookies = {}
        for role in sorted({c.role for c in CASES if c.role is not None}):
            context = chromium.new_context(base_url=url, locale="fr-FR")
            try:
                page = context.new_page()
                sign_in(page, eval_world.world.tokens[role], "/compte/sessions")
                cookies[role] = context.cookies()
            finally:
                context.close()
        yield Site(url=url, ids=ids, cookies=cookies)


WIDER = """width => [...document.querySelectorAll("body *")]
    .filter(e => e.getBoundingClientRect().right > width + 1)
    .filter(e => !e.parentElement || e.parentElement.getBoundingClientRect().right <= width + 1)
    .slice(0, 8)
    .map(e => `${e.tagName.toLowerCase()}.${[...e.classList].join('.')}: ${Math.round(e.getBoundingClientRect().right)}px`)"""


@pytest.mark.parametrize("width", WIDTHS, ids=lambda w: f"{w}px")
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_page_is_axe_clean_and_fits_its_window(
    chromium: Any, site: Site, case: Case, width: int
) -> None:
    context = chromium.new_context(
        base_url=site.url, locale="fr-FR", viewport={"width": width, "height": 800}
    )
    try:
        if case.role is not None:
            context.add_cookies(site.cookies[case.role])
        page = context.new_page()
        page.set_default_timeout(15_000)
        response = page.goto(case.path.format(**site.ids))
        if case.path == "/mes-demonstrateurs" and response is not None and response.status == 404:
            pytest.xfail(
                "« Mes démonstrateurs » is not built yet (/mes-demonstrateurs answers 404)"
            )
        assert response is not None and response.status == case.status, response and response.status
        assert page.url.startswith(site.url + case.path.format(**site.ids).split("?")[0]), page.url
        violations = axe_violations(page)
        assert not violations, f"{case.name} at {width}px:\n{describe(violations)}"
        wide = page_width(page)
        assert wide <= width, (
            f"{case.name}: {wide}px wide at {width}px: {page.evaluate(WIDER, width)}"
        )
        if case.photo:
            screenshot(page, f"{case.name}-{width}")
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS, ids=lambda w: f"{w}px")
def test_the_skip_link_is_the_first_stop_and_moves_focus_to_the_content(
    chromium: Any, site: Site, width: int
) -> None:
    from playwright.sync_api import expect

    context = chromium.new_context(
        base_url=site.url, locale="fr-FR", viewport={"width": width, "height": 800}
    )
    try:
        page = context.new_page()
        page.goto(f"/modeles/{CARD_MODEL}")
        page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Aller au contenu")
        expect(skip).to_be_focused()
        box = skip.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width  # visible
        page.keyboard.press("Enter")
        expect(page.locator("main#contenu")).to_be_focused()
        page.keyboard.press("Tab")  # the next stop is inside the content, past the header
        inside = page.evaluate("() => !!document.activeElement.closest('main')")
        assert inside
    finally:
        context.close()


SCROLLING = """() => [...document.querySelectorAll('body *')]
    .filter(e => e.scrollWidth > e.clientWidth + 1 && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX))
    .map(e => ({tab: e.tabIndex, role: e.getAttribute('role'), name: e.getAttribute('aria-label') || '',
                html: e.outerHTML.slice(0, 120)}))"""


@pytest.mark.parametrize(
    "path",
    [
        f"/taches/{TASK}?jeu={PUBLIC}",
        f"/comparer?modeles={MODEL}@production,{MODEL}/1,{CARD_MODEL}",
    ],
    ids=["classement", "comparer"],
)
def test_a_table_wider_than_a_phone_scrolls_in_a_named_region_reached_by_the_keyboard(
    chromium: Any, site: Site, path: str
) -> None:
    """At 320 px the wide tables scroll inside their own box: a named region, reached with Tab, scrolled with the arrows."""
    context = chromium.new_context(
        base_url=site.url, locale="fr-FR", viewport={"width": 320, "height": 800}
    )
    try:
        page = context.new_page()
        page.goto(path)
        scrolling = page.evaluate(SCROLLING)
        assert scrolling, "this page has a table wider than 320 px"
        for region in scrolling:
            assert region["tab"] == 0 and region["role"] == "region" and region["name"], region
        region = page.locator(".defilement").first
        for _ in range(100):  # the region is in the tab order, before anything it holds
            page.keyboard.press("Tab")
            if page.evaluate("() => document.activeElement.classList.contains('defilement')"):
                break
        assert region.evaluate("e => e === document.activeElement && e.scrollLeft === 0")
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "() => document.querySelector('.defilement').scrollLeft > 0"
        )  # the arrow keys scroll it
        caption = region.locator("caption .legende").bounding_box()
        assert caption is not None and caption["x"] >= 0 and caption["x"] + caption["width"] <= 320
    finally:
        context.close()


@pytest.mark.parametrize("case", [c for c in CASES if c.status == 200], ids=lambda c: c.name)
def test_every_page_fits_a_375_pixel_phone(chromium: Any, site: Site, case: Case) -> None:
    context = chromium.new_context(
        base_url=site.url, locale="fr-FR", viewport={"width": 375, "height": 800}
    )
    try:
        if case.role is not None:
            context.add_cookies(site.cookies[case.role])
        page = context.new_page()
        response = page.goto(case.path.format(**site.ids))
        if case.path == "/mes-demonstrateurs" and response is not None and response.status == 404:
            pytest.xfail(
                "« Mes démonstrateurs » is not built yet (/mes-demonstrateurs answers 404)"
            )
        assert response is not None and response.status == 200
        wide = page_width(page)
        assert wide <= 375, f"{case.name}: {wide}px wide at 375px: {page.evaluate(WIDER, 375)}"
    finally:
        context.close()


@pytest.mark.parametrize("role", [None, "member"], ids=["anonyme", "membre"])
def test_the_header_is_compact_on_a_phone_and_its_search_box_takes_its_row(
    chromium: Any, site: Site, role: str | None
) -> None:
    """At 320 px the header (brand, account, search, navigation) leaves most of the first screen to the page."""
    context = chromium.new_context(
        base_url=site.url, locale="fr-FR", viewport={"width": 320, "height": 640}
    )
    try:
        if role is not None:
            context.add_cookies(site.cookies[role])
        page = context.new_page()
        page.goto("/catalogue")
        header = page.locator("header.entete").bounding_box()
        # the issue measured about 300 px; brand, account, search and navigation now take at most 40 % of the screen
        assert header is not None and header["height"] <= 0.4 * 640, header
        search = page.locator(".recherche-entete").bounding_box()
        row = page.locator(".entete-haut").evaluate(
            "e => e.clientWidth - parseFloat(getComputedStyle(e).paddingLeft) - parseFloat(getComputedStyle(e).paddingRight)"
        )
        assert search is not None and search["width"] >= row - 1, (search, row)
    finally:
        context.close()
