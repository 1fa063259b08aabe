"""Project records through the API: who may write them, filters, pagination, restricted fields."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from tests.conftest import World, make_world

NANTES = {"name": "Nantes Métropole", "siren": "244400404"}
LILLE = {"name": "Métropole Européenne de Lille", "siren": "200093201"}


def project(slug: str, **changes: object) -> dict:
    base = {
        "slug": slug,
        "title": f"Projet {slug}",
        "summary": "Un projet territorial d'intelligence artificielle.",
        "owners": [NANTES],
        "territory": "Nantes Métropole",
        "theme": "mobilites",
        "status": "experimentation",
        "keywords": ["essai"],
        "contacts": [
            {"name": "Cheffe de projet confidentielle", "email": "cheffe@nantesmetropole.fr"}
        ],
        "lessons_learned": "Retour d'expérience réservé aux collectivités.",
        "internal_documents": [
            {"title": "Compte rendu interne", "url": "https://intranet.example.org/cr"}
        ],
    }
    base.update(changes)
    return base


SECRETS = (
    "Cheffe de projet confidentielle",
    "cheffe@nantesmetropole.fr",
    "Retour d'expérience réservé",
    "intranet.example.org",
)


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from bibia.settings import Settings

    world = make_world(
        Settings(
            data_dir=tmp_path_factory.mktemp("projects") / "data",
            seed_on_start=False,
            runner="none",
        )
    )
    with world.client:
        catalogue = [
            project(
                "velo-nantes",
                title="Comptage vélo",
                theme="mobilites",
                status="production",
                keywords=["vélo", "comptage"],
            ),
            project(
                "cantine-nantes",
                title="Fréquentation des cantines",
                theme="education",
                status="pilote",
            ),
            project(
                "air-lille",
                title="Pics de pollution",
                owners=[LILLE],
                territory="Métropole Européenne de Lille",
                theme="sante",
            ),
            project(
                "eau-commune",
                title="Fuites d'eau",
                owners=[NANTES, LILLE],
                theme="transition-ecologique",
            ),
        ]
        for record in catalogue:
            role = "other_expert" if record["owners"] == [LILLE] else "expert"
            response = world.client.put(
                f"/api/v1/projects/{record['slug']}", json=record, headers=world.headers(role)
            )
            assert response.status_code == 201, response.text
        # Naming Lille invited it; it co-owns the project once one of its experts accepts.
        accepted = world.client.post(
            "/api/v1/projects/eau-commune/invitations/accept", headers=world.headers("other_expert")
        )
        assert accepted.status_code == 200, accepted.text
        yield world


def slugs(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [p["slug"] for p in response.json()["items"]]


def test_create_then_replace_by_an_expert_of_an_owner(w: World) -> None:
    c, h = w.client, w.headers("expert")
    created = c.put("/api/v1/projects/nouveau", json=project("nouveau"), headers=h)
    assert created.status_code == 201 and created.json()["models"] == []
    unchanged = c.put("/api/v1/projects/nouveau", json=project("nouveau"), headers=h)
    assert unchanged.status_code == 200
    replaced = c.put(
        "/api/v1/projects/nouveau",
        json=project("nouveau", status="pilote", title="Nouveau titre"),
        headers=h,
    )
    assert replaced.status_code == 200
    assert c.get("/api/v1/projects/nouveau").json()["title"] == "Nouveau titre"
    audit = c.get("/api/v1/audit", params={"limit": 1000}, headers=w.headers("admin")).json()
    events = [(e["action"], e["actor"].split(" ")[0]) for e in audit if e["target"] == "nouveau"]
    assert events == [
        ("project.update", "experte@nantes-metropole"),
        ("project.create", "experte@nantes-metropole"),
    ]


def test_co_owner_and_admin_may_write(w: World) -> None:
    c = w.client
    shared = project(
        "eau-commune", title="Fuites d'eau", owners=[NANTES, LILLE], theme="transition-ecologique"
    )
    assert (
        c.put(
            "/api/v1/projects/eau-commune", json=shared, headers=w.headers("other_expert")
        ).status_code
        == 200
    )
    assert (
        c.put(
            "/api/v1/projects/admin-seul",
            json=project("admin-seul", owners=[LILLE]),
            headers=w.headers("admin"),
        ).status_code
        == 201
    )


@pytest.mark.parametrize("role, status", [(None, 401), ("member", 403), ("other_expert", 403)])
def test_others_may_not_write(w: World, role: str | None, status: int) -> None:
    before = w.client.get("/api/v1/projects/velo-nantes", headers=w.headers("admin")).json()
    changed = project("velo-nantes", title="Détourné")
    response = w.client.put("/api/v1/projects/velo-nantes", json=changed, headers=w.headers(role))
    assert response.status_code == status, response.text
    assert response.json()["message"]
    assert w.client.get("/api/v1/projects/velo-nantes", headers=w.headers("admin")).json() == before


def test_an_expert_cannot_take_over_a_project_by_naming_their_own_collectivite(w: World) -> None:
    hijack = project("velo-nantes", owners=[LILLE])
    response = w.client.put(
        "/api/v1/projects/velo-nantes", json=hijack, headers=w.headers("other_expert")
    )
    assert response.status_code == 403
    assert w.client.get("/api/v1/projects/velo-nantes").json()["owners"] == [NANTES]


def test_an_expert_cannot_create_a_project_for_another_collectivite(w: World) -> None:
    response = w.client.put(
        "/api/v1/projects/pour-lille",
        json=project("pour-lille", owners=[LILLE]),
        headers=w.headers("expert"),
    )
    assert response.status_code == 403
    assert w.client.get("/api/v1/projects/pour-lille").status_code == 404


def test_invalid_project_lists_every_problem(w: World) -> None:
    bad = project("mauvais", summary="x" * 400, theme="astrologie")
    bad["owners"] = []
    bad["site"] = "https://example.org"
    response = w.client.put("/api/v1/projects/mauvais", json=bad, headers=w.headers("expert"))
    assert response.status_code == 422
    fields = {d["field"] for d in response.json()["details"]}
    assert fields == {"summary", "theme", "owners", "site"}
    mismatch = w.client.put(
        "/api/v1/projects/autre", json=project("mauvais"), headers=w.headers("expert")
    )
    assert mismatch.status_code == 400
    assert "diffère" in mismatch.json()["message"]


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"theme": "mobilites"}, ["velo-nantes"]),
        ({"status": "production"}, ["velo-nantes"]),
        ({"status": "pilote"}, ["cantine-nantes"]),
        ({"owner": "200093201"}, ["air-lille", "eau-commune"]),
        ({"owner": "lille"}, ["air-lille", "eau-commune"]),
        ({"territory": "nantes"}, ["cantine-nantes", "eau-commune", "velo-nantes"]),
        ({"q": "velo comptage"}, ["velo-nantes"]),
        ({"q": "FRÉQUENTATION"}, ["cantine-nantes"]),
        ({"q": "introuvable"}, []),
        ({"theme": "sante", "owner": "Lille"}, ["air-lille"]),
    ],
)
def test_filters(w: World, params: dict, expected: list[str]) -> None:
    found = [
        s
        for s in slugs(w.client.get("/api/v1/projects", params=params))
        if s not in {"nouveau", "admin-seul"}
    ]
    assert found == expected


def test_pagination(w: World) -> None:
    everything = w.client.get("/api/v1/projects", params={"per_page": 100}).json()
    total = everything["total"]
    assert total == len(everything["items"]) >= 4
    pages = [
        slugs(w.client.get("/api/v1/projects", params={"per_page": 3, "page": n})) for n in (1, 2)
    ]
    assert pages[0] + pages[1] == [p["slug"] for p in everything["items"]][:6]
    assert w.client.get("/api/v1/projects", params={"per_page": 3}).json()["total"] == total
    assert slugs(w.client.get("/api/v1/projects", params={"page": 99})) == []
    for bad in ({"page": 0}, {"per_page": 0}, {"per_page": 101}, {"theme": "astrologie"}):
        response = w.client.get("/api/v1/projects", params=bad)
        assert response.status_code == 422, bad
        assert response.json()["message"].startswith("paramètres invalides")


def test_restricted_fields_are_hidden_from_the_public(w: World) -> None:
    for response in (
        w.client.get("/api/v1/projects"),
        w.client.get("/api/v1/projects/velo-nantes"),
    ):
        assert response.status_code == 200
        for secret in SECRETS:
            assert secret not in response.text
        for field in ("contacts", "lessons_learned", "internal_documents"):
            assert f'"{field}"' not in response.text
    member = w.client.get("/api/v1/projects/velo-nantes", headers=w.headers("member")).json()
    assert member["contacts"][0]["name"] == "Cheffe de projet confidentielle"
    assert member["lessons_learned"].startswith("Retour d'expérience")
    assert member["internal_documents"][0]["url"] == "https://intranet.example.org/cr"


def test_unknown_project_is_a_404(w: World) -> None:
    response = w.client.get("/api/v1/projects/inexistant")
    assert response.status_code == 404
    assert (
        response.json()["message"]
        == "projet inconnu : « inexistant » (liste : GET /api/v1/projects)"
    )


def test_a_registered_model_is_listed_under_its_project(
    w: World, card_data: dict, sklearn_model_dir
) -> None:
    from tests.conftest import register

    card = copy.deepcopy(card_data)
    card["identification"]["project"] = "eau-commune"
    assert register(w, sklearn_model_dir, card, name="eau-fuites").status_code == 201
    assert w.client.get("/api/v1/projects/eau-commune").json()["models"] == ["eau-fuites"]
    listed = w.client.get("/api/v1/projects", params={"theme": "transition-ecologique"}).json()[
        "items"
    ]
    assert next(p for p in listed if p["slug"] == "eau-commune")["models"] == ["eau-fuites"]
