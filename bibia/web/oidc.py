"""Pages of the sign-in through OpenID Connect (:mod:`bibia.oidc`): start, callback, signed out.

- ``POST /connexion/oidc`` (the « Se connecter avec ProConnect » button, CSRF-checked even
  without cookies): records the sign-in under way and sends the browser to the provider, with
  the ``state`` also in the ``bibia_oidc`` cookie (HttpOnly, SameSite=Lax, ten minutes, only
  sent to ``/connexion/oidc``).
- ``GET /connexion/oidc/retour``: the callback registered with the provider. It opens a web
  session (``bibia_session``, as a token sign-in does) or answers a French error page (4xx,
  5xx when the provider is unreachable); nothing is created on a refusal.
- ``GET /deconnexion/terminee``: where the provider sends the browser back after its own
  sign-out (``post_logout_redirect_uri``).

The callback and post-logout URLs are built from ``public_url`` when it is set (what the
provider knows), else from the request.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.exc import IntegrityError

from bibia import oidc, sessions
from bibia.auth import ANONYMOUS, refused
from bibia.deps import COOKIE, ServicesDep
from bibia.errors import status_for
from bibia.services import Services
from bibia.web.account import new_csrf_token, safe_next, signed_in_redirect
from bibia.web.render import PageRoute, cookie_secure, error_page, render
from domain.errors import IdentityProviderUnavailable, SignInError

log = logging.getLogger("bibia.web")

router = APIRouter(include_in_schema=False, route_class=PageRoute)
oidc.hide_callback_queries()  # the access log must not show the authorization code

STATE_COOKIE = "bibia_oidc"
STATE_COOKIE_PATH = "/connexion/oidc"


def _base_url(request: Request) -> str:
    return str(request.base_url)


def _forget_state(request: Request, response: Response) -> None:
    response.delete_cookie(
        STATE_COOKIE,
        path=STATE_COOKIE_PATH,
        secure=cookie_secure(request),
        httponly=True,
        samesite="lax",
    )


def _refusal(request: Request, error: SignInError) -> HTMLResponse:
    status = status_for(error)
    if status == 400:
        refused(error.message)  # a forged or replayed callback counts for the brake on failures
    response = error_page(request, status, error.message, title=error.title)
    response.headers["Cache-Control"] = "no-store"
    _forget_state(request, response)
    return response


@router.post("/connexion/oidc")
def start(request: Request, services: ServicesDep, next: Annotated[str, Form()] = "") -> Response:
    settings = services.settings
    client = request.client.host if request.client else "inconnu"
    wait = request.app.state.oidc_starts.take(client) if settings.oidc_enabled else None
    if wait is not None:
        braked = error_page(
            request,
            429,
            "trop de connexions commencées depuis votre adresse en peu de temps : "
            f"réessayez dans {wait} s, ou connectez-vous avec un jeton d'accès.",
            title="Trop de tentatives",
        )
        braked.headers["Retry-After"] = str(wait)
        braked.headers["Cache-Control"] = "no-store"
        return braked
    try:
        with services.db.session() as session:
            url, state = oidc.begin(
                session,
                settings,
                next_url=safe_next(next),
                callback=oidc.redirect_uri(settings, _base_url(request)),
            )
    except SignInError as exc:
        return _refusal(request, exc)
    response = RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=int(oidc.LOGIN_LIFETIME.total_seconds()),
        path=STATE_COOKIE_PATH,
        secure=cookie_secure(request),
        httponly=True,
        samesite="lax",
    )
    return response


@router.get("/connexion/oidc/retour", response_class=HTMLResponse)
def callback(request: Request, services: ServicesDep) -> Response:
    settings = services.settings
    params = request.query_params
    try:
        oidc.provider_metadata(settings)  # off: 404; unreachable: 502
        with services.db.session() as session:
            pending = oidc.take_login(
                session, settings, params.get("state"), request.cookies.get(STATE_COOKIE)
            )
        refusal = oidc.provider_error(settings, params)
        if refusal is not None:
            raise refusal
        identity = oidc.finish(
            settings,
            pending,
            params.get("code"),
            oidc.redirect_uri(settings, _base_url(request)),
        )
        opened = _sign_in(request, services, identity)
    except SignInError as exc:
        return _refusal(request, exc)
    except Exception as exc:  # noqa: BLE001 - hostile input never becomes a traceback; no secret logged
        log.error("OpenID Connect callback failed (%s)", type(exc).__name__)
        return _refusal(
            request,
            IdentityProviderUnavailable(
                f"la réponse de {settings.oidc_provider_name} n'a pas pu être traitée. Recommencez "
                "depuis la page de connexion, ou connectez-vous avec un jeton d'accès.",
                title="Connexion impossible",
            ),
        )
    response = signed_in_redirect(
        request, safe_next(pending.next_url), opened.secret, settings.session_hours
    )
    _forget_state(request, response)
    new_csrf_token(response, request)
    return response


def _sign_in(
    request: Request, services: Services, identity: oidc.Identity
) -> sessions.OpenedSession:
    """Find or create the account, open its session; once more if a simultaneous first sign-in of
    the same person (or a namesake) created it in between (a unique constraint said so)."""
    settings = services.settings
    for attempt in (1, 2):
        try:
            with services.db.session() as session:
                signed = oidc.sign_in(session, settings, identity)
                return sessions.open_oidc_session(
                    session,
                    signed.user_id,
                    id_token=identity.id_token,
                    provider=settings.oidc_provider_name,
                    lifetime=dt.timedelta(hours=settings.session_hours),
                    user_agent=request.headers.get("user-agent"),
                    replacing=request.cookies.get(COOKIE),
                )
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@router.get("/deconnexion/terminee", response_class=HTMLResponse)
def signed_out(request: Request, services: ServicesDep) -> HTMLResponse:
    name = services.settings.oidc_provider_name
    return render(
        request,
        "message.html",
        title="Déconnexion",
        message=f"Vous êtes déconnecté de bibia et de {name}.",
        caller=ANONYMOUS,
    )
