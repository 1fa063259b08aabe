"""Finding 5: nobody speaks for another collectivité, neither in a card nor in a project.

The owner of a model or a project is the caller's organisation as bibia
records it (name and SIREN); joining a project or co-owning one needs that
project's owners, and the co-owner's, consent. One real service (MLflow on
SQLite) for the module; each test uses its own model and project names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bibia import accounts
from bibia.auth import SYSTEM
from registry.card import parse_card
from tests.conftest import World, make_world, register

NANTES = {"name": "Nantes Métropole", "siren": "244400404"}
LILLE = {"name": "Métropole Européenne de Lille", "siren": "200093201"}
LYON = {"name": "Ville de Lyon", "siren": "216901231"}


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from bibia.settings import Settings

    world = make_world(
        Settings(
            data_dir=tmp_path_factory.mktemp("impersonation") / "data",
            seed_on_start=False,
            runner="none",
        )
    )
    with world.services.db.session() as session:
        accounts.create_organisation(session, SYSTEM, "lyon", LYON["name"], LYON["siren"])
        world.tokens["lyon_expert"] = accounts.create_token(
            session, SYSTEM, "lyon", "expert", "expert-lyon"
        ).token
    with world.client:
        yield world


def project(slug: str, owners: list[dict], **changes: object) -> dict:
    return {
        "slug": slug,
        "title": f"Projet {slug}",
        "summary": "Un projet territorial d'intelligence artificielle.",
        "owners": owners,
        "territory": "Nantes Métropole",
        "theme": "education",
        **changes,
    }


def put_project(w: World, body: dict, role: str):
    return w.client.put(f"/api/v1/projects/{body['slug']}", json=body, headers=w.headers(role))


def answer(w: World, slug: str, role: str, verb: str = "accept"):
    return w.client.post(f"/api/v1/projects/{slug}/invitations/{verb}", headers=w.headers(role))


def card_for(card_data: dict, owner: dict, project_slug: str | None = None) -> dict:
    card = json.loads(json.dumps(card_data, default=str))  # YAML dates as JSON text
    card["identification"]["owner"] = dict(owner)
    card["identification"]["project"] = project_slug
    return card


def model_names(w: World, **params: str) -> set[str]:
    response = w.client.get("/api/v1/models", params={"per_page": 100, **params})
    assert response.status_code == 200, response.text
    return {m["name"] for m in response.json()["items"]}


def audit(w: World, action: str) -> list[dict]:
    response = w.client.get(
        "/api/v1/audit", params={"action": action, "limit": 1000}, headers=w.headers("admin")
    )
    assert response.status_code == 200, response.text
    return response.json()


# ------------------------------------------------------------------ models


def test_a_card_cannot_give_its_owner_another_collectivites_name(
    w: World, card_data: dict, sklearn_model_dir: Path
) -> None:
    """The pen-test case: Lille's expert registers a model whose card says "Nantes Métropole" beside Lille's SIREN."""
    forged = card_for(card_data, {"name": "Nantes Métropole", "siren": LILLE["siren"]})
    response = register(
        w, sklearn_model_dir, forged, name="cantine-nantes-officiel", role="other_expert"
    )
    assert response.status_code == 201, response.text

    assert (
        w.client.get("/api/v1/models/cantine-nantes-officiel").json()["card"]["identification"][
            "owner"
        ]
        == LILLE
    )
    tags = w.services.registry.get("cantine-nantes-officiel").tags
    assert (tags["bibia.owner"], tags["bibia.owner_siren"]) == (LILLE["name"], LILLE["siren"])
    assert "cantine-nantes-officiel" not in model_names(w, owner="Nantes Métropole")
    assert "cantine-nantes-officiel" in model_names(w, owner="Européenne de Lille")
    assert audit(w, "model.register")[0]["details"]["owner"] == LILLE["siren"]


def test_replacing_a_card_also_takes_the_owner_from_the_record(
    w: World, card_data: dict, sklearn_model_dir: Path
) -> None:
    assert (
        register(
            w, sklearn_model_dir, card_for(card_data, NANTES), name="eau-fiche-remplacee"
        ).status_code
        == 201
    )
    renamed = card_for(card_data, {"name": "Ville de Lyon", "siren": NANTES["siren"]})
    response = w.client.put(
        "/api/v1/models/eau-fiche-remplacee/card", json=renamed, headers=w.headers("expert")
    )
    assert response.status_code == 200, response.text
    assert response.json()["card"]["identification"]["owner"] == NANTES
    assert w.services.registry.get("eau-fiche-remplacee").tags["bibia.owner"] == NANTES["name"]
    assert "eau-fiche-remplacee" not in model_names(w, owner="Lyon")


def test_a_card_naming_another_siren_stays_forbidden(
    w: World, card_data: dict, sklearn_model_dir: Path
) -> None:
    response = register(
        w,
        sklearn_model_dir,
        card_for(card_data, NANTES),
        name="eau-pour-nantes",
        role="other_expert",
    )
    assert response.status_code == 403, response.text
    assert "244400404" in response.json()["message"]
    assert w.client.get("/api/v1/models/eau-pour-nantes").status_code == 404


def test_an_admin_registers_for_an_organisation_on_record_only(
    w: World, card_data: dict, sklearn_model_dir: Path
) -> None:
    unknown = card_for(card_data, {"name": "Bordeaux Métropole", "siren": "243300316"})
    refused = register(w, sklearn_model_dir, unknown, name="eau-sans-organisation", role="admin")
    assert refused.status_code == 400, refused.text
    assert "aucune organisation de bibia ne porte le SIREN 243300316" in refused.json()["message"]
    assert w.client.get("/api/v1/models/eau-sans-organisation").status_code == 404

    misnamed = card_for(card_data, {"name": "Lille (nom libre)", "siren": LILLE["siren"]})
    response = register(w, sklearn_model_dir, misnamed, name="eau-par-admin", role="admin")
    assert response.status_code == 201, response.text
    assert (
        w.client.get("/api/v1/models/eau-par-admin").json()["card"]["identification"]["owner"]
        == LILLE
    )


def test_a_model_cannot_attach_itself_to_another_collectivites_project(
    w: World, card_data: dict, sklearn_model_dir: Path
) -> None:
    assert put_project(w, project("cantines-nantes", [NANTES]), "expert").status_code == 201
    intruder = card_for(card_data, LILLE, "cantines-nantes")
    response = register(w, sklearn_model_dir, intruder, name="cantine-intruse", role="other_expert")
    assert response.status_code == 403, response.text
    message = response.json()["message"]
    assert (
        "Nantes Métropole (SIREN 244400404)" in message and "inviter" in message
    )  # whom to ask, and what for
    assert w.client.get("/api/v1/models/cantine-intruse").status_code == 404
    # Nor by replacing the card of a model it already has.
    assert (
        register(
            w,
            sklearn_model_dir,
            card_for(card_data, LILLE),
            name="cantine-lille",
            role="other_expert",
        ).status_code
        == 201
    )
    replaced = w.client.put(
        "/api/v1/models/cantine-lille/card", json=intruder, headers=w.headers("other_expert")
    )
    assert replaced.status_code == 403, replaced.text
    assert (
        w.client.get("/api/v1/models/cantine-lille").json()["card"]["identification"]["project"]
        is None
    )
    assert w.client.get("/api/v1/projects/cantines-nantes").json()["models"] == []

    # An admin cannot put it there either: the project's owners must include the model's.
    by_admin = register(w, sklearn_model_dir, intruder, name="cantine-intruse", role="admin")
    assert by_admin.status_code == 400 and "ne porte pas le projet" in by_admin.json()["message"]


def test_a_project_lists_only_its_owners_models_even_if_written_before_the_fix(
    w: World, card_data: dict, sklearn_model_dir: Path
) -> None:
    assert put_project(w, project("velo-nantes-legacy", [NANTES]), "expert").status_code == 201
    assert (
        register(
            w,
            sklearn_model_dir,
            card_for(card_data, NANTES, "velo-nantes-legacy"),
            name="velo-legitime",
        ).status_code
        == 201
    )
    # What the old code let through, written straight into the registry as it stored it then.
    planted = parse_card(
        card_for(
            card_data, {"name": "Nantes Métropole", "siren": LILLE["siren"]}, "velo-nantes-legacy"
        )
    )
    w.services.registry.register(
        "velo-plante", sklearn_model_dir, planted, actor="expert-lille@lille"
    )

    assert w.client.get("/api/v1/projects/velo-nantes-legacy").json()["models"] == ["velo-legitime"]
    listed = w.client.get(
        "/api/v1/projects", params={"q": "velo-nantes-legacy", "per_page": 100}
    ).json()["items"]
    assert [p["models"] for p in listed if p["slug"] == "velo-nantes-legacy"] == [["velo-legitime"]]
    page = w.client.get("/projets/velo-nantes-legacy")
    assert (
        page.status_code == 200
        and "/modeles/velo-legitime" in page.text
        and "velo-plante" not in page.text
    )


# ---------------------------------------------------------------- projects


def test_naming_a_co_owner_only_invites_it(w: World) -> None:
    body = project(
        "eau-partagee", [{"name": "Nantes (saisie libre)", "siren": NANTES["siren"]}, LILLE]
    )
    created = put_project(w, body, "expert")
    assert created.status_code == 201, created.text
    assert created.json()["owners"] == [NANTES]  # the record's name, not the request's
    public = w.client.get("/api/v1/projects/eau-partagee").json()
    assert public["owners"] == [NANTES] and "invitations" not in public
    member = w.client.get("/api/v1/projects/eau-partagee", headers=w.headers("member")).json()
    assert member["invitations"] == [{**LILLE, "invited_by": NANTES["name"]}]
    # Lille is not found as an owner, and may not write the project, until it accepts.
    assert "eau-partagee" not in {
        p["slug"]
        for p in w.client.get("/api/v1/projects", params={"owner": LILLE["siren"]}).json()["items"]
    }
    refused = put_project(
        w, project("eau-partagee", [NANTES, LILLE], title="Pris par Lille"), "other_expert"
    )
    assert (
        refused.status_code == 403 and "acceptez d'abord l'invitation" in refused.json()["message"]
    )

    accepted = answer(w, "eau-partagee", "other_expert")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["owners"] == [NANTES, LILLE] and accepted.json()["invitations"] == []
    assert "eau-partagee" in {
        p["slug"]
        for p in w.client.get("/api/v1/projects", params={"owner": LILLE["siren"]}).json()["items"]
    }
    assert (
        put_project(
            w, project("eau-partagee", [NANTES, LILLE], title="Titre de Lille"), "other_expert"
        ).status_code
        == 200
    )
    assert [
        e["details"]["organisation"]
        for e in audit(w, "project.invitation.accept")
        if e["target"] == "eau-partagee"
    ] == [LILLE["siren"]]
    assert answer(w, "eau-partagee", "other_expert").status_code == 404  # nothing left to accept


def test_an_invitation_can_be_declined_or_withdrawn(
    w: World, card_data: dict, sklearn_model_dir: Path
) -> None:
    assert (
        put_project(w, project("dechets-invites", [NANTES, LILLE, LYON]), "expert").status_code
        == 201
    )
    # While invited, Lyon may not attach a model; the refusal says what to do.
    lyon_card = card_for(card_data, LYON, "dechets-invites")
    attached = register(w, sklearn_model_dir, lyon_card, name="dechets-lyon", role="lyon_expert")
    assert attached.status_code == 403 and "invitations/accept" in attached.json()["message"]

    assert answer(w, "dechets-invites", "lyon_expert", "decline").status_code == 200
    member = w.client.get("/api/v1/projects/dechets-invites", headers=w.headers("member")).json()
    assert [i["siren"] for i in member["invitations"]] == [LILLE["siren"]]
    assert member["owners"] == [NANTES]
    assert answer(w, "dechets-invites", "lyon_expert").status_code == 404  # declined is gone
    assert [e["target"] for e in audit(w, "project.invitation.decline")] == ["dechets-invites"]

    # The owners withdraw Lille's invitation by no longer naming it.
    assert put_project(w, project("dechets-invites", [NANTES]), "expert").status_code == 200
    member = w.client.get("/api/v1/projects/dechets-invites", headers=w.headers("member")).json()
    assert member["invitations"] == []
    assert answer(w, "dechets-invites", "other_expert").status_code == 404


def test_an_owner_cannot_remove_another_owner(w: World) -> None:
    assert put_project(w, project("voirie-commune", [NANTES, LILLE]), "expert").status_code == 201
    assert answer(w, "voirie-commune", "other_expert").status_code == 200
    ousted = put_project(w, project("voirie-commune", [LILLE]), "other_expert")
    assert ousted.status_code == 403, ousted.text
    assert "Nantes Métropole (SIREN 244400404)" in ousted.json()["message"]
    assert w.client.get("/api/v1/projects/voirie-commune").json()["owners"] == [NANTES, LILLE]

    # An owner may leave; the last one may not.
    assert put_project(w, project("voirie-commune", [NANTES]), "other_expert").status_code == 200
    assert w.client.get("/api/v1/projects/voirie-commune").json()["owners"] == [NANTES]
    last = put_project(w, project("voirie-commune", [LILLE]), "expert")
    assert (
        last.status_code == 400 and "au moins une collectivité porteuse" in last.json()["message"]
    )
    assert w.client.get("/api/v1/projects/voirie-commune").json()["owners"] == [NANTES]


def test_admins_set_owners_directly_and_unknown_sirens_are_refused(w: World) -> None:
    assert put_project(w, project("air-operateur", [NANTES, LYON]), "admin").status_code == 201
    assert w.client.get("/api/v1/projects/air-operateur").json()["owners"] == [NANTES, LYON]
    assert put_project(w, project("air-operateur", [LYON]), "admin").status_code == 200
    assert w.client.get("/api/v1/projects/air-operateur").json()["owners"] == [LYON]
    events = [
        e["details"]["owners"] for e in audit(w, "project.update") if e["target"] == "air-operateur"
    ]
    assert events == [[LYON["siren"]]]

    for role in ("admin", "expert"):
        unknown = put_project(
            w,
            project("fantome", [NANTES, {"name": "Ville de Bordeaux", "siren": "213300635"}]),
            role,
        )
        assert unknown.status_code == 400, unknown.text
        assert (
            "SIREN 213300635" in unknown.json()["message"]
            and "owners[1]" in unknown.json()["message"]
        )
    assert w.client.get("/api/v1/projects/fantome").status_code == 404


def test_only_the_invited_organisations_experts_answer(w: World) -> None:
    assert put_project(w, project("bati-invite", [NANTES, LYON]), "expert").status_code == 201
    for role, status in ((None, 401), ("member", 403), ("other_expert", 404), ("expert", 404)):
        response = answer(w, "bati-invite", role)
        assert response.status_code == status, (role, response.text)
        assert response.json()["message"]
    assert answer(w, "inexistant", "lyon_expert").status_code == 404
    member = w.client.get("/api/v1/projects/bati-invite", headers=w.headers("member")).json()
    assert member["owners"] == [NANTES] and [i["siren"] for i in member["invitations"]] == [
        LYON["siren"]
    ]


def test_a_project_is_found_under_its_owners_only_not_under_a_name_it_quotes(w: World) -> None:
    decoy = project(
        "cantines-officiel",
        [LILLE],
        title="Cantines de Nantes Métropole",
        territory="Nantes Métropole",
        keywords=["Nantes Métropole", "§244400404§", "244400404"],
    )
    assert put_project(w, decoy, "other_expert").status_code == 201

    def owned_by(owner: str) -> set[str]:
        response = w.client.get("/api/v1/projects", params={"owner": owner, "per_page": 100})
        assert response.status_code == 200, response.text
        return {p["slug"] for p in response.json()["items"]}

    for nantes in ("Nantes Métropole", "nantes", NANTES["siren"]):
        assert "cantines-officiel" not in owned_by(nantes), nantes
    assert "cantines-officiel" in owned_by("Européenne") and "cantines-officiel" in owned_by(
        LILLE["siren"]
    )
    assert "cantines-officiel" in {
        p["slug"]
        for p in w.client.get("/api/v1/projects", params={"q": "cantines nantes"}).json()["items"]
    }


# --------------------------------------------------------------------- CLI


def test_the_cli_accepts_and_declines_invitations(tmp_path: Path) -> None:
    from tests.conftest import cli, running_service

    def run(*args: str, token: str | None = None):
        env = {"BIBIA_URL": server.url, **({"BIBIA_TOKEN": token} if token else {})}
        return cli(server.data_dir, *args, env=env)

    data = tmp_path / "data"
    data.mkdir()
    with running_service(data, tmp_path / "service.log") as server:
        for slug, org in (("nantes-metropole", NANTES), ("lille", LILLE), ("lyon", LYON)):
            assert (
                cli(
                    data, "org", "create", slug, "--name", org["name"], "--siren", org["siren"]
                ).returncode
                == 0
            )
        tokens = {
            slug: cli(data, "token", "create", "--org", slug, "--role", "expert")
            .stdout.strip()
            .splitlines()[-1]
            for slug in ("nantes-metropole", "lille", "lyon")
        }
        record = tmp_path / "projet.json"
        record.write_text(json.dumps(project("eau-cli", [NANTES, LILLE, LYON])), encoding="utf-8")
        assert run("project", "put", str(record), token=tokens["nantes-metropole"]).returncode == 0

        accepted = run("project", "accept", "eau-cli", token=tokens["lille"])
        assert accepted.returncode == 0, accepted.stderr
        assert "porté par Nantes Métropole, Métropole Européenne de Lille" in " ".join(
            accepted.stdout.split()
        )
        declined = run("project", "decline", "eau-cli", token=tokens["lyon"])
        assert declined.returncode == 0, declined.stderr
        again = run("project", "accept", "eau-cli", token=tokens["lyon"])
        assert again.returncode == 4 and "aucune invitation en attente" in " ".join(
            again.stderr.split()
        ), again.stderr
        assert "Traceback" not in again.stderr
        shown = json.loads(run("project", "ls", "--json").stdout)
        assert next(p for p in shown["items"] if p["slug"] == "eau-cli")["owners"] == [
            NANTES,
            LILLE,
        ]
