"""Finding 8: server-side sessions, CSRF on every form, Secure cookies behind a TLS proxy.

Before the fix the ``bibia_session`` cookie held the raw API token, never
expired server-side and survived sign-out; no form carried a CSRF token
(foreign sign-in and sign-out, ``Origin: null`` launches and foreign
demonstrator uploads were accepted); and ``Secure`` was never set behind a
TLS-terminating proxy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from bibia.db.models import AuditEvent, User, WebSession
from tests.conftest import World, cli, make_world, running_service
from tests.fixtures.models import make_model
from tests.web.webdata import csrf_token, sign_in

HTML = {"accept": "text/html"}
REFUSED = "ne vient pas d&#39;une page de bibia"


def _rows(world: World) -> list[WebSession]:
    with world.services.db.session() as session:
        return list(session.scalars(select(WebSession).order_by(WebSession.id)))


def _whoami(client: TestClient) -> str | None:
    """Who the session page says is signed in (None: redirected to sign-in)."""
    page = client.get("/compte/sessions", headers=HTML, follow_redirects=False)
    if page.status_code == 303:
        return None
    assert page.status_code == 200, page.text[:300]
    return page.text.split('<span class="sr-only">Connecté en tant que </span><strong>', 1)[
        1
    ].split("<", 1)[0]


@pytest.fixture
def browser(world: World) -> Iterator[TestClient]:
    with TestClient(
        world.app, headers={"user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}
    ) as client:
        yield client


# ------------------------------------------------------------------ sessions


def test_the_cookie_names_a_random_session_stored_only_hashed(
    world: World, browser: TestClient
) -> None:
    response = sign_in(browser, world.tokens["member"], "/catalogue")
    assert response.status_code == 303 and response.headers["location"] == "/catalogue"
    secret = browser.cookies["bibia_session"]
    assert (
        world.tokens["member"] not in secret and len(secret) >= 43
    )  # 256 random bits, url-safe base64
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("bibia_session=")
    )
    assert (
        "HttpOnly" in cookie
        and "SameSite=lax" in cookie
        and "Path=/" in cookie
        and f"Max-Age={12 * 3600}" in cookie
    )
    (row,) = _rows(world)
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert row.user_agent == "Firefox · Linux" and row.revoked_at is None
    assert (
        dt.timedelta(hours=11, minutes=59)
        < row.expires_at - row.created_at
        <= dt.timedelta(hours=12)
    )
    with (
        world.services.db.session() as session
    ):  # nothing of the secret anywhere in the database's text
        assert not any(
            secret in (str(e.details) + e.target) for e in session.scalars(select(AuditEvent))
        )
    assert _whoami(browser) == "agent"


def test_each_sign_in_opens_a_new_session_and_closes_the_old_one(
    world: World, browser: TestClient
) -> None:
    sign_in(browser, world.tokens["member"])
    first = browser.cookies["bibia_session"]
    sign_in(browser, world.tokens["expert"])
    second = browser.cookies["bibia_session"]
    assert first != second
    old, new = _rows(world)
    assert old.revoked_at is not None and new.revoked_at is None
    browser.cookies.set("bibia_session", first)  # an attacker who planted or kept the old cookie
    page = browser.get("/catalogue", headers=HTML)
    assert "Votre session a expiré" in page.text and _whoami(browser) is None


def test_signing_out_revokes_the_session_server_side(world: World, browser: TestClient) -> None:
    sign_in(browser, world.tokens["member"])
    secret = browser.cookies["bibia_session"]
    response = browser.post("/deconnexion", data={"csrftoken": csrf_token(browser, "/")})
    assert response.status_code == 200 and "Vous êtes déconnecté" in response.text
    (row,) = _rows(world)
    assert row.revoked_at is not None
    replay = TestClient(
        world.app, cookies={"bibia_session": secret}
    )  # the cookie, copied before sign-out
    assert _whoami(replay) is None


def test_an_expired_session_is_refused(world: World, browser: TestClient) -> None:
    sign_in(browser, world.tokens["member"])
    with world.services.db.session() as session:
        session.scalars(select(WebSession)).one().expires_at = dt.datetime.now(
            dt.UTC
        ) - dt.timedelta(seconds=1)
    page = browser.get("/", headers=HTML)
    assert (
        "Votre session a expiré" in page.text and 'bibia_session=""' in page.headers["set-cookie"]
    )
    assert _whoami(browser) is None


def test_the_session_lifetime_is_a_setting(tmp_path: Path) -> None:
    from bibia.settings import Settings

    world = make_world(
        Settings(data_dir=tmp_path / "d", seed_on_start=False, runner="none", session_hours=0.5)
    )
    with world.client:
        response = sign_in(world.client, world.tokens["member"])
        assert "Max-Age=1800" in response.headers["set-cookie"]
        (row,) = _rows(world)
        assert row.expires_at - row.created_at <= dt.timedelta(minutes=30)


def test_a_session_dies_with_its_token_and_with_its_user(world: World, browser: TestClient) -> None:
    admin = world.headers("admin")
    issued = world.client.post(
        "/api/v1/tokens",
        json={"organisation": "lille", "role": "member", "user": "temporaire"},
        headers=admin,
    )
    sign_in(browser, issued.json()["token"])
    assert _whoami(browser) == "temporaire"
    assert (
        world.client.delete(f"/api/v1/tokens/{issued.json()['prefix']}", headers=admin).status_code
        == 204
    )
    assert _whoami(browser) is None  # the token it was opened with is revoked

    other = TestClient(world.app)
    sign_in(other, world.tokens["member"])
    assert _whoami(other) == "agent"
    with (
        world.services.db.session() as session
    ):  # the database's ON DELETE CASCADE, as an operator would remove a user
        session.execute(delete(User).where(User.name == "agent"))
    assert _whoami(other) is None
    assert (
        len(_rows(world)) == 1
    )  # the removed user's session went with it; the other one stays, refused


def test_the_owner_lists_and_closes_sessions_on_the_page_and_through_the_api(world: World) -> None:
    laptop, phone = (
        TestClient(world.app, headers={"user-agent": "Firefox/140.0 Linux"}),
        TestClient(world.app, headers={"user-agent": "Android Chrome/140"}),
    )
    sign_in(laptop, world.tokens["member"])
    sign_in(phone, world.tokens["member"])
    page = laptop.get("/compte/sessions", headers=HTML).text
    assert "Firefox · Linux <strong>(cette session)</strong>" in page and "Chrome · Android" in page
    phone_id = next(r.id for r in _rows(world) if r.user_agent == "Chrome · Android")

    # another user cannot close it, through the page or the API
    intruder = TestClient(world.app)
    sign_in(intruder, world.tokens["expert"])
    refused = intruder.post(
        f"/compte/sessions/{phone_id}/revoquer",
        data={"csrftoken": csrf_token(intruder, "/compte/sessions")},
        headers=HTML,
    )
    assert refused.status_code == 404 and _whoami(phone) == "agent"
    assert (
        world.client.delete(
            f"/api/v1/sessions/{phone_id}", headers=world.headers("expert")
        ).status_code
        == 404
    )

    listed = world.client.get("/api/v1/sessions", headers=world.headers("member")).json()["items"]
    assert {s["user_agent"] for s in listed} == {"Firefox · Linux", "Chrome · Android"}
    assert all(
        s["current"] is False and s["token"] == world.tokens["member"].split("_")[1] for s in listed
    )

    # the owner closes the phone's session from the laptop: the phone is signed out at once
    closed = laptop.post(
        f"/compte/sessions/{phone_id}/revoquer",
        data={"csrftoken": csrf_token(laptop, "/compte/sessions")},
        follow_redirects=False,
    )
    assert closed.status_code == 303 and closed.headers["location"] == "/compte/sessions"
    assert _whoami(phone) is None and _whoami(laptop) == "agent"
    (laptop_row,) = [
        s
        for s in world.client.get("/api/v1/sessions", headers=world.headers("member")).json()[
            "items"
        ]
    ]
    assert (
        world.client.delete(
            f"/api/v1/sessions/{laptop_row['id']}", headers=world.headers("member")
        ).status_code
        == 204
    )
    assert _whoami(laptop) is None
    assert (
        world.client.get("/api/v1/sessions", headers=world.headers("member")).json()["items"] == []
    )
    assert world.client.get("/api/v1/sessions").status_code == 401


# ---------------------------------------------------------------------- CSRF


def test_sign_in_refuses_a_post_without_the_form_token_even_without_cookies(world: World) -> None:
    """Login CSRF: a foreign page must not sign a victim's browser into the attacker's account."""
    foreign = TestClient(world.app)  # no cookie at all, as from another site's form
    response = foreign.post(
        "/connexion",
        data={"token": world.tokens["member"], "next": "/"},
        headers={"origin": "https://pirate.example", **HTML},
        follow_redirects=False,
    )
    assert (
        response.status_code == 403
        and REFUSED in response.text
        and '<html lang="fr">' in response.text
    )
    assert "bibia_session" not in foreign.cookies and _rows(world) == []
    forged = foreign.post(
        "/connexion",
        data={"csrftoken": "forge", "token": world.tokens["member"]},
        follow_redirects=False,
    )
    assert forged.status_code == 403 and _rows(world) == []


def test_sign_out_refuses_a_post_without_the_form_token(world: World, browser: TestClient) -> None:
    sign_in(browser, world.tokens["member"])
    response = browser.post("/deconnexion", headers={"origin": "https://pirate.example", **HTML})
    assert response.status_code == 403 and REFUSED in response.text
    assert _whoami(browser) == "agent" and _rows(world)[0].revoked_at is None


@pytest.mark.parametrize("origin", ["null", "https://pirate.example", None])
def test_the_launch_form_needs_its_token_whatever_the_origin(
    world: World, browser: TestClient, origin: str | None
) -> None:
    sign_in(browser, world.tokens["member"])
    headers = {**HTML, **({"origin": origin} if origin else {})}
    response = browser.post(
        "/modeles/eau-batiments/demonstrateur",
        data={"version": "alias:production"},
        headers=headers,
    )
    assert response.status_code == 403 and REFUSED in response.text
    accepted = browser.post(
        "/modeles/eau-batiments/demonstrateur",
        data={"csrftoken": csrf_token(browser, "/"), "version": "alias:production"},
        headers=HTML,
    )
    assert (
        accepted.status_code == 502 and "démonstrateurs sont désactivés" in accepted.text
    )  # past the check: no runner here


MULTIPART = "multipart/form-data; boundary=bibia-test"


def _multipart(parts: list[tuple[str, str, str]]) -> bytes:
    """A multipart body in the order given: ``(name, extra disposition and headers, value)``."""
    body = ""
    for name, extra, value in parts:
        disposition = f'form-data; name="{name}"' + (f"; {extra}" if extra else "")
        body += f"--bibia-test\r\nContent-Disposition: {disposition}\r\n\r\n{value}\r\n"
    return (body + "--bibia-test--\r\n").encode()


def test_a_multipart_form_needs_the_token_as_its_first_field(
    world: World, browser: TestClient
) -> None:
    """asgi-csrf reads a multipart body only up to the token: a file before it is refused."""
    sign_in(browser, world.tokens["member"])
    token_part = ("csrftoken", "", csrf_token(browser, "/"))
    file_part = ("file", 'filename="d.csv"\r\nContent-Type: text/csv', "a,b\r\n1,2")
    file_first = browser.post(
        "/deconnexion",
        content=_multipart([file_part, token_part]),
        headers={"content-type": MULTIPART, **HTML},
    )
    assert file_first.status_code == 403 and REFUSED in file_first.text
    assert _whoami(browser) == "agent"
    token_first = browser.post(
        "/deconnexion",
        content=_multipart([token_part, file_part]),
        headers={"content-type": MULTIPART, **HTML},
    )
    assert token_first.status_code == 200 and REFUSED not in token_first.text
    assert _rows(world)[0].revoked_at is not None


def test_malformed_form_bodies_are_refused_in_french_not_a_500(
    world: World, browser: TestClient
) -> None:
    sign_in(browser, world.tokens["member"])
    cases = [
        {
            "content": b"--x\r\n",
            "headers": {"content-type": "multipart/form-data;boundary=x"},
        },  # no space before boundary
        {
            "content": b"csrftoken=\xff\xfe",
            "headers": {"content-type": "application/x-www-form-urlencoded"},
        },
        {"content": b"{}", "headers": {"content-type": "application/json"}},
    ]
    for case in cases:
        response = browser.post(
            "/deconnexion", content=case["content"], headers={**case["headers"], **HTML}
        )
        assert response.status_code == 403 and REFUSED in response.text, case


def test_api_and_bearer_requests_are_not_subject_to_the_form_check(
    world: World, browser: TestClient
) -> None:
    sign_in(browser, world.tokens["member"])  # the browser now has both cookies
    response = browser.post(
        "/api/v1/demos", json={"model": "inconnu"}, headers=world.headers("member")
    )
    assert response.status_code != 403 and response.json()["error"] != "acces_refuse"
    no_cookie_read = browser.post("/api/v1/demos", json={"model": "inconnu"})
    assert no_cookie_read.status_code == 401  # the API never reads the session cookie
    bearer_page = browser.post(
        "/modeles/inconnu/demonstrateur",
        data={"version": "alias:production"},
        headers=world.headers("member"),
    )
    assert bearer_page.status_code == 502  # past the check: no runner here


def test_the_csrf_secret_is_generated_once_and_shared_by_replicas(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from bibia.app import create_app
    from bibia.settings import Settings

    settings = Settings(data_dir=tmp_path / "shared", seed_on_start=False, runner="none")
    one, two = (
        make_world(settings),
        TestClient(create_app(settings)),
    )  # two replicas on one data directory
    secret_file = settings.data_dir / "secret_key"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = secret_file.read_text().strip()
    assert len(secret) >= 43
    with one.client, two:
        token = csrf_token(one.client)  # the form of one replica…
        two.cookies.update(one.client.cookies)
        response = two.post(
            "/connexion",
            data={"csrftoken": token, "token": one.tokens["member"]},
            follow_redirects=False,
        )
        assert response.status_code == 303  # …is accepted by the other
    assert secret not in caplog.text

    explicit = Settings(
        data_dir=tmp_path / "explicit",
        seed_on_start=False,
        runner="none",
        secret_key="une-cle-fournie-par-le-deploiement",
    )
    make_world(explicit)
    assert not (explicit.data_dir / "secret_key").exists()


# -------------------------------------------------------------- Secure cookies


def _cookie(response: httpx.Response, name: str) -> str:
    return next(c for c in response.headers.get_list("set-cookie") if c.startswith(f"{name}="))


def test_cookies_are_secure_when_the_public_address_is_https(tmp_path: Path) -> None:
    from bibia.settings import Settings

    world = make_world(
        Settings(
            data_dir=tmp_path / "d",
            seed_on_start=False,
            runner="none",
            public_url="https://bibia.example.fr",
        )
    )
    # the app sees plain http (a TLS proxy in front, not declared as trusted): public_url decides
    with world.client as browser:
        page = browser.get("/connexion")
        assert "Secure" in _cookie(page, "bibia_csrf") and "HttpOnly" in _cookie(page, "bibia_csrf")
        token = _cookie(page, "bibia_csrf").split(";", 1)[0].split("=", 1)[1]
        signed_in = browser.post(  # an http client keeps no Secure cookie: send it by hand, as a browser over https would
            "/connexion",
            data={"csrftoken": token, "token": world.tokens["member"]},
            headers={"cookie": f"bibia_csrf={token}"},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303 and "Secure" in _cookie(signed_in, "bibia_session")


def test_behind_a_trusted_tls_proxy_cookies_are_secure_and_only_then(tmp_path: Path) -> None:
    """A real ``bibia serve``: X-Forwarded-Proto is believed from the trusted proxy (127.0.0.1) only."""
    data_dir = tmp_path / "live"
    assert (
        cli(
            data_dir,
            "org",
            "create",
            "nantes-metropole",
            "--name",
            "Nantes Métropole",
            "--siren",
            "244400404",
        ).returncode
        == 0
    )
    made = cli(
        data_dir,
        "token",
        "create",
        "--org",
        "nantes-metropole",
        "--role",
        "member",
        "--user",
        "agent",
    )
    token = made.stdout.strip().splitlines()[-1].strip()
    behind_tls = {"x-forwarded-proto": "https", "x-forwarded-for": "198.51.100.7"}
    for trusted, secure in (("127.0.0.1", True), ("", False)):
        with running_service(
            data_dir, tmp_path / f"server-{bool(trusted)}.log", {"BIBIA_TRUSTED_PROXIES": trusted}
        ) as server:
            with httpx.Client(base_url=server.url, headers=behind_tls, timeout=30) as client:
                page = client.get("/connexion")
                assert ("Secure" in _cookie(page, "bibia_csrf")) is secure, trusted
                csrf = page.cookies["bibia_csrf"]
                signed_in = client.post(
                    "/connexion",
                    data={"csrftoken": csrf, "token": token},
                    cookies={"bibia_csrf": csrf},
                    follow_redirects=False,
                )
                assert signed_in.status_code == 303, signed_in.text[:300]
                assert ("Secure" in _cookie(signed_in, "bibia_session")) is secure, trusted


# ------------------------------------------------------- the demonstrator's forms


@pytest.fixture(scope="module")
def demo_app(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    from demos.server.app import create_app
    from demos.server.model import DemoModel
    from demos.server.settings import Settings

    model = DemoModel.load(make_model("series", tmp_path_factory.mktemp("series") / "model"))
    return TestClient(create_app(model, Settings(model_dir=model.model_dir)))


def test_the_demonstrator_puts_the_proxy_token_in_its_form_action(demo_app: TestClient) -> None:
    page = demo_app.get("/", headers={"x-bibia-csrf-token": 'jeton"<signe>'}).text
    assert (
        '<form action="upload?csrftoken=jeton%22%3Csigne%3E" method="post" enctype="multipart/form-data">'
        in page
    )
    assert (
        '<form action="upload" method="post"' in demo_app.get("/").text
    )  # not behind bibia: no token
    # a refused upload shows the form again, still with the token
    refused = demo_app.post(
        "/upload", files={"file": ("x.csv", b"", "text/csv")}, headers={"x-bibia-csrf-token": "t"}
    )
    assert '<form action="upload?csrftoken=t" method="post"' in refused.text
