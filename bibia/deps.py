"""Named dependencies: who is asking (and their tier), the registry, a DB session.

The tier check lives here, once: routes declare ``Depends(require(Tier.X))``
or take ``CallerDep`` and hand it to the one filtering function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from bibia import sessions
from bibia.auth import ANONYMOUS, Caller, authenticate, refused
from bibia.services import Services
from bibia.settings import Settings
from domain.errors import Forbidden, Unauthorized
from registry.store import Registry
from registry.tiers import Tier


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings(services: ServicesDep) -> Settings:
    return services.settings


def get_registry(services: ServicesDep) -> Registry:
    return services.registry


def get_session(services: ServicesDep) -> Iterator[Session]:
    with services.db.session() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
SessionDep = Annotated[Session, Depends(get_session)]


def bearer_token(request: Request) -> str | None:
    """The bearer token of a request, or None. A malformed header is an error, not anonymity."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise refused("en-tête Authorization invalide : attendu « Authorization: Bearer <jeton> »")
    return token.strip()


def caller_from_credentials(session: Session, bearer: str | None, cookie: str | None) -> Caller:
    """Who presents these credentials: the bearer token if given, else the web session the cookie names.

    Args:
        bearer: the token of an ``Authorization: Bearer`` header (see :func:`bearer_token`).
        cookie: the value of the ``bibia_session`` cookie (only browser-facing routes pass it).

    Raises:
        Unauthorized: a bad, unknown, expired or revoked token or session (noted as a failed authentication).
    """
    if bearer is not None:
        return authenticate(session, bearer)
    if cookie:
        return sessions.resolve(session, cookie)
    return ANONYMOUS


def get_caller(request: Request, services: ServicesDep) -> Caller:
    token = bearer_token(request)
    if token is None:
        return ANONYMOUS
    with services.db.session() as session:
        return caller_from_credentials(session, token, None)


CallerDep = Annotated[Caller, Depends(get_caller)]

COOKIE = "bibia_session"


def browser_caller(request: Request, services: ServicesDep) -> Caller:
    """The caller of a browser-facing page: bearer token first, then the session cookie.

    Only web pages and the demonstrator proxy use this; the JSON API reads the
    Authorization header alone.
    """
    bearer = bearer_token(request)
    cookie = request.cookies.get(COOKIE)
    if bearer is None and not cookie:
        return ANONYMOUS
    with services.db.session() as session:
        return caller_from_credentials(session, bearer, cookie)


BrowserCallerDep = Annotated[Caller, Depends(browser_caller)]

_NEEDS = {
    Tier.RESTRICTED: "réservé aux membres d'une collectivité",
    Tier.EXPERT: "réservé aux experts",
    Tier.ADMIN: "réservé aux administrateurs",
}


def check_tier(caller: Caller, tier: Tier) -> Caller:
    """Raise Unauthorized (anonymous) or Forbidden (authenticated) below ``tier``."""
    if caller.tier >= tier:
        return caller
    if not caller.is_authenticated:
        raise Unauthorized(
            f"authentification requise : {_NEEDS[tier]} (en-tête Authorization: Bearer <jeton>)"
        )
    raise Forbidden(
        f"accès refusé : {_NEEDS[tier]} ; votre jeton donne le niveau « {caller.tier.label} »"
    )


def require(tier: Tier) -> Callable[..., Caller]:
    """A dependency that lets through callers of ``tier`` or above."""

    def dependency(caller: CallerDep) -> Caller:
        return check_tier(caller, tier)

    dependency.__name__ = f"require_{tier.label}"
    return dependency


MemberDep = Annotated[Caller, Depends(require(Tier.RESTRICTED))]
ExpertDep = Annotated[Caller, Depends(require(Tier.EXPERT))]
AdminDep = Annotated[Caller, Depends(require(Tier.ADMIN))]
