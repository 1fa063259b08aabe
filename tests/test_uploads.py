"""Untrusted uploads: size limits (413 with a message), path-like names, unknown models."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import World, make_world, register, tar_model

MAX_REQUEST = 4_096
MAX_CARD = 2_048
MAX_MODEL = 20_000


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from bibia.settings import Settings

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("uploads") / "data",
        seed_on_start=False,
        runner="none",
        max_request_bytes=MAX_REQUEST,
        max_card_bytes=MAX_CARD,
        max_model_bytes=MAX_MODEL,
    )
    world = make_world(settings)
    with world.client:
        yield world


def compact_card(card_data: dict) -> bytes:
    """The example card, trimmed to fit under the small card limit."""
    card = json.loads(json.dumps(card_data, default=str))
    card["purpose"]["out_of_scope"] = []
    card["purpose"]["risks_and_limits"] = []
    card["accountability"] = {"public_contact": "donnees@nantesmetropole.fr"}
    data = json.dumps(card, ensure_ascii=False).encode()
    assert len(data) < MAX_CARD
    return data


def nothing_registered(world: World) -> bool:
    return world.services.registry.search() == []


def assert_413(response, message: str) -> None:
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["error"] == "contenu_trop_volumineux"
    assert message in body["message"]


def test_a_small_enough_upload_registers(
    w: World, card_data: dict, sklearn_model_dir: Path
) -> None:
    archive = tar_model(sklearn_model_dir)
    assert len(archive) < MAX_MODEL
    response = w.client.post(
        "/api/v1/models/eau-petit/versions",
        headers=w.headers("expert"),
        files={
            "card": ("fiche.json", compact_card(card_data), "application/json"),
            "model": ("m.tar.gz", archive, "application/gzip"),
        },
    )
    assert response.status_code == 201, response.text
    w.services.registry._client.delete_registered_model("eau-petit")


def test_oversized_card_is_a_413(w: World, card_data: dict, sklearn_model_dir: Path) -> None:
    card = yaml.safe_dump(card_data, allow_unicode=True).encode() + b"#" * MAX_CARD
    response = w.client.post(
        "/api/v1/models/eau-grande-fiche/versions",
        headers=w.headers("expert"),
        files={
            "card": ("fiche.yaml", card, "application/yaml"),
            "model": ("m.tar.gz", tar_model(sklearn_model_dir), "application/gzip"),
        },
    )
    assert_413(response, f"fiche trop volumineuse : {MAX_CARD} octets au plus")
    assert nothing_registered(w)


def test_oversized_request_is_refused_before_it_is_read(w: World, card_data: dict) -> None:
    limit = MAX_MODEL + MAX_CARD + 64 * 1024
    response = w.client.post(
        "/api/v1/models/eau-trop-gros/versions",
        headers=w.headers("expert"),
        files={
            "card": ("fiche.json", compact_card(card_data), "application/json"),
            "model": ("m.tar.gz", os.urandom(limit + 1), "application/gzip"),
        },
    )
    assert_413(response, f"requête trop volumineuse : {limit} octets au plus")
    assert nothing_registered(w)


def test_oversized_streamed_request_without_length_is_a_413(w: World) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b"x" * 1024

    response = w.client.put(
        "/api/v1/projects/trop-long",
        headers={**w.headers("expert"), "Content-Type": "application/json"},
        content=chunks(),
    )
    assert_413(response, f"requête trop volumineuse : {MAX_REQUEST} octets au plus")


@pytest.mark.parametrize("path", ["/api/v1/projects/gros", "/api/v1/models/eau/card"])
def test_oversized_json_bodies_are_a_413(w: World, path: str) -> None:
    response = w.client.put(
        path, headers=w.headers("expert"), json={"slug": "gros", "title": "x" * MAX_REQUEST}
    )
    assert_413(response, "requête trop volumineuse")


def test_uncompressed_model_over_the_limit_is_a_413(
    w: World, card_data: dict, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n")
    (model / "zeros.bin").write_bytes(bytes(MAX_MODEL + 1))
    archive = tar_model(model)
    assert len(archive) < MAX_MODEL, "compressed, it fits: only the extracted size is over"
    response = w.client.post(
        "/api/v1/models/eau-bombe/versions",
        headers=w.headers("expert"),
        files={
            "card": ("fiche.json", compact_card(card_data), "application/json"),
            "model": ("m.tar.gz", archive, "application/gzip"),
        },
    )
    assert_413(
        response, f"modèle trop volumineux une fois décompressé (plus de {MAX_MODEL} octets)"
    )
    assert nothing_registered(w)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/models/%2e%2e",
        "/api/v1/models/%2E%2E%2Fetc",
        "/api/v1/models/..%2F..%2Fetc%2Fpasswd",
        "/api/v1/models/eau%00",
        "/api/v1/models/eau-batiments/versions/%2e%2e",
        "/api/v1/models/eau-batiments/aliases/%2e%2e",
        "/api/v1/models/%2e%2e/card.md",
        "/api/v1/models/%2e%2e/etalab",
        "/api/v1/projects/%2e%2e",
    ],
)
def test_path_like_names_are_refused(w: World, path: str) -> None:
    response = w.client.get(path, headers=w.headers("expert"))
    assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
    assert "Traceback" not in response.text


@pytest.mark.parametrize("name", ["%2e%2e", "..%2Fx", "A%2Fb"])
def test_path_like_names_cannot_be_registered(
    w: World, card_data: dict, sklearn_model_dir: Path, name: str
) -> None:
    response = w.client.post(
        f"/api/v1/models/{name}/versions",
        headers=w.headers("expert"),
        files={
            "card": ("fiche.json", compact_card(card_data), "application/json"),
            "model": ("m.tar.gz", tar_model(sklearn_model_dir), "application/gzip"),
        },
    )
    assert 400 <= response.status_code < 500, response.text
    assert nothing_registered(w)


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("GET", "/api/v1/models/inconnu", None),
        ("GET", "/api/v1/models/inconnu/versions/1", None),
        ("GET", "/api/v1/models/inconnu/aliases/production", None),
        ("GET", "/api/v1/models/inconnu/card.md", None),
        ("GET", "/api/v1/models/inconnu/etalab", None),
        ("PUT", "/api/v1/models/inconnu/aliases/production", {"version": 1}),
        ("DELETE", "/api/v1/models/inconnu/aliases/production", None),
        ("GET", "/api/v1/projects/inconnu", None),
    ],
)
def test_unknown_model_is_a_404_with_a_message(
    w: World, method: str, path: str, body: dict | None
) -> None:
    response = w.client.request(method, path, headers=w.headers("expert"), json=body)
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "introuvable"
    assert "inconnu" in response.json()["message"]


def test_unknown_model_card_replacement_is_a_404(w: World, card_data: dict) -> None:
    response = w.client.put(
        "/api/v1/models/inconnu/card",
        headers=w.headers("expert"),
        json=json.loads(compact_card(card_data)),
    )
    assert response.status_code == 404, response.text
    assert "inconnu" in response.json()["message"]


def test_the_register_helper_still_works_with_default_limits(
    world: World, card_data: dict, sklearn_model_dir: Path
) -> None:
    """The shared fixture path (default limits) accepts the example card whole."""
    assert register(world, sklearn_model_dir, card_data, name="eau-defaut").status_code == 201
