"""CSRF protection of every state-changing form, with ``asgi-csrf`` (a signed double-submit cookie).

Every unsafe request (not GET, HEAD, OPTIONS, TRACE) that carries cookies
must carry the token of the ``bibia_csrf`` cookie, as the form field
``csrftoken`` (the FIRST field of a multipart form) or the ``x-csrftoken``
header. Sign-in and sign-out are checked even without cookies (login CSRF).
Exempt: requests with an ``Authorization`` header, and the JSON API and the
MLflow gateway (``/api/``), which never read cookies.

Pages put :func:`hidden_field` first in each form; the demonstrator proxy
hands :func:`token_for` to the sandbox (header ``X-Bibia-Csrf-Token``) so
that its upload form carries the token as well. A refused check is a French
403 page.
"""

from __future__ import annotations

import logging
from typing import Any

from asgi_csrf import Errors, asgi_csrf
from fastapi import Request
from markupsafe import Markup, escape
from starlette.datastructures import MutableHeaders
from starlette.requests import Request as StarletteRequest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bibia.settings import Settings
from registry.errors import BibiaError

log = logging.getLogger("bibia.web")

CSRF_FIELD = "csrftoken"  # asgi-csrf looks for this name in multipart bodies, whatever it is configured with
CSRF_COOKIE = "bibia_csrf"
CSRF_HEADER = "x-csrftoken"
ALWAYS_PROTECT = frozenset({"/connexion", "/deconnexion"})
REFUSED = (
    "requête refusée : elle ne vient pas d'une page de bibia (jeton anti-falsification absent ou invalide). "
    "Rechargez la page, puis recommencez."
)
_MARK = "bibia.csrf"  # per-request record, shared with the scope asgi-csrf hands on


def token_for(request: Request) -> str:
    """The CSRF token to put in a form of this response (the ``bibia_csrf`` cookie is set if new)."""
    return request.scope["csrftoken"]()


def hidden_field(request: Request) -> Markup:
    """``<input type="hidden" name="csrftoken" value="…">``: the first field of every POST form."""
    return Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(token_for(request))}">')


def _exempt(scope: Scope) -> bool:
    if scope.get("path", "").startswith("/api/"):
        return True
    return any(name == b"authorization" for name, _ in scope.get("headers", []))


async def _refuse(scope: Scope, send: Send, reason: Errors | None) -> None:
    from bibia.web.render import error_page  # render imports the proxy, which imports the app's parts

    log.info("CSRF check refused %s %s: %s", scope.get("method"), scope.get("path"), getattr(reason, "name", reason))
    response = error_page(StarletteRequest(scope), 403, REFUSED)

    async def nothing() -> Message:
        return {"type": "http.disconnect"}

    await response(scope, nothing, send)


class CsrfProtect:
    """ASGI middleware: asgi-csrf around the app, with bibia's cookie attributes and French refusals.

    asgi-csrf's own body parsing may raise on a malformed form (a bad multipart
    boundary, invalid UTF-8): any error before the app is reached is a refusal,
    not a 500. Errors of the body guards (size, read time) pass through.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.protected = asgi_csrf(
            self._reached,
            cookie_name=CSRF_COOKIE,
            http_header=CSRF_HEADER,
            signing_secret=settings.signing_secret(),
            always_protect=set(ALWAYS_PROTECT),
            skip_if_scope=_exempt,
            cookie_samesite="Lax",
            send_csrf_failed=_refuse,
        )

    async def _reached(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[_MARK]["reached"] = True
        await self.app(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        mark: dict[str, Any] = {"reached": False, "started": False}
        scope = {**scope, _MARK: mark}
        secure = self.settings.cookies_secure(scope.get("scheme", "http"))

        async def hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                mark["started"] = True
                _harden_cookie(message, secure)
            await send(message)

        try:
            await self.protected(scope, receive, hardened)
        except BibiaError:
            raise
        except Exception:
            if mark["reached"] or mark["started"]:
                raise
            await _refuse(scope, send, None)


def _harden_cookie(message: Message, secure: bool) -> None:
    """asgi-csrf sets ``bibia_csrf`` with Path and SameSite: add HttpOnly, and Secure when due."""
    headers = MutableHeaders(scope=message)
    cookies = headers.getlist("set-cookie")
    if not any(c.startswith(f"{CSRF_COOKIE}=") for c in cookies):
        return
    del headers["set-cookie"]
    for cookie in cookies:
        if cookie.startswith(f"{CSRF_COOKIE}="):
            cookie += "; HttpOnly" + ("; Secure" if secure else "")
        headers.append("set-cookie", cookie)
