"""Administration: organisations, tokens, audit log (admins only)."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from bibia import accounts
from bibia.db.models import Organisation
from bibia.deps import AdminDep, CallerDep, SessionDep, SettingsDep, get_caller
from bibia.schemas import ERRORS, OrganisationIn, OrganisationOut, TokenIn, TokenOut
from bibia.settings import Settings

# A token, when one is presented, is always checked (a revoked token is a 401 everywhere).
router = APIRouter(prefix="/api/v1", tags=["administration"], dependencies=[Depends(get_caller)])


def _org(org: Organisation) -> dict[str, Any]:
    return {
        "slug": org.slug,
        "name": org.name,
        "siren": org.siren,
        "created_at": org.created_at.isoformat(),
    }


@router.get(
    "/orgs",
    summary="Les organisations (public : nom et SIREN)",
    responses={200: {"model": list[OrganisationOut]}},
)
def list_orgs(session: SessionDep) -> JSONResponse:
    return JSONResponse([_org(o) for o in accounts.list_organisations(session)])


@router.post(
    "/orgs",
    status_code=status.HTTP_201_CREATED,
    summary="Créer une organisation",
    responses={201: {"model": OrganisationOut}, **ERRORS},
)
def create_org(body: OrganisationIn, caller: AdminDep, session: SessionDep) -> JSONResponse:
    org = accounts.create_organisation(session, caller, body.slug, body.name, body.siren)
    return JSONResponse(_org(org), status_code=status.HTTP_201_CREATED)


class QuotasIn(BaseModel):
    """An organisation's own quotas; null: the service's setting applies."""

    demos: int | None = Field(
        None,
        examples=[3],
        description="Démonstrateurs actifs à la fois (0 à 1000 ; null : réglage du service)",
    )
    evaluations: int | None = Field(
        None,
        examples=[5],
        description="Évaluations en attente ou en cours (0 à 1000 ; null : réglage du service)",
    )


class QuotasOut(BaseModel):
    organisation: str
    demos: int | None = Field(description="Quota propre de l'organisation (null : aucun)")
    evaluations: int | None
    demos_applied: int = Field(
        description="Le quota qui s'applique (le sien, sinon celui du service)"
    )
    evaluations_applied: int


def quotas_body(org: Organisation, settings: Settings) -> dict[str, Any]:
    applied = accounts.quotas_of(
        org, settings.demo_quota_per_org, settings.evaluation_quota_per_org
    )
    return {
        "organisation": org.slug,
        "demos": org.demo_quota,
        "evaluations": org.evaluation_quota,
        "demos_applied": applied.demos,
        "evaluations_applied": applied.evaluations,
    }


@router.put(
    "/orgs/{slug}/quotas",
    summary="Fixer les quotas d'une organisation (administrateurs)",
    responses={200: {"model": QuotasOut}, **ERRORS},
)
def set_quotas(
    slug: str, body: QuotasIn, caller: AdminDep, session: SessionDep, settings: SettingsDep
) -> JSONResponse:
    org = accounts.set_quotas(session, caller, slug, body.demos, body.evaluations)
    return JSONResponse(quotas_body(org, settings))


@router.post(
    "/tokens",
    status_code=status.HTTP_201_CREATED,
    summary="Créer un jeton (affiché une seule fois)",
    responses={201: {"model": TokenOut}, **ERRORS},
)
def create_token(body: TokenIn, caller: AdminDep, session: SessionDep) -> JSONResponse:
    issued = accounts.create_token(
        session, caller, body.organisation, body.role, body.user, body.label, body.expires_at
    )
    return JSONResponse(
        {
            "prefix": issued.prefix,
            "organisation": issued.organisation,
            "user": issued.user,
            "role": issued.role.value,
            "token": issued.token,
        },
        status_code=status.HTTP_201_CREATED,
        headers={"Cache-Control": "no-store"},
    )


@router.get(
    "/tokens",
    summary="Les jetons (jamais leur valeur)",
    responses={200: {"model": list[TokenOut]}, **ERRORS},
)
def list_tokens(
    caller: AdminDep, session: SessionDep, organisation: str | None = None
) -> JSONResponse:
    rows = accounts.list_tokens(session, organisation)
    return JSONResponse(
        [
            {
                "prefix": t.prefix,
                "organisation": t.user.organisation.slug,
                "user": t.user.name,
                "role": t.user.role,
                "created_at": t.created_at.isoformat(),
                "revoked": t.revoked_at is not None,
                "label": t.label,
                "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
                "expires_at": t.expires_at.isoformat() if t.expires_at else None,
                "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
            }
            for t in rows
        ]
    )


@router.delete("/tokens/{prefix}", status_code=204, summary="Révoquer un jeton", responses=ERRORS)
def revoke_token(prefix: str, caller: AdminDep, session: SessionDep) -> None:
    accounts.revoke_token(session, caller, prefix)


@router.get("/me", summary="Qui suis-je ? (niveau d'accès de votre jeton)")
def whoami(caller: CallerDep) -> JSONResponse:
    return JSONResponse(
        {
            "tier": caller.tier.label,
            "organisation": caller.organisation,
            "user": caller.user,
            "token": caller.token_prefix,
        }
    )


@router.get("/audit", summary="Journal d'audit (administrateurs)", responses=ERRORS)
def audit_log(
    caller: AdminDep,
    session: SessionDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Événements au plus")] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Événements sautés")] = 0,
    action: Annotated[
        str | None, Query(max_length=100, description="Action exacte, ex. model.alias")
    ] = None,
    actor: Annotated[
        str | None, Query(max_length=200, description="Contenu dans l'auteur (sans casse)")
    ] = None,
    target: Annotated[
        str | None,
        Query(max_length=200, description="Contenu dans l'objet : un modèle, une organisation…"),
    ] = None,
    since: Annotated[
        str | None,
        Query(
            max_length=40,
            description="Depuis : date (AAAA-MM-JJ, jour compris) ou date et heure ISO 8601, "
            "heure de Paris sauf décalage indiqué",
        ),
    ] = None,
    until: Annotated[
        str | None,
        Query(max_length=40, description="Jusqu'à : date (jour compris) ou date et heure (exclue)"),
    ] = None,
) -> JSONResponse:
    """Les événements du journal, du plus récent au plus ancien ; leur nombre total
    (tous filtres appliqués) dans l'en-tête ``X-Total-Count``."""
    query = accounts.audit_query(
        ZoneInfo(settings.timezone),
        actor=actor,
        action=action,
        target=target,
        since=since,
        until=until,
    )
    events, total = accounts.search_audit(session, query, offset=offset, limit=limit)
    return JSONResponse(
        [
            {
                "at": e.at.isoformat(),
                "actor": e.actor,
                "organisation": e.organisation,
                "action": e.action,
                "target": e.target,
                "details": e.details,
            }
            for e in events
        ],
        headers={"X-Total-Count": str(total)},
    )
