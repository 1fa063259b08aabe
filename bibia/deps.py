"""Named dependencies: who is asking (and their tier), the registry, a DB session.

Routes gate on the caller with ``MemberDep``, ``ExpertDep``, ``AdminDep``
(:func:`require`) or :func:`require_pull`, which ask :mod:`bibia.policy`;
or they take ``CallerDep`` and hand it on to the catalogue or the
demonstrators, which ask the policy in turn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from bibia import policy, sessions
from bibia.auth import ANONYMOUS, Caller, authenticate, refused
from bibia.services import Services
from bibia.settings import Settings
from registry.store import Registry
from registry.tiers import Tier


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


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


_NEEDS = {
    Tier.RESTRICTED: "réservé aux membres d'une collectivité",
    Tier.EXPERT: "réservé aux experts",
    Tier.ADMIN: "réservé aux administrateurs",
}


def _gate(name: str, allows: Callable[[Caller], bool], needs: Tier) -> Callable[..., Caller]:
    """A dependency that lets through the callers ``allows``; the others read what ``needs`` means."""

    def dependency(caller: CallerDep) -> Caller:
        if allows(caller):
            return caller
        policy.refuse(
            caller,
            f"accès refusé : {_NEEDS[needs]} ; votre jeton donne le niveau « {caller.tier.display} »",
            anonymous=f"authentification requise : {_NEEDS[needs]} (en-tête Authorization: Bearer <jeton>)",
        )

    dependency.__name__ = name
    return dependency


def require(tier: Tier) -> Callable[..., Caller]:
    """A dependency that lets through callers of ``tier`` or above (:func:`bibia.policy.may_read_tier`)."""
    return _gate(f"require_{tier.label}", lambda caller: policy.may_read_tier(caller, tier), tier)


# The MLflow gateway's routes: callers who may pull artifacts (experts, by the policy).
require_pull = _gate("require_pull", policy.may_pull_artifacts, Tier.EXPERT)


MemberDep = Annotated[Caller, Depends(require(Tier.RESTRICTED))]
ExpertDep = Annotated[Caller, Depends(require(Tier.EXPERT))]
AdminDep = Annotated[Caller, Depends(require(Tier.ADMIN))]
