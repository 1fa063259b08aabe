"""What the browser tests share: Debian's Chromium, axe-core, page widths and screenshots.

axe-core comes from the npm registry (``make install`` runs ``npm ci`` on the
repository's package.json), never from a file copied by hand. It is evaluated
in the page through Playwright (the DevTools protocol is not bound by the
page's Content-Security-Policy, which forbids inline scripts).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, Literal

from tests.conftest import ROOT, free_port, need

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "test-outputs" / "screenshots"
WIDTHS = (1280, 320)


@cache
def _axe_source() -> str:
    need(AXE.exists(), f"axe-core is missing at {AXE} (make install runs npm ci)")
    return AXE.read_text(encoding="utf-8")


def axe_violations(
    page: Any, impacts: Iterable[str] = ("serious", "critical")
) -> list[dict[str, Any]]:
    """The axe-core violations of the page as it is now, of the given impacts (WCAG 2.x A and AA rules).

    Each item: ``id``, ``impact``, ``help`` and the ``targets`` (CSS selectors) of the failing nodes.
    """
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(_axe_source())
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {
                runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']},
                resultTypes: ['violations'],
            });
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.map(n => n.target.join(' ')).slice(0, 5),
            }));
        }"""
    )
    wanted = set(impacts)
    return [v for v in result if v["impact"] in wanted]


def describe(violations: list[dict[str, Any]]) -> str:
    """A readable assertion message."""
    return json.dumps(violations, ensure_ascii=False, indent=1)


def page_width(page: Any) -> int:
    """The width the page's content needs (``scrollWidth`` of the document), in CSS pixels."""
    width: int = page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body ? document.body.scrollWidth : 0)"
    )
    return width


def screenshot(page: Any, name: str) -> Path:
    """A full-page screenshot in test-outputs/screenshots/ (not committed), named after ``name``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name).strip('-')}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Any, token: str, next_path: str) -> None:
    """Sign in through the form « Jeton d'accès » of ``/connexion``; wait for ``next_path``."""
    page.goto(f"/connexion?next={next_path}")
    page.get_by_label("Jeton d'accès").fill(token)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"**{next_path}")


@contextmanager
def launched_chromium() -> Iterator[Any]:
    """Debian's Chromium launched headless by Playwright (skips the test where it is missing)."""
    need(CHROMIUM.exists(), f"Chromium is missing at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@contextmanager
def served_over_http(
    app: Any, name: str, *, lifespan: Literal["auto", "on", "off"] = "off"
) -> Iterator[str]:
    """``app`` served over real HTTP by uvicorn in a thread named ``name``; yields its base URL.

    ``lifespan="off"`` where a world's client already runs the app's lifespan.
    """
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan=lifespan, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
