"""Routes of the model catalogue: browse (any tier), register and alias (experts)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile, status
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from bibia import catalogue
from bibia.deps import CallerDep, ExpertDep, RegistryDep, SessionDep, SettingsDep, get_caller
from bibia.schemas import ERRORS, AliasIn, ModelDetail, ModelOut, Page, VersionOut
from bibia.uploads import extract_model_archive, parse_card_text
from registry.card import Status, Task, Theme, parse_card
from registry.entries import CatalogueQuery
from registry.export import to_etalab, to_hf_readme
from registry.refs import check_alias, check_name, check_version

# A token, when one is presented, is always checked (a revoked token is a 401 everywhere).
router = APIRouter(prefix="/api/v1/models", tags=["modèles"], dependencies=[Depends(get_caller)])

PageQ = Annotated[int, Query(ge=1, le=100_000, description="Numéro de page, à partir de 1")]
PerPageQ = Annotated[int, Query(ge=1, le=100, description="Éléments par page (100 au plus)")]


@router.get(
    "",
    summary="Parcourir et rechercher le catalogue des modèles",
    response_description="Une page de modèles, avec leur fiche filtrée selon votre niveau d'accès",
    responses={200: {"model": Page[ModelOut]}, **ERRORS},
)
def list_models(
    caller: CallerDep,
    registry: RegistryDep,
    session: SessionDep,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Texte libre (titre, résumé, mots-clés, collectivité, territoire)",
            examples=["cantine"],
        ),
    ] = None,
    theme: Annotated[Theme | None, Query(description="Thème")] = None,
    owner: Annotated[
        str | None, Query(max_length=200, description="Collectivité propriétaire : nom ou SIREN")
    ] = None,
    territory: Annotated[str | None, Query(max_length=200, description="Territoire")] = None,
    status_: Annotated[Status | None, Query(alias="status", description="Statut")] = None,
    task: Annotated[Task | None, Query(description="Tâche du modèle")] = None,
    project: Annotated[
        str | None, Query(max_length=64, description="Identifiant du projet")
    ] = None,
    page: PageQ = 1,
    per_page: PerPageQ = 20,
) -> JSONResponse:
    query = CatalogueQuery(
        q=q,
        theme=theme.value if theme else None,
        owner=owner,
        territory=territory,
        status=status_.value if status_ else None,
        task=task.value if task else None,
        project=project,
    )
    return JSONResponse(catalogue.list_models(session, registry, caller, query, page, per_page))


@router.get(
    "/{name}",
    summary="Un modèle : sa fiche, ses versions et ses alias",
    responses={200: {"model": ModelDetail}, **ERRORS},
)
def get_model(name: str, caller: CallerDep, registry: RegistryDep) -> JSONResponse:
    return JSONResponse(catalogue.model_detail(registry, caller, check_name(name)))


@router.get(
    "/{name}/versions/{version}",
    summary="Une version : métriques, signature",
    responses={200: {"model": VersionOut}, **ERRORS},
)
def get_version(name: str, version: str, caller: CallerDep, registry: RegistryDep) -> JSONResponse:
    return JSONResponse(
        catalogue.version_detail(registry, caller, check_name(name), check_version(version))
    )


@router.get(
    "/{name}/aliases/{alias}",
    summary="La version qu'un alias désigne",
    responses={200: {"model": VersionOut}, **ERRORS},
)
def get_alias(name: str, alias: str, caller: CallerDep, registry: RegistryDep) -> JSONResponse:
    return JSONResponse(
        catalogue.version_by_alias(registry, caller, check_name(name), check_alias(alias))
    )


@router.get(
    "/{name}/card.md",
    summary="La fiche au format README de Hugging Face (champs publics)",
    response_class=PlainTextResponse,
    responses=ERRORS,
)
def card_markdown(name: str, registry: RegistryDep) -> PlainTextResponse:
    summary = registry.get(check_name(name))
    if summary.card is None:
        return PlainTextResponse(
            f"# {name}\n\nCe modèle n'a pas de fiche.\n", media_type="text/markdown"
        )
    return PlainTextResponse(
        to_hf_readme(summary.card, name), media_type="text/markdown; charset=utf-8"
    )


@router.get(
    "/{name}/etalab",
    summary="La fiche au format de l'inventaire des algorithmes publics (Etalab)",
    responses=ERRORS,
)
def card_etalab(name: str, registry: RegistryDep) -> JSONResponse:
    summary = registry.get(check_name(name))
    if summary.card is None:
        return JSONResponse({"identifiant": name})
    return JSONResponse(to_etalab(summary.card, name))


@router.post(
    "/{name}/versions",
    status_code=status.HTTP_201_CREATED,
    summary="Enregistrer un modèle (ou une nouvelle version) avec sa fiche",
    description=(
        "Réservé aux experts de la collectivité propriétaire. Corps multipart : `card` (fiche JSON ou YAML), "
        "`model` (archive .tar.gz d'un dossier de modèle MLflow), `alias` (facultatif). La fiche est validée avant "
        "toute écriture ; l'enregistrement aboutit entièrement ou ne laisse rien. Le service ne charge jamais le "
        "modèle : seul un bac à sable le fait."
    ),
    responses={
        201: {"model": VersionOut},
        413: {"description": "Trop volumineux"},
        422: {"description": "Fiche ou modèle invalide"},
        **ERRORS,
    },
)
async def register_version(
    name: str,
    caller: ExpertDep,
    registry: RegistryDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    card: Annotated[UploadFile, File(description="Fiche du modèle (JSON ou YAML)")],
    model: Annotated[UploadFile, File(description="Archive .tar.gz du dossier du modèle MLflow")],
    alias: Annotated[
        str | None, Form(description="Alias à faire pointer sur la nouvelle version")
    ] = None,
) -> JSONResponse:
    check_name(name)
    if alias:
        check_alias(alias)

    # Everything that reads the untrusted uploads (card, archive, MLmodel) runs here, in the
    # threadpool: a costly upload slows its own request, never the event loop (nor /healthz).
    def work() -> dict[str, Any]:
        parsed = parse_card_text(
            card.file.read(settings.max_card_bytes + 1), settings.max_card_bytes
        )
        catalogue.check_can_register(registry, session, caller, name, parsed)
        gate = request.app.state.evaluations.check_promotion
        catalogue.check_publication_alias(registry, name, alias or None, gate)
        with tempfile.TemporaryDirectory(prefix="bibia-upload-", dir=settings.cache_dir) as tmp:
            model_dir = extract_model_archive(model.file, Path(tmp), settings.max_model_bytes)
            return catalogue.register_version(
                registry,
                session,
                caller,
                name,
                model_dir,
                parsed,
                alias=alias or None,
                promotion_gate=gate,
            )

    body = await run_in_threadpool(work)
    return JSONResponse(body, status_code=status.HTTP_201_CREATED)


@router.put(
    "/{name}/card",
    summary="Remplacer la fiche d'un modèle",
    responses={200: {"model": ModelOut}, **ERRORS},
)
def put_card(
    name: str, caller: ExpertDep, registry: RegistryDep, session: SessionDep, body: dict[str, Any]
) -> JSONResponse:
    return JSONResponse(
        catalogue.update_card(registry, session, caller, check_name(name), parse_card(body))
    )


@router.put(
    "/{name}/aliases/{alias}",
    summary="Faire pointer un alias sur une version",
    responses={200: {"model": VersionOut}, **ERRORS},
)
def put_alias(
    name: str,
    alias: str,
    body: AliasIn,
    caller: ExpertDep,
    registry: RegistryDep,
    session: SessionDep,
    request: Request,
) -> JSONResponse:
    return JSONResponse(
        catalogue.set_alias(
            registry,
            session,
            caller,
            check_name(name),
            check_alias(alias),
            body.version,
            promotion_gate=request.app.state.evaluations.check_promotion,
        )
    )


@router.delete(
    "/{name}/aliases/{alias}", status_code=204, summary="Supprimer un alias", responses=ERRORS
)
def delete_alias(
    name: str, alias: str, caller: ExpertDep, registry: RegistryDep, session: SessionDep
) -> None:
    catalogue.delete_alias(registry, session, caller, check_name(name), check_alias(alias))
