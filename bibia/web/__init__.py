"""bibia's web pages: the catalogue in French, server-rendered; no page needs a script.

``create_app`` includes :data:`router`, mounts :func:`static_files` at
``/static`` and answers HTTP errors with :func:`http_error` (French HTML
pages for browsers, the usual JSON for everything else).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from bibia.errors import wants_page
from bibia.web import account, admin, demos, evaluations, oidc, pages, publish, versions
from bibia.web.render import HERE, error_page

router = APIRouter(include_in_schema=False)
router.include_router(pages.router)
router.include_router(account.router)
router.include_router(oidc.router)
router.include_router(demos.router)
router.include_router(demos.state_router)
router.include_router(evaluations.router)
router.include_router(admin.router)
router.include_router(publish.router)
router.include_router(versions.router)

MESSAGES = {
    404: "cette adresse ne correspond à aucune page de bibia. Vérifiez-la, ou repartez du catalogue.",
    405: "cette adresse existe, mais pas pour ce type de requête.",
}


JSON_ERRORS = {
    400: ("requete_invalide", "corps de la requête illisible : JSON ou formulaire mal formé"),
    404: ("introuvable", "aucune route ne correspond à {path} ; la liste des routes est sur /docs"),
    405: ("methode_non_permise", "{path} existe, mais pas pour cette méthode HTTP ; voir /docs"),
}


def static_files() -> StaticFiles:
    """The stylesheet and the waiting page's script (allowed by the pages' CSP nonce)."""
    return StaticFiles(directory=HERE / "static")


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """Routing errors (unknown address, wrong method): a French page for browsers, JSON otherwise."""
    if wants_page(request) and exc.status_code in MESSAGES:
        return error_page(request, exc.status_code, MESSAGES[exc.status_code])
    if exc.status_code in JSON_ERRORS:
        code, message = JSON_ERRORS[exc.status_code]
        return JSONResponse(
            {"error": code, "message": message.format(path=request.url.path)},
            status_code=exc.status_code,
        )
    return await http_exception_handler(request, exc)
