"""``/demos/{id}/…``: the only way into a demonstrator, through the service.

Every proxied request is authenticated and tier-checked (a bearer token, or
for browsers the session cookie set by ``/connexion`` in :mod:`bibia.web.account`; the JSON API under
``/api`` never reads that cookie, so it cannot be forged cross-site). What goes to the sandbox never carries the caller's token or
cookies; what comes back is untrusted content served on our origin, so it
cannot set cookies, and a strict Content-Security-Policy forbids scripts and
limits forms to the demonstrator's own path.
"""

from __future__ import annotations

import asyncio
import html
import http.cookiejar
from collections import OrderedDict
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from bibia.demos import DemoManager
from bibia.deps import COOKIE, bearer_token
from registry.errors import BibiaError, Forbidden, RunnerError, Unauthorized

router = APIRouter(include_in_schema=False)

HOP_BY_HOP = {
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
}
NEVER_FORWARDED = HOP_BY_HOP | {"authorization", "cookie", "x-forwarded-for", "x-forwarded-host", "x-forwarded-prefix"}
NEVER_RETURNED = HOP_BY_HOP | {"date", "server", "set-cookie", "content-security-policy", "access-control-allow-origin", "access-control-allow-credentials"}


def _manager(request: Request) -> DemoManager:
    return request.app.state.demos


ManagerDep = Annotated[DemoManager, Depends(_manager)]


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} — bibia</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}}
label{{display:block;margin:1rem 0 .3rem}}input[type=password]{{width:100%;padding:.5rem;font-family:monospace}}
button{{margin-top:1rem;padding:.5rem 1.2rem;background:#000091;color:#fff;border:0;border-radius:4px;cursor:pointer}}
.erreur{{color:#ce0500}}</style></head>
<body><header><strong>bibia</strong> — Bibliothèque IA territorialisée</header><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"""
    return HTMLResponse(document, status_code=status, headers=_security_headers())


def _security_headers(form_action: str = "'self'") -> dict[str, str]:
    return {
        "Content-Security-Policy": (
            "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
            f"style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action {form_action}; frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }


@router.get("/demos/{demo_id}")
def add_slash(demo_id: str) -> RedirectResponse:
    return RedirectResponse(f"/demos/{quote(demo_id)}/", status_code=307)


@router.api_route("/demos/{demo_id}/{path:path}", methods=["GET", "HEAD", "POST"])
async def proxy(demo_id: str, path: str, request: Request, manager: ManagerDep) -> Response:
    wants_html = "text/html" in request.headers.get("accept", "")
    try:
        token = bearer_token(request) or request.cookies.get(COOKIE)
        socket = await run_in_threadpool(manager.proxy_target, token, demo_id)
    except Unauthorized as exc:
        if wants_html:
            return RedirectResponse(f"/connexion?next={quote(request.url.path)}", status_code=303)
        return JSONResponse(exc.to_dict(), status_code=exc.http_status)
    except Forbidden as exc:
        if wants_html:
            return _page("Accès refusé", f"<p>{html.escape(exc.message)}</p>", status=exc.http_status)
        return JSONResponse(exc.to_dict(), status_code=exc.http_status)
    except BibiaError as exc:
        if wants_html:
            return _page("Démonstrateur indisponible", f"<p>{html.escape(exc.message)}</p>", status=exc.http_status)
        return JSONResponse(exc.to_dict(), status_code=exc.http_status)

    headers = {k: v for k, v in request.headers.items() if k.lower() not in NEVER_FORWARDED}
    headers["x-forwarded-prefix"] = f"/demos/{demo_id}"
    client = _clients(request).get(socket)
    upstream = client.build_request(
        request.method,
        f"http://demo/{path}",
        params=request.query_params.multi_items(),
        headers=headers,
        content=request.stream() if request.method == "POST" else None,
    )
    try:
        reply = await client.send(upstream, stream=True)
    except httpx.HTTPError as exc:
        error = RunnerError(f"le démonstrateur {demo_id} ne répond pas : {type(exc).__name__}")
        if wants_html:
            return _page("Démonstrateur indisponible", f"<p>{html.escape(error.message)}</p>", status=error.http_status)
        return JSONResponse(error.to_dict(), status_code=error.http_status)

    out_headers = {k: v for k, v in reply.headers.items() if k.lower() not in NEVER_RETURNED}
    out_headers.update(_security_headers(form_action=f"{request.base_url}demos/{demo_id}/"))
    return StreamingResponse(reply.aiter_raw(), status_code=reply.status_code, headers=out_headers, background=BackgroundTask(reply.aclose))


class SocketClients:
    """One pooled HTTP client per demonstrator socket, so requests reuse their connection.

    Plain HTTP over a Unix socket: no TLS, so no certificate store to load
    (building the default SSL context costs ~20 ms). Bounded: the least
    recently used client is closed beyond ``size``.
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._clients: OrderedDict[Path, httpx.AsyncClient] = OrderedDict()

    def get(self, socket: Path) -> httpx.AsyncClient:
        client = self._clients.pop(socket, None)
        if client is None:
            transport = httpx.AsyncHTTPTransport(uds=str(socket), verify=False)
            # A shared client must never keep what one sandbox answer set (Set-Cookie)
            # and replay it on another user's request: a jar that accepts nothing.
            jar = http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
            client = httpx.AsyncClient(transport=transport, cookies=jar, timeout=httpx.Timeout(120.0, connect=5.0))
        self._clients[socket] = client
        while len(self._clients) > self.size:
            _, oldest = self._clients.popitem(last=False)
            asyncio.get_running_loop().create_task(oldest.aclose())
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


def _clients(request: Request) -> SocketClients:
    state = request.app.state
    if not hasattr(state, "demo_clients"):
        state.demo_clients = SocketClients()
    return state.demo_clients
