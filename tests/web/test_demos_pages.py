"""Demonstrators managed from the web pages: « Mes démonstrateurs », launch or reuse, extend, stop, quota.

The real service on the fake runner (:mod:`tests.demos_fast.conftest`): its
sandboxes serve on real Unix sockets, so launches, the façade's rules and
the database are the product's; a browser is a TestClient signed in through
the login form, posting forms with their CSRF token.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import zoneinfo
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.backends.conftest import PostgresServer, require_postgres
from tests.backends.conftest import postgres_server as _postgres_server
from tests.conftest import World
from tests.demos_fast import conftest as fast
from tests.demos_fast.conftest import add_row, fake_world, settle
from tests.web.webdata import csrf_token, sign_in

MODEL = "double-x"
TITLE = "Modèle d'essai : le double de x"
LAUNCH = f"/modeles/{MODEL}/demonstrateur"
PARIS = zoneinfo.ZoneInfo("Europe/Paris")

# the fast demonstrator tests' fixtures: a short directory (Unix sockets), the small "ok" model
short_tmp = fast.short_tmp
fast_tmp = fast.fast_tmp
ok_model = fast.ok_model
postgres_server = _postgres_server


@pytest.fixture
def world(fast_tmp: Path, ok_model: Path) -> Iterator[World]:
    with fake_world(fast_tmp, ok_model) as w:
        yield w


def browser(world: World, role: str = "member") -> TestClient:
    client = TestClient(world.app)
    response = sign_in(client, world.tokens[role])
    assert response.status_code == 303, response.text
    return client


def post(client: TestClient, path: str, data: dict[str, str] | None = None, page: str = "/"):
    """A form of bibia's pages: with the CSRF token read from ``page``."""
    return client.post(
        path,
        data={"csrftoken": csrf_token(client, page), **(data or {})},
        follow_redirects=False,
    )


def launch(client: TestClient, **extra: str) -> str:
    """Launch from the model page's form; the demonstrator page it redirects to."""
    response = post(client, LAUNCH, {"version": "alias:production", **extra}, f"/modeles/{MODEL}")
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


def demo_id(location: str) -> str:
    found = re.fullmatch(r"/demonstrateurs/([0-9a-f]{16})(\?deja=1)?", location)
    assert found, location
    return found.group(1)


def api_state(world: World, ident: str) -> dict:
    response = world.client.get(f"/api/v1/demos/{ident}", headers=world.headers("admin"))
    assert response.status_code == 200, response.text
    return dict(response.json())


def text(html: str) -> str:
    """The page's text, tags dropped and spaces collapsed (entities kept as Jinja escapes them)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'")


def paris_clock(value: dt.datetime) -> str:
    local = value.astimezone(PARIS)
    return f"{local.hour} h {local.minute:02d}"


def test_mes_demonstrateurs_asks_to_sign_in(world: World) -> None:
    anonymous = TestClient(world.app)
    for path in ("/mes-demonstrateurs", "/demonstrateurs/0123456789abcdef"):
        response = anonymous.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == f"/connexion?next={path}"
    assert anonymous.get("/demonstrateurs/0123456789abcdef/etat").status_code == 401
    empty = browser(world).get("/mes-demonstrateurs")
    assert empty.status_code == 200
    assert "Aucun démonstrateur ne tourne pour votre collectivité" in text(empty.text)
    assert 'href="/mes-demonstrateurs" aria-current="page"' in empty.text  # the nav link
    assert "Mes démonstrateurs" not in anonymous.get("/").text


def test_launch_then_list_extend_and_stop_from_mes_demonstrateurs(world: World) -> None:
    client = browser(world)
    ident = demo_id(launch(client))
    settle(world)
    ready = client.get(f"/demonstrateurs/{ident}")
    page = text(ready.text)
    assert "Le démonstrateur est prêt." in page and f'href="/demos/{ident}/"' in ready.text
    expires = dt.datetime.fromisoformat(api_state(world, ident)["expires_at"])
    assert f"jusqu'à {paris_clock(expires)} (heure de Paris), dans 29 min" in page or (
        f"jusqu'à {paris_clock(expires)} (heure de Paris), dans 30 min" in page
    )
    assert "UTC" not in page and "<script" not in ready.text  # no script once it is ready
    assert "script-src 'none'" in ready.headers["content-security-policy"]
    assert f'href="/modeles/{MODEL}"' in ready.text  # the way back to the model

    listing = client.get("/mes-demonstrateurs")
    page = text(listing.text)
    assert TITLE in page and "version 1" in page and "Lancé par agent" in page
    assert "Prêt" in page and f"{paris_clock(expires)} (heure de Paris)" in page
    assert f'action="/demonstrateurs/{ident}/prolonger"' in listing.text
    assert f'action="/demonstrateurs/{ident}/arreter"' in listing.text
    assert listing.text.count('name="csrftoken"') >= 3  # sign-out, extend, stop

    extended = post(client, f"/demonstrateurs/{ident}/prolonger", page="/mes-demonstrateurs")
    assert extended.status_code == 303
    assert extended.headers["location"] == "/mes-demonstrateurs?fait=prolonge"
    later = dt.datetime.fromisoformat(api_state(world, ident)["expires_at"])
    assert later == expires + dt.timedelta(minutes=world.services.settings.demo_ttl_minutes)
    assert "Le démonstrateur est prolongé." in client.get(extended.headers["location"]).text

    # up to the maximum time to live (4 h), then a French refusal on the page
    for _ in range(10):
        extended = post(client, f"/demonstrateurs/{ident}/prolonger", page="/mes-demonstrateurs")
        if extended.status_code != 303:
            break
    assert extended.status_code == 409
    assert "a atteint sa durée de vie maximale (4 h)" in text(extended.text)
    assert 'role="alert"' in extended.text and "Mes démonstrateurs" in extended.text
    created = dt.datetime.fromisoformat(api_state(world, ident)["created_at"])
    assert dt.datetime.fromisoformat(
        api_state(world, ident)["expires_at"]
    ) == created + dt.timedelta(minutes=world.services.settings.demo_max_ttl_minutes)
    assert (
        'action="/demonstrateurs/' + ident + '/prolonger"'
        not in client.get("/mes-demonstrateurs").text
    )  # no « Prolonger » past the maximum

    stopped = post(client, f"/demonstrateurs/{ident}/arreter", page="/mes-demonstrateurs")
    assert stopped.status_code == 303
    assert api_state(world, ident)["state"] == "stopped"
    listing = client.get(stopped.headers["location"])
    page = text(listing.text)
    assert "Le démonstrateur est arrêté." in page
    assert "Aucun démonstrateur ne tourne" in page  # nothing live
    assert "Terminés ces dernières 24 heures" in page and "Arrêté" in page
    assert f'action="/demonstrateurs/{ident}/arreter"' not in listing.text


def test_lancer_twice_opens_the_running_one_unless_asked_for_another(world: World) -> None:
    client = browser(world)
    first = demo_id(launch(client))
    second = launch(client)
    assert second == f"/demonstrateurs/{first}?deja=1"
    page = client.get(second)
    assert (
        "Un démonstrateur de cette version tourne déjà pour votre collectivité ; le voici."
        in text(page.text)
    )
    assert 'name="nouveau" value="1"' in page.text and "En lancer un autre" in page.text
    model_page = client.get(f"/modeles/{MODEL}").text
    assert "Ouvrir le démonstrateur en cours" in model_page
    assert f'href="/demonstrateurs/{first}"' in model_page

    another = demo_id(launch(client, nouveau="1"))
    assert another != first
    settle(world)
    assert {
        d["id"] for d in world.client.get("/api/v1/demos", headers=world.headers("member")).json()
    } == {
        first,
        another,
    }
    # a colleague of the same organisation is handed the running one too
    colleague = browser(world, "expert")
    assert demo_id(launch(colleague)) in {first, another}


def launches_at_once(world: World, count: int = 8) -> None:
    """``count`` launches of the same version released together: one insert, the others reuse it."""
    from bibia.auth import authenticate
    from registry.refs import ModelRef

    with world.services.db.session() as session:
        caller = authenticate(session, world.tokens["member"])
    manager = world.app.state.demos
    gate = threading.Barrier(count)
    results: list[tuple[str, bool]] = []
    errors: list[BaseException] = []

    def one() -> None:
        gate.wait()
        try:
            view, reused = manager.launch_or_reuse(caller, ModelRef(name=MODEL, alias="production"))
            results.append((view.id, reused))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    settle(world)
    assert not errors, errors
    assert len({ident for ident, _ in results}) == 1, results
    assert sorted(reused for _, reused in results) == [False] + [True] * (count - 1)
    live = world.client.get("/api/v1/demos", headers=world.headers("member")).json()
    assert len(live) == 1


def test_launches_at_once_start_one_demonstrator(world: World) -> None:
    """Whatever the interleaving (SQLite: one writer at a time, from the organisation row's update)."""
    launches_at_once(world)


@pytest.mark.postgres
def test_launches_at_once_start_one_demonstrator_on_postgresql(
    fast_tmp: Path, ok_model: Path, postgres_server: PostgresServer
) -> None:
    """The same on PostgreSQL, where the organisation's row lock makes the second launch wait."""
    require_postgres(postgres_server)
    url = postgres_server.create_database("bibia")
    with fake_world(fast_tmp, ok_model, database_url=url) as world:
        launches_at_once(world)


def test_quota_page_lists_the_demonstrators_to_stop(fast_tmp: Path, ok_model: Path) -> None:
    with fake_world(fast_tmp, ok_model, demo_quota_per_org=2) as world:
        client = browser(world)
        first = demo_id(launch(client))
        second = demo_id(launch(client, nouveau="1"))
        settle(world)
        refused = post(
            client, LAUNCH, {"version": "alias:production", "nouveau": "1"}, f"/modeles/{MODEL}"
        )
        assert refused.status_code == 429
        page = text(refused.text)
        assert "Votre collectivité a déjà 2 démonstrateurs en cours, le maximum." in page
        for ident in (first, second):
            assert f'action="/demonstrateurs/{ident}/arreter"' in refused.text
        assert 'href="/mes-demonstrateurs"' in refused.text
        assert "DELETE" not in page and "bibia demo" not in page and "/api/" not in page
        # the API keeps its technical message
        api = world.client.post(
            "/api/v1/demos", json={"model": MODEL}, headers=world.headers("member")
        )
        assert api.status_code == 429 and "DELETE /api/v1/demos" in api.json()["message"]

        stopped = post(client, f"/demonstrateurs/{first}/arreter", page="/mes-demonstrateurs")
        assert stopped.status_code == 303
        third = demo_id(launch(client, nouveau="1"))
        assert third not in (first, second)
        settle(world)


def test_forms_need_their_csrf_token(world: World) -> None:
    client = browser(world)
    ident = demo_id(launch(client))
    settle(world)
    for action in ("arreter", "prolonger"):
        refused = client.post(f"/demonstrateurs/{ident}/{action}", follow_redirects=False)
        assert refused.status_code == 403, action
    refused = client.post(LAUNCH, data={"version": "alias:production", "nouveau": "1"})
    assert refused.status_code == 403
    assert api_state(world, ident)["state"] == "ready"
    assert len(world.client.get("/api/v1/demos", headers=world.headers("member")).json()) == 1


def test_another_organisation_neither_sees_nor_stops_it(world: World) -> None:
    nantes = browser(world)
    ident = demo_id(launch(nantes))
    settle(world)
    lille = browser(world, "other_expert")
    listing = text(lille.get("/mes-demonstrateurs").text)
    assert TITLE not in listing and "Aucun démonstrateur ne tourne" in listing
    for action in ("arreter", "prolonger"):
        response = post(lille, f"/demonstrateurs/{ident}/{action}", page="/mes-demonstrateurs")
        assert response.status_code == 404, action
        assert "démonstrateur introuvable" in response.text.lower()
    assert lille.get(f"/demonstrateurs/{ident}").status_code == 404
    assert lille.get(f"/demonstrateurs/{ident}/etat").status_code == 404
    assert "Ouvrir le démonstrateur en cours" not in lille.get(f"/modeles/{MODEL}").text
    # Lille's « Lancer » starts its own: a running demonstrator is reused within its organisation only
    assert demo_id(launch(lille)) != ident
    settle(world)
    assert api_state(world, ident)["state"] == "ready"


STATES = {
    "pending": ("En attente", "Démarrage en cours (en attente d'un bac à sable)."),
    "starting": ("Démarrage en cours", "Démarrage en cours (lancement du bac à sable)."),
    "ready": ("Prêt", "Le démonstrateur est prêt."),
    "stopped": ("Arrêté", "Ce démonstrateur est arrêté."),
    "expired": ("Expiré", "Ce démonstrateur a expiré (sa durée de vie est écoulée)."),
    "failed": ("En échec", "Ce démonstrateur n'a pas pu démarrer ou s'est arrêté sur une erreur."),
}


def test_states_in_french_with_an_alert_only_for_a_failure(world: World) -> None:
    from bibia.db.models import DemoSession

    now = dt.datetime.now(dt.UTC)
    ids = {state: add_row(world, state, now) for state in STATES}
    with world.services.db.session() as session:
        session.get(DemoSession, ids["failed"]).error = "le modèle n'a pas pu être chargé"
    client = browser(world)
    for state, (label, message) in STATES.items():
        response = client.get(f"/demonstrateurs/{ids[state]}")
        assert response.status_code == 200, state
        page = text(response.text)
        assert message in page, state
        assert "None" not in page and f"état : {state}" not in page, state
        assert ('role="alert"' in response.text) == (state == "failed"), state
        if state in ("stopped", "expired"):
            assert 'class="alerte alerte-info"' in response.text
            assert "Revenir au modèle pour en lancer un autre" in page
        if state == "failed":
            assert "Cause : le modèle n'a pas pu être chargé." in page
        waiting = state in ("pending", "starting")
        assert ("http-equiv" in response.text) is False
        assert ('src="/static/attente.js"' in response.text) == waiting, state
        if waiting:
            nonce = re.search(
                r"script-src 'nonce-([^']+)'", response.headers["content-security-policy"]
            )
            assert nonce, response.headers["content-security-policy"]
            assert (
                f'<script src="/static/attente.js" nonce="{nonce.group(1)}" defer>' in response.text
            )
            assert 'role="status"' in response.text and ">Actualiser<" in response.text
        else:
            assert "script-src 'none'" in response.headers["content-security-policy"]
        state_json = client.get(f"/demonstrateurs/{ids[state]}/etat").json()
        assert state_json["label"] == label and state_json["message"].startswith(message)
        assert state_json["waiting"] is waiting and state_json["ready"] is (state == "ready")
        assert (state_json["url"] is not None) is (state == "ready")
    listing = text(client.get("/mes-demonstrateurs").text)
    for label, _ in STATES.values():
        assert label in listing
    assert "Lancé par un compte supprimé depuis" in listing  # rows written without a user
    expires = now + dt.timedelta(minutes=90)
    assert f"jusqu'à {paris_clock(expires)} (heure de Paris), dans 1 h 29" in listing or (
        f"jusqu'à {paris_clock(expires)} (heure de Paris), dans 1 h 30" in listing
    )


def test_the_script_is_served_by_bibia(world: World) -> None:
    response = TestClient(world.app).get("/static/attente.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(
        ("text/javascript", "application/javascript")
    )
    # it reads its address and its time limit from the page, and says when it gives up
    assert 'getAttribute("data-etat")' in response.text
    assert 'getAttribute("data-limite")' in response.text
    assert "Le démarrage prend plus de temps que prévu" in response.text
