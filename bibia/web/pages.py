"""The catalogue's pages: home, models (list and card), projects (list and record).

Every read goes through :mod:`bibia.catalogue`, which applies the caller's
tier; these routes only choose what to ask for and which template shows it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse

from bibia import catalogue, policy
from bibia.auth import ANONYMOUS, Caller
from bibia.deps import COOKIE, RegistryDep, ServicesDep, SessionDep, browser_caller
from bibia.guards import security_headers
from bibia.web.render import LABELS, PageRoute, render
from bibia.web.results import model_sections
from demos.reference import CHART_FILE
from domain.errors import InvalidInput, NotFound, Unauthorized
from registry.entries import CatalogueQuery
from registry.refs import check_name, check_page, check_version
from registry.store import Registry

router = APIRouter(include_in_schema=False, route_class=PageRoute)

THEMES, STATUSES, TASKS = LABELS["theme"], LABELS["status"], LABELS["task"]  # value -> French label

ALL = 10_000  # "every item" for the small catalogue-wide reads (figures, filter choices)
PER_PAGE = 12


def page_caller(request: Request, services: ServicesDep) -> Caller:
    """The caller of a page; a stale or revoked session cookie means anonymous (and is cleared)."""
    try:
        caller = browser_caller(request, services)
    except Unauthorized:
        caller = ANONYMOUS
        request.state.session_expired = bool(request.cookies.get(COOKIE))
    request.state.caller = caller
    return caller


PageCallerDep = Annotated[Caller, Depends(page_caller)]


# ------------------------------------------------------------------ helpers


def _page_number(raw: str | None) -> int:
    """The page asked for in a link or a form; anything that is not a page number shows the first page."""
    try:
        return check_page(raw) if raw else 1
    except InvalidInput:
        return 1


def _choice(value: str | None, allowed: dict[str, str], what: str, notes: list[str]) -> str | None:
    if not value:
        return None
    if value in allowed:
        return value
    notes.append(f"{what} « {value[:60]} » inconnu : ce filtre est ignoré.")
    return None


def _text(value: str | None) -> str | None:
    value = (value or "").strip()[:200]
    return value or None


def _pages(total: int, page: int, per_page: int) -> dict[str, int]:
    return {"page": page, "pages": max(1, math.ceil(total / per_page)), "total": total}


def _all_models(registry: Registry, caller: Caller) -> list[dict[str, Any]]:
    models: list[dict[str, Any]] = catalogue.list_models(
        registry, caller, CatalogueQuery(), 1, ALL
    )["items"]
    return models


def _all_projects(session: Any, registry: Registry, caller: Caller) -> list[dict[str, Any]]:
    found = catalogue.list_projects(
        session,
        registry,
        caller,
        q=None,
        theme=None,
        status=None,
        owner=None,
        territory=None,
        page=1,
        per_page=ALL,
    )
    projects: list[dict[str, Any]] = found["items"]
    return projects


def _ident(model: dict[str, Any]) -> dict[str, Any]:
    identification: dict[str, Any] = (model.get("card") or {}).get("identification", {})
    return identification


def evaluation_chart(registry: Registry, caller: Caller, name: str, version: int) -> Path:
    """The evaluation chart of a version: the one artifact a public caller may download.

    Only ``bibia/evaluation.png`` is ever served (the path is fixed here, never
    taken from the request).

    Raises:
        NotFound: unknown model or version, or a version without a chart.
    """
    catalogue.version_detail(registry, caller, name, version)  # existence and tier check
    try:
        return registry.artifact_path(name, version, CHART_FILE)
    except NotFound as exc:
        raise NotFound(
            f"la version {version} de « {name} » n'a pas de graphique d'évaluation"
        ) from exc


def _has_chart(registry: Registry, caller: Caller, name: str, version: int) -> bool:
    try:
        evaluation_chart(registry, caller, name, version)
    except NotFound:
        return False
    return True


# -------------------------------------------------------------------- pages


@router.get("/", response_class=HTMLResponse)
def home(
    request: Request, caller: PageCallerDep, registry: RegistryDep, session: SessionDep
) -> HTMLResponse:
    models = _all_models(registry, caller)
    projects = _all_projects(session, registry, caller)
    sirens = {_ident(m).get("owner", {}).get("siren") for m in models} | {
        o["siren"] for p in projects for o in p["owners"]
    }
    sirens.discard(None)
    themes = []
    for value, title in THEMES.items():
        n_models = sum(1 for m in models if _ident(m).get("theme") == value)
        n_projects = sum(1 for p in projects if p["theme"] == value)
        if n_models or n_projects:
            themes.append(
                {"value": value, "title": title, "models": n_models, "projects": n_projects}
            )
    recent = sorted(models, key=lambda m: m["created"], reverse=True)[:6]
    figures = {
        "models": len(models),
        "projects": len(projects),
        "owners": len(sirens),
        "themes": len(themes),
    }
    return render(
        request,
        "accueil.html",
        title="Accueil",
        figures=figures,
        themes=themes,
        recent=recent,
        projects=projects[:6],
        more_projects=len(projects) > 6,
    )


@router.get("/catalogue", response_class=HTMLResponse)
def catalogue_page(
    request: Request,
    caller: PageCallerDep,
    registry: RegistryDep,
    q: str | None = None,
    theme: str | None = None,
    owner: str | None = None,
    territory: str | None = None,
    status: str | None = None,
    task: str | None = None,
    page: str | None = None,
) -> HTMLResponse:
    notes: list[str] = []
    params = {
        "q": _text(q),
        "theme": _choice(theme, THEMES, "thème", notes),
        "owner": _text(owner),
        "territory": _text(territory),
        "status": _choice(status, STATUSES, "statut", notes),
        "task": _choice(task, TASKS, "tâche", notes),
    }
    number = _page_number(page)
    everything = _all_models(registry, caller)
    found = catalogue.list_models(registry, caller, CatalogueQuery(**params), number, PER_PAGE)
    owners = sorted({_ident(m)["owner"]["name"] for m in everything if _ident(m).get("owner")})
    territories = sorted({_ident(m)["territory"] for m in everything if _ident(m).get("territory")})
    return render(
        request,
        "catalogue.html",
        title="Catalogue des modèles",
        params=params,
        items=found["items"],
        pager=_pages(found["total"], number, PER_PAGE),
        owners=owners,
        territories=territories,
        notes=notes,
        filtered=any(params.values()),
    )


def _model_name(name: str) -> str:
    try:
        return check_name(name)
    except InvalidInput as exc:
        raise NotFound(f"aucun modèle ne s'appelle « {name[:100]} » dans le catalogue") from exc


@router.get("/modeles/{name}", response_class=HTMLResponse)
def model_page(
    request: Request, name: str, caller: PageCallerDep, registry: RegistryDep, services: ServicesDep
) -> HTMLResponse:
    model = catalogue.model_detail(registry, caller, _model_name(name))
    versions = model["versions"]
    shown = model["aliases"].get("production") or model["latest_version"]
    chart = shown if shown and _has_chart(registry, caller, model["name"], shown) else None
    expert = bool(versions) and "model_uri" in versions[0]
    alias = (
        "production"
        if "production" in model["aliases"]
        else next(iter(sorted(model["aliases"])), None)
    )
    pull_uri = (
        f"models:/{model['name']}@{alias}"
        if alias
        else (f"models:/{model['name']}/{versions[0]['version']}" if versions else None)
    )
    base_url = services.settings.public_url or str(request.base_url).rstrip("/")
    card = model.get("card") or {}
    metric_dirs = {
        m["name"]: m.get("higher_is_better", False)
        for m in card.get("model", {}).get("evaluation", {}).get("metrics", [])
    }
    return render(
        request,
        "modele.html",
        title=_ident(model).get("title") or model["name"],
        model=model,
        card=card,
        versions=versions,
        chart_version=chart,
        can_launch=policy.may_launch_demo(caller) and bool(versions),
        expert=expert,
        pull_uri=pull_uri,
        base_url=base_url,
        metric_dirs=metric_dirs,
        **model_sections(request, caller, model["name"]),
    )


@router.get("/modeles/{name}/versions/{version}/evaluation.png")
def chart(name: str, version: str, caller: PageCallerDep, registry: RegistryDep) -> FileResponse:
    path = evaluation_chart(registry, caller, _model_name(name), check_version(version))
    return FileResponse(path, media_type="image/png", headers=security_headers())


@router.get("/projets", response_class=HTMLResponse)
def projects_page(
    request: Request,
    caller: PageCallerDep,
    registry: RegistryDep,
    session: SessionDep,
    q: str | None = None,
    theme: str | None = None,
    status: str | None = None,
    page: str | None = None,
) -> HTMLResponse:
    notes: list[str] = []
    params = {
        "q": _text(q),
        "theme": _choice(theme, THEMES, "thème", notes),
        "status": _choice(status, STATUSES, "statut", notes),
    }
    number = _page_number(page)
    found = catalogue.list_projects(
        session,
        registry,
        caller,
        owner=None,
        territory=None,
        page=number,
        per_page=PER_PAGE,
        **params,
    )
    return render(
        request,
        "projets.html",
        title="Projets des collectivités",
        params=params,
        items=found["items"],
        pager=_pages(found["total"], number, PER_PAGE),
        notes=notes,
        filtered=any(params.values()),
    )


@router.get("/projets/{slug}", response_class=HTMLResponse)
def project_page(
    request: Request, slug: str, caller: PageCallerDep, registry: RegistryDep, session: SessionDep
) -> HTMLResponse:
    try:
        project = catalogue.project_detail(session, registry, caller, slug)
    except NotFound as exc:
        raise NotFound(f"aucun projet « {slug[:100]} » dans le catalogue") from exc
    models = [m for m in _all_models(registry, caller) if m["name"] in set(project["models"])]
    return render(request, "projet.html", title=project["title"], project=project, models=models)
