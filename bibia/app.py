"""The FastAPI application: ``create_app(settings, *, registry=None, runner=None)``.

Cross-cutting behaviour is set up here: a bibia error a route raises is
answered by :func:`bibia.errors.error_response` (its status from the edge
table), the guards of :mod:`bibia.guards` and the CSRF check of
:mod:`bibia.web.csrf` wrap every request (in the order listed at the end of
:func:`create_app`), and unexpected errors are logged server-side and answered
without a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException

from bibia import __version__, docs, gateway, proxy, web
from bibia.api import admin, benchmarks, demos, evaluation_results, models, projects, sessions
from bibia.api import evaluations as evaluation_api
from bibia.db.engine import unavailable as database_unavailable
from bibia.demos import DemoService
from bibia.errors import error_response
from bibia.evaluations.service import EvaluationService
from bibia.guards import (
    SECURITY_HEADERS,
    BodyLimit,
    BodyReadTimeout,
    FailedAuthBrake,
    PerClientWindow,
    SecurityHeaders,
)
from bibia.services import Services
from bibia.settings import Settings
from bibia.web.csrf import CsrfProtect, DemoFormTokens
from domain.errors import BibiaError
from registry.store import Registry
from runners.base import Runner

log = logging.getLogger("bibia")

DESCRIPTION = """
**bibia**, la Bibliothèque IA territorialisée : le catalogue des modèles d'IA
que les collectivités partagent, avec leurs fiches, leurs métriques et leurs
démonstrateurs.

Trois niveaux d'accès : **public** (catalogue), **membre** d'une collectivité
(contacts, retours d'expérience, démonstrateurs), **expert** (artefacts, code,
enregistrement). Authentification : `Authorization: Bearer <jeton>`.

Les experts récupèrent les modèles avec le client MLflow qu'ils utilisent
déjà : `MLFLOW_TRACKING_URI=<cette adresse>` et `MLFLOW_TRACKING_TOKEN=<jeton>`.
"""


def _validation_message(exc: RequestValidationError) -> dict[str, Any]:
    """bibia's 422 body, as the OpenAPI document describes it (:class:`bibia.docs.ValidationErrorOut`)."""
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in {"body", "query", "path"})
        problems.append(
            docs.FieldErrorOut(
                field=loc or "(requête)", message=str(err.get("msg", "valeur invalide"))
            )
        )
    fields = ", ".join(p.field for p in problems)
    body = docs.ValidationErrorOut(
        error="requete_invalide", message=f"paramètres invalides : {fields}", details=problems
    )
    return body.model_dump()


def create_app(
    settings: Settings, *, registry: Registry | None = None, runner: Runner | None = None
) -> FastAPI:
    """Build the bibia service.

    Args:
        settings: the one settings object (see :class:`bibia.settings.Settings`).
        registry: a registry facade to use instead of the one built from settings.
        runner: a demonstrator runner (``runners.base.Runner``) to use instead of the default.
    """
    services = Services.build(settings, registry=registry, runner=runner)
    manager = DemoService(services)
    evaluations = EvaluationService(services, manager)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        manager.start_background()
        evaluations.start_background()
        yield
        evaluations.shutdown()
        manager.shutdown()
        if hasattr(app.state, "demo_clients"):
            await app.state.demo_clients.aclose()
        services.db.dispose()

    app = FastAPI(
        title="bibia — Bibliothèque IA territorialisée",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=docs.TAGS,
        # bibia serves both documentation pages itself, from its own origin (bibia.docs)
        docs_url=None,
        redoc_url=None,
    )
    docs.install_openapi(app)
    app.state.services = services
    app.state.demos = manager
    app.state.evaluations = evaluations

    @app.exception_handler(BibiaError)
    async def bibia_error(request: Request, exc: BibiaError) -> Response:
        return error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(_validation_message(exc), status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        outage = database_unavailable(exc)
        if outage is not None:  # the database is down: a French 503 (API or page), not a 500
            log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
            return error_response(request, outage, headers=SECURITY_HEADERS)
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        # Answered outside the middleware stack (Starlette's last resort): the headers are set here.
        return JSONResponse(
            {
                "error": "erreur_interne",
                "message": "erreur interne du service ; elle a été journalisée",
            },
            status_code=500,
            headers=SECURITY_HEADERS,
        )

    @app.get("/healthz", tags=["service"], summary="Le service est prêt")
    def healthz() -> JSONResponse:
        with services.db.session() as session:
            session.execute(text("SELECT 1"))
        services.registry.ping()
        return JSONResponse({"status": "ok", "version": __version__})

    app.include_router(models.router)
    app.include_router(projects.router)
    app.include_router(admin.router)
    app.include_router(sessions.router)
    app.include_router(gateway.router)
    app.include_router(demos.router)
    app.include_router(benchmarks.router)
    app.include_router(evaluation_api.router)
    app.include_router(evaluation_results.router)
    app.include_router(proxy.router)
    app.include_router(docs.router)  # /docs, /redoc and their files, offline
    app.include_router(
        web.router
    )  # the French web pages (no scripts), and their error pages for browsers
    app.mount("/static", web.static_files(), name="static")
    app.exception_handler(StarletteHTTPException)(web.http_error)
    # Innermost first: the CSRF check reads form bodies that BodyLimit and BodyReadTimeout already bound.
    secret = settings.signing_secret()
    app.state.demo_form_tokens = DemoFormTokens(secret, int(settings.session_hours * 3600))
    # each start of a sign-in through the provider writes a row that lives ten minutes
    app.state.oidc_starts = PerClientWindow(settings.oidc_start_limit, settings.oidc_start_window_s)
    app.add_middleware(CsrfProtect, settings=settings, secret=secret)
    app.add_middleware(BodyLimit, settings=settings, services=services)
    app.add_middleware(FailedAuthBrake, settings=settings)
    app.add_middleware(BodyReadTimeout, settings=settings)
    app.add_middleware(SecurityHeaders)
    return app


def app_from_env() -> FastAPI:
    """ASGI factory for ``uvicorn --factory bibia.app:app_from_env`` (settings read at the edge)."""
    return create_app(Settings())
