"""Experts publish from the browser, in-process: a new model, a new version, the card (bibia.web.publish).

Each form is posted as a browser posts it: signed in through the sign-in
form (a session cookie), with the CSRF token of the page. A wrong form is
shown again with French errors next to each field and a summary, and writes
nothing: no model, version, run, artifact file, audit event, nor a file left
in the service's cache (:func:`tests.test_registration.snapshot`).
"""

from __future__ import annotations

import copy
import html
import io
import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from bibia.web import cardform
from tests.conftest import EXAMPLE_CARD, World, make_world, register, tar_model
from tests.test_registration import snapshot
from tests.web.webdata import csrf_token, sign_in

HTML = {"accept": "text/html"}
MAX_MODEL_BYTES = 2_000_000
MAX_REQUEST_BYTES = 300_000  # an authenticated caller's body elsewhere; a model may be larger
EXISTING = "eau-batiments"


@pytest.fixture(scope="module")
def w(sklearn_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from bibia.settings import Settings

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("publier") / "data",
        seed_on_start=False,
        runner="none",
        max_model_bytes=MAX_MODEL_BYTES,
        max_request_bytes=MAX_REQUEST_BYTES,
    )
    world = make_world(settings)
    with world.client:
        response = register(world, sklearn_model_dir, good_card(), name=EXISTING)
        assert response.status_code == 201, response.text
        yield world


def good_card() -> dict[str, Any]:
    return json.loads(json.dumps(yaml.safe_load(EXAMPLE_CARD.read_text("utf-8")), default=str))


def browser(world: World, role: str) -> TestClient:
    client = TestClient(world.app)
    assert sign_in(client, world.tokens[role]).status_code == 303
    return client


def nothing_written(world: World, before: dict[str, Any]) -> None:
    assert snapshot(world) == before
    cache = world.services.settings.cache_dir
    assert not [p for p in cache.glob("bibia-upload-*")], "an upload was left in the cache"


def errors_of(page: str) -> dict[str, str]:
    """Input id → the error shown next to it."""
    found = re.findall(
        r'<p class="fiche-erreur" id="([^"]+)-erreur"><span class="sr-only">Erreur : </span>([^<]*)</p>',
        page,
    )
    return {ident: html.unescape(message) for ident, message in found}


def summary_links(page: str) -> list[str]:
    block = page.split('id="erreurs"', 1)[1].split("</div>", 1)[0]
    return re.findall(r'<a href="#([^"]+)">', block)


def input_tag(page: str, ident: str) -> str:
    found = re.search(rf'<(?:input|textarea|select)[^>]* id="{re.escape(ident)}"[^>]*>', page)
    assert found, f"no input #{ident}"
    return found.group(0)


def post(
    client: TestClient,
    path: str,
    fields: dict[str, str],
    *,
    model: bytes | None = None,
    card_file: bytes | None = None,
    token: bool = True,
):
    data = {"csrftoken": csrf_token(client, path)} if token else {}
    data.update(fields)
    files: dict[str, Any] = {}
    if model is not None:
        files["modele"] = ("modele.tar.gz", model, "application/gzip")
    if card_file is not None:
        files["fiche_fichier"] = ("fiche.yaml", card_file, "application/yaml")
    return client.post(path, data=data, files=files or None, headers=HTML, follow_redirects=False)


def archive(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def member(
    name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE, **extra: Any
) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    for key, value in extra.items():
        setattr(info, key, value)
    return info, data if kind == tarfile.REGTYPE else None


# ------------------------------------------------------------------ the schema's form


def test_the_form_is_the_schema_and_round_trips_a_card() -> None:
    card = good_card()
    values = cardform.flatten(card)
    from registry.card import Card, parse_card

    assert parse_card(cardform.unflatten(values).data) == Card.model_validate(card)
    widgets = {w.path: w for w in cardform.build(values)}
    # one fieldset per section of the card, in the schema's order
    assert list(widgets) == [f"fiche.{name}" for name in Card.model_fields]
    ident = {w.path.rsplit(".", 1)[-1]: w for w in widgets["fiche.identification"].children}
    assert ident["theme"].kind == "choice" and ("mobilites", "Mobilités") in ident["theme"].choices
    assert ident["title"].required and not ident["created"].required
    assert ident["created"].kind == "date" and ident["keywords"].kind == "lines"
    data = {w.path.rsplit(".", 1)[-1]: w for w in widgets["fiche.data"].children}
    assert data["personal_data"].kind == "bool" and data["sources"].kind == "rows"
    # the filled row, and blank ones to add more
    assert len(data["sources"].children) == 1 + cardform.EXTRA_ROWS
    acc = {w.path.rsplit(".", 1)[-1]: w for w in widgets["fiche.accountability"].children}
    assert "membres" in acc["contacts"].tier_note


def test_a_field_added_to_the_schema_shows_up_in_the_form() -> None:
    import datetime as dt

    from pydantic import BaseModel, Field

    from registry.card import Theme

    class Added(BaseModel):
        note: str = Field(description="Un champ ajouté au schéma")
        jour: dt.date | None = None
        theme: Theme
        liste: list[str] = Field(default_factory=list)

    widgets = {w.path: w for w in cardform.build({}, Added)}
    assert (
        widgets["fiche.note"].label == "Un champ ajouté au schéma"
        and widgets["fiche.note"].required
    )
    assert widgets["fiche.jour"].kind == "date" and not widgets["fiche.jour"].required
    assert widgets["fiche.theme"].kind == "choice" and widgets["fiche.liste"].kind == "lines"


def test_every_value_of_a_card_has_its_input() -> None:
    def names(widgets: list[cardform.Widget]) -> set[str]:
        found = set()
        for w in widgets:
            found |= names(w.children) if w.children else {w.path}
        return found

    values = cardform.flatten(good_card())
    assert set(values) <= names(cardform.build(values))


def test_a_blank_row_is_ignored_and_errors_find_their_row() -> None:
    values = cardform.flatten(good_card())
    values["fiche.data.sources.0.name"] = ""
    values["fiche.data.sources.0.licence"] = ""
    values["fiche.data.sources.2.name"] = "Deuxième source"
    values["fiche.data.sources.2.url"] = "pas une adresse"
    parsed = cardform.unflatten(values)
    assert parsed.data["data"]["sources"] == [{"name": "Deuxième source", "url": "pas une adresse"}]
    assert cardform.form_path("data.sources.0.url", parsed.rows) == "fiche.data.sources.2.url"


# ------------------------------------------------------------------ a new model


def wrong(values: dict[str, str]) -> dict[str, str]:
    bad = dict(values)
    bad["fiche.identification.title"] = ""
    bad["fiche.identification.owner.siren"] = "24440"
    bad["fiche.data.sources.0.url"] = "ftp://ailleurs"
    bad["fiche.model.evaluation.metrics.0.value"] = "beaucoup"
    bad["fiche.data.dpia.reason"] = ""
    bad["fiche.accountability.public_contact"] = "pas-une-adresse"
    return bad


def test_an_expert_publishes_a_model_from_the_form_wrong_then_right(
    w: World, sklearn_model_dir: Path
) -> None:
    client = browser(w, "expert")
    page = client.get("/publier", headers=HTML)
    assert page.status_code == 200
    assert 'enctype="multipart/form-data"' in page.text and 'name="csrftoken"' in page.text
    assert input_tag(page.text, "f-identification-owner-siren").count('value="244400404"') == 1
    assert "Publier un modèle</a>" in page.text  # the navigation's entry

    values = cardform.flatten(good_card())
    before = snapshot(w)
    fields = {"nom": "eau-publiee", "alias": "production", "source": "formulaire", **wrong(values)}
    response = post(client, "/publier", fields, model=tar_model(sklearn_model_dir))
    assert response.status_code == 422, response.text[:500]
    page = response.text
    errors = errors_of(page)
    assert errors["f-identification-title"] == "champ obligatoire manquant"
    assert (
        errors["f-identification-owner-siren"]
        == "format invalide : 9 chiffres, sans espace attendu"
    )
    assert errors["f-data-sources-0-url"].startswith("format invalide : une adresse http")
    assert errors["f-model-evaluation-metrics-0-value"] == "doit être un nombre"
    assert "AIPD" in errors["f-data-dpia"]
    assert errors["f-accountability-public_contact"].startswith("format invalide")
    # each wrong input says so and points at its message; the summary links to each
    tag = input_tag(page, "f-identification-title")
    assert 'aria-invalid="true"' in tag and "f-identification-title-erreur" in tag
    links = summary_links(page)
    assert {
        "f-identification-title",
        "f-identification-owner-siren",
        "f-data-sources-0-url",
    } <= set(links)
    assert re.search(r"[0-9]+ problèmes à corriger : rien n'a été enregistré", page)
    # what was typed is shown again, the files are to be chosen again
    assert 'value="eau-publiee"' in input_tag(page, "nom")
    assert "ftp://ailleurs" in input_tag(page, "f-data-sources-0-url")
    assert "choisissez à nouveau" in page
    nothing_written(w, before)

    response = post(
        client,
        "/publier",
        {"nom": "eau-publiee", "alias": "production", **values},
        model=tar_model(sklearn_model_dir),
    )
    assert response.status_code == 303, response.text[:800]
    assert response.headers["location"].startswith("/modeles/eau-publiee?publie=1")
    shown = client.get(response.headers["location"], headers=HTML).text
    assert "La version 1 a été publiée." in shown
    assert "Publier une nouvelle version" in shown and "Modifier la fiche" in shown
    detail = w.client.get("/api/v1/models/eau-publiee", headers=w.headers("admin")).json()
    assert detail["aliases"] == {"production": 1}
    card = detail["card"]
    assert card["identification"]["title"] == good_card()["identification"]["title"]
    assert card["accountability"]["contacts"] == good_card()["accountability"]["contacts"]
    assert card["model"]["evaluation"]["metrics"][0]["value"] == 1.8


def test_a_taken_name_a_bad_alias_and_no_archive_are_said_by_their_fields(w: World) -> None:
    client = browser(w, "expert")
    before = snapshot(w)
    values = cardform.flatten(good_card())
    response = post(client, "/publier", {"nom": EXISTING, "alias": "Production!", **values})
    assert response.status_code == 422
    errors = errors_of(response.text)
    assert errors["nom"].startswith(f"un modèle « {EXISTING} » existe déjà")
    assert errors["alias"].startswith("alias invalide")
    assert errors["modele"].startswith("choisissez l'archive du modèle")
    assert summary_links(response.text) == ["nom", "modele", "alias"]  # the page's order
    nothing_written(w, before)


def test_a_card_naming_another_owner_is_refused_by_its_field(
    w: World, sklearn_model_dir: Path
) -> None:
    client = browser(w, "other_expert")  # an expert of Lille, naming Nantes Métropole
    before = snapshot(w)
    values = cardform.flatten(good_card())
    response = post(
        client, "/publier", {"nom": "eau-de-lille", **values}, model=tar_model(sklearn_model_dir)
    )
    assert response.status_code == 422
    assert "collectivité propriétaire" in errors_of(response.text)["f-identification-owner-siren"]
    nothing_written(w, before)


# ------------------------------------------------------------------ hostile archives


HOSTILE = {
    "not-an-archive": (
        lambda model_dir: b"ceci n'est pas une archive",
        "archive du modèle illisible",
    ),
    "path-traversal": (
        lambda model_dir: archive([member("../../evil.txt"), member("MLmodel", b"flavors: {}")]),
        "chemin refusé",
    ),
    "absolute-path": (lambda model_dir: archive([member("/etc/evil")]), "chemin refusé"),
    "symlink": (
        lambda model_dir: archive([member("lien", kind=tarfile.SYMTYPE, linkname="/etc/passwd")]),
        "liens et périphériques refusés",
    ),
    "too-big": (
        lambda model_dir: archive(
            [member("MLmodel", b"flavors: {}"), member("poids.bin", bytes(MAX_MODEL_BYTES + 1))]
        ),
        "modèle trop volumineux",
    ),
    "no-mlmodel": (
        lambda model_dir: archive([member("model/lisez-moi.txt")]),
        "aucun fichier MLmodel",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_archive_gets_a_french_error_and_writes_nothing(
    w: World, sklearn_model_dir: Path, case: str
) -> None:
    build, expected = HOSTILE[case]
    client = browser(w, "expert")
    before = snapshot(w)
    values = cardform.flatten(good_card())
    response = post(
        client, "/publier", {"nom": f"hostile-{case}", **values}, model=build(sklearn_model_dir)
    )
    assert response.status_code == 422, response.text[:500]
    message = errors_of(response.text)["modele"]
    assert expected in message, message
    assert "modele" in summary_links(response.text)
    nothing_written(w, before)
    assert not list((w.services.settings.data_dir.parent).rglob("evil*"))


def test_a_model_larger_than_other_requests_passes_for_an_expert_only(
    w: World, sklearn_model_dir: Path, tmp_path: Path
) -> None:
    import os
    import shutil

    heavy = tmp_path / "lourd"
    shutil.copytree(sklearn_model_dir, heavy)
    (heavy / "poids.bin").write_bytes(os.urandom(MAX_REQUEST_BYTES + 100_000))  # incompressible
    model = tar_model(heavy)
    assert MAX_REQUEST_BYTES < len(model) < MAX_MODEL_BYTES
    values = cardform.flatten(good_card())

    client = browser(w, "member")
    before = snapshot(w)
    response = client.post(
        "/publier",
        data={"csrftoken": csrf_token(client, "/"), "nom": "lourd-membre", **values},
        files={"modele": ("m.tar.gz", model, "application/gzip")},
        headers=HTML,
    )
    assert response.status_code in (403, 413) and "<html" in response.text
    nothing_written(w, before)

    client = browser(w, "expert")
    response = post(client, "/publier", {"nom": "eau-lourde", **values}, model=model)
    assert response.status_code == 303, response.text[:500]


HOSTILE_CARDS = {
    "too-big": (b"a: " + b"x" * (256 * 1024 + 10), "fiche trop volumineuse"),
    "yaml-aliases": (
        b"a: &a [x, x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: [*b, *b, *b, *b]\n",
        "refusé",
    ),
    "not-utf8": ("identification: {title: Énergie}".encode("latin-1"), "UTF-8"),
    "not-a-mapping": (b"- une\n- liste\n", "objet JSON ou YAML"),
}


@pytest.mark.parametrize("case", list(HOSTILE_CARDS))
def test_a_hostile_card_file_gets_a_french_error_and_writes_nothing(
    w: World, sklearn_model_dir: Path, case: str
) -> None:
    text, expected = HOSTILE_CARDS[case]
    client = browser(w, "expert")
    before = snapshot(w)
    response = post(
        client,
        f"/modeles/{EXISTING}/publier",
        {"source": "fichier"},
        model=tar_model(sklearn_model_dir),
        card_file=text,
    )
    assert response.status_code == 422, response.text[:500]
    assert expected in errors_of(response.text)["fiche_fichier"]
    nothing_written(w, before)


def test_a_form_with_too_many_fields_is_a_french_400(w: World) -> None:
    client = browser(w, "expert")
    path = f"/modeles/{EXISTING}/fiche"
    fields = {"csrftoken": csrf_token(client, path)}
    fields.update({f"fiche.x{i}": "" for i in range(5_000)})
    response = client.post(path, data=fields, headers=HTML)
    assert response.status_code == 400, response.text
    assert "Formulaire illisible ou trop long (3000 champs au plus" in response.text


# ------------------------------------------------------------------ a new version, an uploaded card


def test_a_new_version_with_an_uploaded_card_wrong_then_right(
    w: World, sklearn_model_dir: Path
) -> None:
    client = browser(w, "expert")
    path = f"/modeles/{EXISTING}/publier"
    page = client.get(path, headers=HTML)
    assert page.status_code == 200
    title = good_card()["identification"]["title"]
    assert (
        html.unescape(input_tag(page.text, "f-identification-title")).count(f'value="{title}"') == 1
    )

    before = snapshot(w)
    card = good_card()
    del card["identification"]["title"]
    card["data"]["personal_data"] = "peut-être"
    text = yaml.safe_dump(card, allow_unicode=True).encode()
    response = post(
        client, path, {"source": "fichier"}, model=tar_model(sklearn_model_dir), card_file=text
    )
    assert response.status_code == 422, response.text[:500]
    errors = errors_of(response.text)
    assert errors["f-identification-title"] == "champ obligatoire manquant"
    assert errors["f-data-personal_data"] == "doit valoir true ou false"
    assert "a été chargée dans le formulaire" in response.text
    # the file's values are in the form, to be corrected there
    assert "Nantes Métropole (Loire-Atlantique)" in input_tag(
        response.text, "f-identification-territory"
    )
    assert 'id="source-formulaire" name="source" value="formulaire" checked' in response.text
    nothing_written(w, before)

    response = post(
        client,
        path,
        {"source": "fichier"},
        model=tar_model(sklearn_model_dir),
        card_file=b"{ pas: [du yaml",
    )
    assert response.status_code == 422
    assert errors_of(response.text)["fiche_fichier"].startswith("fiche illisible")
    nothing_written(w, before)

    card = good_card()
    card["identification"]["summary"] = "Deuxième version, publiée avec une fiche en YAML."
    text = yaml.safe_dump(card, allow_unicode=True).encode()
    response = post(
        client,
        path,
        {"source": "fichier", "alias": "candidat"},
        model=tar_model(sklearn_model_dir),
        card_file=text,
    )
    assert response.status_code == 303, response.text[:800]
    assert response.headers["location"].startswith(f"/modeles/{EXISTING}?publie=2")
    detail = w.client.get(f"/api/v1/models/{EXISTING}", headers=w.headers("admin")).json()
    assert detail["latest_version"] == 2 and detail["aliases"]["candidat"] == 2
    assert detail["card"]["identification"]["summary"] == card["identification"]["summary"]


def test_with_the_promotion_gate_on_a_version_is_not_published_as_production(
    w: World, sklearn_model_dir: Path
) -> None:
    name = "eau-gardee"
    assert register(w, sklearn_model_dir, good_card(), name=name, alias=None).status_code == 201
    gate = w.client.put(
        f"/api/v1/models/{name}/evaluation-settings",
        json={"task": "regression", "promotion_gate": True},
        headers=w.headers("expert"),
    )
    assert gate.status_code == 200, gate.text
    client = browser(w, "expert")
    path = f"/modeles/{name}/publier"
    before = snapshot(w)
    values = cardform.flatten(good_card())
    response = post(
        client, path, {"alias": "production", **values}, model=tar_model(sklearn_model_dir)
    )
    assert response.status_code == 422, response.text[:500]
    message = errors_of(response.text)["alias"]
    assert f"promotion de {name} est activé" in message and "sans cet alias" in message
    nothing_written(w, before)
    # the API holds the same rule
    api = register(w, sklearn_model_dir, good_card(), name=name, alias="production")
    assert api.status_code == 409 and api.json()["error"] == "promotion_refusee", api.text
    nothing_written(w, before)
    response = post(
        client, path, {"alias": "candidat", **values}, model=tar_model(sklearn_model_dir)
    )
    assert response.status_code == 303


# ------------------------------------------------------------------ the card alone


def test_an_expert_edits_the_card_wrong_then_right(w: World) -> None:
    client = browser(w, "expert")
    path = f"/modeles/{EXISTING}/fiche"
    page = client.get(path, headers=HTML)
    assert page.status_code == 200 and 'enctype="multipart/form-data"' not in page.text
    current = w.client.get(f"/api/v1/models/{EXISTING}", headers=w.headers("admin")).json()["card"]
    values = cardform.flatten(current)
    before = snapshot(w)

    bad = dict(values, **{"fiche.accountability.contacts.0.email": "pas-une-adresse"})
    response = client.post(
        path,
        data={"csrftoken": csrf_token(client, path), **bad},
        headers=HTML,
        follow_redirects=False,
    )
    assert response.status_code == 422
    assert errors_of(response.text)["f-accountability-contacts-0-email"].startswith(
        "format invalide"
    )
    nothing_written(w, before)

    edited = dict(
        values, **{"fiche.identification.summary": "Une fiche modifiée depuis le navigateur."}
    )
    edited["fiche.identification.keywords"] = "eau\nfuites\n\nbâtiments publics"
    response = client.post(
        path,
        data={"csrftoken": csrf_token(client, path), **edited},
        headers=HTML,
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text[:800]
    assert (
        client.get(response.headers["location"], headers=HTML).text.count(
            "La fiche a été enregistrée."
        )
        == 1
    )
    card = w.client.get(f"/api/v1/models/{EXISTING}", headers=w.headers("admin")).json()["card"]
    assert card["identification"]["summary"] == "Une fiche modifiée depuis le navigateur."
    assert card["identification"]["keywords"] == ["eau", "fuites", "bâtiments publics"]
    assert card["accountability"]["contacts"] == current["accountability"]["contacts"]
    events = w.client.get(
        "/api/v1/audit", params={"action": "model.card"}, headers=w.headers("admin")
    ).json()
    assert events and events[0]["target"] == EXISTING and events[0]["actor"].startswith("experte@")


def test_the_card_api_replaces_a_card_with_the_same_checks(w: World) -> None:
    card = copy.deepcopy(good_card())
    card["identification"]["title"] = ""
    response = w.client.put(
        f"/api/v1/models/{EXISTING}/card", json=card, headers=w.headers("expert")
    )
    assert response.status_code == 422
    assert {"field": "identification.title", "message": "ne doit pas être vide"} in response.json()[
        "details"
    ]
    refused = w.client.put(
        f"/api/v1/models/{EXISTING}/card", json=good_card(), headers=w.headers("other_expert")
    )
    assert refused.status_code == 403


# ------------------------------------------------------------------ who may


ROUTES = ["/publier", f"/modeles/{EXISTING}/publier", f"/modeles/{EXISTING}/fiche"]


@pytest.mark.parametrize("path", ROUTES)
def test_anonymous_callers_are_invited_to_sign_in(w: World, path: str) -> None:
    client = TestClient(w.app)
    response = client.get(path, headers=HTML, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith(
        "/connexion?next="
    )
    token = csrf_token(client)
    response = client.post(path, data={"csrftoken": token}, headers=HTML, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/connexion")


@pytest.mark.parametrize("path", ROUTES)
def test_members_are_refused_each_page_in_french(w: World, path: str) -> None:
    client = browser(w, "member")
    assert "Publier un modèle</a>" not in client.get("/", headers=HTML).text
    response = client.get(path, headers=HTML)
    assert response.status_code == 403 and "seuls les experts" in response.text
    before = snapshot(w)
    response = client.post(
        path,
        data={
            "csrftoken": csrf_token(client, "/"),
            "nom": "par-un-membre",
            **cardform.flatten(good_card()),
        },
        headers=HTML,
    )
    assert response.status_code == 403 and "Accès refusé" in response.text
    nothing_written(w, before)


@pytest.mark.parametrize("path", ROUTES[1:])
def test_experts_of_another_organisation_are_refused_the_owners_pages(
    w: World, path: str, sklearn_model_dir: Path
) -> None:
    client = browser(w, "other_expert")
    page = client.get(f"/modeles/{EXISTING}", headers=HTML).text
    assert "Modifier la fiche" not in page
    response = client.get(path, headers=HTML)
    assert (
        response.status_code == 403
        and "collectivité propriétaire (SIREN 244400404)" in response.text
    )
    before = snapshot(w)
    response = client.post(
        path,
        data={"csrftoken": csrf_token(client, "/"), **cardform.flatten(good_card())},
        files={"modele": ("m.tar.gz", tar_model(sklearn_model_dir), "application/gzip")}
        if "publier" in path
        else None,
        headers=HTML,
    )
    assert response.status_code == 403
    nothing_written(w, before)


@pytest.mark.parametrize("path", ROUTES)
def test_a_form_without_its_csrf_token_is_refused(
    w: World, path: str, sklearn_model_dir: Path
) -> None:
    client = browser(w, "expert")
    before = snapshot(w)
    fields = {"nom": "sans-jeton", **cardform.flatten(good_card())}
    multipart = "fiche" not in path
    response = client.post(
        path,
        data=fields,
        files={"modele": ("m.tar.gz", tar_model(sklearn_model_dir), "application/gzip")}
        if multipart
        else None,
        headers=HTML,
    )
    assert response.status_code == 403 and "jeton anti-falsification" in response.text
    nothing_written(w, before)
