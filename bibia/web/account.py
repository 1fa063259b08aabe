"""Pages of a session: sign in and out, « Mes sessions et jetons » (demonstrators:
:mod:`bibia.web.demos`; sign-in through OpenID Connect: :mod:`bibia.web.oidc`).

Signing in with a token opens a server-side session (:mod:`bibia.sessions`)
named by the ``bibia_session`` cookie (HttpOnly, SameSite=Lax, Path=/,
Secure over HTTPS or behind an https ``public_url``); the token itself never
goes into the browser. Every sign-in opens a new session and closes the one
the browser had; signing out closes it. Only web pages and the demonstrator
proxy read the cookie (the JSON API never does), and every form here carries
a CSRF token (:mod:`bibia.web.csrf`). Signing out of a session opened through
OpenID Connect also sends the browser to the provider's sign-out
(``end_session_endpoint``), which sends it back to ``/deconnexion/terminee``.
« Mes sessions et jetons » (``/compte/sessions``) lists the person's open
sessions and their own usable tokens (never a value); each is closed or
revoked by its owner only (:func:`bibia.policy.may_revoke_own`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bibia import oidc, policy, sessions
from bibia.auth import ANONYMOUS, authenticate
from bibia.deps import COOKIE, ServicesDep
from bibia.web.csrf import CSRF_COOKIE
from bibia.web.pages import PageCallerDep
from bibia.web.render import PageRoute, cookie_secure, forget_session, render
from domain.errors import NotFound, Unauthorized

router = APIRouter(include_in_schema=False, route_class=PageRoute)

SESSION_NUMBER = re.compile(r"[0-9]{1,9}")
TOKEN_PREFIX = re.compile(r"[0-9a-f]{8}")


def safe_next(target: str | None) -> str:
    """Only ever redirect to a local path (no open redirect)."""
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and "://" not in target
    ):
        return target
    return "/"


def _login(
    request: Request, next_url: str, error: str | None = None, status: int = 200
) -> HTMLResponse:
    settings = request.app.state.services.settings
    return render(
        request,
        "connexion.html",
        status=status,
        title="Connexion",
        next_url=next_url,
        error=error,
        caller=ANONYMOUS,
        session_hours=settings.session_hours,
        provider=settings.oidc_provider_name if settings.oidc_enabled else None,
    )


def new_csrf_token(response: Response, request: Request) -> None:
    """Drop the CSRF cookie: the next page gets a fresh token (none survives a change of identity)."""
    response.delete_cookie(
        CSRF_COOKIE, path="/", secure=cookie_secure(request), httponly=True, samesite="lax"
    )


def signed_in_redirect(
    request: Request, target: str, secret: str, session_hours: float
) -> RedirectResponse:
    """The redirect (never cached) to ``target`` that sets the new session's cookie."""
    response = RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        COOKIE,
        secret,
        httponly=True,
        samesite="lax",
        secure=cookie_secure(request),
        path="/",
        max_age=int(session_hours * 3600),
    )
    return response


@router.get("/connexion", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return _login(request, safe_next(next))


@router.post("/connexion")
def login(
    request: Request,
    services: ServicesDep,
    token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    target = safe_next(next)
    settings = services.settings
    try:
        with services.db.session() as session:
            caller = authenticate(session, token.strip())
            if not policy.may_open_web_session(caller):
                return _login(
                    request, target, "ce jeton ne donne pas accès aux contenus réservés", status=403
                )
            opened = sessions.open_session(
                session,
                caller,
                lifetime=dt.timedelta(hours=settings.session_hours),
                user_agent=request.headers.get("user-agent"),
                replacing=request.cookies.get(COOKIE),
            )
    except Unauthorized as exc:
        return _login(request, target, exc.message, status=401)
    response = signed_in_redirect(request, target, opened.secret, settings.session_hours)
    new_csrf_token(response, request)
    return response


@router.post("/deconnexion", response_class=HTMLResponse)
def logout(request: Request, services: ServicesDep) -> Response:
    cookie = request.cookies.get(COOKIE)
    id_token = None
    if cookie:
        with services.db.session() as session:
            id_token = sessions.close_session(session, cookie)
    settings = services.settings
    provider_logout = (
        oidc.end_session_url(settings, id_token, str(request.base_url))
        if id_token and settings.oidc_enabled
        else None
    )
    response: Response
    if provider_logout is not None:  # end the provider's session too; it sends the browser back
        response = RedirectResponse(
            provider_logout, status_code=303, headers={"Cache-Control": "no-store"}
        )
        forget_session(request, response)
        new_csrf_token(response, request)
        return response
    response = render(
        request,
        "message.html",
        title="Déconnexion",
        message="Vous êtes déconnecté.",
        caller=ANONYMOUS,
    )
    forget_session(request, response)
    new_csrf_token(response, request)
    return response


@router.get("/compte/sessions", response_class=HTMLResponse)
def sessions_page(request: Request, caller: PageCallerDep, services: ServicesDep) -> Response:
    if not caller.is_authenticated:
        return RedirectResponse(f"/connexion?next={quote(request.url.path)}", status_code=303)
    with services.db.session() as session:
        items = [
            sessions.describe(row, caller.session_id)
            for row in sessions.active_sessions(session, caller)
        ]
        tokens = [sessions.describe_token(row) for row in sessions.own_tokens(session, caller)]
    settings = services.settings
    return render(
        request,
        "sessions.html",
        title="Mes sessions et jetons",
        items=items,
        tokens=tokens,
        provider=settings.oidc_provider_name,
        current_token=caller.token_prefix,
    )


@router.post("/compte/sessions/{number}/revoquer", response_class=HTMLResponse)
def revoke_session(
    request: Request, number: str, caller: PageCallerDep, services: ServicesDep
) -> Response:
    if not caller.is_authenticated:
        return RedirectResponse(f"/connexion?next={quote('/compte/sessions')}", status_code=303)
    if not SESSION_NUMBER.fullmatch(number):
        raise NotFound(f"aucune session n° {number[:20]} parmi les vôtres")
    with services.db.session() as session:
        sessions.revoke(session, caller, int(number))
    if caller.session_id == int(number):
        response = render(
            request,
            "message.html",
            title="Session fermée",
            message="Cette session est fermée : vous êtes déconnecté.",
            caller=ANONYMOUS,
        )
        forget_session(request, response)
        return response
    return RedirectResponse("/compte/sessions", status_code=303)


@router.post("/compte/jetons/{prefix}/revoquer", response_class=HTMLResponse)
def revoke_token(
    request: Request, prefix: str, caller: PageCallerDep, services: ServicesDep
) -> Response:
    if not caller.is_authenticated:
        return RedirectResponse(f"/connexion?next={quote('/compte/sessions')}", status_code=303)
    if not TOKEN_PREFIX.fullmatch(prefix):
        raise NotFound(f"aucun jeton « {prefix[:20]} » parmi les vôtres")
    with services.db.session() as session:
        sessions.revoke_own_token(session, caller, prefix)
    if caller.token_prefix == prefix:  # the session (or the request) stood on this very token
        response = render(
            request,
            "message.html",
            title="Jeton révoqué",
            message=f"Le jeton {prefix} est révoqué : les sessions ouvertes avec lui sont fermées, "
            "vous êtes déconnecté.",
            caller=ANONYMOUS,
        )
        forget_session(request, response)
        return response
    return RedirectResponse("/compte/sessions", status_code=303)
