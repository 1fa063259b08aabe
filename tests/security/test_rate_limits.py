"""Finding 10: brakes on failed authentication, bounded header and body read times, nosniff everywhere.

Before the fix 200 bad tokens in 0.8 s and 50 bad web sign-ins were all
answered 401 without slowing down, 220 half-open connections stayed open
20 s, and ``card.md`` was served as text/markdown without ``nosniff``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import LiveServer, World, make_world, running_service
from tests.web.webdata import csrf_token

HTML = {"accept": "text/html"}
UNKNOWN = {"Authorization": "Bearer bibia_deadbeef_" + "A" * 43}


@pytest.fixture
def braked(tmp_path: Path) -> Iterator[World]:
    """A service that lets 5 refused credentials through per client and minute."""
    from bibia.settings import Settings

    world = make_world(
        Settings(
            data_dir=tmp_path / "data", seed_on_start=False, runner="none", auth_failure_limit=5
        )
    )
    with world.client:
        yield world


def test_refused_tokens_are_braked_per_client_with_a_french_429(braked: World) -> None:
    c = braked.client
    for headers in (
        UNKNOWN,
        {"Authorization": "Bearer n-importe-quoi"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        UNKNOWN,
        UNKNOWN,
    ):
        assert c.get("/api/v1/me", headers=headers).status_code == 401
    braked_answer = c.get("/api/v1/me", headers=UNKNOWN)
    assert braked_answer.status_code == 429
    assert 1 <= int(braked_answer.headers["retry-after"]) <= 60
    body = braked_answer.json()
    assert body["error"] == "trop_de_tentatives" and "réessayez dans" in body["message"]
    # past the limit, every request of that client waits, even with a valid token, even for a page
    assert c.get("/api/v1/me", headers=braked.headers("member")).status_code == 429
    page = c.get("/catalogue", headers=HTML)
    assert (
        page.status_code == 429
        and "Trop de tentatives" in page.text
        and '<html lang="fr">' in page.text
    )
    assert page.headers["retry-after"].isdigit()
    # another client is not braked
    other = TestClient(braked.app, client=("192.0.2.7", 40000))
    assert other.get("/api/v1/me", headers=braked.headers("member")).json()["tier"] == "restricted"


def test_requests_without_credentials_are_not_failures(braked: World) -> None:
    c = braked.client
    for _ in range(10):
        assert (
            c.get("/api/v1/demos").status_code == 401
        )  # no credentials: a refusal, not a failed authentication
        assert c.get("/compte/sessions", headers=HTML, follow_redirects=False).status_code == 303
    assert c.get("/api/v1/me", headers=UNKNOWN).status_code == 401
    assert c.get("/api/v1/me", headers=braked.headers("member")).status_code == 200


def test_bad_session_cookies_and_failed_sign_ins_count(braked: World) -> None:
    c = braked.client
    for n in range(3):
        c.cookies.set("bibia_session", f"session-inventee-{n}")
        assert "Votre session a expiré" in c.get("/", headers=HTML).text
    c.cookies.delete("bibia_session")
    for _ in range(2):
        failed = c.post(
            "/connexion",
            data={"csrftoken": csrf_token(c), "token": "bibia_00000000_" + "x" * 43},
            headers=HTML,
        )
        assert failed.status_code == 401 and "jeton inconnu" in failed.text
    refused = c.post(
        "/connexion", data={"token": braked.tokens["member"]}, headers=HTML
    )  # braked before any other check
    assert refused.status_code == 429 and "Trop de tentatives" in refused.text


def test_the_brake_lets_go_when_the_window_frees(tmp_path: Path) -> None:
    from bibia.settings import Settings

    world = make_world(
        Settings(
            data_dir=tmp_path / "data",
            seed_on_start=False,
            runner="none",
            auth_failure_limit=2,
            auth_failure_window_s=1,
        )
    )
    with world.client as c:
        for _ in range(2):
            c.get("/api/v1/me", headers=UNKNOWN)
        assert c.get("/api/v1/me", headers=world.headers("member")).status_code == 429
        deadline = time.monotonic() + 30
        while (
            status := c.get("/api/v1/me", headers=world.headers("member")).status_code
        ) == 429 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status == 200


# ------------------------------------------------------- a real `bibia serve`


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``bibia serve`` behind a trusted proxy (127.0.0.1), 3 failures allowed, 1 s to send headers or a chunk."""
    tmp = tmp_path_factory.mktemp("brakes")
    env = {
        "BIBIA_TRUSTED_PROXIES": "127.0.0.1",
        "BIBIA_AUTH_FAILURE_LIMIT": "3",
        "BIBIA_HEADER_TIMEOUT_S": "1",
        "BIBIA_BODY_TIMEOUT_S": "1",
    }
    with running_service(tmp / "data", tmp / "server.log", env) as server:
        yield server


def _connect(server: LiveServer) -> socket.socket:
    parts = urlsplit(server.url)
    return socket.create_connection((parts.hostname, parts.port), timeout=30)


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_the_forwarded_address_is_the_client_behind_a_trusted_proxy(
    behind_proxy: LiveServer,
) -> None:
    with httpx.Client(base_url=behind_proxy.url, timeout=30) as client:
        first, second = {"x-forwarded-for": "203.0.113.1"}, {"x-forwarded-for": "203.0.113.2"}
        for _ in range(3):
            assert client.get("/api/v1/me", headers={**UNKNOWN, **first}).status_code == 401
        assert client.get("/api/v1/me", headers={**UNKNOWN, **first}).status_code == 429
        assert (
            client.get("/api/v1/me", headers={**UNKNOWN, **second}).status_code == 401
        )  # another client behind the proxy


def test_forwarded_addresses_from_an_untrusted_peer_are_ignored(tmp_path: Path) -> None:
    with running_service(
        tmp_path / "data", tmp_path / "server.log", {"BIBIA_AUTH_FAILURE_LIMIT": "3"}
    ) as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for n in range(3):
                assert (
                    client.get(
                        "/api/v1/me", headers={**UNKNOWN, "x-forwarded-for": f"203.0.113.{n}"}
                    ).status_code
                    == 401
                )
            rotated = client.get(
                "/api/v1/me", headers={**UNKNOWN, "x-forwarded-for": "203.0.113.99"}
            )
            assert rotated.status_code == 429  # a made-up X-Forwarded-For is not a new client


def test_connections_whose_headers_are_slow_are_closed(behind_proxy: LiveServer) -> None:
    silent = _connect(behind_proxy)
    trickling = _connect(behind_proxy)
    trickling.sendall(b"GET /healthz HTTP/1.1\r\nHost: bibia\r\n")  # and never the blank line
    assert (
        _read_all(silent) == b"" and _read_all(trickling) == b""
    )  # closed by the server, nothing answered
    # a kept-alive connection whose next request trickles is closed too; complete requests are served
    kept = _connect(behind_proxy)
    kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: bibia\r\n\r\n")
    assert kept.recv(65536).startswith(b"HTTP/1.1 200")
    kept.sendall(b"GET /healthz HTTP/1.1\r\n")
    assert b"HTTP/1.1" not in _read_all(
        kept
    )  # (the rest of the first answer, if any) then closed, the second unanswered
    for sock in (silent, trickling, kept):
        sock.close()


def test_a_stalled_body_is_answered_408(behind_proxy: LiveServer) -> None:
    sock = _connect(behind_proxy)
    sock.sendall(
        b"POST /api/v1/demos HTTP/1.1\r\nHost: bibia\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        + b'{"model": '
    )
    answer = _read_all(sock).decode("utf-8", "replace")
    sock.close()
    assert answer.startswith("HTTP/1.1 408"), answer[:300]
    assert '"error":"delai_depasse"' in answer and "aucune donnée reçue" in answer


# ------------------------------------------------------------------- nosniff


def test_every_response_says_nosniff_and_same_origin(registered: World) -> None:
    c = registered.client
    responses = {
        "card.md": c.get("/api/v1/models/eau-batiments/card.md"),
        "json": c.get("/api/v1/models"),
        "404": c.get("/api/v1/inconnu"),
        "401": c.get("/api/v1/demos"),
        "static": c.get("/static/bibia.css"),
        "openapi": c.get("/openapi.json"),
        "healthz": c.get("/healthz"),
        "csrf": c.post("/deconnexion"),
        "413": c.post(
            "/api/v1/demos", content=b"x" * 70_000, headers={"content-type": "application/json"}
        ),
    }
    assert responses["card.md"].headers["content-type"].startswith("text/markdown")
    assert responses["csrf"].status_code == 403 and responses["413"].status_code == 413
    for what, response in responses.items():
        assert response.headers.get("x-content-type-options") == "nosniff", what
        assert response.headers.get("referrer-policy") == "same-origin", what
