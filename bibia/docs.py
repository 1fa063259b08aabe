"""The API documentation, served by bibia itself: Swagger UI at ``/docs``, ReDoc at ``/redoc``, offline.

FastAPI's own documentation pages load Swagger UI and ReDoc from a CDN (and
ReDoc's fonts from Google Fonts): on the air-gapped networks bibia targets
they are blank. Here both tools come from the npm registry, pinned by the
repository's ``package-lock.json`` and installed by ``make install`` into
``Settings.assets_dir``. bibia serves:

- the two pages (French, ``lang="fr"``), with a Content-Security-Policy of
  their own, :data:`DOCS_CSP`: bibia's usual one forbids every script;
  these allow scripts of bibia's origin only, the inline styles both tools
  set on their elements (React style attributes, styled-components' sheets),
  and the web worker ReDoc starts from a ``blob:`` URL for its search index;
- the few files they need, named in an allow-list (:data:`ASSETS`), never a
  path under ``node_modules`` taken from a request, at
  ``/docs/ressources/<digest>/<name>``: the digest is the file's content
  hash, so a long, immutable cache is safe (a new lock, a new URL);
- the initialisers (``bibia/docs_static/``), files rather than inline
  scripts, which read the schema's URL from a ``data-`` attribute.

Without the assets (a bibia installed by pip alone), both pages answer a
French 503 page saying how to install them; ``/openapi.json`` still works.

:func:`install_openapi` post-processes FastAPI's OpenAPI document, in one
place: FastAPI's English default texts in French, the 422 answer described
as bibia really sends it (:class:`ValidationErrorOut`), the bearer token
scheme behind Swagger UI's « Authorize » button, and French descriptions for
the schemas whose description would otherwise be a class's English
docstring.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from http import HTTPStatus
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from bibia.guards import security_headers
from bibia.web.render import error_page, templates
from domain.errors import NotFound

log = logging.getLogger("bibia.docs")

OWN = Path(__file__).parent / "docs_static"
OPENAPI_URL = "/openapi.json"
ASSET_ROUTE = "/docs/ressources"

#: The CSP of the two documentation pages (bibia's other pages allow no script at all).
#: ``script-src 'self'``: the tools' bundles and bibia's initialisers, nothing inline, no eval;
#: ``style-src 'unsafe-inline'``: Swagger UI sets style attributes, ReDoc injects its sheets;
#: ``img-src data:``: the icons both stylesheets embed; ``worker-src blob:``: ReDoc's search index
#: runs in a worker built from a blob; ``connect-src 'self'``: the schema, and Swagger UI's
#: « Try it out » requests, to bibia only.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src blob:; "
    "manifest-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
CACHE_FOREVER = "public, max-age=31536000, immutable"

JS = "text/javascript; charset=utf-8"
CSS = "text/css; charset=utf-8"


@dataclass(frozen=True)
class Asset:
    """One file the documentation pages load: under the npm assets (``npm``) or bibia's own (``bibia``)."""

    source: Literal["npm", "bibia"]
    path: str
    media_type: str


#: Every file the asset route may send, by the name in its URL. Nothing else is ever read.
ASSETS: dict[str, Asset] = {
    "swagger-ui-bundle.js": Asset("npm", "swagger-ui-dist/swagger-ui-bundle.js", JS),
    "swagger-ui.css": Asset("npm", "swagger-ui-dist/swagger-ui.css", CSS),
    "favicon-32x32.png": Asset("npm", "swagger-ui-dist/favicon-32x32.png", "image/png"),
    "redoc.standalone.js": Asset("npm", "redoc/bundles/redoc.standalone.js", JS),
    "swagger-init.js": Asset("bibia", "swagger-init.js", JS),
    "redoc-init.js": Asset("bibia", "redoc-init.js", JS),
    "docs.css": Asset("bibia", "docs.css", CSS),
}
PAGES = {
    "swagger": ("docs_swagger.html", ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-init.js")),
    "redoc": ("docs_redoc.html", ("redoc.standalone.js", "redoc-init.js")),
}
COMMON = ("docs.css", "favicon-32x32.png")

MISSING = (
    "la documentation de l'API n'est pas installée sur ce serveur. Swagger UI et ReDoc viennent "
    "du registre npm : dans le dépôt de bibia, « make install » les installe (npm ci, versions "
    "fixées par package-lock.json) dans node_modules ; un autre dossier se règle avec "
    "BIBIA_ASSETS_DIR. En attendant, le schéma OpenAPI de l'API reste lisible à /openapi.json."
)

router = APIRouter(include_in_schema=False)


def asset_file(assets_dir: Path, name: str) -> Path | None:
    """The file behind an allow-listed ``name``, if it is installed (a regular file); else None."""
    asset = ASSETS.get(name)
    if asset is None:
        return None
    root = assets_dir if asset.source == "npm" else OWN
    path = root / asset.path
    return path if path.is_file() else None


@lru_cache(maxsize=64)
def _digest(path: Path, mtime_ns: int, size: int) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()[:16]


def digest(path: Path) -> str:
    """The content hash in an asset's URL (computed once per version of the file)."""
    st = path.stat()
    return _digest(path, st.st_mtime_ns, st.st_size)


def asset_urls(assets_dir: Path, names: tuple[str, ...]) -> dict[str, str] | None:
    """The versioned URL of each asset, or None if one of them is not installed."""
    urls = {}
    for name in names:
        path = asset_file(assets_dir, name)
        if path is None:
            log.warning(
                "API documentation: %s is missing under %s (make install runs npm ci)",
                ASSETS[name].path,
                assets_dir if ASSETS[name].source == "npm" else OWN,
            )
            return None
        urls[name] = f"{ASSET_ROUTE}/{digest(path)}/{name}"
    return urls


def _page(request: Request, kind: str) -> Response:
    template, names = PAGES[kind]
    assets_dir: Path = request.app.state.services.settings.assets_dir
    urls = asset_urls(assets_dir, names + COMMON)
    if urls is None:
        return error_page(
            request, 503, MISSING, title="Documentation de l'API indisponible sur ce serveur"
        )
    body = templates.get_template(template).render(assets=urls, openapi_url=OPENAPI_URL)
    headers = {**security_headers(), "Content-Security-Policy": DOCS_CSP}
    return HTMLResponse(body, headers=headers)


@router.get("/docs")
def swagger_ui(request: Request) -> Response:
    """Swagger UI: every operation, with « Try it out » (a bearer token through « Authorize »)."""
    return _page(request, "swagger")


@router.get("/redoc")
def redoc(request: Request) -> Response:
    """ReDoc: the same schema as a reference to read."""
    return _page(request, "redoc")


@router.get(ASSET_ROUTE + "/{version}/{name}")
def asset(request: Request, version: str, name: str) -> Response:
    """An allow-listed file of the documentation pages, at the URL of its current content (cached a year)."""
    assets_dir: Path = request.app.state.services.settings.assets_dir
    path = asset_file(assets_dir, name)
    if path is None or digest(path) != version:
        raise NotFound(f"ressource de la documentation introuvable : {name}")
    headers = {"Cache-Control": CACHE_FOREVER, "ETag": f'"{version}"'}
    if headers["ETag"] in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=ASSETS[name].media_type, headers=headers)


# ------------------------------------------------------------------ the OpenAPI document


class FieldErrorOut(BaseModel):
    model_config = ConfigDict(
        title="Champ refusé",
        json_schema_extra={"description": "Un paramètre ou un champ du corps refusé, et pourquoi"},
    )

    field: str = Field(
        description="Le paramètre ou le champ, en notation pointée ; « (requête) » pour la requête entière",
        examples=["per_page"],
    )
    message: str = Field(description="Ce qui ne va pas dans la valeur", examples=["au plus 100"])


class ValidationErrorOut(BaseModel):
    model_config = ConfigDict(
        title="Erreur de validation",
        json_schema_extra={
            "description": "La réponse 422 de bibia : des paramètres ou un corps qui ne respectent "
            "pas le schéma de la route"
        },
    )

    error: Literal["requete_invalide"] = Field(description="Code stable de l'erreur")
    message: str = Field(
        description="Le message, en français, qui nomme les champs refusés",
        examples=["paramètres invalides : per_page"],
    )
    details: list[FieldErrorOut] = Field(description="Chaque champ refusé")


#: FastAPI's default response descriptions (``http.HTTPStatus`` phrases, and its own two), in French.
STATUS_TEXTS = {
    200: "Réponse réussie",
    201: "Créé",
    202: "Accepté",
    204: "Fait (aucun contenu)",
    301: "Déplacé",
    302: "Redirection",
    303: "Redirection vers le résultat",
    307: "Redirection temporaire",
    400: "Requête invalide",
    401: "Authentification nécessaire",
    403: "Accès refusé",
    404: "Introuvable",
    405: "Méthode non autorisée",
    409: "Conflit",
    413: "Trop volumineux",
    422: "Erreur de validation",
    429: "Trop de requêtes",
    500: "Erreur interne",
    502: "Service en aval indisponible",
    503: "Service indisponible",
}
FASTAPI_DEFAULTS = {"Successful Response": 200, "Validation Error": 422}
VALIDATION_DESCRIPTION = (
    "Erreur de validation : un paramètre ou le corps ne respecte pas le schéma de la route ; "
    "`details` nomme chaque champ refusé"
)

#: French descriptions of the schemas whose description would be a class's (English) docstring.
SCHEMA_DESCRIPTIONS = {
    "Card": "La fiche d'un modèle : identification, finalité, données, modèle et responsabilités ; "
    "chaque champ a son niveau d'accès (public, membre, expert)",
    "Owner": "Une collectivité, identifiée par son SIREN",
    "Invitation": "Une collectivité invitée à porter un projet, qui n'a pas (encore) accepté",
    "Task": "Ce que fait le modèle ; le démonstrateur choisit son graphique d'après elle",
    "Theme": "Le thème de politique publique du projet",
    "Metric": "Un chiffre de l'évaluation, avec ce qu'il faut pour le lire : son nom en français "
    "(`label`), une explication en une ligne (`description`), son unité, et la référence à battre "
    "(sauf pour un chiffre de contexte, qui décrit l'évaluation sans la juger)",
    "QuotasIn": "Les quotas propres d'une organisation ; null : le réglage du service s'applique",
}

#: The tags of the operations, in the order the documentation shows them.
TAGS = [
    {
        "name": "modèles",
        "description": "Le catalogue des modèles : fiches, versions, alias, exports",
    },
    {"name": "projets", "description": "Les projets d'IA territoriaux, avec ou sans modèle"},
    {
        "name": "démonstrateurs",
        "description": "Lancer, suivre, prolonger et arrêter les démonstrateurs (membres)",
    },
    {
        "name": "évaluation",
        "description": "Tâches, jeux d'évaluation, évaluations vérifiées, comparaisons, classements",
    },
    {"name": "sessions", "description": "Vos sessions web ouvertes"},
    {
        "name": "administration",
        "description": "Organisations, jetons et journal d'audit",
    },
    {
        "name": "passerelle MLflow (experts)",
        "description": "Le sous-ensemble de l'API MLflow que le client MLflow appelle, en lecture seule",
    },
    {"name": "service", "description": "L'état du service"},
]

BEARER = {
    "jeton": {
        "type": "http",
        "scheme": "bearer",
        "description": "Un jeton bibia (créé par un administrateur, affiché une seule fois) : "
        "`Authorization: Bearer <jeton>`. Sans jeton, l'API répond au niveau public.",
    }
}


def _french(code: str, text: str) -> str:
    """A response's description: FastAPI's defaults and bare HTTP phrases in French, bibia's own kept."""
    if text in FASTAPI_DEFAULTS:
        return STATUS_TEXTS[FASTAPI_DEFAULTS[text]]
    if code.isdigit() and text == HTTPStatus(int(code)).phrase:
        return STATUS_TEXTS.get(int(code), text)
    return text


def _schema_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def french_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's OpenAPI document with bibia's texts: see the module docstring. Changes ``schema`` in place."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    generated = ValidationErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(generated.pop("$defs", {}))
    schemas[ValidationErrorOut.__name__] = generated
    for name, text in SCHEMA_DESCRIPTIONS.items():
        if name in schemas:
            schemas[name]["description"] = text

    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for code, response in operation.get("responses", {}).items():
                content = response.get("content", {}).get("application/json", {})
                if content.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                    content["schema"] = _schema_ref(ValidationErrorOut.__name__)
                    response["description"] = VALIDATION_DESCRIPTION
                    continue
                response["description"] = _french(code, response.get("description", ""))

    components["securitySchemes"] = BEARER
    # the token is optional everywhere: without it a route answers at the public tier (or 401)
    schema["security"] = [{"jeton": []}, {}]
    return schema


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi`` return :func:`french_openapi` of FastAPI's document (built once)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = french_openapi(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend it
