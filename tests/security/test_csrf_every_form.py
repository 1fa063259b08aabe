"""CSRF on every form, present and future: each state-changing page route refuses a signed-in
browser's request that lacks the form token.

The routes are enumerated from the app itself, so a page added tomorrow is checked without a
line here. The JSON API and the MLflow gateway (``/api/``) never read cookies, and a
demonstrator's forms (``/demos/``) carry the proxy's own token (tests in test_sessions_csrf.py);
everything else that is not GET, HEAD or OPTIONS must answer the French 403 of the CSRF check
before it does anything, whatever its path parameters are.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.conftest import World, make_world
from tests.test_tiers import app_routes
from tests.web.webdata import sign_in

SAFE = {"GET", "HEAD", "OPTIONS"}
REFUSED = "jeton anti-falsification"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    from bibia.settings import Settings

    tmp = tmp_path_factory.mktemp("csrf-every-form")
    return make_world(Settings(data_dir=tmp / "data", seed_on_start=False, runner="none"))


def page_routes(world: World) -> list[tuple[str, str]]:
    return sorted(
        (method, path)
        for method, path in app_routes(world.app)
        if method not in SAFE and not path.startswith(("/api/", "/demos/"))
    )


def concrete(path: str) -> str:
    """The route's path with each parameter given a plausible value (the check comes first)."""
    return re.sub(r"\{[^}:]+(?::path)?\}", "x1", path)


def test_the_app_has_page_forms_to_check(world: World) -> None:
    routes = page_routes(world)
    assert ("POST", "/connexion") in routes and ("POST", "/deconnexion") in routes
    assert len(routes) > 15, routes  # sign-in, demonstrators, evaluations, publication, admin…


@pytest.mark.parametrize("role", ["member", "expert", "admin"])
def test_every_page_form_refuses_a_signed_in_browser_without_the_token(
    world: World, role: str
) -> None:
    with world.client:
        browser = TestClient(world.app)
        answer = sign_in(browser, world.tokens[role])
        assert answer.status_code == 303, answer.text
        assert browser.cookies.get("bibia_session")
        failures = []
        for method, path in page_routes(world):
            url = concrete(path)
            for body in ({"data": {"x": "1"}}, {"files": {"file": ("a.csv", b"a\n1\n")}}):
                response = browser.request(
                    method, url, headers={"accept": "text/html"}, follow_redirects=False, **body
                )
                if response.status_code != 403 or REFUSED not in response.text:
                    failures.append(f"{method} {url}: {response.status_code} {response.text[:120]}")
        assert not failures, "\n".join(failures)
        # nothing was done in the browser's name: not even signing it out
        still = browser.get("/compte/sessions", headers={"accept": "text/html"})
        assert still.status_code == 200 and "Mes sessions" in still.text
