"""Tiers on every demonstrator route, and bad CSV uploads through the proxy, on one real demonstrator.

One app, one ``ok`` fixture model (y = 2x) demonstrator of Nantes Métropole,
shared by the module: every test here only reads it or sends it bad input,
and checks it still answers afterwards.
"""

from __future__ import annotations

import html
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import World
from tests.demos_service.conftest import docker_settings, launch_ready, open_world, register_model

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def world(demo_image, fixture_models, short_tmp) -> Iterator[World]:
    data = Path(tempfile.mkdtemp(prefix="bds-acc-", dir=short_tmp))
    with open_world(docker_settings(data, demo_image)) as w:
        register_model(w, "double-x", fixture_models("ok"), "Modèle d'essai : le double de x")
        yield w


@pytest.fixture(scope="module")
def demo(world: World) -> dict:
    return launch_ready(world, "double-x")


def _still_answers(world: World, demo: dict) -> None:
    health = world.client.get(f"{demo['url']}health", headers=world.headers("member"))
    assert health.status_code == 200 and health.json()["status"] == "ok"
    again = world.client.post(
        f"{demo['url']}predict",
        headers=world.headers("member"),
        json={"dataframe_records": [{"x": 3}]},
    )
    assert again.status_code == 200 and again.json() == {"predictions": [{"y": 6.0}]}
    assert (
        world.client.get(f"/api/v1/demos/{demo['id']}", headers=world.headers("member")).json()[
            "state"
        ]
        == "ready"
    )


# ------------------------------------------------------------------ tiers


def test_public_cannot_launch_list_or_see(world: World, demo: dict) -> None:
    response = world.client.post("/api/v1/demos", json={"model": "double-x"})
    assert response.status_code == 401
    assert "authentification requise" in response.json()["message"]
    assert world.client.get("/api/v1/demos").status_code == 401
    for method, path in (
        ("GET", f"/api/v1/demos/{demo['id']}"),
        ("DELETE", f"/api/v1/demos/{demo['id']}"),
        ("POST", f"/api/v1/demos/{demo['id']}/extend"),
        ("GET", f"/api/v1/demos/{demo['id']}/logs"),
        ("GET", f"{demo['url']}"),
        ("POST", f"{demo['url']}predict"),
    ):
        kwargs = {"json": {"minutes": 5}} if path.endswith("extend") else {}
        assert world.client.request(method, path, **kwargs).status_code == 401, (method, path)


def test_a_bad_token_is_401_not_anonymous(world: World, demo: dict) -> None:
    bad = {"Authorization": "Bearer bibia_not-a-token"}
    assert (
        world.client.post("/api/v1/demos", headers=bad, json={"model": "double-x"}).status_code
        == 401
    )
    assert world.client.get(demo["url"], headers=bad).status_code == 401


def test_another_organisation_neither_sees_nor_stops_nor_proxies(world: World, demo: dict) -> None:
    for role in ("other_member", "other_expert"):
        headers = world.headers(role)
        listed = world.client.get("/api/v1/demos", headers=headers)
        assert listed.status_code == 200 and demo["id"] not in {d["id"] for d in listed.json()}
        for method, path in (
            ("GET", f"/api/v1/demos/{demo['id']}"),
            ("DELETE", f"/api/v1/demos/{demo['id']}"),
            ("POST", f"/api/v1/demos/{demo['id']}/extend"),
            ("GET", f"{demo['url']}"),
            ("GET", f"{demo['url']}sample.csv"),
            ("POST", f"{demo['url']}predict"),
        ):
            kwargs = {"json": {"minutes": 5}} if path.endswith("extend") else {}
            response = world.client.request(method, path, headers=headers, **kwargs)
            assert response.status_code == 404, (role, method, path, response.text)
            assert "introuvable" in response.json()["message"]
    logs = world.client.get(
        f"/api/v1/demos/{demo['id']}/logs", headers=world.headers("other_expert")
    )
    assert logs.status_code == 404
    # The HTML flavour of a foreign demo is a French page, not the demo.
    page = world.client.get(
        demo["url"], headers={**world.headers("other_member"), "Accept": "text/html"}
    )
    assert page.status_code == 404 and "Démonstrateur indisponible" in page.text
    _still_answers(world, demo)


def test_members_of_the_owner_use_it_but_only_experts_read_logs(world: World, demo: dict) -> None:
    for role in ("member", "member2", "expert", "admin"):
        assert (
            world.client.get(f"/api/v1/demos/{demo['id']}", headers=world.headers(role)).status_code
            == 200
        ), role
        assert (
            world.client.get(f"{demo['url']}health", headers=world.headers(role)).status_code == 200
        ), role
    for role in ("member", "member2"):
        logs = world.client.get(f"/api/v1/demos/{demo['id']}/logs", headers=world.headers(role))
        assert logs.status_code == 403
        assert "réservé aux experts" in logs.json()["message"]
    for role in ("expert", "admin"):
        logs = world.client.get(f"/api/v1/demos/{demo['id']}/logs", headers=world.headers(role))
        assert logs.status_code == 200, logs.text
        assert logs.headers["content-type"].startswith("text/plain")
        assert logs.text.strip(), "a running demonstrator has written something"


def test_unknown_or_malformed_ids_are_404(world: World) -> None:
    for demo_id in ("ffffffffffffffff", "../../etc/passwd", "x" * 200):
        response = world.client.get(f"/api/v1/demos/{demo_id}", headers=world.headers("member"))
        assert response.status_code == 404, demo_id
    assert (
        world.client.get("/demos/ffffffffffffffff/", headers=world.headers("member")).status_code
        == 404
    )


def test_launch_refuses_bad_requests_clearly(world: World) -> None:
    unknown = world.client.post(
        "/api/v1/demos", headers=world.headers("member"), json={"model": "inconnu"}
    )
    assert unknown.status_code == 404 and "inconnu" in unknown.json()["message"]
    both = world.client.post(
        "/api/v1/demos",
        headers=world.headers("member"),
        json={"model": "double-x", "alias": "production", "version": 1},
    )
    assert both.status_code == 422 and "alias ou version" in str(both.json())
    ttl = world.client.post(
        "/api/v1/demos",
        headers=world.headers("member"),
        json={"model": "double-x", "ttl_minutes": 100000},
    )
    assert ttl.status_code == 400 and "durée de vie invalide" in ttl.json()["message"]


# ---------------------------------------------------------------- uploads


def _upload(
    world: World, demo: dict, content: bytes, name: str = "mes-donnees.csv", media: str = "text/csv"
):
    return world.client.post(
        f"{demo['url']}upload",
        headers=world.headers("member"),
        files={"file": (name, content, media)},
    )


def _alert(page: str) -> str:
    found = re.search(r'role="alert"[^>]*>(.*?)</', page, re.S)
    assert found, page[:1500]
    return html.unescape(found.group(1))


@pytest.mark.parametrize(
    ("content", "status", "phrase"),
    [
        (
            b"a,b\n1,2\n",
            400,
            "Colonne(s) manquante(s) : x. Le modèle attend les colonnes : x (nombre décimal)",
        ),
        (
            b"x\nabc\n2\n",
            400,
            "La colonne « x » doit contenir des valeurs de type nombre décimal, par exemple « 0 » ; "
            "valeurs invalides ligne 2 : « abc »",
        ),
        (b"", 400, "Le fichier est vide"),
        (b"x\n", 400, "qu'une ligne d'en-tête"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", 415, "pas un fichier texte CSV"),
    ],
    ids=["wrong-columns", "wrong-types", "empty", "header-only", "not-a-csv"],
)
def test_bad_upload_gets_a_french_message_and_the_demo_survives(
    world: World, demo: dict, content: bytes, status: int, phrase: str
) -> None:
    response = _upload(world, demo, content)
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    message = _alert(response.text)
    assert phrase in message, message
    assert "Traceback" not in response.text
    _still_answers(world, demo)


def test_too_large_uploads_are_refused_by_the_demo_and_by_the_service(
    world: World, demo: dict
) -> None:
    over_demo = b"x\n" + b"1.5\n" * (
        6 * 1024 * 1024 // 4
    )  # > 5 Mio (the demonstrator), < 8 Mio (the service)
    response = _upload(world, demo, over_demo)
    assert response.status_code == 413
    assert "trop volumineux" in _alert(response.text)
    _still_answers(world, demo)

    over_service = b"x\n" + b"1.5\n" * (9 * 1024 * 1024 // 4)
    response = _upload(world, demo, over_service)
    assert response.status_code == 413
    assert "trop volumineuse" in response.json()["message"]
    _still_answers(world, demo)


def test_bad_json_predictions_are_clear_4xx(world: World, demo: dict) -> None:
    headers = world.headers("member")
    cases = [
        (b"not json", "n'est pas du JSON valide"),
        (b'{"dataframe_records": [{"y": 1}]}', "Colonne(s) manquante(s) : x"),
        (
            b'{"dataframe_records": [{"x": "abc"}]}',
            "La colonne « x » doit contenir des valeurs de type nombre décimal",
        ),
        (b'{"inputs": 3}', "Format non reconnu"),
    ]
    for body, phrase in cases:
        response = world.client.post(
            f"{demo['url']}predict",
            headers={**headers, "Content-Type": "application/json"},
            content=body,
        )
        assert 400 <= response.status_code < 500, (body, response.text)
        assert phrase in response.json()["message"], (body, response.json())
    _still_answers(world, demo)
