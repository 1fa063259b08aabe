"""Finding 7: the caller is known before a body is read; anonymous bodies are small everywhere.

Before the fix the 512 MB limit of the model upload applied to anyone: a
100 MB anonymous body was read whole, then answered 401.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.conftest import LiveServer, World, make_world, running_service
from tests.web.webdata import csrf_token, sign_in

ANONYMOUS_LIMIT = 4096
MEMBER_LIMIT = 64 * 1024
JSON = {"content-type": "application/json"}
UPLOAD = "/api/v1/models/eau-batiments/versions"


@pytest.fixture
def small(tmp_path: Path) -> Iterator[World]:
    """Anonymous bodies up to 4 KiB, authenticated ones up to 64 KiB, a model upload up to ~420 KiB."""
    from bibia.settings import Settings

    settings = Settings(
        data_dir=tmp_path / "data",
        seed_on_start=False,
        runner="none",
        anonymous_max_request_bytes=ANONYMOUS_LIMIT,
        max_request_bytes=MEMBER_LIMIT,
        max_model_bytes=100_000,
    )
    world = make_world(settings)
    with world.client:
        yield world


def _junk_upload(size: int) -> dict:
    return {
        "files": {
            "card": ("fiche.yaml", b"a: 1\n", "application/yaml"),
            "model": ("m.tar.gz", b"\0" * size, "application/gzip"),
        }
    }


def test_anonymous_bodies_are_small_on_every_route(small: World) -> None:
    c = small.client
    for method, path in (
        ("POST", UPLOAD),
        ("POST", "/api/v1/demos"),
        ("PUT", "/api/v1/projects/eau"),
        ("POST", "/connexion"),
    ):
        response = c.request(method, path, content=b"x" * (ANONYMOUS_LIMIT + 1), headers=JSON)
        assert response.status_code == 413, (path, response.text[:200])
        assert (
            response.json()["message"]
            == f"requête trop volumineuse : {ANONYMOUS_LIMIT} octets au plus"
        )
    chunks = iter(
        [b"--x\r\n" + b"x" * 3000, b"x" * 3000]
    )  # no Content-Length (chunked): counted as it comes
    streamed = c.post(
        UPLOAD, content=chunks, headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert streamed.status_code == 413
    assert (
        c.post("/api/v1/demos", content=b"{}", headers=JSON).status_code == 401
    )  # small: read, then refused as usual


def test_members_get_the_ordinary_limit_and_not_the_upload_one(small: World) -> None:
    c, member = small.client, small.headers("member")
    assert (
        c.post(
            "/api/v1/demos", content=b" " * 10_000 + b"{}", headers={**member, **JSON}
        ).status_code
        != 413
    )
    too_big = c.post("/api/v1/demos", content=b"x" * (MEMBER_LIMIT + 1), headers={**member, **JSON})
    assert too_big.status_code == 413 and f"{MEMBER_LIMIT} octets" in too_big.json()["message"]
    assert c.post(UPLOAD, headers=member, **_junk_upload(100_000)).status_code == 413


def test_only_an_expert_token_gets_the_model_upload_limit(small: World) -> None:
    c = small.client
    for role in ("expert", "admin"):
        response = c.post(UPLOAD, headers=small.headers(role), **_junk_upload(100_000))
        assert response.status_code not in (413, 500) and 400 <= response.status_code < 500, (
            response.text[:300]
        )
    elsewhere = c.post(
        "/api/v1/demos", content=b"x" * 100_000, headers={**small.headers("expert"), **JSON}
    )
    assert elsewhere.status_code == 413  # the upload limit is for the upload route only


def test_a_signed_in_browser_gets_the_member_limit(small: World) -> None:
    browser = TestClient(small.app)
    sign_in(browser, small.tokens["member"])
    boundary = "bibia-test"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrftoken"\r\n\r\n{csrf_token(browser, "/")}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="d.csv"\r\nContent-Type: text/csv\r\n\r\n'
        ).encode()
        + b"a,b\r\n" * 2000
        + f"\r\n--{boundary}--\r\n".encode()
    )
    assert ANONYMOUS_LIMIT < len(body) < MEMBER_LIMIT
    response = browser.post(
        "/demos/0000000000000000/upload",
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code != 413
    anonymous = TestClient(small.app).post(
        "/demos/0000000000000000/upload",
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert anonymous.status_code == 413


# ---------------------------------------- on the wire: the body is never awaited


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("bodies")
    with running_service(tmp / "data", tmp / "server.log") as server:
        yield server


def _answer_without_sending_the_body(server: LiveServer, head: bytes) -> str:
    """Send only the request head (declaring a body), and read the answer the server gives at once."""
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head)
        data = b""
        while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
            data += chunk
        return data.decode("utf-8", "replace")


def test_a_declared_100_mb_anonymous_body_is_refused_before_a_byte_is_read(
    live: LiveServer,
) -> None:
    head = f"POST {UPLOAD} HTTP/1.1\r\nHost: bibia\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: {100 * 1024 * 1024}\r\n\r\n"
    answer = _answer_without_sending_the_body(live, head.encode())
    assert answer.startswith("HTTP/1.1 413"), answer[:300]


def test_a_refused_token_with_a_large_body_is_answered_401_before_reading_it(
    live: LiveServer,
) -> None:
    head = (
        f"POST {UPLOAD} HTTP/1.1\r\nHost: bibia\r\nAuthorization: Bearer bibia_deadbeef_{'A' * 43}\r\n"
        f"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: {100 * 1024 * 1024}\r\n\r\n"
    )
    answer = _answer_without_sending_the_body(live, head.encode())
    assert answer.startswith("HTTP/1.1 401"), answer[:300]
