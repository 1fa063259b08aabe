"""``/demos/{id}/…``: the only way into a demonstrator, through the service.

Every proxied request is authenticated and tier-checked (a bearer token, or
for browsers the web session of :mod:`bibia.sessions`); a browser's POST must
also carry this demonstrator's form token (:class:`bibia.web.csrf.DemoFormTokens`,
in the form action's query, stripped before forwarding). The sandbox is
reached only through :mod:`runners.sockets`, its socket checked on every
request. What goes to the sandbox never carries the caller's token or
cookies; what comes back is untrusted content served on our origin: only an
allowlist of its headers passes (no cookies, no redirect out of the
demonstrator), and a strict Content-Security-Policy forbids scripts and
limits forms to the demonstrator's own path.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urljoin, urlsplit

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import (
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from bibia.demos import TAMPERED, DemoService
from bibia.deps import COOKIE, bearer_token
from bibia.errors import error_response, wants_page
from bibia.guards import security_headers
from bibia.web.csrf import REFUSED, DemoFormTokens
from domain.errors import BibiaError, Forbidden, RunnerError, SandboxTampered, Unauthorized
from runners.sockets import AsyncSandboxTransport

router = APIRouter(include_in_schema=False)

# Request headers never sent to the sandbox: hop-by-hop ones, the caller's credentials, what
# a client could use to pass itself off as the service (x-forwarded-*, x-bibia-*).
NEVER_FORWARDED = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "authorization",
    "cookie",
    "forwarded",
}
NEVER_FORWARDED_PREFIXES = ("x-forwarded-", "x-real-ip", "x-bibia-")

# Response headers a sandbox may set, and nothing else: it answers on bibia's own origin, so a
# header it picked could redirect users away, clear their site data, cache a page publicly,
# turn off HSTS or pull a stylesheet. Location is checked on its own (same demonstrator only).
CSRF_TO_SANDBOX = (
    "x-bibia-csrf-token"  # this demonstrator's form token, for the sandbox's form actions
)
RETURNED = {
    "content-type",
    "content-language",
    "content-disposition",
    "content-encoding",
    "etag",
    "last-modified",
    "location",
}
CONTENT_ENCODINGS = {"gzip", "deflate", "br", "identity"}


def _manager(request: Request) -> DemoService:
    manager: DemoService = request.app.state.demos
    return manager


ManagerDep = Annotated[DemoService, Depends(_manager)]


@router.get("/demos/{demo_id}")
def add_slash(demo_id: str) -> RedirectResponse:
    return RedirectResponse(f"/demos/{quote(demo_id)}/", status_code=307)


@router.api_route("/demos/{demo_id}/{path:path}", methods=["GET", "HEAD", "POST"])
async def proxy(demo_id: str, path: str, request: Request, manager: ManagerDep) -> Response:
    try:
        bearer, cookie = bearer_token(request), request.cookies.get(COOKIE)
        socket = await run_in_threadpool(manager.proxy_target, bearer, cookie, demo_id)
    except Unauthorized as exc:
        if wants_page(request):
            return RedirectResponse(f"/connexion?next={quote(request.url.path)}", status_code=303)
        return error_response(request, exc)
    except Forbidden as exc:
        return error_response(request, exc)
    except SandboxTampered:
        await _clients(request).discard(demo_id)
        return _error(request, SandboxTampered(TAMPERED), "Démonstrateur arrêté")
    except BibiaError as exc:
        return _error(request, exc)

    forms: DemoFormTokens = request.app.state.demo_form_tokens
    if (
        request.method == "POST"
        and bearer is None
        and not forms.valid(request.query_params.get(forms.PARAM), cookie, demo_id)
    ):
        # a browser's post (its session cookie) without this demonstrator's form token: maybe forged
        return _error(request, Forbidden(REFUSED), "Requête refusée")
    headers = {k: v for k, v in request.headers.items() if _forwarded(k)}
    headers["x-forwarded-prefix"] = f"/demos/{demo_id}"
    if bearer is None and cookie:
        headers[CSRF_TO_SANDBOX] = forms.issue(cookie, demo_id)
    client = _clients(request).get(demo_id, socket, manager.socket_owner)
    upstream = client.build_request(
        request.method,
        f"http://demo/{path}",
        params=[(k, v) for k, v in request.query_params.multi_items() if k != forms.PARAM],
        headers=headers,
        content=request.stream() if request.method == "POST" else None,
    )
    try:
        reply = await client.send(upstream, stream=True)
    except SandboxTampered as exc:  # swapped between the check and a new connection
        await run_in_threadpool(manager.quarantine, demo_id, exc)
        await _clients(request).discard(demo_id)
        return _error(request, SandboxTampered(TAMPERED), "Démonstrateur arrêté")
    except httpx.HTTPError as exc:
        return _error(
            request,
            RunnerError(f"le démonstrateur {demo_id} ne répond pas : {type(exc).__name__}"),
        )

    if not 200 <= reply.status_code <= 599:
        await reply.aclose()
        return _error(
            request,
            RunnerError(
                f"le démonstrateur {demo_id} a répondu un statut invalide ({reply.status_code})"
            ),
        )
    out_headers, refused = returned_headers(reply.headers.multi_items(), request, demo_id)
    if refused and 300 <= reply.status_code < 400:
        await reply.aclose()
        return _error(
            request,
            RunnerError(
                f"le démonstrateur {demo_id} a tenté une redirection hors de son adresse : refusée"
            ),
        )
    out_headers.update(security_headers(form_action=f"{request.base_url}demos/{demo_id}/"))
    return StreamingResponse(
        reply.aiter_raw(),
        status_code=reply.status_code,
        headers=out_headers,
        background=BackgroundTask(reply.aclose),
    )


def _forwarded(name: str) -> bool:
    lower = name.lower()
    return lower not in NEVER_FORWARDED and not lower.startswith(NEVER_FORWARDED_PREFIXES)


def _error(
    request: Request, error: BibiaError, title: str = "Démonstrateur indisponible"
) -> Response:
    """``error`` answered to the proxy's caller; a browser's page is titled ``title``."""
    return error_response(request, error, title=title)


def returned_headers(
    items: Iterable[tuple[str, str]], request: Request, demo_id: str
) -> tuple[dict[str, str], bool]:
    """The sandbox's response headers a user may receive, and whether a Location was refused.

    Only :data:`RETURNED`, once each (the first wins); ``Content-Disposition``
    only as a download (``attachment``); ``Location`` only inside this
    demonstrator, rewritten as a path on our origin.
    """
    out: dict[str, str] = {}
    refused = False
    for name, value in items:
        key = name.lower()
        if key not in RETURNED or key in out or any(c in value for c in "\r\n\x00"):
            continue
        if key == "content-disposition" and not value.strip().lower().startswith("attachment"):
            continue
        if key == "content-encoding" and value.strip().lower() not in CONTENT_ENCODINGS:
            continue
        if key == "location":
            safe = _inside(value, request, demo_id)
            if safe is None:
                refused = True
                continue
            value = safe
        out[key] = value
    return out, refused


def _inside(location: str, request: Request, demo_id: str) -> str | None:
    """``location`` as a path on our origin if it stays inside ``/demos/{demo_id}/``, else None."""
    if not location.isascii() or any(c in location for c in "\\\t ") or not location.strip():
        return None
    prefix = f"/demos/{demo_id}/"
    here = f"{request.base_url}demos/{demo_id}/"
    target = urlsplit(urljoin(here, location))
    ours = urlsplit(here)
    if (target.scheme, target.netloc) != (ours.scheme, ours.netloc):
        return None
    # urljoin resolves "..", browsers also resolve "%2e%2e": refuse any encoded dot or slash
    lowered = target.path.lower()
    if (
        not target.path.startswith(prefix)
        or "%2e" in lowered
        or "%2f" in lowered
        or "//" in target.path
    ):
        return None
    return target.path + (f"?{target.query}" if target.query else "")


class SocketClients:
    """One pooled HTTP client per demonstrator socket, so requests reuse their connection.

    Plain HTTP over a Unix socket: no TLS, so no certificate store to load
    (building the default SSL context costs ~20 ms). Bounded: the least
    recently used client is closed beyond ``size``.
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._clients: OrderedDict[tuple[str, Path], httpx.AsyncClient] = OrderedDict()

    def get(self, demo_id: str, socket_dir: Path, owner_uid: int) -> httpx.AsyncClient:
        """The client of ``demo_id``; every new connection it makes goes through :mod:`runners.sockets`."""
        key = (demo_id, socket_dir)
        client = self._clients.pop(key, None)
        if client is None:
            transport = AsyncSandboxTransport(socket_dir, owner_uid)
            # A shared client must never keep what one sandbox answer set (Set-Cookie)
            # and replay it on another user's request: a jar that accepts nothing.
            jar = http.cookiejar.CookieJar(
                policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[])
            )
            client = httpx.AsyncClient(
                transport=transport, cookies=jar, timeout=httpx.Timeout(120.0, connect=5.0)
            )
        self._clients[key] = client
        while len(self._clients) > self.size:
            _, oldest = self._clients.popitem(last=False)
            asyncio.get_running_loop().create_task(oldest.aclose())
        return client

    async def discard(self, demo_id: str) -> None:
        """Close the client of a demonstrator that must not be reached again."""
        for key in [k for k in self._clients if k[0] == demo_id]:
            await self._clients.pop(key).aclose()

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


def _clients(request: Request) -> SocketClients:
    state = request.app.state
    if not hasattr(state, "demo_clients"):
        state.demo_clients = SocketClients()
    clients: SocketClients = state.demo_clients
    return clients
