"""Sign-in through OpenID Connect in a real browser (Chromium), a real bibia, a real provider.

bibia runs in a subprocess (:func:`tests.conftest.running_service`) configured with the
provider's issuer; the provider is ``oidc-provider`` (Node, tests/oidc/provider.mjs) behind the
forwarding proxy of :mod:`tests.oidc.provider`, whose own development pages the browser goes
through (login, consent, sign-out confirmation). The database is read directly to prove what
was (and was not) created.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import cli, free_port, running_service
from tests.oidc.provider import CLIENT_ID, CLIENT_SECRET, RunningProvider, oidc_provider
from tests.web.browser import WIDTHS, axe_violations, describe, page_width
from tests.web.browser import screenshot as shoot

pytestmark = pytest.mark.browser


class Stack:
    def __init__(self, url: str, data_dir: Path, log: Path, provider: RunningProvider) -> None:
        self.url, self.data_dir, self.log, self.provider = url, data_dir, log, provider
        self.engine = create_engine(f"sqlite:///{data_dir / 'bibia.db'}")

    def rows(self, sql: str) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(text(sql)))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("oidc-browser")
    secret = tmp / "client-secret"
    secret.write_text(CLIENT_SECRET + "\n")
    port = free_port()  # the provider's (its proxy's), chosen first: bibia is configured with it
    env = {
        "BIBIA_OIDC_ISSUER": f"http://127.0.0.1:{port}",
        "BIBIA_OIDC_CLIENT_ID": CLIENT_ID,
        "BIBIA_OIDC_CLIENT_SECRET_FILE": str(secret),
        "BIBIA_AUTH_FAILURE_LIMIT": "1000",
    }
    with running_service(tmp / "live", tmp / "server.log", env) as live:
        made = cli(
            live.data_dir,
            "org",
            "create",
            "nantes-metropole",
            "--name",
            "Nantes Métropole",
            "--siren",
            "244400404",
        )
        assert made.returncode == 0, made.stdout + made.stderr
        with oidc_provider(
            [f"{live.url}/connexion/oidc/retour"], [f"{live.url}/deconnexion/terminee"], port=port
        ) as provider:
            stack = Stack(live.url, live.data_dir, live.log, provider)
            yield stack
            stack.engine.dispose()


@pytest.fixture
def page(chromium: Any, stack: Stack) -> Iterator[Any]:
    context = chromium.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    # the provider's development pages import a web font: nothing leaves the machine
    context.route("https://**/*", lambda route: route.abort())
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def at_provider(page: Any, login: str) -> None:
    """On the provider's own pages: sign in as ``login`` (any password), consent if asked."""
    page.locator('input[name="login"]').fill(login)
    page.locator('input[name="password"]').fill("mot-de-passe")
    with page.expect_navigation():
        page.get_by_role("button", name="Sign-in").click()
    if page.get_by_role("button", name="Continue").count():
        with page.expect_navigation():
            page.get_by_role("button", name="Continue").click()


def press_proconnect(page: Any, stack: Stack) -> None:
    page.goto(f"{stack.url}/connexion")
    with page.expect_navigation():
        page.get_by_role("button", name="Se connecter avec ProConnect").click()


def accessible(page: Any, name: str) -> None:
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        violations = axe_violations(page)
        assert not violations, f"{name} at {width} px: {describe(violations)}"
        assert page_width(page) <= width, f"{name} scrolls sideways at {width} px"
        shoot(page, f"oidc-{name}-{width}")
    page.set_viewport_size({"width": 1280, "height": 900})


def users(stack: Stack) -> list[Any]:
    return stack.rows(
        "SELECT u.name, u.role, u.full_name, o.slug, u.oidc_subject FROM users u "
        "JOIN organisations o ON o.id = u.organisation_id ORDER BY u.id"
    )


def test_sign_in_maps_the_organisation_and_sign_out_ends_the_provider_session(
    page: Any, stack: Stack
) -> None:
    page.goto(f"{stack.url}/connexion")
    accessible(page, "connexion")
    press_proconnect(page, stack)
    assert page.url.startswith(stack.provider.issuer)
    at_provider(page, "camille")
    assert page.url == f"{stack.url}/"
    header = page.locator(".compte")
    assert "camille.martin" in header.inner_text() and "membre" in header.inner_text()
    people = users(stack)
    assert [(p.name, p.role, p.full_name, p.slug) for p in people] == [
        ("camille.martin", "member", "Camille Martin", "nantes-metropole")
    ]
    page.get_by_role("link", name="Mes sessions et jetons").click()
    assert page.get_by_role("heading", name="Mes sessions et jetons").is_visible()
    row = page.locator("tbody tr").first
    assert "ProConnect" in row.inner_text() and "(cette session)" in row.inner_text()
    accessible(page, "mes-sessions-et-jetons")

    # sign-out: bibia's session ends, then the provider's (its confirmation page), back to bibia
    with page.expect_navigation():
        page.get_by_role("button", name="Se déconnecter").click()
    assert page.url.startswith(f"{stack.provider.issuer}/session/end")
    with page.expect_navigation():
        page.get_by_role("button", name="Yes, sign me out").click()
    assert page.url.startswith(f"{stack.url}/deconnexion/terminee")
    assert "déconnecté de bibia et de ProConnect" in page.locator("main").inner_text()
    closed = stack.rows("SELECT revoked_at, oidc_id_token FROM web_sessions")
    assert len(closed) == 1 and closed[0].revoked_at is not None and closed[0].oidc_id_token is None

    # the provider's session is over: signing in again asks for the login, not an instant sign-in
    press_proconnect(page, stack)
    assert page.locator('input[name="login"]').is_visible()
    at_provider(page, "camille")  # a returning person: the same account
    assert page.url == f"{stack.url}/"
    assert len(users(stack)) == 1
    methods = stack.rows("SELECT method, token_id FROM web_sessions ORDER BY id")
    assert [(m.method, m.token_id) for m in methods] == [("oidc", None), ("oidc", None)]


def test_an_unknown_organisation_is_refused_and_nothing_is_created(page: Any, stack: Stack) -> None:
    before = (len(users(stack)), len(stack.rows("SELECT id FROM web_sessions")))
    press_proconnect(page, stack)
    at_provider(page, "dominique")
    main = page.locator("main").inner_text()
    assert "Organisation inconnue" in main
    assert "SIRET 99999999900017" in main and "SIREN 999999999" in main
    assert "administrateur de bibia" in main
    assert page.locator(".compte").get_by_role("link", name="Se connecter").is_visible()
    accessible(page, "organisation-inconnue")
    after = (len(users(stack)), len(stack.rows("SELECT id FROM web_sessions")))
    assert after == before
    assert not [u for u in users(stack) if u.oidc_subject == "dominique"]


def test_a_tampered_id_token_is_refused(page: Any, stack: Stack) -> None:
    before = len(stack.rows("SELECT id FROM web_sessions"))
    press_proconnect(page, stack)
    stack.provider.tamper = True
    try:
        at_provider(page, "camille")
    finally:
        stack.provider.tamper = False
    assert "n'a pas pu être vérifiée" in page.locator("main").inner_text()
    assert page.locator(".compte").get_by_role("link", name="Se connecter").is_visible()
    assert len(stack.rows("SELECT id FROM web_sessions")) == before


def test_a_replayed_or_foreign_state_is_refused(chromium: Any, page: Any, stack: Stack) -> None:
    callbacks: list[str] = []
    page.on(
        "request",
        lambda request: (
            callbacks.append(request.url)
            if request.url.startswith(f"{stack.url}/connexion/oidc/retour")
            else None
        ),
    )
    press_proconnect(page, stack)
    at_provider(page, "camille")
    assert page.url == f"{stack.url}/" and len(callbacks) == 1
    sessions = len(stack.rows("SELECT id FROM web_sessions"))
    answer = page.goto(callbacks[0])  # the same callback again: its cookie went with its success
    assert answer is not None and answer.status == 400
    assert "pas été commencée dans ce navigateur" in page.locator("main").inner_text()
    state = parse_qs(urlparse(callbacks[0]).query)["state"][0]
    page.context.add_cookies(  # even with the cookie kept (copied), the state served once
        [{"name": "bibia_oidc", "value": state, "url": f"{stack.url}/connexion/oidc/retour"}]
    )
    answer = page.goto(callbacks[0])
    assert answer is not None and answer.status == 400
    assert "déjà été utilisée" in page.locator("main").inner_text()
    other = chromium.new_context(locale="fr-FR")  # another browser: not its sign-in
    try:
        stranger = other.new_page()
        answer = stranger.goto(callbacks[0])
        assert answer is not None and answer.status == 400
        assert "pas été commencée dans ce navigateur" in stranger.locator("main").inner_text()
    finally:
        other.close()
    assert len(stack.rows("SELECT id FROM web_sessions")) == sessions


def test_no_secret_in_the_logs_or_the_audit_log(page: Any, stack: Stack) -> None:
    press_proconnect(page, stack)
    at_provider(page, "camille")
    tokens = [r.oidc_id_token for r in stack.rows("SELECT oidc_id_token FROM web_sessions")]
    audit = repr(stack.rows("SELECT actor, target, details FROM audit_events"))
    log = stack.log.read_text(errors="replace")
    for secret in [CLIENT_SECRET, *(t for t in tokens if t)]:
        assert secret not in audit and secret not in log
    assert "/connexion/oidc/retour?(masqué)" in log  # the access log line, without its query
    assert "code=" not in log and "state=" not in log
