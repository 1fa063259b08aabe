"""The administrators' pages (``/admin``), in-process: organisations, members, tokens, quotas, the audit log.

An administrator signs in with the form (a session cookie, CSRF tokens read
from the pages as a browser does) and works through the pages; members,
experts and anonymous visitors are refused every page and action.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from html import unescape

import pytest
from fastapi.testclient import TestClient

from tests.conftest import World, make_world
from tests.web.webdata import csrf_token, sign_in

TOKEN_RE = re.compile(r"bibia_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")
HTML = {"accept": "text/html"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from bibia.settings import Settings

    tmp = tmp_path_factory.mktemp("admin")
    w = make_world(Settings(data_dir=tmp / "data", seed_on_start=False, runner="none"))
    with w.client:
        yield w


def _signed_in(world: World, role: str = "admin") -> TestClient:
    client = TestClient(world.app)
    response = sign_in(client, world.tokens[role], "/admin")
    assert response.status_code == 303, response.text
    return client


@pytest.fixture
def admin(world: World) -> TestClient:
    """A browser signed in as the administrator (its own cookie jar)."""
    return _signed_in(world)


def _post(client: TestClient, page: str, action: str, data: dict[str, str], **kw):
    return client.post(
        action,
        data={"csrftoken": csrf_token(client, page), **data},
        headers=HTML,
        follow_redirects=False,
        **kw,
    )


def _field_error(html: str, key: str) -> str:
    found = re.search(rf'<p class="erreur-champ" id="erreur-{key}">([^<]*)</p>', html)
    assert found, f"no error next to {key}: {html[:3000]}"
    return unescape(found.group(1))


def _orgs(world: World) -> list[str]:
    return [o["slug"] for o in world.client.get("/api/v1/orgs").json()]


def _audit(world: World, action: str) -> list[dict]:
    response = world.client.get(
        "/api/v1/audit", params={"action": action}, headers=world.headers("admin")
    )
    return list(response.json())


# ------------------------------------------------------------ organisations


def test_an_administrator_creates_an_organisation_a_wrong_siren_key_is_refused(
    world: World, admin: TestClient
) -> None:
    home = admin.get("/admin", headers=HTML)
    assert home.status_code == 200
    assert "Métropole Européenne de Lille" in home.text and "200093201" in home.text
    assert '<a href="/admin" aria-current="page">Administration</a>' in home.text

    wrong = _post(
        admin,
        "/admin",
        "/admin/organisations",
        {"slug": "rennes-metropole", "name": "Rennes Métropole", "siren": "243500138"},
    )
    assert wrong.status_code == 400
    message = _field_error(wrong.text, "siren")
    assert "SIREN invalide : 243500138 ; sa clé de contrôle est fausse" in message
    assert 'aria-invalid="true"' in wrong.text and "aide-siren erreur-siren" in wrong.text
    assert 'value="Rennes Métropole"' in wrong.text  # what was typed is kept
    assert "rennes-metropole" not in _orgs(world)

    several = _post(
        admin, "/admin", "/admin/organisations", {"slug": "Rennes!", "name": "", "siren": "12"}
    )
    assert several.status_code == 400
    assert "Identifiant d'organisation invalide" in _field_error(several.text, "slug")
    assert "obligatoire" in _field_error(several.text, "name")
    assert "9 chiffres" in _field_error(several.text, "siren")
    assert "3 erreurs empêchent l'enregistrement" in several.text

    taken = _post(
        admin,
        "/admin",
        "/admin/organisations",
        {"slug": "autre", "name": "X", "siren": "244400404"},
    )
    assert taken.status_code == 409
    assert "Une organisation porte déjà le SIREN 244400404" in _field_error(taken.text, "siren")

    created = _post(
        admin,
        "/admin",
        "/admin/organisations",
        {"slug": "rennes-metropole", "name": "Rennes Métropole", "siren": "243 500 139"},
    )
    assert created.status_code == 303
    assert created.headers["location"] == "/admin/organisations/rennes-metropole?fait=creee"
    page = admin.get(created.headers["location"], headers=HTML)
    assert "L'organisation est créée" in unescape(page.text) and "243500139" in page.text
    assert "rennes-metropole" in _orgs(world)
    assert _audit(world, "org.create")[0]["target"] == "rennes-metropole"
    listed = admin.get("/admin", headers=HTML).text
    assert "Rennes Métropole" in listed


# ------------------------------------------------------------ tokens


def test_a_token_is_shown_once_then_revoked_and_both_actions_are_in_the_journal(
    world: World, admin: TestClient
) -> None:
    page = "/admin/organisations/lille"
    bad = _post(admin, page, f"{page}/jetons", {"user": "", "role": "expert", "label": ""})
    assert bad.status_code == 400 and "Indiquez le nom" in _field_error(bad.text, "token-user")
    conflict = _post(admin, page, f"{page}/jetons", {"user": "expert-lille", "role": "member"})
    assert conflict.status_code == 409
    assert "a le rôle expert, pas member" in _field_error(conflict.text, "token-user")
    assert not TOKEN_RE.search(bad.text + conflict.text)

    answer = _post(
        admin,
        page,
        f"{page}/jetons",
        {"user": "script-import", "role": "expert", "label": "import nocturne"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    values = TOKEN_RE.findall(answer.text)
    assert len(set(values)) == 1
    token = values[0]
    prefix = token.split("_")[1]
    assert "il ne sera plus jamais affiché" in answer.text and "Ctrl+C" in answer.text
    assert world.client.get("/api/v1/me", headers=_bearer(token)).json()["tier"] == "expert"

    listing = admin.get(page, headers=HTML).text
    assert prefix in listing and "import nocturne" in listing and "script-import" in listing
    for path in ("/admin", page, "/admin/journal", "/admin/journal.csv"):
        assert token not in admin.get(path, headers=HTML).text, path
    assert not any(token in str(e) for e in _audit(world, "token.create"))

    revoked = _post(admin, page, f"{page}/jetons/{prefix}/revoquer", {})
    assert revoked.status_code == 303
    assert revoked.headers["location"] == f"{page}?fait=revoque"
    assert world.client.get("/api/v1/me", headers=_bearer(token)).status_code == 401
    after = admin.get(page, headers=HTML).text
    assert "Jetons révoqués ou expirés (1)" in after and "Révoqué le" in after
    # a token of another organisation is not revoked from this page
    other = world.client.get("/api/v1/tokens", headers=world.headers("admin")).json()
    nantes = next(t["prefix"] for t in other if t["organisation"] == "nantes-metropole")
    assert _post(admin, page, f"{page}/jetons/{nantes}/revoquer", {}).status_code == 404

    journal = admin.get(f"/admin/journal?objet={prefix}", headers=HTML).text
    assert "Jeton créé" in journal and "Jeton révoqué" in journal
    assert journal.count(f"<code>{prefix}</code>") == 2
    exported = _csv(admin.get(f"/admin/journal.csv?objet={prefix}"))
    assert [row["Action (code)"] for row in exported] == ["token.revoke", "token.create"]
    assert all(row["Qui"].startswith("admin@nantes-metropole") for row in exported)
    assert all(token not in str(row) for row in exported)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM, for Excel
    text = response.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("Date et heure (heure de Paris);Qui;")
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))


def test_a_token_may_expire_at_the_end_of_a_day(world: World, admin: TestClient) -> None:
    import zoneinfo

    page = "/admin/organisations/lille"
    today = dt.datetime.now(zoneinfo.ZoneInfo("Europe/Paris")).date()
    for expire, fragment in (
        ((today - dt.timedelta(days=1)).isoformat(), "la date d'expiration est passée"),
        ("2031-02-30", "le 2031-02-30 n'existe pas"),
        ((today + dt.timedelta(days=6 * 366)).isoformat(), "trop lointaine"),
        ("demain", "attendu : une date comme 2026-03-01"),
    ):
        refused = _post(
            admin, page, f"{page}/jetons", {"user": "bref", "role": "member", "expire": expire}
        )
        assert refused.status_code == 400, expire
        assert fragment in _field_error(refused.text, "token-expire").lower(), expire
    tomorrow = today + dt.timedelta(days=1)
    answer = _post(
        admin,
        page,
        f"{page}/jetons",
        {"user": "bref", "role": "member", "expire": tomorrow.isoformat()},
    )
    assert answer.status_code == 200, answer.text
    assert "il expire à la fin du" in answer.text
    token = TOKEN_RE.findall(answer.text)[0]
    assert world.client.get("/api/v1/me", headers=_bearer(token)).status_code == 200
    from bibia.auth import hash_token
    from bibia.db.models import ApiToken

    with world.services.db.session() as session:
        row = session.query(ApiToken).filter_by(token_hash=hash_token(token)).one()
        local = row.expires_at.replace(tzinfo=row.expires_at.tzinfo or dt.UTC)
        paris = local.astimezone(zoneinfo.ZoneInfo("Europe/Paris"))
        assert paris.date() == tomorrow + dt.timedelta(days=1) and paris.hour == 0
        row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    assert world.client.get("/api/v1/me", headers=_bearer(token)).status_code == 401
    text = admin.get(page, headers=HTML).text
    ended = text[text.index("Jetons révoqués ou expirés") :]
    assert token.split("_")[1] in ended and "Expiré" in ended


# ------------------------------------------------------------ members and roles


def test_members_show_people_signed_in_with_openid_connect_and_roles_change(
    world: World, admin: TestClient
) -> None:
    from bibia.accounts import get_organisation
    from bibia.db.models import User

    with world.services.db.session() as session:
        session.add(
            User(
                organisation=get_organisation(session, "lille"),
                name="claire.dupont",
                role="member",
                email="claire.dupont@lillemetropole.fr",
                full_name="Claire Dupont",
                oidc_issuer="https://proconnect.example.gouv.fr",
                oidc_subject="sub-claire",
                last_login_at=dt.datetime(2026, 3, 2, 14, 5, tzinfo=dt.UTC),
            )
        )
    page = "/admin/organisations/lille"
    text = admin.get(page, headers=HTML).text
    assert "Claire Dupont" in text and "claire.dupont@lillemetropole.fr" in text
    assert "Compte (OpenID Connect)" in text
    assert "2 mars 2026 à 15\u00a0h\u00a005" in text  # Paris time

    assert (
        _post(admin, page, f"{page}/roles", {"user": "claire.dupont", "role": "chef"}).status_code
        == 400
    )
    assert (
        _post(admin, page, f"{page}/roles", {"user": "personne", "role": "expert"}).status_code
        == 404
    )
    changed = _post(admin, page, f"{page}/roles", {"user": "claire.dupont", "role": "expert"})
    assert changed.status_code == 303 and changed.headers["location"] == f"{page}?fait=role"
    assert "Le rôle est modifié" in admin.get(changed.headers["location"], headers=HTML).text
    assert any(e["target"] == "claire.dupont@lille" for e in _audit(world, "user.role"))
    # nobody demotes themselves (and loses the administration on the way)
    mine = "/admin/organisations/nantes-metropole"
    own = _post(admin, mine, f"{mine}/roles", {"user": "admin", "role": "member"})
    assert own.status_code == 409 and "votre propre rôle" in unescape(own.text)
    assert admin.get("/admin", headers=HTML).status_code == 200


# ------------------------------------------------------------ quotas


def test_quotas_are_set_from_the_page_and_bad_values_change_nothing(
    world: World, admin: TestClient
) -> None:
    page = "/admin/organisations/nantes-metropole"
    text = admin.get(page, headers=HTML).text
    assert "5 (réglage du service)" in text
    bad = _post(admin, page, f"{page}/quotas", {"demos": "beaucoup", "evaluations": "2000"})
    assert bad.status_code == 400
    assert "Quota de démonstrateurs invalide" in _field_error(bad.text, "quota-demos")
    assert "Quota d'évaluations invalide" in _field_error(bad.text, "quota-evaluations")
    assert 'value="beaucoup"' in bad.text
    assert not _audit(world, "org.quotas")

    done = _post(admin, page, f"{page}/quotas", {"demos": "2", "evaluations": ""})
    assert done.status_code == 303 and done.headers["location"] == f"{page}?fait=quotas"
    text = admin.get(done.headers["location"], headers=HTML).text
    assert "Les quotas sont enregistrés" in text
    assert re.search(r"<dt>Démonstrateurs actifs</dt><dd>2</dd>", text)
    assert "0 / 2" in admin.get("/admin", headers=HTML).text
    [event] = _audit(world, "org.quotas")
    assert event["details"]["demos"] == 2 and event["details"]["evaluations"] is None
    with world.services.db.session() as session:
        from bibia.accounts import get_organisation

        org = get_organisation(session, "nantes-metropole")
        assert (org.demo_quota, org.evaluation_quota) == (2, None)
        org.demo_quota = None  # leave the shared world as it was


# ------------------------------------------------------------ the audit log


def _event(world: World, at: dt.datetime, actor: str, action: str, target: str) -> None:
    from bibia.db.models import AuditEvent

    with world.services.db.session() as session:
        session.add(AuditEvent(at=at, actor=actor, organisation="x", action=action, target=target))


def test_the_journals_filters_and_its_csv(world: World, admin: TestClient) -> None:
    # 23:30 UTC on 1 March 2026 is 00:30 on 2 March in Paris
    _event(
        world,
        dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC),
        '=HYPERLINK("https://exemple.org";"clic")@mairie',
        "model.alias",
        "cantine-nantes@production",
    )
    _event(world, dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC), "bob@lille", "model.card", "@velo")

    def journal(**params: str):
        return admin.get("/admin/journal", params=params, headers=HTML)

    everything = journal()
    assert everything.status_code == 200
    assert "Journal d'audit" in everything.text and "événements" in everything.text
    by_day = journal(du="2026-03-02", au="2026-03-02")
    assert "cantine-nantes@production" in by_day.text and "@velo" not in by_day.text
    assert "1 événement pour ces filtres" in by_day.text
    assert "2 mars 2026 à 0\u00a0h\u00a030" in by_day.text  # Paris time
    first = journal(du="2026-03-01", au="2026-03-01")
    assert "@velo" in first.text and "cantine-nantes@production" not in first.text
    assert "cantine-nantes" in journal(objet="CANTINE").text  # case-insensitive
    assert "1 événement" in journal(qui="bob@", action="model.card").text
    assert "Aucun événement pour ces filtres" in journal(qui="personne-de-ce-nom").text
    assert "Aucun événement" in journal(qui="%", objet="_").text  # no SQL wildcard
    assert journal(page="n'importe quoi").status_code == 200

    for params, key, fragment in (
        ({"du": "2026-02-30"}, "du", "le 2026-02-30 n'existe pas"),
        ({"au": "01/03/2026"}, "au", "attendu : une date comme 2026-03-01"),
        ({"du": "2026-03-02", "au": "2026-03-01"}, "au", "La date de fin est avant"),
        ({"action": "<script>alert(1)</script>"}, "action", "Action inconnue"),
        ({"action": "org.supprimer"}, "action", "Action inconnue"),
        ({"qui": "x" * 101}, "qui", "trop long"),
        ({"objet": "a\x00b"}, "objet", "caractère de contrôle"),
        ({"du": "9999-01-01"}, "du", "entre 2000 et 2100"),
    ):
        refused = journal(**params)
        assert refused.status_code == 400, params
        assert fragment in _field_error(refused.text, key), params
        assert "<script>alert" not in refused.text
        bad_csv = admin.get("/admin/journal.csv", params=params, headers=HTML)
        assert bad_csv.status_code == 400 and "Filtres invalides" in bad_csv.text

    rows = _csv(admin.get("/admin/journal.csv", params={"du": "2026-03-01", "au": "2026-03-02"}))
    assert [r["Action (code)"] for r in rows] == ["model.alias", "model.card"]
    assert rows[0]["Date et heure (heure de Paris)"] == "02/03/2026 00:30:00"
    assert rows[0]["Action"] == "Alias déplacé"
    # a cell a spreadsheet would run as a formula is text
    assert rows[0]["Qui"] == '\'=HYPERLINK("https://exemple.org";"clic")@mairie'
    assert rows[1]["Objet"] == "'@velo"


def test_the_journal_is_paginated_newest_first(world: World, admin: TestClient) -> None:
    for n in range(55):
        _event(
            world,
            dt.datetime(2025, 6, 1, 8, 0, tzinfo=dt.UTC) + dt.timedelta(minutes=n),
            "pagination@essai",
            "demo.stop",
            f"demo-{n:02d}",
        )
    first = admin.get("/admin/journal?qui=pagination%40essai", headers=HTML).text
    assert "55 événements pour ces filtres — page 1 sur 2" in first
    assert first.index("demo-54") < first.index("demo-05") and "demo-04" not in first
    second = admin.get("/admin/journal?qui=pagination%40essai&page=2", headers=HTML).text
    assert "demo-04" in second and "demo-00" in second and "demo-05" not in second
    past = admin.get("/admin/journal?qui=pagination%40essai&page=99", headers=HTML).text
    assert "page 2 sur 2" in past and "demo-00" in past


# ------------------------------------------------------------ who may


ADMIN_GETS = ["/admin", "/admin/organisations/lille", "/admin/journal", "/admin/journal.csv"]
ADMIN_POSTS = {
    "/admin/organisations": {"slug": "intrus", "name": "Intrus", "siren": "213300635"},
    "/admin/organisations/lille/roles": {"user": "expert-lille", "role": "admin"},
    "/admin/organisations/lille/jetons": {"user": "intrus", "role": "admin"},
    "/admin/organisations/lille/jetons/00000000/revoquer": {},
    "/admin/organisations/lille/quotas": {"demos": "1000", "evaluations": "1000"},
}


@pytest.mark.parametrize("role", ["member", "expert"])
def test_members_and_experts_are_refused_every_page_and_action(world: World, role: str) -> None:
    client = _signed_in(world, role)
    home = client.get("/", headers=HTML).text
    assert 'href="/admin"' not in home and "Administration" not in home
    for path in ADMIN_GETS:
        response = client.get(path, headers=HTML)
        assert response.status_code == 403, path
        assert "réservée aux administrateurs" in response.text and "Accès refusé" in response.text
    for path, data in ADMIN_POSTS.items():
        response = _post(client, "/", path, data)
        assert response.status_code == 403, path
        bearer = world.client.post(path, data=data, headers=world.headers(role))
        assert bearer.status_code == 403, path
    assert "intrus" not in _orgs(world)
    assert not any(e["target"] == "expert-lille@lille" for e in _audit(world, "user.role"))


def test_anonymous_visitors_are_invited_to_sign_in(world: World) -> None:
    client = TestClient(world.app)
    for path in ADMIN_GETS:
        response = client.get(path, headers=HTML, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/connexion?next=/admin"), path
    for path, data in ADMIN_POSTS.items():
        response = _post(client, "/connexion", path, data)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/connexion?next=/admin"), path
    assert "intrus" not in _orgs(world)


def test_a_form_without_its_csrf_token_is_refused(world: World, admin: TestClient) -> None:
    admin.get("/admin", headers=HTML)  # the CSRF cookie is set
    for path, data in ADMIN_POSTS.items():
        response = admin.post(path, data=data, headers=HTML, follow_redirects=False)
        assert response.status_code == 403, path
        assert "jeton anti-falsification" in response.text
        forged = admin.post(
            path, data={"csrftoken": "faux", **data}, headers=HTML, follow_redirects=False
        )
        assert forged.status_code == 403, path
    assert "intrus" not in _orgs(world)


def test_the_administration_link_is_for_administrators(world: World, admin: TestClient) -> None:
    assert '<a href="/admin" >Administration</a>' in admin.get("/", headers=HTML).text.replace(
        '<a href="/admin" aria-current="page">', '<a href="/admin" >'
    )
    assert "Administration" not in TestClient(world.app).get("/", headers=HTML).text


def test_hostile_paths_and_fields_get_french_4xx(world: World, admin: TestClient) -> None:
    assert admin.get("/admin/organisations/inconnue", headers=HTML).status_code == 404
    assert admin.get("/admin/organisations/%00", headers=HTML).status_code == 404
    long = _post(admin, "/admin", "/admin/organisations", {"slug": "x" * 500, "name": "X"})
    assert long.status_code == 400 and "Paramètres manquants ou invalides" in long.text
    page = "/admin/organisations/lille"
    huge = _post(admin, page, f"{page}/quotas", {"demos": "9" * 50, "evaluations": ""})
    assert huge.status_code == 400


def test_the_api_issues_a_token_with_an_expiry_and_lists_its_details(world: World) -> None:
    admin = world.headers("admin")
    body = {"organisation": "lille", "role": "member", "user": "api-bref", "label": "essai"}
    for expires, fragment in (
        ("2030-01-01T00:00:00", "sans fuseau horaire"),
        ("2001-01-01T00:00:00+01:00", "est passée"),
    ):
        refused = world.client.post(
            "/api/v1/tokens", json={**body, "expires_at": expires}, headers=admin
        )
        assert refused.status_code == 400 and fragment in refused.json()["message"], refused.text
    issued = world.client.post(
        "/api/v1/tokens", json={**body, "expires_at": "2030-07-01T00:00:00+02:00"}, headers=admin
    )
    assert issued.status_code == 201, issued.text
    [row] = [
        t
        for t in world.client.get("/api/v1/tokens", headers=admin).json()
        if t["prefix"] == issued.json()["prefix"]
    ]
    assert row["label"] == "essai" and row["expires_at"].startswith("2030-06-30T22:00:00")
    assert row["revoked_at"] is None and row["last_used_at"] is None
    assert "token" not in row
