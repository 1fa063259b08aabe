"""The service's ASGI guards: security headers, body read time and size, and the brake on failed sign-ins.

``create_app`` stacks them (outermost first): :class:`SecurityHeaders`,
:class:`BodyReadTimeout`, :class:`FailedAuthBrake`, :class:`BodyLimit`, then
the CSRF check (:mod:`bibia.web.csrf`), so that every body the CSRF check or
the app reads is already bounded in time and size, and the caller is known
before a body is read beyond the anonymous limit.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bibia import policy
from bibia.auth import ANONYMOUS, Caller, watching_failures
from bibia.deps import COOKIE, bearer_token, caller_from_credentials
from bibia.errors import error_response
from bibia.services import Services
from bibia.settings import Settings
from domain.errors import BibiaError, BodyTimeout, PayloadTooLarge, TooManyFailures, Unauthorized

SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
# a model version with its card (API, or the publication pages' forms)
MODEL_UPLOAD = re.compile(r"/api/v1/models/[^/]+/versions|/publier|/modeles/[^/]+/publier")
# a benchmark, or a member's labelled CSV (API, or the model page's form)
EVALUATION_UPLOAD = re.compile(r"/api/v1/(?:benchmarks|evaluations)|/modeles/[^/]+/evaluer")
DIGITS = re.compile(r"[0-9]{1,20}")


class SecurityHeaders:
    """``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: same-origin`` on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)


async def run_guarded(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    check: Callable[[Message], BibiaError | None],
    wrap: Callable[[Receive], Receive] | None = None,
) -> None:
    """Run ``app`` with a ``receive`` that ``check`` may refuse; a refusal replaces the app's answer.

    Body parsers turn errors raised while reading into vague answers of their
    own (FastAPI answers 400): once ``check`` refused a message, whatever the
    app answers is dropped and the refusal is sent instead, unless the answer
    had already started.
    """
    tripped: list[BibiaError] = []
    started = False
    source = wrap(receive) if wrap else receive

    async def checked() -> Message:
        message = await source()
        error = check(message)
        if error is not None:
            tripped.append(error)
            raise error
        return message

    async def guarded(message: Message) -> None:
        nonlocal started
        if tripped and not started:
            return
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await app(scope, checked, guarded)
    except Exception:
        if not tripped or started:
            raise
    if tripped and not started:
        await error_response(Request(scope), tripped[0])(scope, receive, send)


class BodyReadTimeout:
    """Answer 408 when a request body stalls longer than ``body_timeout_s`` between two chunks.

    Only while the body is incomplete: once it is whole, ``receive`` waits for
    the client's disconnect (streamed responses listen for it) without a limit.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.timeout = settings.body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        complete = False
        stalled = BodyTimeout(f"envoi interrompu : aucune donnée reçue pendant {self.timeout:g} s")

        def timed(inner: Receive) -> Receive:
            async def receive_within() -> Message:
                nonlocal complete
                if complete:
                    return await inner()
                try:
                    message = await asyncio.wait_for(inner(), self.timeout)
                except TimeoutError:
                    return {"type": "bibia.stalled"}
                complete = message["type"] != "http.request" or not message.get("more_body", False)
                return message

            return receive_within

        def check(message: Message) -> BibiaError | None:
            return stalled if message["type"] == "bibia.stalled" else None

        await run_guarded(self.app, scope, receive, send, check, wrap=timed)


class PerClientWindow:
    """At most ``limit`` events per client in a moving window of ``window_s`` seconds.

    In memory (``limits``), per replica: N replicas let N times the limit through at most.
    """

    def __init__(self, limit: int, window_s: int) -> None:
        self.item = RateLimitItemPerSecond(limit, window_s)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def wait(self, client: str) -> int | None:
        """None while ``client`` has room for one more event, else the seconds until it has."""
        if self.limiter.test(self.item, client):
            return None
        reset = self.limiter.get_window_stats(self.item, client).reset_time
        return max(1, math.ceil(reset - time.time()))

    def hit(self, client: str) -> None:
        """Count one event of ``client``."""
        self.limiter.hit(self.item, client)

    def take(self, client: str) -> int | None:
        """Count one event of ``client`` when it fits (None), else the seconds until one would."""
        if self.limiter.hit(self.item, client):
            return None
        return self.wait(client) or 1


class FailedAuthBrake:
    """Rate-limit FAILED authentication per client: past the limit, every request of that client gets 429.

    A failure is presented credentials that were refused (a bad, unknown,
    expired or revoked bearer token or session cookie, a failed sign-in),
    never a request without credentials: the code that refuses them notes it
    (:func:`bibia.auth.refused`) and one failure per request is counted here.
    The client is the socket peer, which uvicorn replaces with the forwarded
    address only when the peer is a trusted proxy (``trusted_proxies``).

    The window is a moving window (``limits``) in memory: each replica counts
    its own failures, so N replicas let N times the limit through at most.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.failures = PerClientWindow(settings.auth_failure_limit, settings.auth_failure_window_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("inconnu", 0))[0]
        wait = self.failures.wait(client)
        if wait is not None:
            await self._refuse(scope, receive, send, wait)
            return
        with watching_failures() as noted:
            try:
                await self.app(scope, receive, send)
            finally:
                if noted:
                    self.failures.hit(client)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, wait: int) -> None:
        error = TooManyFailures(
            f"trop de tentatives d'authentification refusées depuis votre adresse : réessayez dans {wait} s"
        )
        response = error_response(
            Request(scope), error, headers={"Retry-After": str(wait)}, title="Trop de tentatives"
        )
        await response(scope, receive, send)


class BodyLimit:
    """Bound request bodies by who sends them, and know who it is before reading beyond the smallest bound.

    Callers without valid credentials may send ``anonymous_max_request_bytes``;
    authenticated callers ``max_request_bytes``; an expert (or admin) bearer
    token may send a model on ``POST /api/v1/models/{name}/versions``, and a
    member a CSV of ``evaluation_max_upload_mb`` on the routes of
    :data:`EVALUATION_UPLOAD` (the routes bound the file itself). A
    declared ``Content-Length`` over the bound is refused (413) before any byte
    is read; streamed bodies are counted. Credentials are only checked (a
    database lookup, in the threadpool) when the body may exceed the
    anonymous bound; refused ones are answered 401 at once.
    """

    def __init__(self, app: ASGIApp, settings: Settings, services: Services) -> None:
        self.app = app
        self.settings = settings
        self.services = services
        # the smallest bound of all: anonymous callers never get more than members
        self.floor = min(settings.anonymous_max_request_bytes, settings.max_request_bytes)

    def _bound(self, scope: Scope, caller: Caller) -> int:
        if not caller.is_authenticated:
            return self.floor
        if (
            policy.may_register_models(caller)
            and scope.get("method") == "POST"
            and MODEL_UPLOAD.fullmatch(scope.get("path", ""))
        ):
            return self.settings.max_model_bytes + self.settings.max_card_bytes + 64 * 1024
        if (
            policy.may_submit_evaluation(caller)
            and scope.get("method") == "POST"
            and EVALUATION_UPLOAD.fullmatch(scope.get("path", ""))
        ):
            upload = self.settings.evaluation_max_upload_mb * 1024 * 1024 + 64 * 1024
            return max(self.settings.max_request_bytes, upload)
        return self.settings.max_request_bytes

    def _lookup(self, bearer: str | None, cookie: str | None) -> Caller:
        with self.services.db.session() as session:
            return caller_from_credentials(session, bearer, cookie)

    async def _caller(self, scope: Scope) -> Caller:
        request = Request(scope)
        bearer = bearer_token(request)
        cookie = None if scope.get("path", "").startswith("/api/") else request.cookies.get(COOKIE)
        if bearer is None and not cookie:
            return ANONYMOUS
        return await run_in_threadpool(self._lookup, bearer, cookie)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared_text = headers.get("content-length")
        declared = (
            int(declared_text)
            if declared_text is not None and DIGITS.fullmatch(declared_text)
            else None
        )
        may_be_large = (declared is not None and declared > self.floor) or (
            declared is None and "transfer-encoding" in headers
        )
        limit = self.floor
        if may_be_large:
            try:
                limit = self._bound(scope, await self._caller(scope))
            except Unauthorized as exc:
                await error_response(Request(scope), exc)(scope, receive, send)
                return
        if declared is not None and declared > limit:
            await error_response(Request(scope), _too_large(limit))(scope, receive, send)
            return
        received = 0

        def check(message: Message) -> BibiaError | None:
            nonlocal received
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    return _too_large(limit)
            return None

        await run_guarded(self.app, scope, receive, send, check)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"requête trop volumineuse : {limit} octets au plus")


def security_headers(
    form_action: str = "'self'", script_nonce: str | None = None
) -> dict[str, str]:
    """The headers of every page bibia serves (the CSP of a demonstrator limits its forms to its own path).

    No script runs, except, on bibia's own pages, the ``<script>`` elements
    that carry ``script_nonce`` (bibia's files under ``/static/``): not
    ``'self'``, since a demonstrator's sandbox answers on the same origin
    (``/demos/…``) and must never be able to serve a script a page would run.
    A demonstrator's responses (the proxy) get no nonce: no script at all.
    """
    scripts = f"'nonce-{script_nonce}'" if script_nonce else "'none'"
    return {
        "Content-Security-Policy": (
            f"default-src 'self'; script-src {scripts}; object-src 'none'; base-uri 'none'; "
            f"style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action {form_action}; frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }
