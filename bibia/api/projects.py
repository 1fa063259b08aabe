"""Routes of the project records: territorial AI initiatives, with or without models."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from bibia import catalogue
from bibia.deps import CallerDep, ExpertDep, RegistryDep, SessionDep
from bibia.schemas import ERRORS, Page, ProjectOut
from domain.errors import InvalidInput
from registry.card import Status, Theme, parse_project
from registry.refs import check_slug

router = APIRouter(prefix="/api/v1/projects", tags=["projets"])


@router.get(
    "",
    summary="Parcourir et rechercher les projets",
    responses={200: {"model": Page[ProjectOut]}, **ERRORS},
)
def list_projects(
    caller: CallerDep,
    registry: RegistryDep,
    session: SessionDep,
    q: Annotated[
        str | None, Query(max_length=200, description="Texte libre", examples=["cantine"])
    ] = None,
    theme: Annotated[Theme | None, Query()] = None,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    owner: Annotated[
        str | None, Query(max_length=200, description="Collectivité : nom ou SIREN")
    ] = None,
    territory: Annotated[str | None, Query(max_length=200)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JSONResponse:
    return JSONResponse(
        catalogue.list_projects(
            session,
            registry,
            caller,
            q=q,
            theme=theme.value if theme else None,
            status=status_.value if status_ else None,
            owner=owner,
            territory=territory,
            page=page,
            per_page=per_page,
        )
    )


@router.get(
    "/{slug}", summary="Un projet et ses modèles", responses={200: {"model": ProjectOut}, **ERRORS}
)
def get_project(
    slug: str, caller: CallerDep, registry: RegistryDep, session: SessionDep
) -> JSONResponse:
    return JSONResponse(catalogue.project_detail(session, registry, caller, check_slug(slug)))


@router.put(
    "/{slug}",
    summary="Créer ou remplacer un projet",
    description=(
        "Réservé aux experts d'une collectivité porteuse du projet, et aux administrateurs. Les porteurs sont des "
        "organisations de bibia, désignées par leur SIREN (leur nom est celui qu'enregistre bibia). Une autre "
        "collectivité nommée parmi `owners` est invitée : elle ne devient porteuse qu'en acceptant "
        "(`POST /api/v1/projects/{slug}/invitations/accept`). Seul un administrateur, ou la collectivité "
        "elle-même, retire un porteur."
    ),
    responses={200: {"model": ProjectOut}, 201: {"model": ProjectOut}, **ERRORS},
)
def put_project(
    slug: str, body: dict[str, Any], caller: ExpertDep, registry: RegistryDep, session: SessionDep
) -> JSONResponse:
    project = parse_project(body)
    if project.slug != slug:
        raise InvalidInput(
            f"l'identifiant du corps ({project.slug}) diffère de celui de l'adresse ({slug})"
        )
    _, created = catalogue.upsert_project(session, caller, project)
    session.flush()
    return JSONResponse(
        catalogue.project_detail(session, registry, caller, slug),
        status_code=201 if created else 200,
    )


@router.post(
    "/{slug}/invitations/accept",
    summary="Accepter l'invitation à porter un projet",
    description=(
        "Réservé aux experts de la collectivité invitée : elle devient porteuse du projet "
        "(ses experts peuvent alors le modifier et y rattacher leurs modèles)."
    ),
    responses={200: {"model": ProjectOut}, **ERRORS},
)
def accept_invitation(
    slug: str, caller: ExpertDep, registry: RegistryDep, session: SessionDep
) -> JSONResponse:
    catalogue.answer_invitation(session, caller, slug, accept=True)
    return JSONResponse(catalogue.project_detail(session, registry, caller, check_slug(slug)))


@router.post(
    "/{slug}/invitations/decline",
    summary="Décliner l'invitation à porter un projet",
    description="Réservé aux experts de la collectivité invitée : l'invitation est retirée du projet.",
    responses={200: {"model": ProjectOut}, **ERRORS},
)
def decline_invitation(
    slug: str, caller: ExpertDep, registry: RegistryDep, session: SessionDep
) -> JSONResponse:
    catalogue.answer_invitation(session, caller, slug, accept=False)
    return JSONResponse(catalogue.project_detail(session, registry, caller, check_slug(slug)))
