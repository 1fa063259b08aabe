"""Finding 4: identifiers that only look valid (a final newline, digits that are not ASCII).

Every identifier (names, aliases, versions, slugs, SIRENs, page numbers) is
checked by a full match against an ASCII pattern of ``registry.refs``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.errors import InvalidCard, InvalidInput
from registry.card import parse_card, parse_project
from registry.refs import (
    ModelRef,
    check_alias,
    check_name,
    check_page,
    check_siren,
    check_slug,
    check_version,
)
from tests.conftest import World, register

# Look-alikes of valid identifiers: a final newline (what "$" lets through), other
# white space, and digits or letters outside ASCII (what isdigit() and "\d" let through).
LOOK_ALIKES = {
    check_name: [
        "cantine-nantes\n",
        "cantine-nantes\r\n",
        " cantine-nantes",
        "cantine\u2010nantes",
        "ｃａｎｔｉｎｅ",
        "cantine-nantés",
    ],
    check_alias: ["production\n", "producti\u043en", "v\u00b2", "v\u0663"],
    check_version: [
        "\u00b2",
        "\u0663",
        "\uff13",
        "3\n",
        " 3",
        "+3",
        "3.0",
        "0",
        "1234567890",
        True,
    ],
    check_slug: [
        "nantes-metropole\n",
        "nantes-m\u00e9tropole",
        "\uff4e\uff41\uff4e\uff54\uff45\uff53",
    ],
    check_siren: [
        "\u0662\u0664\u0664\u0664\u0660\u0660\u0664\u0660\u0664",
        "244400404\n",
        "²44400404",
        "24440040４",
    ],
    check_page: ["\u00b2", "\u0662", "2\n", "0", "100001"],
}
VALID = {
    check_name: ["cantine-nantes", "a1", "x"],
    check_alias: ["production", "candidate_2", "v2-beta"],
    check_version: ["3", 3, "999999999"],
    check_slug: ["nantes-metropole", "lille"],
    check_siren: ["244400404"],
    check_page: ["1", 2, "100000"],
}


def _id(value: object) -> str:
    return getattr(value, "__name__", None) or ascii(value)


@pytest.mark.parametrize(
    ("check", "value"),
    [(check, value) for check, values in LOOK_ALIKES.items() for value in values],
    ids=_id,
)
def test_a_look_alike_identifier_is_refused_in_french(check, value) -> None:
    with pytest.raises(InvalidInput, match="invalide"):
        check(value)


@pytest.mark.parametrize(
    ("check", "value"),
    [(check, value) for check, values in VALID.items() for value in values],
    ids=_id,
)
def test_a_valid_identifier_is_kept(check, value) -> None:
    assert str(check(value)) == str(value)


def test_model_refs_use_the_same_grammar() -> None:
    assert ModelRef.parse("cantine-nantes/3") == ModelRef(name="cantine-nantes", version=3)
    for text in [
        "cantine-nantes\n",
        "cantine-nantes/\u00b2",
        "cantine-nantes/3\n",
        "cantine-nantes@production\n",
    ]:
        with pytest.raises(InvalidInput):
            ModelRef.parse(text)


def test_a_card_with_a_siren_in_other_digits_is_invalid(card_data: dict) -> None:
    card_data["identification"]["owner"]["siren"] = (
        "\u0662\u0664\u0664\u0664\u0660\u0660\u0664\u0660\u0664"
    )
    with pytest.raises(InvalidCard) as caught:
        parse_card(card_data)
    assert [p["field"] for p in caught.value.details] == ["identification.owner.siren"]


def test_a_project_slug_outside_ascii_is_invalid() -> None:
    record = {
        "slug": "proj\u0663t",
        "title": "Projet",
        "summary": "Un projet.",
        "owners": [{"name": "Nantes Métropole", "siren": "244400404"}],
        "territory": "Nantes",
        "theme": "autre",
    }
    with pytest.raises(InvalidCard) as caught:
        parse_project(record)
    assert [p["field"] for p in caught.value.details] == ["slug"]


# ------------------------------------------------------------- through the API


def _artifact_files(world: World) -> list[Path]:
    return [p for p in (world.services.settings.data_dir / "artifacts").rglob("*") if p.is_file()]


def test_a_name_with_a_final_newline_registers_nothing(
    world: World, sklearn_model_dir: Path, card_data: dict
) -> None:
    response = register(world, sklearn_model_dir, card_data, name="eau-batiments%0A")
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "requete_invalide"
    assert "nom de modèle invalide" in response.json()["message"]
    assert world.services.registry.search() == []
    assert _artifact_files(world) == []


@pytest.mark.parametrize("version", ["%C2%B2", "%D9%A3", "%EF%BC%93", "3%0A"])
def test_a_version_in_other_digits_is_a_400_everywhere(registered: World, version: str) -> None:
    client, expert = registered.client, registered.headers("expert")
    api = client.get(f"/api/v1/models/eau-batiments/versions/{version}", headers=expert)
    assert api.status_code == 400, api.text
    assert api.json()["error"] == "requete_invalide"
    for route in ("model-versions/get", "model-versions/get-download-uri"):
        gateway = client.get(
            f"/api/2.0/mlflow/{route}?name=eau-batiments&version={version}", headers=expert
        )
        assert gateway.status_code == 400, gateway.text
        assert gateway.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    artifact = client.get(
        f"/api/2.0/mlflow-artifacts/artifacts/bibia-models/eau-batiments/{version}/MLmodel",
        headers=expert,
    )
    # A newline does not even match the route ({path:path} stops at it): a 404, never a 500.
    assert artifact.status_code == (404 if "%0A" in version else 400), artifact.text


@pytest.mark.parametrize("name", ["eau-batiments%0A", "eau-batiment%D1%95"])
def test_a_look_alike_name_is_a_400_on_the_gateway(registered: World, name: str) -> None:
    response = registered.client.get(
        f"/api/2.0/mlflow/registered-models/get?name={name}", headers=registered.headers("expert")
    )
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("page", ["%C2%B2", "%D9%A2", "2%0A", "0", "999999999999999999999"])
def test_a_bad_page_number_shows_the_first_page(world: World, page: str) -> None:
    response = world.client.get(f"/catalogue?page={page}")
    assert response.status_code == 200, response.text[:300]


def test_an_organisation_with_a_look_alike_slug_or_siren_is_refused(world: World) -> None:
    admin = world.headers("admin")
    for body in (
        {"slug": "rennes\n", "name": "Rennes Métropole", "siren": "243500139"},
        {
            "slug": "rennes",
            "name": "Rennes Métropole",
            "siren": "\u0662\u0664\u0663\u0665\u0660\u0660\u0661\u0663\u0669",
        },
    ):
        response = world.client.post("/api/v1/orgs", json=body, headers=admin)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "requete_invalide"
    assert "rennes" not in [o["slug"] for o in world.client.get("/api/v1/orgs").json()]
