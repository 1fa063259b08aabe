"""Sign-in through OpenID Connect, in-process, against a real provider (``oidc-provider`` on Node).

bibia runs in-process (TestClient, ``http://testserver``); the provider is the real one
(tests/oidc/provider.mjs) behind the forwarding proxy of :mod:`tests.oidc.provider`. Its
development login and consent pages are driven with httpx, as a browser would. Also here: the
claim mapping, the ID token's claim checks, and « Mes sessions et jetons » (sessions and
tokens, each revoked only by its owner).
"""

from __future__ import annotations

import datetime as dt
import html
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bibia import oidc
from bibia.db.models import ApiToken, AuditEvent, OidcLogin, User, WebSession
from bibia.errors import status_for
from domain.errors import SignInError
from tests.conftest import World, make_world
from tests.oidc.provider import CLIENT_SECRET, RunningProvider, oidc_provider
from tests.web.webdata import csrf_token, sign_in

BIBIA = "http://testserver"
FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')


@pytest.fixture(scope="module")
def provider() -> Iterator[RunningProvider]:
    with oidc_provider(
        [f"{BIBIA}/connexion/oidc/retour"], [f"{BIBIA}/deconnexion/terminee"]
    ) as running:
        yield running


def settings_for(tmp_path: Path, provider: RunningProvider, **overrides: Any) -> Any:
    """The settings of an app that signs in through ``provider`` (its cached metadata forgotten)."""
    from bibia.settings import Settings

    oidc.forget_provider_cache()
    provider.tamper = False
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "seed_on_start": False,
        "runner": "none",
        "oidc_issuer": provider.issuer,
        "oidc_client_id": provider.client_id,
        "oidc_client_secret": provider.client_secret,
        "auth_failure_limit": 1000,
    }
    return Settings(**{**values, **overrides})


@pytest.fixture
def world(tmp_path: Path, provider: RunningProvider) -> Iterator[World]:
    w = make_world(settings_for(tmp_path, provider))  # Nantes Métropole (SIREN 244400404) and Lille
    with w.client:
        yield w


def _count(world: World, model: Any) -> int:
    with world.services.db.session() as session:  # type: ignore[attr-defined]
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def start(browser: TestClient, next_url: str = "/") -> httpx.Response:
    """Press « Se connecter avec ProConnect »: bibia's answer (a redirect to the provider)."""
    return browser.post(
        "/connexion/oidc",
        data={"csrftoken": csrf_token(browser), "next": next_url},
        follow_redirects=False,
    )


def at_provider(agent: httpx.Client, url: str, login: str) -> str:
    """Sign in on the provider's own pages as ``login`` (any password), consent; the URL of the
    redirect back to bibia (its callback, with ``code`` and ``state``)."""
    method, data = "GET", None
    for _ in range(12):
        answer = agent.request(method, url, data=data)
        if answer.is_redirect:
            url = urljoin(url, answer.headers["location"])
            method, data = "GET", None
            if url.startswith(BIBIA):
                return url
            continue
        assert answer.status_code == 200, answer.text[:500]
        action = urljoin(url, FORM_ACTION.search(answer.text).group(1))  # type: ignore[union-attr]
        if 'name="login"' in answer.text:
            method, data = "POST", {"prompt": "login", "login": login, "password": "x"}
        else:  # consent (« Continue »)
            method, data = "POST", {"prompt": "consent"}
        url = action
    raise AssertionError("the provider never sent the browser back to bibia")


def callback_url(world: World, browser: TestClient, agent: httpx.Client, login: str) -> str:
    started = start(browser)
    assert started.status_code == 303, started.text
    return at_provider(agent, started.headers["location"], login)


def back(browser: TestClient, url: str) -> httpx.Response:
    return browser.get(url.removeprefix(BIBIA), follow_redirects=False)


# ------------------------------------------------------------------ the flow


def test_the_start_sends_the_browser_to_the_provider_with_pkce_state_and_nonce(
    world: World, provider: RunningProvider
) -> None:
    browser = TestClient(world.app)  # type: ignore[arg-type]
    page = browser.get("/connexion")
    assert "Se connecter avec ProConnect" in page.text
    forged = browser.post("/connexion/oidc", data={"csrftoken": "faux", "next": "/"})
    assert forged.status_code == 403  # login CSRF: the start is a form of bibia's only
    answer = start(browser, "/catalogue")
    assert answer.status_code == 303
    target = urlparse(answer.headers["location"])
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert f"{target.scheme}://{target.netloc}" == provider.issuer
    assert query["response_type"] == "code" and query["client_id"] == provider.client_id
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["redirect_uri"] == f"{BIBIA}/connexion/oidc/retour"
    assert set(query["scope"].split()) >= {"openid", "siret", "email"}
    assert query["nonce"] and query["state"]
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"bibia_oidc={query['state']};")
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    assert "Path=/connexion/oidc" in cookie and "Max-Age=600" in cookie
    with world.services.db.session() as session:  # type: ignore[attr-defined]
        row = session.scalar(select(OidcLogin))
        assert row is not None
        assert row.state_hash != query["state"] and query["state"] not in row.state_hash
        assert row.nonce == query["nonce"] and row.next_url == "/catalogue"
        assert query["code_challenge"] not in row.code_verifier  # the verifier never left


def test_a_flood_of_starts_is_braked_per_client_with_a_french_429(
    tmp_path: Path, provider: RunningProvider
) -> None:
    settings = settings_for(tmp_path, provider, oidc_start_limit=3)
    w = make_world(settings)
    with w.client:
        browser = TestClient(w.app)  # type: ignore[arg-type]
        assert [start(browser).status_code for _ in range(3)] == [303, 303, 303]
        refused_ = start(browser)
        assert refused_.status_code == 429
        assert 1 <= int(refused_.headers["retry-after"]) <= settings.oidc_start_window_s
        text = html.unescape(refused_.text)
        assert "trop de connexions commencées depuis votre adresse" in text.lower()
        assert "Traceback" not in text and "bibia_oidc" not in refused_.headers.get(
            "set-cookie", ""
        )
        assert _count(w, OidcLogin) == 3  # the refused start recorded nothing
        # the token sign-in is not braked by it
        assert sign_in(browser, w.tokens["member"]).status_code == 303


def test_a_first_sign_in_creates_a_member_of_the_organisation_and_opens_a_session(
    world: World, provider: RunningProvider
) -> None:
    browser = TestClient(world.app)  # type: ignore[arg-type]
    with httpx.Client(timeout=30) as agent:
        answer = back(browser, callback_url(world, browser, agent, "camille"))
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    # the SIRET came in the userinfo, a JWT signed by the provider (as ProConnect sends it)
    assert provider.userinfo_types[-1].startswith("application/jwt")
    assert "bibia_session" in browser.cookies
    with world.services.db.session() as session:  # type: ignore[attr-defined]
        user = session.scalar(select(User).where(User.oidc_subject == "camille"))
        assert user is not None
        assert user.organisation.slug == "nantes-metropole" and user.role == "member"
        assert user.name == "camille.martin" and user.full_name == "Camille Martin"
        assert user.email == "camille.martin@nantesmetropole.fr"
        assert user.oidc_issuer == world.services.settings.oidc_issuer  # type: ignore[attr-defined]
        assert user.last_login_at is not None
        web = session.scalar(select(WebSession).where(WebSession.user_id == user.id))
        assert web is not None and web.method == "oidc" and web.token_id is None
        assert web.oidc_id_token and web.oidc_id_token.count(".") == 2
        assert session.scalar(select(func.count()).select_from(OidcLogin)) == 0  # used once
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
        opened = [e for e in events if e.action == "session.open"][-1]
        assert opened.details and opened.details["method"] == "oidc"
        assert "camille.martin@nantes-metropole" in opened.actor
        dump = repr([(e.actor, e.target, e.details) for e in events])
        assert web.oidc_id_token not in dump and CLIENT_SECRET not in dump
    home = browser.get("/compte/sessions")
    assert "camille.martin" in home.text and "ProConnect" in home.text
    assert "(cette session)" in home.text


def test_a_returning_person_gets_the_same_account_and_the_role_an_admin_set(
    world: World,
) -> None:
    with httpx.Client(timeout=30) as agent:
        first = TestClient(world.app)  # type: ignore[arg-type]
        assert back(first, callback_url(world, first, agent, "camille")).status_code == 303
        with world.services.db.session() as session:  # type: ignore[attr-defined]
            user = session.scalar(select(User).where(User.oidc_subject == "camille"))
            assert user is not None
            user.role = "expert"  # what an administrator set
            users = session.scalar(select(func.count()).select_from(User))
        second = TestClient(world.app)  # type: ignore[arg-type]
        assert back(second, callback_url(world, second, agent, "camille")).status_code == 303
    assert _count(world, User) == users
    page = second.get("/compte/sessions")
    assert "niveau expert" in page.text
    assert page.text.count("ProConnect") >= 2  # both sessions listed, opened with the provider


def test_an_unknown_organisation_is_told_in_french_and_nothing_is_created(world: World) -> None:
    users, sessions_ = _count(world, User), _count(world, WebSession)
    browser = TestClient(world.app)  # type: ignore[arg-type]
    with httpx.Client(timeout=30) as agent:
        answer = back(browser, callback_url(world, browser, agent, "dominique"))
    assert answer.status_code == 403
    assert "SIRET 99999999900017" in answer.text and "SIREN 999999999" in answer.text
    assert "administrateur de bibia" in answer.text
    assert "aucun compte n'a été créé" in html.unescape(answer.text)
    assert "Traceback" not in answer.text
    assert "bibia_session" not in browser.cookies
    assert _count(world, User) == users and _count(world, WebSession) == sessions_
    with world.services.db.session() as session:  # type: ignore[attr-defined]
        assert session.scalar(select(User).where(User.oidc_subject == "dominique")) is None


def test_a_tampered_id_token_is_refused_and_nothing_is_created(
    world: World, provider: RunningProvider
) -> None:
    users = _count(world, User)
    browser = TestClient(world.app)  # type: ignore[arg-type]
    with httpx.Client(timeout=30) as agent:
        url = callback_url(world, browser, agent, "camille")
        provider.tamper = True
        try:
            seen = len(provider.token_requests)
            answer = back(browser, url)
        finally:
            provider.tamper = False
    assert len(provider.token_requests) == seen + 1  # the code went to the real provider
    assert answer.status_code == 400
    assert "n'a pas pu être vérifiée" in html.unescape(answer.text)
    assert "Traceback" not in answer.text
    assert "bibia_session" not in browser.cookies
    assert _count(world, User) == users and _count(world, WebSession) == 0


def test_a_replayed_state_is_refused(world: World) -> None:
    browser = TestClient(world.app)  # type: ignore[arg-type]
    with httpx.Client(timeout=30) as agent:
        url = callback_url(world, browser, agent, "camille")
    assert back(browser, url).status_code == 303
    state = parse_qs(urlparse(url).query)["state"][0]
    browser.cookies.set("bibia_oidc", state, path="/connexion/oidc")  # as if kept by an attacker
    again = back(browser, url)
    assert again.status_code == 400 and "déjà été utilisée" in again.text
    assert _count(world, WebSession) == 1


def test_a_state_that_is_not_this_browsers_is_refused(world: World) -> None:
    victim, attacker = TestClient(world.app), TestClient(world.app)  # type: ignore[arg-type]
    with httpx.Client(timeout=30) as agent:
        url = callback_url(world, attacker, agent, "camille")  # the attacker's own sign-in…
    start(victim)  # …and the victim's browser has a sign-in of its own under way
    answer = back(victim, url)  # login CSRF: the attacker's callback in the victim's browser
    assert answer.status_code == 400 and "pas été commencée dans ce navigateur" in answer.text
    assert _count(world, WebSession) == 0
    no_cookie = TestClient(world.app)  # type: ignore[arg-type]
    assert back(no_cookie, url).status_code == 400
    assert back(attacker, url).status_code == 303  # still its own, once


def test_a_callback_without_state_or_with_a_provider_error_is_a_french_page(
    world: World,
) -> None:
    browser = TestClient(world.app)  # type: ignore[arg-type]
    for query in ("", "?code=abc", "?state=%00%01", "?state=" + "x" * 5000, "?error=<script>"):
        answer = browser.get(f"/connexion/oidc/retour{query}", follow_redirects=False)
        assert answer.status_code == 400, (query, answer.status_code)
        assert "Recommencez" in answer.text and "<script>" not in answer.text
    started = start(browser)
    state = parse_qs(urlparse(started.headers["location"]).query)["state"][0]
    denied = browser.get(
        f"/connexion/oidc/retour?error=access_denied&error_description=refus&state={state}"
    )
    assert denied.status_code == 403 and "connexion a été annulée sur ProConnect" in denied.text
    assert _count(world, OidcLogin) == 0  # consumed: it cannot be completed afterwards


def test_a_wrong_nonce_is_refused(world: World) -> None:
    browser = TestClient(world.app)  # type: ignore[arg-type]
    with httpx.Client(timeout=30) as agent:
        url = callback_url(world, browser, agent, "camille")
    with world.services.db.session() as session:  # type: ignore[attr-defined]
        row = session.scalar(select(OidcLogin))
        assert row is not None
        row.nonce = "un-autre-nonce"  # the ID token carries the nonce bibia sent, not this one
    answer = back(browser, url)
    assert answer.status_code == 400 and "nonce" in answer.text
    assert _count(world, WebSession) == 0


def test_an_expired_sign_in_is_refused_and_swept(world: World) -> None:
    browser = TestClient(world.app)  # type: ignore[arg-type]
    with httpx.Client(timeout=30) as agent:
        url = callback_url(world, browser, agent, "camille")
    with world.services.db.session() as session:  # type: ignore[attr-defined]
        row = session.scalar(select(OidcLogin))
        assert row is not None
        row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    answer = back(browser, url)
    assert answer.status_code == 400 and "a expiré" in answer.text
    assert _count(world, OidcLogin) == 0
    # rows abandoned at the provider are swept by the next sign-in
    start(browser)
    with world.services.db.session() as session:  # type: ignore[attr-defined]
        for row in session.scalars(select(OidcLogin)):
            row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    start(browser)
    assert _count(world, OidcLogin) == 1


def test_sign_out_ends_the_provider_session_too(world: World, provider: RunningProvider) -> None:
    browser = TestClient(world.app)  # type: ignore[arg-type]
    with httpx.Client(timeout=30) as agent:
        assert back(browser, callback_url(world, browser, agent, "camille")).status_code == 303
        with world.services.db.session() as session:  # type: ignore[attr-defined]
            id_token = session.scalar(select(WebSession.oidc_id_token))
        answer = browser.post(
            "/deconnexion", data={"csrftoken": csrf_token(browser, "/")}, follow_redirects=False
        )
        assert answer.status_code == 303
        target = urlparse(answer.headers["location"])
        query = {k: v[0] for k, v in parse_qs(target.query).items()}
        assert answer.headers["location"].startswith(f"{provider.issuer}/session/end?")
        assert query["id_token_hint"] == id_token and query["state"]
        assert query["post_logout_redirect_uri"] == f"{BIBIA}/deconnexion/terminee"
        assert 'bibia_session=""' in answer.headers.get("set-cookie", "")
        with world.services.db.session() as session:  # type: ignore[attr-defined]
            web = session.scalar(select(WebSession))
            assert web is not None and web.revoked_at is not None and web.oidc_id_token is None
        # the provider's page asks to confirm, then sends the browser back to bibia
        confirm = agent.get(answer.headers["location"])
        assert confirm.status_code == 200
        action = urljoin(str(confirm.url), FORM_ACTION.search(confirm.text).group(1))  # type: ignore[union-attr]
        xsrf = re.search(r'name="xsrf" value="([^"]+)"', confirm.text)
        done = agent.post(action, data={"xsrf": xsrf.group(1) if xsrf else "", "logout": "yes"})
        assert done.is_redirect and done.headers["location"].startswith(
            f"{BIBIA}/deconnexion/terminee"
        )
        page = back(browser, done.headers["location"])
        assert page.status_code == 200 and "déconnecté de bibia et de ProConnect" in page.text
        # the provider's session is over: a new sign-in asks for the login again
        started = start(browser)
        login_page = agent.get(started.headers["location"], follow_redirects=True)
        assert 'name="login"' in login_page.text


def test_sign_in_is_off_without_an_issuer(tmp_path: Path) -> None:
    from bibia.settings import Settings

    w = make_world(Settings(data_dir=tmp_path / "off", seed_on_start=False, runner="none"))
    with w.client:
        browser = TestClient(w.app)  # type: ignore[arg-type]
        page = browser.get("/connexion")
        assert "ProConnect" not in page.text and 'name="token"' in page.text
        answer = start(browser)
        assert answer.status_code == 404 and "pas activée" in answer.text
        assert browser.get("/connexion/oidc/retour?state=x&code=y").status_code == 404


def test_an_unreachable_provider_is_a_french_502(tmp_path: Path) -> None:
    from bibia.settings import Settings
    from tests.conftest import free_port

    oidc.forget_provider_cache()
    settings = Settings(
        data_dir=tmp_path / "down",
        seed_on_start=False,
        runner="none",
        oidc_issuer=f"http://127.0.0.1:{free_port()}",
        oidc_client_id="bibia",
        oidc_timeout_s=2,
    )
    w = make_world(settings)
    with w.client:
        browser = TestClient(w.app)  # type: ignore[arg-type]
        answer = start(browser)
        assert answer.status_code == 502 and "ne répond pas" in answer.text
        assert _count(w, OidcLogin) == 0


# ------------------------------------------------------------------ units


def test_the_organisation_claim_gives_the_siren() -> None:
    pick = oidc.organisation_claim
    assert pick({"siret": "24440040400012"}, "siret") == oidc.OrganisationClaim(
        "244400404", "24440040400012"
    )
    assert pick({"siret": "244 400 404 00012"}, "siret").siren == "244400404"
    assert pick({"siren": "244400404"}, "siren") == oidc.OrganisationClaim("244400404", None)
    assert pick({"org": 244400404}, "org").siren == "244400404"
    for claims in ({}, {"siret": ""}, {"siret": None}):
        with pytest.raises(SignInError) as missing:
            pick(claims, "siret")
        assert status_for(missing.value) == 403 and "« siret » absente" in missing.value.message
    for bad in ("2444004040001", "ABCDEFGHIJKLMN", ["24440040400012"], True, "24440040400012x"):
        with pytest.raises(SignInError) as wrong:
            pick({"siret": bad}, "siret")
        assert "ni un SIRET" in wrong.value.message


def test_the_organisation_claim_is_a_setting(world: World) -> None:
    from bibia.settings import Settings

    settings = Settings(
        data_dir=Path("/tmp/unused"),
        oidc_issuer="https://auth.example.fr/realms/agents",
        oidc_client_id="bibia",
        oidc_organisation_claim="siren",
    )
    identity = oidc.Identity(
        issuer="https://auth.example.fr/realms/agents",
        subject="kc-1",
        claims={"siren": "244400404", "preferred_username": "x", "name": "Alex Kc"},
        id_token="a.b.c",
    )
    with world.services.db.session() as session:  # type: ignore[attr-defined]
        signed = oidc.sign_in(session, settings, identity)
        user = session.get(User, signed.user_id)
        assert signed.created and user is not None
        assert user.organisation.slug == "nantes-metropole" and user.name == "alex-kc"


def test_settings_refuse_a_plain_http_issuer_except_on_loopback() -> None:
    from pydantic import ValidationError

    from bibia.settings import Settings

    with pytest.raises(ValidationError, match="https://"):
        Settings(oidc_issuer="http://auth.example.fr")
    assert Settings(oidc_issuer="https://auth.example.fr/").oidc_issuer == "https://auth.example.fr"
    assert not Settings(oidc_issuer="https://auth.example.fr").oidc_enabled  # no client id
    assert Settings(oidc_issuer=" ").oidc_issuer is None


def test_the_client_secret_can_come_from_a_file(tmp_path: Path) -> None:
    from bibia.settings import Settings

    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    assert Settings(oidc_client_secret_file=secret).oidc_secret() == "s3cr3t"
    shown = repr(Settings(oidc_client_secret="s3cr3t"))
    assert "s3cr3t" not in shown


def test_id_token_claims_are_checked() -> None:
    from bibia.settings import Settings

    settings = Settings(oidc_issuer="https://idp.example.fr", oidc_client_id="bibia")
    now = int(time.time())
    good = {
        "iss": "https://idp.example.fr",
        "sub": "s",
        "aud": "bibia",
        "exp": now + 60,
        "iat": now,
        "nonce": "n",
    }
    header = {"alg": "RS256"}
    oidc.check_id_token(settings, dict(good), header, issuer="https://idp.example.fr", nonce="n")
    wrong = [
        {"iss": "https://autre.example.fr"},
        {"aud": "un-autre-client"},
        {"aud": ["un-autre-client", "bibia"]},  # several audiences: azp must name bibia
        {"exp": now - 3600},
        {"nonce": "autre"},
        {"nonce": None},
        {"sub": None},
    ]
    for change in wrong:
        claims = {**good, **change}
        claims = {k: v for k, v in claims.items() if v is not None}
        with pytest.raises(SignInError):
            oidc.check_id_token(
                settings, claims, header, issuer="https://idp.example.fr", nonce="n"
            )


# ------------------------------------------------------------------ Mes sessions et jetons


def test_the_page_lists_sessions_and_own_tokens_without_values(world: World) -> None:
    browser = TestClient(world.app)  # type: ignore[arg-type]
    assert sign_in(browser, world.tokens["member"]).status_code == 303
    page = browser.get("/compte/sessions")
    assert page.status_code == 200 and "Mes sessions et jetons" in page.text
    prefix = world.tokens["member"].split("_")[1]
    assert prefix in page.text and "(utilisé ici)" in page.text
    assert world.tokens["member"] not in page.text
    assert world.tokens["expert"].split("_")[1] not in page.text  # a colleague's token
    assert "jeton" in page.text and "Heures de Paris" in page.text


def test_one_revokes_only_ones_own_token(world: World) -> None:
    browser = TestClient(world.app)  # type: ignore[arg-type]
    assert sign_in(browser, world.tokens["member"]).status_code == 303
    own, other = world.tokens["member"].split("_")[1], world.tokens["expert"].split("_")[1]
    for prefix in (other, "00000000", "pas-un-prefixe"):
        refused = browser.post(
            f"/compte/jetons/{prefix}/revoquer",
            data={"csrftoken": csrf_token(browser, "/compte/sessions")},
        )
        assert refused.status_code == 404 and "parmi les vôtres" in refused.text
    with world.services.db.session() as session:  # type: ignore[attr-defined]
        assert session.scalar(select(ApiToken.revoked_at).where(ApiToken.prefix == other)) is None
    forged = browser.post(f"/compte/jetons/{own}/revoquer", data={"csrftoken": "faux"})
    assert forged.status_code == 403
    done = browser.post(
        f"/compte/jetons/{own}/revoquer",
        data={"csrftoken": csrf_token(browser, "/compte/sessions")},
    )
    assert done.status_code == 200 and "révoqué" in done.text
    with world.services.db.session() as session:  # type: ignore[attr-defined]
        assert session.scalar(select(ApiToken.revoked_at).where(ApiToken.prefix == own))
        event = session.scalar(
            select(AuditEvent).where(AuditEvent.action == "token.revoke", AuditEvent.target == own)
        )
        assert event is not None and "agent@nantes-metropole" in event.actor
    assert browser.get("/compte/sessions", follow_redirects=False).status_code == 303


def test_one_closes_only_ones_own_sessions(world: World) -> None:
    mine, theirs = TestClient(world.app), TestClient(world.app)  # type: ignore[arg-type]
    assert sign_in(mine, world.tokens["member"]).status_code == 303
    assert sign_in(theirs, world.tokens["expert"]).status_code == 303
    with world.services.db.session() as session:  # type: ignore[attr-defined]
        rows = {r.user.name: r.id for r in session.scalars(select(WebSession))}
    refused = mine.post(
        f"/compte/sessions/{rows['experte']}/revoquer",
        data={"csrftoken": csrf_token(mine, "/compte/sessions")},
    )
    assert refused.status_code == 404
    assert theirs.get("/compte/sessions").status_code == 200
    closed = theirs.post(
        f"/compte/sessions/{rows['experte']}/revoquer",
        data={"csrftoken": csrf_token(theirs, "/compte/sessions")},
    )
    assert closed.status_code == 200 and "déconnecté" in closed.text


def test_the_access_log_hides_the_callbacks_query() -> None:
    import logging

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/connexion/oidc/retour?code=SECRET&state=S", "1.1", 303),
        None,
    )
    assert oidc.HideCallbackQuery().filter(record)
    assert "SECRET" not in record.getMessage() and "/connexion/oidc/retour?(masqué)" in (
        record.getMessage()
    )
    other = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, "%s %s %s", ("a", "GET", "/?q=1"), None
    )
    oidc.HideCallbackQuery().filter(other)
    assert other.getMessage() == "a GET /?q=1"
    assert any(
        isinstance(f, oidc.HideCallbackQuery) for f in logging.getLogger("uvicorn.access").filters
    )


def test_pages_let_their_forms_lead_to_the_provider_and_nowhere_else(
    world: World, provider: RunningProvider
) -> None:
    browser = TestClient(world.app)  # type: ignore[arg-type]
    csp = browser.get("/connexion").headers["content-security-policy"]
    assert f"form-action 'self' {provider.issuer};" in csp
    metadata = oidc.ProviderMetadata(
        issuer="https://idp.example.fr",
        authorization_endpoint="https://login.example.fr/authorize",
        token_endpoint="https://idp.example.fr/token",
        jwks_uri="https://idp.example.fr/jwks",
        userinfo_endpoint=None,
        end_session_endpoint="https://x.example.fr; script-src *",
        signing_algs=("RS256",),
    )
    from bibia.settings import Settings

    settings = Settings(oidc_issuer="https://idp.example.fr", oidc_client_id="bibia")
    oidc._metadata["https://idp.example.fr"] = (time.monotonic(), metadata)
    try:
        assert oidc.form_targets(settings) == ("https://idp.example.fr", "https://login.example.fr")
    finally:
        oidc.forget_provider_cache()
    assert oidc.form_targets(Settings()) == ()


def test_the_client_authenticates_as_the_provider_supports() -> None:
    from bibia.settings import Settings

    def method(supported: tuple[str, ...], secret: str | None = "s") -> str:
        settings = Settings(
            oidc_issuer="https://idp.example.fr", oidc_client_id="bibia", oidc_client_secret=secret
        )
        metadata = oidc.ProviderMetadata(
            issuer="https://idp.example.fr",
            authorization_endpoint="https://idp.example.fr/authorize",
            token_endpoint="https://idp.example.fr/token",
            jwks_uri="https://idp.example.fr/jwks",
            userinfo_endpoint=None,
            end_session_endpoint=None,
            signing_algs=("RS256",),
            token_auth_methods=supported,
        )
        with oidc._client(settings, "https://bibia.example.fr/cb", metadata) as client:
            return str(client.token_endpoint_auth_method)

    assert method(("client_secret_basic", "client_secret_post")) == "client_secret_basic"
    assert method(("client_secret_post",)) == "client_secret_post"  # ProConnect's
    assert method(("client_secret_basic",), secret=None) == "none"  # a public client, PKCE alone


def test_anything_unexpected_is_a_french_page_without_a_trace(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser = TestClient(world.app)  # type: ignore[arg-type]
    with httpx.Client(timeout=30) as agent:
        url = callback_url(world, browser, agent, "camille")

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("eyJ-un-jeton-qui-ne-doit-pas-sortir")

    monkeypatch.setattr(oidc, "sign_in", broken)
    answer = back(browser, url)
    assert answer.status_code == 502 and "n'a pas pu être traitée" in html.unescape(answer.text)
    assert "eyJ" not in answer.text and "Traceback" not in answer.text
    assert _count(world, WebSession) == 0
