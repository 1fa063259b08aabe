"""The web pages in-process: tier filtering of every page, sessions, errors, the chart route, demonstrators."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from fastapi.testclient import TestClient

from bibia.db.models import DemoSession, Organisation
from tests.conftest import World
from tests.web.webdata import (
    EXPERT,
    MODEL,
    OTHER,
    PROJECT_SLUG,
    RESTRICTED,
    csrf_token,
    sign_in,
    tiny_png,
)

HTML = {"accept": "text/html"}
PAGES = [
    "/",
    "/catalogue",
    "/catalogue?q=eau",
    "/catalogue?theme=transition-ecologique&owner=Nantes+M%C3%A9tropole",
    f"/modeles/{MODEL}",
    f"/modeles/{OTHER}",
    "/projets",
    "/projets?q=eau",
    f"/projets/{PROJECT_SLUG}",
    "/connexion",
    "/modeles/inconnu",
]


def forms(value: str) -> set[str]:
    """``value`` as it may appear in a page: raw, or HTML-escaped."""
    escaped = html.escape(value, quote=False)
    return {value, escaped, html.escape(value), escaped.replace("'", "&#39;").replace('"', "&#34;")}


def shows(page: str, value: str) -> bool:
    return any(form in page for form in forms(value))


def get(world: World, path: str, role: str | None = None):
    return world.client.get(path, headers={**HTML, **world.headers(role)}, follow_redirects=False)


def login(client: TestClient, world: World, role: str, next_url: str = "/"):
    return sign_in(client, world.tokens[role], next_url)


@pytest.mark.parametrize("path", PAGES)
def test_no_restricted_value_on_any_anonymous_page(site: World, path: str) -> None:
    response = get(site, path)
    assert response.status_code in (200, 404), response.text[:500]
    for value in RESTRICTED + EXPERT:
        assert not shows(response.text, value), f"{path}: an anonymous visitor sees {value!r}"


@pytest.mark.parametrize("path", PAGES)
def test_member_pages_hold_no_expert_value(site: World, path: str) -> None:
    response = get(site, path, "member")
    assert response.status_code in (200, 404)
    for value in EXPERT:
        assert not shows(response.text, value), f"{path}: a member sees {value!r}"


def test_model_page_by_tier(site: World) -> None:
    anonymous = get(site, f"/modeles/{MODEL}").text
    assert "Accès réservé" in anonymous and "Lancer le démonstrateur" not in anonymous
    assert "Récupérer le modèle avec MLflow" not in anonymous

    member = get(site, f"/modeles/{MODEL}", "member").text
    for value in RESTRICTED[:4]:
        assert shows(member, value), value
    assert "Lancer le démonstrateur" in member and "Accès réservé" not in member
    assert "experte@nantes-metropole" in member  # who registered the version: restricted column

    expert = get(site, f"/modeles/{MODEL}", "expert").text
    for value in EXPERT:
        assert shows(expert, value), value
    assert (
        "MLFLOW_TRACKING_TOKEN" in expert
        and 'mlflow.pyfunc.load_model("models:/eau-batiments@production")' in expert
    )


def test_project_page_by_tier(site: World) -> None:
    anonymous = get(site, f"/projets/{PROJECT_SLUG}").text
    assert "Suivi de la consommation d&#39;eau des bâtiments" in anonymous
    assert f'href="/modeles/{MODEL}"' in anonymous and "Accès réservé" in anonymous
    member = get(site, f"/projets/{PROJECT_SLUG}", "member").text
    for value in RESTRICTED[4:]:
        assert shows(member, value), value


def test_metrics_side_by_side_with_the_baseline(site: World) -> None:
    page = get(site, f"/modeles/{MODEL}").text
    row = re.search(r"<tr>\s*<th scope=\"row\">erreur absolue moyenne.*?</tr>", page, re.S)
    assert row, "the metrics table has a row for the card's metric"
    cells = re.findall(r'<td class="nombre"[^>]*>([^<]*)</td>', row.group(0))
    assert cells == ["1,8", "2,9"]  # the model, then the baseline, in French notation
    assert "meilleur" in row.group(0)  # lower is better: 1.8 beats 2.9


def test_home_shows_figures_themes_recent_models_and_projects(site: World) -> None:
    page = get(site, "/").text
    figures = dict(
        (label, int(n))
        for n, label in re.findall(
            r'<span class="chiffre">(\d+)</span> <span class="chiffre-texte">(\w+)', page
        )
    )
    assert figures == {"modèles": 2, "projet": 1}
    assert (
        'href="/catalogue?theme=mobilites"' in page
        and 'href="/catalogue?theme=transition-ecologique"' in page
    )
    assert f'href="/modeles/{MODEL}"' in page and f'href="/modeles/{OTHER}"' in page
    assert f'href="/projets/{PROJECT_SLUG}"' in page
    assert '<input id="recherche" name="q"' in page


def test_catalogue_search_and_filters(site: World) -> None:
    def names(query: str) -> set[str]:
        page = get(site, f"/catalogue?{query}").text
        return set(re.findall(r'<h2 class="carte-titre"><a href="/modeles/([^"]+)"', page))

    assert names("") == {MODEL, OTHER}
    assert names("q=fuites") == {MODEL}
    assert names("theme=mobilites") == {OTHER}
    assert names("task=regression&status=experimentation") == {MODEL}
    assert names("owner=Lille") == set()
    page = get(site, "/catalogue?theme=inexistant&page=abc").text
    assert "thème « inexistant » inconnu : ce filtre est ignoré." in page
    assert names("theme=inexistant") == {MODEL, OTHER}


def test_every_page_has_the_security_headers_and_no_script(site: World) -> None:
    for path in PAGES:
        response = get(site, path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'none'" in csp and "frame-ancestors 'none'" in csp, path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "<script" not in response.text.lower(), path
        assert '<html lang="fr">' in response.text


def test_login_form_sets_the_session_cookie_and_shows_who_is_logged_in(
    site: World, browser: TestClient
) -> None:
    response = login(browser, site, "member", f"/modeles/{MODEL}")
    assert response.status_code == 303 and response.headers["location"] == f"/modeles/{MODEL}"
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("bibia_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert (
        site.tokens["member"] not in cookie
    )  # the cookie names a server-side session, not the token
    page = browser.get(f"/modeles/{MODEL}", headers=HTML).text  # the cookie, no header
    assert shows(page, RESTRICTED[0])
    assert (
        "<strong>agent</strong>" in page
        and "niveau membre" in page
        and 'action="/deconnexion"' in page
    )
    response = browser.post(
        "/deconnexion", data={"csrftoken": csrf_token(browser, f"/modeles/{MODEL}")}
    )
    assert response.status_code == 200 and "Vous êtes déconnecté" in response.text
    assert RESTRICTED[0] not in browser.get(f"/modeles/{MODEL}", headers=HTML).text


def test_login_errors_are_french_pages_and_next_stays_local(
    site: World, browser: TestClient
) -> None:
    response = sign_in(browser, "pas-un-jeton")
    assert (
        response.status_code == 401
        and "jeton mal formé" in response.text.lower()
        and 'id="token"' in response.text
    )
    empty = browser.post("/connexion", data={"csrftoken": csrf_token(browser)})
    assert empty.status_code == 401  # an empty form is a bad token, not a 422
    response = login(browser, site, "member", "//malveillant.example/piege")
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_a_revoked_session_falls_back_to_public(site: World, browser: TestClient) -> None:
    login(browser, site, "member")
    revoked = browser.cookies["bibia_session"]
    browser.post("/deconnexion", data={"csrftoken": csrf_token(browser, "/")})
    browser.cookies.set("bibia_session", revoked)  # a browser that kept the closed session's cookie
    response = browser.get(f"/modeles/{MODEL}", headers=HTML)
    assert response.status_code == 200 and "Votre session a expiré" in response.text
    assert RESTRICTED[0] not in response.text
    assert 'bibia_session=""' in response.headers["set-cookie"]


def test_errors_are_french_pages_for_browsers_and_json_for_the_api(site: World) -> None:
    response = get(site, "/modeles/inconnu")
    assert (
        response.status_code == 404
        and "Page introuvable" in response.text
        and "introuvable" in response.text
    )
    response = get(site, "/modeles/Nom Invalide!")
    assert response.status_code == 404 and "aucun modèle ne s&#39;appelle" in response.text.lower()
    response = get(site, "/projets/inconnu")
    assert response.status_code == 404 and "aucun projet « inconnu »" in response.text.lower()
    response = get(site, "/une/adresse/inconnue")
    assert (
        response.status_code == 404
        and "ne correspond à aucune page de bibia" in response.text.lower()
    )
    assert "traceback" not in response.text.lower()
    api = site.client.get("/api/v1/inconnu", headers=HTML)
    assert api.status_code == 404 and api.json()["error"] == "introuvable"
    assert "/api/v1/inconnu" in api.json()["message"] and "/docs" in api.json()["message"]
    assert (
        site.client.get("/une/adresse/inconnue")
        .headers["content-type"]
        .startswith("application/json")
    )


def test_the_chart_route_serves_the_evaluation_png_and_nothing_else(site: World) -> None:
    response = site.client.get(f"/modeles/{MODEL}/versions/1/evaluation.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.content == tiny_png()
    assert (
        f'src="/modeles/{MODEL}/versions/1/evaluation.png"' in get(site, f"/modeles/{MODEL}").text
    )
    assert (
        get(site, f"/modeles/{OTHER}/versions/1/evaluation.png").status_code == 404
    )  # no chart in that version
    assert 'class="graphique"' not in get(site, f"/modeles/{OTHER}").text
    for other in ("notes-privees.txt", "MLmodel", "..%2FMLmodel", "bibia/notes-privees.txt"):
        response = get(site, f"/modeles/{MODEL}/versions/1/{other}")
        assert response.status_code == 404 and "ne doit jamais" not in response.text
    assert get(site, f"/modeles/{MODEL}/versions/9/evaluation.png").status_code == 404


def test_launching_a_demonstrator_from_the_page(site: World, browser: TestClient) -> None:
    path = f"/modeles/{MODEL}/demonstrateur"
    response = browser.post(path, data={"version": "alias:production"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith(
        "/connexion?next="
    )
    login(browser, site, "member")
    foreign = browser.post(
        path, data={"version": "alias:production"}, headers={"origin": "https://ailleurs.example"}
    )
    assert (
        foreign.status_code == 403
        and "ne vient pas d&#39;une page de bibia" in foreign.text.lower()
    )
    token = csrf_token(browser, f"/modeles/{MODEL}")
    # this service has no runner: the member gets the manager's refusal as a French page
    response = browser.post(
        path,
        data={"csrftoken": token, "version": "alias:production"},
        headers={"origin": "http://testserver"},
    )
    assert response.status_code == 502 and "démonstrateurs sont désactivés" in response.text.lower()
    response = browser.post(path, data={"csrftoken": token, "version": "n'importe quoi"})
    assert response.status_code == 400 and "choisissez une version" in response.text.lower()


def _demo(world: World, demo_id: str, state: str) -> None:
    with world.services.db.session() as session:
        org = session.query(Organisation).filter_by(slug="nantes-metropole").one()
        session.add(
            DemoSession(
                id=demo_id,
                organisation_id=org.id,
                model_name=MODEL,
                model_version=1,
                state=state,
                runner="test",
                expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30),
            )
        )


def test_the_waiting_page_follows_the_start_without_a_meta_refresh(site: World) -> None:
    _demo(site, "00000000000000aa", "starting")
    _demo(site, "00000000000000bb", "ready")
    assert (
        get(site, "/demonstrateurs/00000000000000aa").status_code == 303
    )  # anonymous: log in first
    starting = get(site, "/demonstrateurs/00000000000000aa", "member")
    assert "http-equiv" not in starting.text and "Démarrage en cours" in starting.text
    assert (
        'role="status"' in starting.text and ">Actualiser<" in starting.text
    )  # works without script
    nonce = re.search(r"script-src 'nonce-([^']+)'", starting.headers["content-security-policy"])
    assert nonce and f'src="/static/attente.js" nonce="{nonce.group(1)}"' in starting.text
    ready = get(site, "/demonstrateurs/00000000000000bb", "member")
    assert "http-equiv" not in ready.text and 'href="/demos/00000000000000bb/"' in ready.text
    assert "<script" not in ready.text
    other_org = get(site, "/demonstrateurs/00000000000000bb", "other_expert")
    assert other_org.status_code in (403, 404) and "/demos/00000000000000bb/" not in other_org.text
