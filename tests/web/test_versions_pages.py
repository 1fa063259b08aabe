"""« Fichiers et versions »: a version's files and downloads with the session, pull snippets, aliases.

In-process, on a real service (MLflow on SQLite, real tokens, real sessions
opened through /connexion as a browser does).
"""

from __future__ import annotations

import html
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from tests.conftest import EXAMPLE_CARD, World, make_world, register
from tests.web.test_plain_language import assert_plain
from tests.web.webdata import csrf_token, model_card, sign_in

NAME = "eau-fichiers"
HTML = "<html><body><script>alert('pris')</script></body></html>"
SVG = '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'
FILES = f"/modeles/{NAME}/versions/1/fichiers"
GATEWAY = f"/api/2.0/mlflow-artifacts/artifacts/bibia-models/{NAME}/1"


@pytest.fixture(scope="module")
def site(sklearn_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """``eau-fichiers`` v1 (alias production) and v2 (alias candidat), with hostile files in v1."""
    from bibia.settings import Settings

    tmp = tmp_path_factory.mktemp("versions")
    world = make_world(Settings(data_dir=tmp / "data", seed_on_start=False, runner="none"))
    card = model_card(yaml.safe_load(EXAMPLE_CARD.read_text(encoding="utf-8")))
    card["identification"].pop("project", None)
    hostile = tmp / "hostile"
    shutil.copytree(sklearn_model_dir, hostile)
    (hostile / "extras").mkdir()
    (hostile / "extras" / "page.html").write_text(HTML, encoding="utf-8")
    (hostile / "extras" / "dessin.svg").write_text(SVG, encoding="utf-8")
    (hostile / "extras" / "rapport final (v2).txt").write_bytes(b"x" * 1_234_567)
    with world.client:
        assert register(world, hostile, card, name=NAME).status_code == 201
        response = register(world, sklearn_model_dir, card, name=NAME, alias="candidat")
        assert response.status_code == 201, response.text
        yield world


def client_as(world: World, role: str | None) -> TestClient:
    """A browser of its own, signed in through /connexion with the role's token (None: anonymous)."""
    browser = TestClient(world.app)
    if role is not None:
        answer = sign_in(browser, world.tokens[role])
        assert answer.status_code == 303, answer.text
    return browser


def page(browser: TestClient, path: str = FILES):
    return browser.get(path, headers={"accept": "text/html"}, follow_redirects=False)


def aliases(world: World) -> dict[str, int]:
    body = world.client.get(f"/api/v1/models/{NAME}").json()
    return body["aliases"]


def post_form(browser: TestClient, action: str, data: dict[str, str], at: str = FILES):
    return browser.post(
        action,
        data={"csrftoken": csrf_token(browser, at), **data},
        headers={"accept": "text/html"},
        follow_redirects=False,
    )


# ------------------------------------------------------------------ files


def test_an_expert_sees_the_files_with_french_sizes(site: World) -> None:
    expert = client_as(site, "expert")
    answer = page(expert)
    assert answer.status_code == 200, answer.text
    text = answer.text
    for name in ("MLmodel", "extras/page.html", "extras/dessin.svg", "model.pkl"):
        assert name in text, name
    assert "1,2\u00a0Mo" in text  # the 1 234 567 bytes file
    assert re.search(r"\d+ fichiers, [\d,]+\u00a0[kMG]?o", text)
    assert f'href="{FILES}/extras/rapport%20final%20%28v2%29.txt"' in text
    # the way there: from each version of the model page
    model_page = page(expert, f"/modeles/{NAME}").text
    assert (
        f'href="{FILES}"' in model_page
        and f'href="/modeles/{NAME}/versions/2/fichiers"' in model_page
    )


def test_download_with_the_session_cookie_gives_the_gateways_bytes(site: World) -> None:
    expert = client_as(site, "expert")
    assert "authorization" not in {k.lower() for k in expert.headers}
    for path in ("MLmodel", "extras/rapport final (v2).txt"):
        mine = expert.get(f"{FILES}/{path}")
        assert mine.status_code == 200, mine.text
        gateway = site.client.get(f"{GATEWAY}/{path}", headers=site.headers("expert"))
        assert gateway.status_code == 200
        assert mine.content == gateway.content and len(mine.content) > 10
        assert mine.headers["content-disposition"].startswith("attachment;")
        assert gateway.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["extras/page.html", "extras/dessin.svg"])
def test_a_hostile_file_is_an_attachment_never_a_page(site: World, path: str) -> None:
    answer = client_as(site, "expert").get(f"{FILES}/{path}")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/octet-stream"
    assert (
        answer.headers["content-disposition"] == f'attachment; filename="{path.rsplit("/", 1)[1]}"'
    )
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in answer.headers["content-security-policy"]
    assert "default-src 'none'" in answer.headers["content-security-policy"]


def test_the_saved_name_is_cleaned(site: World) -> None:
    answer = client_as(site, "expert").get(f"{FILES}/extras/rapport final (v2).txt")
    assert answer.headers["content-disposition"] == 'attachment; filename="rapport_final_v2_.txt"'


@pytest.mark.parametrize(
    "path",
    [
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "%2e%2e/%2e%2e/MLmodel",
        "extras/..%2F..%2FMLmodel",
        "%2Fetc%2Fpasswd",
        "extras//page.html",
        "extras%5Cpage.html",
        "inexistant.txt",
        "extras",
        "MLmodel%00.txt",
    ],
)
def test_paths_that_are_not_files_of_the_version_are_french_404s(site: World, path: str) -> None:
    answer = client_as(site, "expert").get(f"{FILES}/{path}", headers={"accept": "text/html"})
    assert answer.status_code == 404, (path, answer.status_code, answer.text[:300])
    assert "Aucun fichier" in answer.text and "Page introuvable" in answer.text
    assert "\x00" not in answer.text


def test_a_link_out_of_the_version_is_neither_listed_nor_served(site: World) -> None:
    root = site.services.registry.local_copy(NAME, 1)
    link = root / "extras" / "fuite"
    link.symlink_to("/etc/passwd")
    try:
        expert = client_as(site, "expert")
        assert "fuite" not in page(expert).text
        assert expert.get(f"{FILES}/extras/fuite").status_code == 404
        gateway = site.client.get(f"{GATEWAY}/extras/fuite", headers=site.headers("expert"))
        assert gateway.status_code in (400, 404) and "root:" not in gateway.text
    finally:
        link.unlink()


def test_a_loop_of_links_inside_a_version_is_a_french_400(site: World) -> None:
    root = site.services.registry.local_copy(NAME, 1)
    loop = root / "extras" / "boucle"
    loop.symlink_to(".")
    try:
        answer = page(client_as(site, "expert"))
        assert answer.status_code == 400, answer.text[:300]
        assert "trop profonde" in answer.text
    finally:
        loop.unlink()


def test_unknown_models_and_versions_are_french_404s(site: World) -> None:
    expert = client_as(site, "expert")
    for path in (
        f"/modeles/{NAME}/versions/9/fichiers",
        f"/modeles/{NAME}/versions/abc/fichiers",
        "/modeles/inconnu/versions/1/fichiers",
        f"/modeles/{NAME}/versions/9/fichiers/MLmodel",
    ):
        answer = page(expert, path)
        assert answer.status_code == 404, (path, answer.text[:300])
        assert "Page introuvable" in answer.text


def test_members_are_refused_the_files_and_anonymous_visitors_asked_to_sign_in(
    site: World,
) -> None:
    member = client_as(site, "member")
    for path in (FILES, f"{FILES}/MLmodel"):
        answer = page(member, path)
        assert answer.status_code == 403, answer.text[:300]
        assert "réservés aux experts" in answer.text and "membre" in answer.text
        assert "MLmodel" not in answer.text.replace(path, "")
    anonymous = client_as(site, None)
    for path in (FILES, f"{FILES}/MLmodel"):
        answer = page(anonymous, path)
        assert answer.status_code == 401
        assert "réservés aux experts" in answer.text and "/connexion?next=" in answer.text


def test_the_pull_snippet_names_the_version_and_its_alias_and_no_token(site: World) -> None:
    expert = client_as(site, "expert")
    text = page(expert).text
    assert "MLFLOW_TRACKING_URI" in text and "MLFLOW_TRACKING_TOKEN" in text
    assert "&lt;votre jeton expert&gt;" in text
    assert f"mlflow.pyfunc.load_model(&#34;models:/{NAME}/1&#34;)" in text
    assert f"models:/{NAME}@production" in text
    assert f"bibia pull {NAME}@production -o" in text
    assert "http://testserver" in text
    for token in site.tokens.values():
        assert token not in text
    v2 = page(expert, f"/modeles/{NAME}/versions/2/fichiers").text
    assert f"models:/{NAME}/2" in v2 and f"bibia pull {NAME}@candidat" in v2


# ------------------------------------------------------------------ aliases


def test_an_expert_moves_an_alias_then_removes_one(site: World) -> None:
    expert = client_as(site, "expert")
    assert aliases(site) == {"production": 1, "candidat": 2}
    moved = post_form(expert, f"/modeles/{NAME}/alias", {"alias": "essai", "version": "1"})
    assert moved.status_code == 303, moved.text
    assert moved.headers["location"] == f"{FILES}?fait=alias&alias=essai#alias"
    assert aliases(site)["essai"] == 1
    shown = html.unescape(page(expert, moved.headers["location"]).text)
    assert "L'alias « essai » désigne maintenant la version 1." in shown
    # the one-click move of an existing alias onto the version shown
    again = post_form(
        expert,
        f"/modeles/{NAME}/alias",
        {"alias": "essai", "version": "2"},
        at=f"/modeles/{NAME}/versions/2/fichiers",
    )
    assert again.status_code == 303 and aliases(site)["essai"] == 2
    removed = post_form(
        expert, f"/modeles/{NAME}/alias/supprimer", {"alias": "essai", "version": "1"}
    )
    assert removed.status_code == 303
    assert "essai" not in aliases(site)
    assert "L'alias « essai » est supprimé." in html.unescape(
        page(expert, removed.headers["location"]).text
    )
    audit = site.client.get("/api/v1/audit", headers=site.headers("admin")).json()
    entries = audit if isinstance(audit, list) else audit["items"]
    actions = [(e["action"], e["target"]) for e in entries]
    assert ("model.alias", f"{NAME}@essai") in actions
    assert ("model.alias.delete", f"{NAME}@essai") in actions


def test_a_confirmation_is_only_shown_when_true(site: World) -> None:
    expert = client_as(site, "expert")
    forged = page(expert, f"{FILES}?fait=alias&alias=inexistant").text
    assert "désigne maintenant" not in forged
    assert "est supprimé" not in page(expert, f"{FILES}?fait=alias-supprime&alias=production").text
    spoof = page(expert, f"{FILES}?fait=alias-supprime&alias=Votre+compte+est+suspendu").text
    assert "suspendu" not in spoof and "est supprimé" not in spoof


def test_bad_alias_names_and_unknown_aliases_are_shown_on_the_page(site: World) -> None:
    expert = client_as(site, "expert")
    before = aliases(site)
    bad = post_form(expert, f"/modeles/{NAME}/alias", {"alias": "Pas Valide!", "version": "1"})
    assert bad.status_code == 400
    assert "alias invalide" in bad.text and 'aria-invalid="true"' in bad.text
    unknown = post_form(
        expert, f"/modeles/{NAME}/alias/supprimer", {"alias": "fantome", "version": "1"}
    )
    assert unknown.status_code == 404 and "n&#39;a pas d&#39;alias « fantome »" in unknown.text
    missing = post_form(expert, f"/modeles/{NAME}/alias", {"alias": "essai", "version": "99"})
    assert missing.status_code == 404 and "Page introuvable" in missing.text
    assert aliases(site) == before


def test_the_promotion_gate_refuses_with_its_message_and_changes_nothing(site: World) -> None:
    from tests.evaluations.conftest import regression_csv

    response = site.client.post(
        "/api/v1/benchmarks",
        headers=site.headers("admin"),
        files={"fichier": ("jeu.csv", regression_csv(), "text/csv")},
        data={
            "slug": "doubles-porte",
            "task": "regression",
            "title": "Doubles (référence)",
            "licence": "Licence Ouverte 2.0",
            "truth_column": "observe",
            "reference": "true",
        },
    )
    assert response.status_code == 201, response.text
    url = f"/api/v1/models/{NAME}/evaluation-settings"
    on = site.client.put(
        url, headers=site.headers("expert"), json={"task": "regression", "promotion_gate": True}
    )
    assert on.status_code == 200, on.text
    try:
        expert = client_as(site, "expert")
        before = aliases(site)
        refused = post_form(
            expert,
            f"/modeles/{NAME}/alias",
            {"alias": "production", "version": "2"},
            at=f"/modeles/{NAME}/versions/2/fichiers",
        )
        assert refused.status_code == 409, refused.text[:500]
        shown = html.unescape(refused.text)
        assert "L'alias n'a pas été modifié : promotion refusée" in shown
        assert "n'a pas d'évaluation vérifiée" in shown
        assert aliases(site) == before
        # another alias is never gated
        ok = post_form(expert, f"/modeles/{NAME}/alias", {"alias": "candidat", "version": "2"})
        assert ok.status_code == 303
    finally:
        site.client.put(url, headers=site.headers("expert"), json={"promotion_gate": False})


@pytest.mark.parametrize("role", ["member", "other_expert"])
def test_members_and_other_organisations_experts_are_refused_alias_changes(
    site: World, role: str
) -> None:
    browser = client_as(site, role)
    before = aliases(site)
    at = "/" if role == "member" else FILES
    for action, data in (
        (f"/modeles/{NAME}/alias", {"alias": "production", "version": "2"}),
        (f"/modeles/{NAME}/alias/supprimer", {"alias": "production", "version": "1"}),
    ):
        answer = post_form(browser, action, data, at=at)
        assert answer.status_code == 403, answer.text[:300]
        assert "seuls les experts de la collectivité propriétaire" in answer.text
    assert aliases(site) == before
    if role == "other_expert":  # they see the files, not the forms
        text = page(browser).text
        assert "MLmodel" in text and f'action="/modeles/{NAME}/alias"' not in text
        assert "Seuls les experts de Nantes Métropole" in text


def test_anonymous_alias_changes_are_sent_to_sign_in(site: World) -> None:
    anonymous = TestClient(site.app)
    answer = anonymous.post(
        f"/modeles/{NAME}/alias", data={"alias": "anonyme", "version": "1"}, follow_redirects=False
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/connexion?next={FILES}"
    assert "anonyme" not in aliases(site)


def test_without_the_csrf_token_nothing_changes(site: World) -> None:
    expert = client_as(site, "expert")
    page(expert)  # the CSRF cookie is set, but the form field is missing
    before = aliases(site)
    for action, data in (
        (f"/modeles/{NAME}/alias", {"alias": "essai", "version": "1"}),
        (f"/modeles/{NAME}/alias/supprimer", {"alias": "production", "version": "1"}),
    ):
        answer = expert.post(action, data=data, headers={"accept": "text/html"})
        assert answer.status_code == 403 and "anti-falsification" in answer.text
        forged = expert.post(
            action, data={**data, "csrftoken": "faux"}, headers={"accept": "text/html"}
        )
        assert forged.status_code == 403
    assert aliases(site) == before


def test_every_form_of_the_page_carries_a_csrf_token(site: World) -> None:
    text = page(client_as(site, "expert")).text
    forms = re.findall(r"<form[^>]*>(.*?)</form>", text, flags=re.S)
    posts = [f for f in forms if "alias" in f]
    assert len(posts) >= 3
    assert all('name="csrftoken"' in f for f in posts)


def test_the_version_page_has_security_headers_and_no_script(site: World) -> None:
    answer = page(client_as(site, "expert"))
    assert "script-src 'none'" in answer.headers["content-security-policy"]
    assert "<script" not in answer.text.replace("&lt;script", "")
    assert json.dumps(HTML) not in answer.text


def test_the_pages_are_in_plain_french(site: World) -> None:
    expert = client_as(site, "expert")
    assert_plain(page(expert).text, "the files page")
    assert "enregistrée le" in page(expert).text
    refused = post_form(expert, f"/modeles/{NAME}/alias", {"alias": "v2", "version": "1"})
    assert refused.status_code == 400
    assert_plain(refused.text, "a refused alias")
    assert_plain(page(client_as(site, "member")).text, "a member's refusal")
    assert_plain(page(client_as(site, None)).text, "the sign-in invitation")
