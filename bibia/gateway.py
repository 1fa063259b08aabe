"""The MLflow-compatible, read-only gateway: experts pull models with the stock MLflow client.

``MLFLOW_TRACKING_URI=<bibia> MLFLOW_TRACKING_TOKEN=<expert token>`` and then
``mlflow.pyfunc.load_model("models:/cantine-nantes@production")`` works
against the service itself. This module answers the read-only subset of
MLflow's REST API that the client calls for that (measured with the
MLflow 3.17 client, see DESIGN.md), every route at the expert tier.

What it guarantees:

- errors come out in MLflow's JSON shape (``{"error_code", "message"}``),
  with the status :mod:`bibia.errors` gives them (:class:`MlflowRoute`), so
  that the client raises a readable ``MlflowException``;
- the real artifact location (a version's ``source``) is never returned:
  versions point at ``mlflow-artifacts:/bibia-models/<name>/<version>``,
  which only this gateway serves;
- the artifact routes serve files of existing versions only, from the
  facade's local cached copy, and refuse any path that could leave it;
- nothing here loads (unpickles) a model: the gateway serves files.

Routes are plain ``def`` because the registry facade blocks (FastAPI runs
them in its threadpool).
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from bibia import artifacts
from bibia.auth import Caller
from bibia.deps import RegistryDep, require_pull
from bibia.errors import error_response
from domain import errors
from registry.refs import check_alias, check_name, check_version
from registry.store import Registry

log = logging.getLogger("bibia.gateway")

ARTIFACTS_PREFIX = "bibia-models"
ARTIFACTS_ROUTE = "/api/2.0/mlflow-artifacts/artifacts"
# MLflow's own page limit (registered models) and the MLflow client's default page of versions:
# a larger max_results is a 400 saying so, never a value handed to MLflow.
MAX_MODELS_PER_PAGE = 1_000
MAX_VERSIONS_PER_PAGE = 10_000

EXPERT_ONLY = (
    "Passerelle compatible MLflow, en lecture seule, **réservée aux experts** "
    "(`Authorization: Bearer <jeton expert>`, c'est-à-dire `MLFLOW_TRACKING_TOKEN`). "
    'Erreurs au format MLflow : `{"error_code": ..., "message": ...}`.'
)

# bibia error -> MLflow's error code (the first class that matches); the status is bibia's own.
_MLFLOW_CODES: list[tuple[type[errors.BibiaError], str]] = [
    (errors.InvalidInput, "INVALID_PARAMETER_VALUE"),
    (errors.Unauthorized, "UNAUTHENTICATED"),
    (errors.Forbidden, "PERMISSION_DENIED"),
    (errors.NotFound, "RESOURCE_DOES_NOT_EXIST"),
    (errors.Conflict, "RESOURCE_ALREADY_EXISTS"),
    (errors.QuotaExceeded, "RESOURCE_EXHAUSTED"),
    (errors.RegistryUnavailable, "TEMPORARILY_UNAVAILABLE"),
]


_HINTS = {
    errors.Unauthorized: " ; avec le client MLflow : MLFLOW_TRACKING_TOKEN=<jeton expert>",
    errors.Forbidden: " ; demandez un jeton expert à l'administrateur de votre collectivité",
}


def mlflow_error(request: Request, exc: errors.BibiaError) -> Response:
    """``exc`` in MLflow's error shape, with its status (a hint for MLflow users on 401/403)."""
    code, cls = next(
        ((code, cls) for cls, code in _MLFLOW_CODES if isinstance(exc, cls)),
        ("INTERNAL_ERROR", errors.BibiaError),
    )
    body = {"error_code": code, "message": exc.message + _HINTS.get(cls, "")}
    return error_response(request, exc, page=False, body=body)


UNREADABLE_BODY = "corps de la requête illisible : un objet JSON est attendu"

# What a query parameter fails on, in French (pydantic's own messages are English).
_PROBLEMS = {
    "missing": "manquant",
    "int_parsing": "un entier est attendu",
    "int_type": "un entier est attendu",
    "less_than_equal": "{le} au plus",
    "greater_than_equal": "{ge} au moins",
    "string_too_long": "{max_length} caractères au plus",
    "string_type": "un texte est attendu",
    "list_type": "une liste est attendue",
    "model_attributes_type": "un objet JSON est attendu",
    "dict_type": "un objet JSON est attendu",
}


def _problems(exc: RequestValidationError) -> str:
    """``max_results (1000 au plus), name (manquant)``: each field with what it fails on."""
    parts = []
    for error in exc.errors():
        field = str(error.get("loc", ("?",))[-1])
        template = _PROBLEMS.get(str(error.get("type")))
        try:
            why = template.format(**(error.get("ctx") or {})) if template else "valeur invalide"
        except (KeyError, IndexError):
            why = "valeur invalide"
        parts.append(f"{field} ({why})")
    return ", ".join(parts)


class MlflowRoute(APIRoute):
    """A route whose errors (tier checks, validation, bibia errors) come out in MLflow's format."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except errors.BibiaError as exc:
                return mlflow_error(request, exc)
            except RequestValidationError as exc:
                if any(e.get("type") == "json_invalid" for e in exc.errors()):
                    return mlflow_error(request, errors.InvalidInput(UNREADABLE_BODY))
                return mlflow_error(
                    request,
                    errors.InvalidInput(f"paramètres invalides ou manquants : {_problems(exc)}"),
                )
            except HTTPException as exc:
                if exc.status_code != 400:
                    raise
                # FastAPI's answer to a body it cannot decode at all ("There was an error parsing the body"):
                # not UTF-8, nested too deep, an integer of thousands of digits.
                return mlflow_error(request, errors.InvalidInput(UNREADABLE_BODY))

        return route


router = APIRouter(
    tags=["passerelle MLflow (experts)"],
    route_class=MlflowRoute,
    dependencies=[Depends(require_pull)],
    responses={
        401: {"description": "Jeton absent ou invalide (`UNAUTHENTICATED`)"},
        403: {"description": "Réservé aux experts (`PERMISSION_DENIED`)"},
    },
)

# The caller the router's tier check let through (the same dependency: resolved once per request).
PullerDep = Annotated[Caller, Depends(require_pull)]

NameQ = Annotated[str, Query(description="Nom du modèle enregistré", examples=["cantine-nantes"])]
VersionQ = Annotated[str, Query(description="Numéro de version", examples=["1"])]


def artifacts_uri(name: str, version: int | str) -> str:
    """The ``mlflow-artifacts:`` URI this gateway serves a version's files under."""
    return f"mlflow-artifacts:/{ARTIFACTS_PREFIX}/{name}/{version}"


def _public_version(body: dict[str, Any]) -> dict[str, Any]:
    """A REST model version without its real location (``source``) or user ids."""
    body = dict(body)
    body["source"] = artifacts_uri(body["name"], body["version"])
    for key in ("run_link", "user_id"):
        body.pop(key, None)
    return body


def _public_model(body: dict[str, Any]) -> dict[str, Any]:
    body = dict(body)
    body.pop("user_id", None)
    body["latest_versions"] = [_public_version(v) for v in body.get("latest_versions", [])]
    return body


# ------------------------------------------------------------------ server


@router.get(
    "/api/3.0/mlflow/server-info",
    summary="Capacités du serveur (client MLflow)",
    description=EXPERT_ONLY,
)
def server_info() -> dict[str, Any]:
    return {
        "store_type": None,
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": False,
        "multipart_downloads_enabled": False,
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
        "features_enabled": {"gateway": False},
    }


# ------------------------------------------------------- registered models


@router.get(
    "/api/2.0/mlflow/registered-models/get",
    summary="Un modèle enregistré (format MLflow)",
    description=EXPERT_ONLY,
)
def get_registered_model(name: NameQ, registry: RegistryDep) -> dict[str, Any]:
    return {"registered_model": _public_model(registry.rest_registered_model(check_name(name)))}


FilterQ = Annotated[
    str | None,
    Query(alias="filter", max_length=5000, description="Filtre MLflow (sauf sur « source_path »)"),
]
OrderByQ = Annotated[list[str] | None, Query(description="Tri MLflow, par exemple « name ASC »")]
PageTokenQ = Annotated[
    str | None, Query(max_length=5000, description="Jeton de page (next_page_token)")
]


def _artifacts_uri_of(name: str, version: int) -> str:
    return artifacts_uri(name, version)


@router.get(
    "/api/2.0/mlflow/registered-models/search",
    summary="Chercher des modèles enregistrés (format MLflow)",
    description=EXPERT_ONLY,
)
def search_registered_models(
    registry: RegistryDep,
    filter_: FilterQ = None,
    order_by: OrderByQ = None,
    page_token: PageTokenQ = None,
    max_results: Annotated[
        int, Query(ge=1, le=MAX_MODELS_PER_PAGE, description="Modèles par page (1 000 au plus)")
    ] = 100,
) -> dict[str, Any]:
    body = registry.rest_search(
        "registered_models", filter_, order_by, max_results, page_token, _artifacts_uri_of
    )
    body["registered_models"] = [_public_model(m) for m in body["registered_models"]]
    return body


@router.get(
    "/api/2.0/mlflow/registered-models/alias",
    summary="La version qu'un alias désigne (format MLflow)",
    description=EXPERT_ONLY,
)
def get_model_version_by_alias(
    name: NameQ,
    alias: Annotated[str, Query(description="Alias", examples=["production"])],
    registry: RegistryDep,
) -> dict[str, Any]:
    check_name(name)
    check_alias(alias)
    try:
        body = registry.rest_version_by_alias(name, alias, lambda v: artifacts_uri(name, v))
    except (errors.NotFound, errors.InvalidInput) as exc:  # say which: the model, or its alias
        known = registry.get(name).aliases  # raises NotFound naming the model
        if alias in known:
            raise
        listed = ", ".join(sorted(known)) or "aucun"
        raise errors.NotFound(
            f"le modèle « {name} » n'a pas d'alias « {alias} » (alias existants : {listed})"
        ) from exc
    return {"model_version": _public_version(body)}


class LatestVersionsIn(BaseModel):
    name: str
    stages: list[str] = []


def _latest_versions(registry: Registry, name: str, stages: list[str]) -> dict[str, Any]:
    latest = _public_model(registry.rest_registered_model(check_name(name)))["latest_versions"]
    wanted = {s.lower() for s in stages}
    if wanted:
        latest = [v for v in latest if str(v.get("current_stage", "None")).lower() in wanted]
    return {"model_versions": latest}


@router.get(
    "/api/2.0/mlflow/registered-models/get-latest-versions",
    summary="Dernières versions d'un modèle (format MLflow)",
    description=EXPERT_ONLY,
)
def get_latest_versions(
    name: NameQ,
    registry: RegistryDep,
    stages: Annotated[list[str] | None, Query(description="Étapes (obsolète)")] = None,
) -> dict[str, Any]:
    return _latest_versions(registry, name, stages or [])


@router.post(
    "/api/2.0/mlflow/registered-models/get-latest-versions",
    summary="Dernières versions d'un modèle (format MLflow, lecture seule)",
    description=EXPERT_ONLY + " Le client MLflow envoie cette lecture en POST.",
)
def post_latest_versions(body: LatestVersionsIn, registry: RegistryDep) -> dict[str, Any]:
    return _latest_versions(registry, body.name, body.stages)


# --------------------------------------------------------------- versions


@router.get(
    "/api/2.0/mlflow/model-versions/get",
    summary="Une version (format MLflow)",
    description=EXPERT_ONLY,
)
def get_model_version(name: NameQ, version: VersionQ, registry: RegistryDep) -> dict[str, Any]:
    number = check_version(version)
    body = registry.rest_model_version(check_name(name), number, artifacts_uri(name, number))
    return {"model_version": _public_version(body)}


@router.get(
    "/api/2.0/mlflow/model-versions/get-download-uri",
    summary="Où télécharger les artefacts d'une version",
    description=EXPERT_ONLY
    + " Répond toujours une URI `mlflow-artifacts:/bibia-models/<nom>/<version>` servie par cette passerelle.",
)
def get_download_uri(name: NameQ, version: VersionQ, registry: RegistryDep) -> dict[str, str]:
    number = check_version(version)
    registry.version(check_name(name), number)  # 404 for a version that does not exist
    return {"artifact_uri": artifacts_uri(name, number)}


@router.get(
    "/api/2.0/mlflow/model-versions/search",
    summary="Chercher des versions (format MLflow)",
    description=EXPERT_ONLY,
)
def search_model_versions(
    registry: RegistryDep,
    filter_: FilterQ = None,
    order_by: OrderByQ = None,
    page_token: PageTokenQ = None,
    max_results: Annotated[
        int, Query(ge=1, le=MAX_VERSIONS_PER_PAGE, description="Versions par page (10 000 au plus)")
    ] = 10_000,
) -> dict[str, Any]:
    body = registry.rest_search(
        "model_versions", filter_, order_by, max_results, page_token, _artifacts_uri_of
    )
    body["model_versions"] = [_public_version(v) for v in body["model_versions"]]
    return body


# -------------------------------------------------------------- artifacts


def _split_artifact_path(path: str) -> tuple[str, int, str]:
    """``bibia-models/<name>/<version>/<rest>`` -> (name, version, rest), refusing anything else.

    Raises:
        InvalidInput: absolute paths, ``.``/``..`` segments, backslashes, percent signs
            (double-encoded traversal), control characters, empty segments.
        NotFound: a path outside ``bibia-models/<name>/<version>``.
    """
    bad = f"chemin d'artefact refusé : {path[:200]!r}"
    if path.startswith("/") or "\\" in path or "%" in path or any(ord(c) < 32 for c in path):
        raise errors.InvalidInput(bad)
    parts = path.rstrip("/").split("/")
    if any(p in {"", ".", ".."} for p in parts):
        raise errors.InvalidInput(bad)
    if len(parts) < 3 or parts[0] != ARTIFACTS_PREFIX:
        raise errors.NotFound(
            f"artefact introuvable : {path[:200]!r} ; cette passerelle ne sert que "
            f"« {ARTIFACTS_PREFIX}/<modèle>/<version>/... » (voir model-versions/get-download-uri)"
        )
    name, version = check_name(parts[1]), check_version(parts[2])
    return name, version, "/".join(parts[3:])


@router.get(ARTIFACTS_ROUTE, summary="Lister les artefacts d'une version", description=EXPERT_ONLY)
def list_artifacts(
    registry: RegistryDep,
    caller: PullerDep,
    path: Annotated[
        str, Query(max_length=1000, description="bibia-models/<nom>/<version>[/<dossier>]")
    ] = "",
) -> dict[str, Any]:
    name, version, rest = _split_artifact_path(path)
    files = []
    for item in artifacts.listing(registry, caller, name, version, rest):
        entry: dict[str, Any] = {"path": posixpath.basename(item.path), "is_dir": item.is_dir}
        if item.size is not None:
            entry["file_size"] = item.size
        files.append(entry)
    return {"files": files}


@router.get(
    ARTIFACTS_ROUTE + "/{path:path}",
    summary="Télécharger un artefact d'une version",
    description=EXPERT_ONLY,
)
def download_artifact(path: str, registry: RegistryDep, caller: PullerDep) -> FileResponse:
    name, version, rest = _split_artifact_path(path)
    if not rest:
        raise errors.InvalidInput("indiquez un fichier : bibia-models/<modèle>/<version>/<fichier>")
    return artifacts.file_response(artifacts.file_path(registry, caller, name, version, rest))


# ---------------------------------------------------------- everything else


_ALL = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@router.api_route("/api/{api_version}/mlflow/{rest:path}", methods=_ALL, include_in_schema=False)
@router.api_route(
    "/api/{api_version}/mlflow-artifacts/{rest:path}", methods=_ALL, include_in_schema=False
)
def unsupported(request: Request) -> JSONResponse:
    """Any other MLflow call: a clear refusal, in MLflow's format, instead of a bare 404."""
    log.info("MLflow gateway: unsupported %s %s", request.method, request.url.path)
    return JSONResponse(
        {
            "error_code": "ENDPOINT_NOT_FOUND",
            "message": (
                f"la passerelle MLflow de bibia est en lecture seule et ne sert pas {request.method} "
                f"{request.url.path} ; elle sert load_model et download_artifacts "
                "sur « models:/NOM@ALIAS » ou « models:/NOM/VERSION ». Pour enregistrer un modèle : "
                "bibia register (ou POST /api/v1/models/<nom>/versions)"
            ),
        },
        status_code=404,
    )
