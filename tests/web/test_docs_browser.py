"""The API documentation in a real browser with the network cut off: it renders from bibia alone.

A real service (``bibia serve`` in a subprocess) on 127.0.0.1; Debian's
Chromium driven by Playwright. Every request whose host is not 127.0.0.1 is
aborted and recorded (``context.route``), so a page that needed a CDN or a
font host would stay blank and the test would name what it asked for.
Console errors (among them every Content-Security-Policy violation) and
page errors are collected too.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import LiveServer, cli, running_service
from tests.web.browser import axe_violations, describe, page_width, screenshot

pytestmark = pytest.mark.browser

USER = "experte-docs"

#: ReDoc 2.5.4 hard-codes the logo of its « API docs by Redocly » link to this CDN address (no
#: option turns it off). bibia's CSP (img-src 'self' data:) blocks it before any request is made
#: (the browser logs the block) and ReDoc drops the image when it fails: the one block expected.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@dataclass
class Watch:
    """What a page asked the outside world for, and what went wrong in it."""

    outside: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def assert_clean(self, known: tuple[str, ...] = ()) -> None:
        """Nothing left 127.0.0.1, nothing was blocked, no script failed (but for ``known`` CSP blocks)."""
        assert not self.outside, f"requests that left 127.0.0.1: {self.outside}"
        errors = [e for e in self.console_errors if not any(_csp_block(e, url) for url in known)]
        blocked = [e for e in errors if "Content Security Policy" in e or "net::" in e]
        assert not blocked, f"blocked resources: {blocked}"
        assert not errors, f"console errors: {errors}"
        assert not self.page_errors, f"script errors: {self.page_errors}"


def _csp_block(message: str, url: str) -> bool:
    return f"'{url}' violates the following Content Security Policy directive" in message


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    """The live service, and an expert's token (created with the real CLI)."""
    tmp = tmp_path_factory.mktemp("docs-browser")
    with running_service(tmp / "data", tmp / "server.log") as server:
        _ok(cli(server.data_dir, "org", "create", "lyon", "--name", "Lyon", "--siren", "216901231"))
        out = _ok(
            cli(
                server.data_dir,
                *("token", "create", "--org", "lyon", "--role", "expert", "--user", USER),
            )
        )
        yield server, out.strip().splitlines()[-1].strip()


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def offline(chromium: Any, service: tuple[LiveServer, str]) -> Iterator[tuple[Any, Watch]]:
    """A page whose every request to a host other than 127.0.0.1 is aborted and recorded."""
    watch = Watch()
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")

    def gate(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            watch.outside.append(route.request.url)
            route.abort()

    context.route("**/*", gate)
    page = context.new_page()
    page.on("console", lambda m: watch.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: watch.page_errors.append(str(e)))
    yield page, watch
    context.close()


def test_swagger_ui_renders_offline(
    offline: tuple[Any, Watch], service: tuple[LiveServer, str]
) -> None:
    page, watch = offline
    server, _ = service
    page.goto(f"{server.url}/docs")
    page.locator(".opblock").first.wait_for(state="visible")
    assert page.locator(".opblock").count() > 40
    assert page.title().startswith("Documentation de l'API")
    assert page.locator("h1.title").inner_text().startswith("bibia")
    # FastAPI's English defaults are gone: an operation's answers read French
    page.locator("#operations-service-healthz_healthz_get .opblock-summary-control").click()
    page.get_by_text("Réponse réussie").first.wait_for(state="visible")
    screenshot(page, "docs-swagger-1280")
    watch.assert_clean()


def test_swagger_ui_tries_an_operation_with_a_bearer_token(
    offline: tuple[Any, Watch], service: tuple[LiveServer, str]
) -> None:
    page, watch = offline
    server, token = service
    page.goto(f"{server.url}/docs")
    page.locator(".btn.authorize").first.click()
    dialog = page.locator(".auth-container").filter(has_text="jeton")
    dialog.locator("input").fill(token)
    dialog.locator("button.authorize").click()
    page.locator(".btn-done, .close-modal").first.click()

    operation = page.locator(".opblock").filter(has=page.locator('[data-path="/api/v1/me"]'))
    operation.locator(".opblock-summary-control").click()
    operation.locator(".try-out__btn").click()
    operation.locator(".execute").click()
    live = operation.locator(".live-responses-table tbody tr").first
    live.wait_for(state="visible")
    assert live.locator(".response-col_status").inner_text().strip() == "200"
    body = live.locator(".response-col_description").inner_text()
    assert USER in body and "expert" in body  # the token was sent: bibia knows who asks
    watch.assert_clean()


def test_redoc_renders_offline_and_searches(
    offline: tuple[Any, Watch], service: tuple[LiveServer, str]
) -> None:
    page, watch = offline
    server, _ = service
    page.goto(f"{server.url}/redoc")
    menu = page.locator(".menu-content")
    menu.locator("label").first.wait_for(state="visible")
    assert "Parcourir et rechercher le catalogue des modèles" in (menu.text_content() or "")
    assert page.locator("h1").filter(has_text="bibia").count() >= 1
    # the search index lives in a web worker made from a blob: (worker-src blob:)
    page.locator(".search-input").fill("jeton")
    page.locator("[data-role='search:results'] li").first.wait_for(state="visible")
    # the labels ReDoc lets one set are French
    page.get_by_text("Réponses").first.wait_for(state="attached")
    screenshot(page, "docs-redoc-1280")
    watch.assert_clean(known=(REDOC_LOGO,))


@pytest.mark.parametrize("width", [1280, 320])
def test_swagger_ui_has_no_serious_accessibility_violation(
    chromium: Any, service: tuple[LiveServer, str], width: int
) -> None:
    server, _ = service
    context = chromium.new_context(viewport={"width": width, "height": 900}, locale="fr-FR")
    page = context.new_page()
    try:
        page.goto(f"{server.url}/docs")
        page.locator(".opblock").first.wait_for(state="visible")
        violations = axe_violations(page)
        screenshot(page, f"docs-swagger-axe-{width}")
        assert not violations, describe(violations)
        assert page_width(page) <= width
    finally:
        context.close()


@pytest.mark.parametrize("width", [1280, 320])
def test_redoc_has_no_serious_accessibility_violation(
    chromium: Any, service: tuple[LiveServer, str], width: int
) -> None:
    server, _ = service
    context = chromium.new_context(viewport={"width": width, "height": 900}, locale="fr-FR")
    page = context.new_page()
    try:
        page.goto(f"{server.url}/redoc")
        page.locator(".api-content").first.wait_for(state="visible")
        violations = axe_violations(page)
        screenshot(page, f"docs-redoc-axe-{width}")
        assert not violations, describe(violations)
        assert page_width(page) <= width
    finally:
        context.close()


def test_without_the_assets_the_page_says_how_to_install_them(
    chromium: Any, tmp_path: Path
) -> None:
    with running_service(
        tmp_path / "data", tmp_path / "server.log", {"BIBIA_ASSETS_DIR": str(tmp_path / "vide")}
    ) as server:
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        try:
            response = page.goto(f"{server.url}/docs")
            assert response is not None and response.status == 503
            assert "make install" in page.locator("main").inner_text()
            assert not axe_violations(page), describe(axe_violations(page))
        finally:
            context.close()
