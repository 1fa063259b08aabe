"""Registering a model through the API: all or nothing, owner checks, audit.

One service (real MLflow on SQLite) for the module; every test uses its own
model name, and every refused request is checked to have written nothing:
no registered model, no version, no run, no artifact file, no audit event.
"""

from __future__ import annotations

import copy
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from mlflow.exceptions import MlflowException

from tests.conftest import World, make_world, register, tar_model

MAX_MODEL_BYTES = 1_000_000


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from bibia.settings import Settings

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("registration") / "data",
        seed_on_start=False,
        runner="none",
        max_model_bytes=MAX_MODEL_BYTES,
    )
    world = make_world(settings)
    with world.client:
        yield world


def snapshot(world: World) -> dict:
    """Everything a registration writes: models and versions, active runs, artifact files, audit events."""
    registry = world.services.registry
    client = registry._client
    models = {
        m.name: (m.latest_version, dict(m.aliases), m.card and m.card.model_dump_json())
        for m in registry.search()
    }
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = len(client.search_runs(experiments)) if experiments else 0
    artifacts_dir = world.services.settings.data_dir / "artifacts"
    files = sorted(str(p) for p in artifacts_dir.rglob("*") if p.is_file())
    audit = world.client.get(
        "/api/v1/audit", params={"limit": 1000}, headers=world.headers("admin")
    ).json()
    return {"models": models, "runs": runs, "files": files, "audit": len(audit)}


def audit_events(world: World, action: str) -> list[dict]:
    response = world.client.get(
        "/api/v1/audit", params={"action": action}, headers=world.headers("admin")
    )
    assert response.status_code == 200, response.text
    return response.json()


def post(
    world: World,
    name: str,
    card: bytes,
    archive: bytes,
    role: str | None = "expert",
    alias: str | None = None,
):
    return world.client.post(
        f"/api/v1/models/{name}/versions",
        headers=world.headers(role),
        files={
            "card": ("fiche.yaml", card, "application/yaml"),
            "model": ("model.tar.gz", archive, "application/gzip"),
        },
        data={"alias": alias} if alias else {},
    )


def card_bytes(card: dict) -> bytes:
    return yaml.safe_dump(card, allow_unicode=True).encode()


def tar_of(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def special_member(name: str, kind: bytes, link: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info, None


def mlmodel_member(prefix: str = "model/") -> tuple[tarfile.TarInfo, bytes]:
    return file_member(
        f"{prefix}MLmodel", b"flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"
    )


BAD_ARCHIVES = {
    "pas-une-archive": (b"ceci n'est pas une archive", 422, "illisible"),
    "sans-mlmodel": (
        tar_of(file_member("model/readme.txt", b"bonjour")),
        422,
        "aucun fichier MLmodel",
    ),
    "chemin-remontant": (
        tar_of(mlmodel_member(), file_member("../x", b"x")),
        422,
        "chemin refusé « ../x »",
    ),
    "chemin-remontant-niche": (
        tar_of(mlmodel_member(), file_member("model/../../x", b"x")),
        422,
        "chemin refusé",
    ),
    "chemin-absolu": (
        tar_of(mlmodel_member(), file_member("/tmp/bibia-evasion", b"x")),
        422,
        "chemin refusé",
    ),
    "lien-symbolique": (
        tar_of(mlmodel_member(), special_member("model/lien", tarfile.SYMTYPE, "/etc/passwd")),
        422,
        "liens et périphériques refusés",
    ),
    "lien-physique": (
        tar_of(mlmodel_member(), special_member("model/dur", tarfile.LNKTYPE, "model/MLmodel")),
        422,
        "liens et périphériques refusés",
    ),
    "peripherique": (
        tar_of(mlmodel_member(), special_member("model/null", tarfile.CHRTYPE)),
        422,
        "liens et périphériques refusés",
    ),
    "fifo": (
        tar_of(mlmodel_member(), special_member("model/fifo", tarfile.FIFOTYPE)),
        422,
        "liens et périphériques refusés",
    ),
    "bombe": (
        tar_of(mlmodel_member(), file_member("model/zeros.bin", bytes(MAX_MODEL_BYTES + 1))),
        413,
        "trop volumineux",
    ),
}


@pytest.mark.parametrize("kind", list(BAD_ARCHIVES))
def test_bad_archive_is_refused_and_writes_nothing(w: World, card_data: dict, kind: str) -> None:
    archive, status, message = BAD_ARCHIVES[kind]
    before = snapshot(w)
    response = post(w, f"archive-{kind}", card_bytes(card_data), archive, alias="production")
    assert response.status_code == status, response.text
    body = response.json()
    assert message in body["message"], body
    assert "Traceback" not in response.text
    assert snapshot(w) == before
    assert not Path("/tmp/bibia-evasion").exists()


def test_invalid_card_is_refused_with_every_problem_and_writes_nothing(
    w: World, card_data: dict, sklearn_model_dir: Path
) -> None:
    card_data["identification"]["owner"]["siren"] = "123"
    card_data["identification"]["summary"] = "x" * 400
    del card_data["data"]
    before = snapshot(w)
    response = post(w, "fiche-invalide", card_bytes(card_data), tar_model(sklearn_model_dir))
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "fiche_invalide"
    assert body["message"] == "fiche invalide : 3 problème(s) à corriger"
    fields = {d["field"]: d["message"] for d in body["details"]}
    assert fields == {
        "identification.owner.siren": "format invalide : 9 chiffres, sans espace attendu",
        "identification.summary": "texte trop long (349 caractères au plus)",
        "data": "champ obligatoire manquant",
    }
    assert snapshot(w) == before


@pytest.mark.parametrize(
    "text, message",
    [
        (b"identification: [unterminated", "ni JSON ni YAML valide (ligne 1"),
        (b"\xff\xfe\x00", "UTF-8"),
        (b"- a\n- b\n", "objet JSON ou YAML"),
    ],
)
def test_unreadable_card_is_refused(
    w: World, sklearn_model_dir: Path, text: bytes, message: str
) -> None:
    before = snapshot(w)
    response = post(w, "fiche-illisible", text, tar_model(sklearn_model_dir))
    assert response.status_code == 422, response.text
    assert message in response.json()["message"]
    assert snapshot(w) == before


def test_register_new_version_then_move_alias(
    w: World, card_data: dict, sklearn_model_dir: Path
) -> None:
    first = register(w, sklearn_model_dir, card_data, name="eau-versions", alias="production")
    assert first.status_code == 201, first.text
    assert first.json()["version"] == 1 and first.json()["aliases"] == ["production"]
    assert first.json()["metrics"] == {"mae": 1.8} and first.json()["baseline_metrics"] == {
        "mae": 2.9
    }
    assert first.json()["signature"]["inputs"]

    card_data["identification"]["status"] = "pilote"
    second = register(w, sklearn_model_dir, card_data, name="eau-versions", alias="candidate")
    assert second.status_code == 201, second.text
    assert second.json()["version"] == 2

    detail = w.client.get("/api/v1/models/eau-versions").json()
    assert detail["latest_version"] == 2
    assert detail["aliases"] == {"production": 1, "candidate": 2}
    assert detail["card"]["identification"]["status"] == "pilote"
    assert [v["version"] for v in detail["versions"]] == [2, 1]

    moved = w.client.put(
        "/api/v1/models/eau-versions/aliases/production",
        json={"version": 2},
        headers=w.headers("expert"),
    )
    assert moved.status_code == 200, moved.text
    assert sorted(moved.json()["aliases"]) == ["candidate", "production"]
    assert w.client.get("/api/v1/models/eau-versions/aliases/production").json()["version"] == 2

    registered = [
        e for e in audit_events(w, "model.register") if e["target"].startswith("eau-versions/")
    ]
    assert [e["target"] for e in registered] == ["eau-versions/2", "eau-versions/1"]
    assert all(
        e["actor"].startswith("experte@nantes-metropole (jeton ") and e["at"] for e in registered
    )
    assert registered[0]["details"]["alias"] == "candidate"
    alias_event = next(
        e for e in audit_events(w, "model.alias") if e["target"] == "eau-versions@production"
    )
    assert alias_event["details"] == {"version": 2, "previous": 1}
    assert alias_event["actor"].startswith("experte@nantes-metropole")

    deleted = w.client.delete(
        "/api/v1/models/eau-versions/aliases/candidate", headers=w.headers("expert")
    )
    assert deleted.status_code == 204
    assert w.client.get("/api/v1/models/eau-versions").json()["aliases"] == {"production": 2}
    assert audit_events(w, "model.alias.delete")[0]["target"] == "eau-versions@candidate"


def _fail_alias(*_: object, **__: object) -> None:
    raise MlflowException("panne simulée du registre au moment de poser l'alias")


def test_failure_midway_leaves_no_new_model(
    w: World, card_data: dict, sklearn_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(w)
    monkeypatch.setattr(w.services.registry._client, "set_registered_model_alias", _fail_alias)
    response = register(w, sklearn_model_dir, card_data, name="eau-panne", alias="production")
    assert response.status_code == 503, response.text
    assert "registre MLflow indisponible" in response.json()["message"]
    monkeypatch.undo()
    assert w.client.get("/api/v1/models/eau-panne").status_code == 404
    assert snapshot(w) == before


def test_failure_midway_keeps_the_existing_model_as_it_was(
    w: World, card_data: dict, sklearn_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (
        register(
            w, sklearn_model_dir, card_data, name="eau-existant", alias="production"
        ).status_code
        == 201
    )
    before = snapshot(w)
    card_before = w.client.get("/api/v1/models/eau-existant").json()["card"]

    changed = copy.deepcopy(card_data)
    changed["identification"]["title"] = "Un tout autre titre"
    changed["identification"]["theme"] = "maintenance"
    monkeypatch.setattr(w.services.registry._client, "set_registered_model_alias", _fail_alias)
    response = register(w, sklearn_model_dir, changed, name="eau-existant", alias="production")
    assert response.status_code == 503, response.text
    monkeypatch.undo()

    assert snapshot(w) == before
    detail = w.client.get("/api/v1/models/eau-existant").json()
    assert detail["card"] == card_before
    assert [v["version"] for v in detail["versions"]] == [1]
    tags = w.services.registry.get("eau-existant").tags
    assert tags["bibia.title"] == card_data["identification"]["title"]
    assert tags["bibia.theme"] == "transition-ecologique"
    assert w.client.get("/api/v1/models", params={"theme": "maintenance"}).json()["total"] == 0


@pytest.mark.parametrize(
    "role, status, error",
    [
        (None, 401, "non_authentifie"),
        ("member", 403, "acces_refuse"),
        ("other_expert", 403, "acces_refuse"),
    ],
)
def test_writers_other_than_the_owners_experts_are_refused(
    w: World, card_data: dict, sklearn_model_dir: Path, role: str | None, status: int, error: str
) -> None:
    before = snapshot(w)
    response = register(w, sklearn_model_dir, card_data, name="eau-interdit", role=role)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error and response.json()["message"]
    assert snapshot(w) == before


def test_card_naming_another_owner_than_the_existing_model_is_refused(
    w: World, card_data: dict, sklearn_model_dir: Path
) -> None:
    assert register(w, sklearn_model_dir, card_data, name="eau-proprietaire").status_code == 201
    before = snapshot(w)
    stolen = copy.deepcopy(card_data)
    stolen["identification"]["owner"] = {
        "name": "Métropole Européenne de Lille",
        "siren": "200093201",
    }
    for role in ("expert", "other_expert"):
        response = register(w, sklearn_model_dir, stolen, name="eau-proprietaire", role=role)
        assert response.status_code == 403, response.text
        assert "244400404" in response.json()["message"]
    assert snapshot(w) == before


def test_expert_cannot_register_a_new_model_for_another_collectivite(
    w: World, card_data: dict, sklearn_model_dir: Path
) -> None:
    before = snapshot(w)
    response = register(
        w, sklearn_model_dir, card_data, name="eau-pour-autrui", role="other_expert"
    )
    assert response.status_code == 403
    assert "SIREN 244400404" in response.json()["message"]
    assert snapshot(w) == before


def test_admin_may_register_for_any_collectivite(
    w: World, card_data: dict, sklearn_model_dir: Path
) -> None:
    response = register(w, sklearn_model_dir, card_data, name="eau-admin", role="admin", alias=None)
    assert response.status_code == 201, response.text
    assert audit_events(w, "model.register")[0]["actor"].startswith("admin@nantes-metropole")


def test_unknown_project_is_refused_before_anything_is_written(
    w: World, card_data: dict, sklearn_model_dir: Path
) -> None:
    card_data["identification"]["project"] = "projet-fantome"
    before = snapshot(w)
    response = register(w, sklearn_model_dir, card_data, name="eau-projet")
    assert response.status_code == 400
    assert "projet inconnu : « projet-fantome »" in response.json()["message"]
    assert snapshot(w) == before


@pytest.mark.parametrize(
    "name, alias",
    [("Eau_Majuscules", None), ("eau-ok", "latest"), ("eau-ok", "v2"), ("eau-ok", "Prod!")],
)
def test_bad_name_or_alias_is_refused(
    w: World, card_data: dict, sklearn_model_dir: Path, name: str, alias: str | None
) -> None:
    before = snapshot(w)
    response = register(w, sklearn_model_dir, card_data, name=name, alias=alias)
    assert response.status_code == 400, response.text
    assert "attendu" in response.json()["message"]
    assert snapshot(w) == before


def test_alias_on_a_missing_version_is_a_404(
    w: World, card_data: dict, sklearn_model_dir: Path
) -> None:
    assert register(w, sklearn_model_dir, card_data, name="eau-alias").status_code == 201
    response = w.client.put(
        "/api/v1/models/eau-alias/aliases/production",
        json={"version": 7},
        headers=w.headers("expert"),
    )
    assert response.status_code == 404
    assert w.client.get("/api/v1/models/eau-alias").json()["aliases"] == {"production": 1}


@pytest.mark.parametrize("role, status", [(None, 401), ("member", 403), ("other_expert", 403)])
def test_rights_are_checked_before_the_archive_is_read(
    w: World, card_data: dict, role: str | None, status: int
) -> None:
    """A caller without the right gets 401/403, not an archive error: their upload is never extracted."""
    response = post(w, "eau-droits", card_bytes(card_data), b"pas une archive", role=role)
    assert response.status_code == status, response.text
