"""CSRF protection of every state-changing form, with ``asgi-csrf`` (a signed double-submit cookie).

Every unsafe request (not GET, HEAD, OPTIONS, TRACE) that carries cookies
must carry the token of the ``bibia_csrf`` cookie, as the form field
``csrftoken`` (the FIRST field of a multipart form) or the ``x-csrftoken``
header. Sign-in and sign-out are checked even without cookies (login CSRF).
Exempt: requests with an ``Authorization`` header, and the JSON API and the
MLflow gateway (``/api/``), which never read cookies.

Pages put :func:`hidden_field` first in each form. A demonstrator's forms are
rendered by the sandbox, which is hostile: it must never learn the session's
token (it could show one user's token to another, who could then forge that
user's requests from any site). So ``/demos/`` is exempt here and the proxy
checks a token of its own, :class:`DemoFormTokens`: signed with the same
secret (itsdangerous), valid only for one demonstrator and one web session,
handed to the sandbox (header ``X-Bibia-Csrf-Token``) for its form actions.
A leaked one lets a forger post to that one demonstrator as that user, which
the sandbox could make the user do anyway. A refused check is a French 403
page.
"""

from __future__ import annotations

import hashlib
import logging
from types import SimpleNamespace
from typing import Any

import asgi_csrf as _asgi_csrf
from asgi_csrf import Errors, asgi_csrf
from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from markupsafe import Markup, escape
from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header
from starlette.datastructures import MutableHeaders
from starlette.requests import Request as StarletteRequest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bibia.settings import Settings
from domain.errors import BibiaError, Forbidden

log = logging.getLogger("bibia.web")

CSRF_FIELD = (
    "csrftoken"  # asgi-csrf looks for this name in multipart bodies, whatever it is configured with
)
CSRF_COOKIE = "bibia_csrf"
CSRF_HEADER = "x-csrftoken"
ALWAYS_PROTECT = frozenset({"/connexion", "/connexion/oidc", "/deconnexion"})
REFUSED = (
    "requête refusée : elle ne vient pas d'une page de bibia (jeton anti-falsification absent ou invalide). "
    "Rechargez la page, puis recommencez."
)
_MARK = "bibia.csrf"  # per-request record, shared with the scope asgi-csrf hands on


class _MultipartForm:
    """The ``FormParser(…, FileClass=…)`` that asgi-csrf 0.11 calls, on today's python-multipart.

    python-multipart dropped ``FileClass`` (0.0.34 raises TypeError), so asgi-csrf
    cannot read a multipart body at all. This keeps its contract: every field
    is handed to ``on_field`` (``field_name``, ``value``), and a file part
    writes to ``FileClass``, whose ``write`` raises when a file comes before
    the token. Nothing is buffered but the fields before the token.
    """

    def __init__(
        self,
        content_type: str,
        on_field: Any,
        on_end: Any,
        *,
        boundary: bytes,
        FileClass: Any,  # noqa: N803 - python-multipart's name
    ) -> None:
        self._on_field = on_field
        self._file_class = FileClass
        self._headers: dict[bytes, bytes] = {}
        self._header: list[bytes] = [b"", b""]
        self._field: tuple[bytes, bytearray] | None = None
        self._file: Any = None
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._part_begin,
                "on_header_field": lambda data, start, end: self._extend(0, data[start:end]),
                "on_header_value": lambda data, start, end: self._extend(1, data[start:end]),
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
            },
        )

    def write(self, data: bytes) -> int:
        return self._parser.write(data)

    def _extend(self, index: int, chunk: bytes) -> None:
        self._header[index] += chunk

    def _part_begin(self) -> None:
        self._headers, self._field, self._file = {}, None, None

    def _header_end(self) -> None:
        name, value = self._header
        self._headers[name.lower()] = value.strip(b" \t")
        self._header = [b"", b""]

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition"))
        name, filename = options.get(b"name", b""), options.get(b"filename")
        if filename is not None:
            self._file = self._file_class(filename, name, {})
        else:
            self._field = (name, bytearray())

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._file.write(data[start:end])
        elif self._field is not None:
            self._field[1].extend(data[start:end])

    def _part_end(self) -> None:
        if self._file is not None:
            self._file.write(b"")  # an empty file before the token is still a file before the token
        elif self._field is not None:
            self._on_field(SimpleNamespace(field_name=self._field[0], value=bytes(self._field[1])))


_asgi_csrf.FormParser = _MultipartForm  # the one place asgi-csrf is used; see _MultipartForm


class DemoFormTokens:
    """Form tokens for one demonstrator and one web session (see the module docstring).

    Args:
        secret: the service's signing secret (``Settings.signing_secret()``).
        max_age_s: how long a token stays valid (a web session's lifetime).
    """

    PARAM = "csrftoken"  # the query parameter of a demonstrator's form action

    def __init__(self, secret: str, max_age_s: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="bibia.demo-form")
        self._max_age = max_age_s

    @staticmethod
    def _session(cookie: str) -> str:
        return hashlib.sha256(cookie.encode()).hexdigest()[:32]

    def issue(self, session_cookie: str, demo_id: str) -> str:
        return self._serializer.dumps([demo_id, self._session(session_cookie)])

    def valid(self, token: str | None, session_cookie: str | None, demo_id: str) -> bool:
        """Whether ``token`` was issued for this demonstrator and this session, and has not expired."""
        if not token or not session_cookie:
            return False
        try:
            payload = self._serializer.loads(token, max_age=self._max_age)
        except BadSignature:  # expired tokens raise SignatureExpired, a BadSignature
            return False
        return bool(payload == [demo_id, self._session(session_cookie)])


def token_for(request: Request) -> str:
    """The CSRF token to put in a form of this response (the ``bibia_csrf`` cookie is set if new)."""
    token: str = request.scope["csrftoken"]()
    return token


def hidden_field(request: Request) -> Markup:
    """``<input type="hidden" name="csrftoken" value="…">``: the first field of every POST form."""
    return Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(token_for(request))}">')


def _exempt(scope: Scope) -> bool:
    path = scope.get("path", "")
    if path.startswith("/api/"):
        return True
    if path.startswith(
        "/demos/"
    ):  # the proxy checks its own per-demonstrator token (DemoFormTokens)
        return True
    return any(name == b"authorization" for name, _ in scope.get("headers", []))


async def _refuse(scope: Scope, send: Send, reason: Errors | None) -> None:
    from bibia.errors import (
        error_response,  # it imports the web layer late, as this module is part of it
    )

    log.info(
        "CSRF check refused %s %s: %s",
        scope.get("method"),
        scope.get("path"),
        getattr(reason, "name", reason),
    )
    response = error_response(StarletteRequest(scope), Forbidden(REFUSED), page=True)

    async def nothing() -> Message:
        return {"type": "http.disconnect"}

    await response(scope, nothing, send)


class CsrfProtect:
    """ASGI middleware: asgi-csrf around the app, with bibia's cookie attributes and French refusals.

    asgi-csrf's own body parsing may raise on a malformed form (a bad multipart
    boundary, invalid UTF-8): any error before the app is reached is a refusal,
    not a 500. Errors of the body guards (size, read time) pass through.
    """

    def __init__(self, app: ASGIApp, settings: Settings, secret: str) -> None:
        self.app = app
        self.settings = settings
        self.protected = asgi_csrf(
            self._reached,
            cookie_name=CSRF_COOKIE,
            http_header=CSRF_HEADER,
            signing_secret=secret,
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
