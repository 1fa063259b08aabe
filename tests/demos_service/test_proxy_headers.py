"""What crosses the proxy, proven against a real HTTP server on a real Unix socket.

The demonstrator's place is taken by a tiny recording server of our own
(``socketserver`` on the socket the service proxies to), so that we see
exactly which request headers reach the sandbox and answer with hostile
headers (cookies, a lax CSP, CORS) that must not reach the browser. No
Docker needed: the demo row is put in the database in state ``ready``.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from runners.base import SANDBOX_UID, SOCKET_NAME
from tests.conftest import World
from tests.demos_service.conftest import open_world
from tests.web.webdata import sign_in

DEMO_ID = "0123456789abcdef"


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[dict] = []

    def _answer(self) -> None:
        body = self._body()
        self.seen.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers.items()),
                "body": body,
            }
        )
        payload = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Set-Cookie", "bibia_session=stolen; Path=/")
        self.send_header("Set-Cookie", "tracker=1; Path=/")
        self.send_header("Content-Security-Policy", "script-src *")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Credentials", "true")
        self.send_header("X-Demo", "kept")
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> bytes:
        if (
            self.headers.get("transfer-encoding", "").lower() == "chunked"
        ):  # the proxy streams bodies
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:  # a Unix socket has no client address to log
        pass


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture(scope="module")
def recording_service(short_tmp: Path) -> Iterator[tuple[World, list[dict]]]:
    import tempfile

    from sqlalchemy import select

    from bibia.db.models import DemoSession, Organisation
    from bibia.settings import Settings

    data_dir = Path(tempfile.mkdtemp(dir=short_tmp))
    with open_world(Settings(data_dir=data_dir, seed_on_start=False, runner="none")) as world:
        with world.services.db.session() as session:
            org = session.scalar(
                select(Organisation).where(Organisation.slug == "nantes-metropole")
            )
            session.add(
                DemoSession(
                    id=DEMO_ID,
                    organisation_id=org.id,
                    model_name="double-x",
                    model_version=1,
                    state="ready",
                    runner="test",
                    expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30),
                )
            )
        socket = world.app.state.demos.socket_dir(DEMO_ID) / SOCKET_NAME
        socket.parent.mkdir(parents=True)
        handler = type("Recorder", (_Recorder,), {"seen": []})
        server = _UnixServer(str(socket), handler)
        os.chown(
            socket, SANDBOX_UID, -1
        )  # as a sandbox's socket is: the service connects to no other
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield world, handler.seen
        finally:
            server.shutdown()
            server.server_close()


@pytest.fixture
def proxied(recording_service) -> tuple[World, list[dict]]:
    world, seen = recording_service
    seen.clear()
    world.client.cookies.clear()
    return world, seen


def test_caller_credentials_never_reach_the_sandbox(proxied) -> None:
    world, seen = proxied
    response = world.client.post(
        f"/demos/{DEMO_ID}/predict?a=1&a=2",
        headers={
            **world.headers("member"),
            "Cookie": "bibia_session=secret-session; other=value",
            "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Host": "evil.example",
            "Proxy-Authorization": "Basic Zm9vOmJhcg==",
            "X-Custom": "passes",
            "Content-Type": "application/json",
        },
        content=b'{"dataframe_records": [{"x": 1}]}',
    )
    assert response.status_code == 200, response.text
    assert len(seen) == 1
    got = {k.lower(): v for k, v in seen[0]["headers"].items()}
    for name in (
        "authorization",
        "cookie",
        "x-forwarded-for",
        "x-forwarded-host",
        "proxy-authorization",
    ):
        assert name not in got, f"{name} reached the sandbox: {got}"
    assert world.tokens["member"] not in json.dumps(got)
    assert "secret-session" not in json.dumps(got)
    assert got["x-custom"] == "passes"
    assert got["x-forwarded-prefix"] == f"/demos/{DEMO_ID}"
    assert seen[0]["method"] == "POST" and seen[0]["path"] == "/predict?a=1&a=2"
    assert seen[0]["body"] == b'{"dataframe_records": [{"x": 1}]}'


def test_session_cookie_login_is_not_forwarded_either(proxied) -> None:
    world, seen = proxied
    login = sign_in(world.client, world.tokens["member"])
    assert login.status_code == 303
    response = world.client.get(f"/demos/{DEMO_ID}/", headers={"Accept": "text/html"})
    assert response.status_code == 200
    got = {k.lower() for k in seen[-1]["headers"]}
    assert "cookie" not in got and "authorization" not in got


def test_responses_cannot_set_cookies_and_carry_our_csp(proxied) -> None:
    world, _ = proxied
    response = world.client.get(f"/demos/{DEMO_ID}/", headers=world.headers("member"))
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    assert not world.client.cookies
    csp = response.headers["content-security-policy"]
    assert "script-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert f"form-action http://testserver/demos/{DEMO_ID}/" in csp
    assert "script-src *" not in csp
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-credentials" not in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"
    assert (
        "x-demo" not in response.headers
    )  # an allowlist: a header the sandbox invents never reaches users
    assert response.json() == {"ok": True}


def test_only_members_of_the_owner_reach_the_socket(proxied) -> None:
    world, seen = proxied
    assert world.client.get(f"/demos/{DEMO_ID}/").status_code == 401
    assert (
        world.client.get(
            f"/demos/{DEMO_ID}/", headers={"Accept": "text/html"}, follow_redirects=False
        ).status_code
        == 303
    )
    assert (
        world.client.get(f"/demos/{DEMO_ID}/", headers=world.headers("other_member")).status_code
        == 404
    )
    assert (
        world.client.get(
            f"/demos/{DEMO_ID}/", headers={"Authorization": "Bearer bibia_nope"}
        ).status_code
        == 401
    )
    assert (
        world.client.get(f"/demos/{DEMO_ID}/", headers={"Authorization": "Basic abc"}).status_code
        == 401
    )
    assert seen == []
    assert world.client.get(f"/demos/{DEMO_ID}/", headers=world.headers("admin")).status_code == 200
    assert len(seen) == 1


def test_a_browser_post_needs_this_demonstrators_own_form_token(proxied) -> None:
    """The sandbox renders the form, so it gets a token valid for itself and this session only, never the session's."""
    from fastapi.testclient import TestClient

    from tests.web.webdata import csrf_token

    world, seen = proxied
    upload = f"/demos/{DEMO_ID}/upload"
    with TestClient(world.app) as browser, TestClient(world.app) as other:
        sign_in(browser, world.tokens["member"])
        sign_in(other, world.tokens["member2"])
        page = browser.get(
            f"/demos/{DEMO_ID}/", headers={"Accept": "text/html", "X-Bibia-Csrf-Token": "forged"}
        )
        assert page.status_code == 200
        token = {k.lower(): v for k, v in seen[-1]["headers"].items()}["x-bibia-csrf-token"]
        assert token != "forged"
        assert token != browser.cookies.get("bibia_csrf") and token != csrf_token(
            browser, "/"
        )  # not the session's
        seen.clear()

        refused = [
            browser.post(upload, content=b"x", headers={"Origin": "https://pirate.example"}),
            browser.post(
                f"{upload}?csrftoken={csrf_token(browser, '/')}", content=b"x"
            ),  # bibia's own form token
            browser.post(f"{upload}?csrftoken={token}x", content=b"x"),
            other.post(f"{upload}?csrftoken={token}", content=b"x"),  # another session's browser
        ]
        for response in refused:
            assert response.status_code == 403, response.text
            assert "jeton anti-falsification" in response.json()["message"]
        assert seen == []

        accepted = browser.post(f"{upload}?csrftoken={token}&a=1", content=b"x")
        assert accepted.status_code == 200, accepted.text
        assert seen[-1]["path"] == "/upload?a=1"  # the token stays with the proxy
    with_bearer = world.client.post(upload, headers=world.headers("member"), content=b"x")
    assert with_bearer.status_code == 200  # a script's bearer token cannot be forged cross-site
