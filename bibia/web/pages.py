"""The catalogue's pages: home, models (list and card), projects (list and record).

Every read goes through :mod:`bibia.catalogue`, which applies the caller's
tier; these routes only choose what to ask for and which template shows it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse

from bibia import catalogue, policy
from bibia.auth import ANONYMOUS, Caller
from bibia.cards import catalogue_figures
from bibia.deps import COOKIE, RegistryDep, ServicesDep, SessionDep, browser_caller
from bibia.guards import security_headers
from bibia.web.render import LABELS, PageRoute, render, with_query
from bibia.web.results import model_sections
from demos.reference import CHART_FILE
from domain.errors import ArtifactStoreUnavailable, InvalidInput, NotFound, Unauthorized
from registry.card import fold
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
    except ArtifactStoreUnavailable:
        return False  # the store is down: the model's page still answers, without its chart
    return True


# -------------------------------------------------------------------- pages


@router.get("/", response_class=HTMLResponse)
def home(
    request: Request, caller: PageCallerDep, registry: RegistryDep, session: SessionDep
) -> HTMLResponse:
    # Figures from bibia's card store and the six newest models: no read of every model.
    counted = catalogue_figures(session)
    projects = _all_projects(session, registry, caller)
    sirens = counted.owner_sirens | {o["siren"] for p in projects for o in p["owners"]}
    themes = []
    for value, title in THEMES.items():
        n_models = counted.by_theme.get(value, 0)
        n_projects = sum(1 for p in projects if p["theme"] == value)
        if n_models or n_projects:
            themes.append(
                {"value": value, "title": title, "models": n_models, "projects": n_projects}
            )
    recent = catalogue.recent_models(registry, caller, 6)
    figures = {
        "models": counted.models,
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


KINDS = {"modele": "Modèles", "projet": "Projets"}  # the ``type`` filter's values
SORTS = {
    "recents": "Plus récents",
    "titre": "Titre (A → Z)",
    "score": "Meilleur score vérifié",
}
FACET_TITLES = {  # facet -> (its label, its "everything" option)
    "type": ("Type", "Tout"),
    "theme": ("Thème", "Tous les thèmes"),
    "owner": ("Collectivité", "Toutes les collectivités"),
    "territory": ("Territoire", "Tous les territoires"),
    "status": ("Statut", "Tous les statuts"),
    "task": ("Tâche", "Toutes les tâches"),
}
FACET_LABELS = {"type": KINDS, "theme": THEMES, "status": STATUSES, "task": TASKS}


@dataclass(frozen=True)
class VerifiedScore:
    """A model's best verified score: how much better than the baseline, on its task's reference benchmark."""

    gain: float  # (baseline - value) / |baseline| for a lower-is-better metric; > 0: better
    metric: str  # the task's primary metric, in French
    benchmark: str  # the reference benchmark's title
    version: int

    @property
    def text(self) -> str:
        percent = round(abs(self.gain) * 100)
        if percent == 0:
            return f"égal à la référence — {self.metric}"
        side = "meilleur" if self.gain > 0 else "moins bon"
        return f"{percent}\u202f% {side} que la référence — {self.metric}"


def verified_scores(request: Request, caller: Caller) -> dict[str, VerifiedScore]:
    """Each model's best verified score the caller may see, by model name.

    Per task, its reference benchmark's leaderboard (the caller's view of it:
    a members-only benchmark counts only for members); each model's best
    version on the task's primary metric, relative to the naive baseline's
    score on the same benchmark. A task whose reference benchmark the caller
    cannot see, or that has none, gives no score.
    """
    service = request.app.state.evaluations
    best: dict[str, VerifiedScore] = {}
    for task in service.tasks(caller):
        if not task.benchmarks:
            continue
        board = service.leaderboard(caller, task.slug)
        if board.benchmark is None or not board.benchmark.reference:
            continue
        metric = next(m for m in task.metrics if m.name == task.primary)
        baseline = next((r.metrics.get(task.primary) for r in board.rows if r.is_baseline), None)
        if baseline is None or not math.isfinite(baseline) or baseline == 0:
            continue
        for row in board.rows:
            value = row.metrics.get(task.primary)
            if row.is_baseline or value is None or not math.isfinite(value):
                continue
            gain = (value - baseline if metric.higher_is_better else baseline - value) / abs(
                baseline
            )
            if row.model not in best or gain > best[row.model].gain:
                best[row.model] = VerifiedScore(
                    gain, metric.label, board.benchmark.title, row.version
                )
    return best


def _facet_options(
    facet: str, counts: dict[str, int], current: str | None, total: int
) -> list[dict[str, Any]]:
    """A filter's options: those with a match given the other filters, each with its count; the chosen one always."""
    labels = FACET_LABELS.get(facet)
    values = list(labels) if labels is not None else sorted(counts, key=fold)
    options = [
        {"value": v, "label": labels[v] if labels else v, "count": counts.get(v, 0)}
        for v in values
        if counts.get(v) or v == current
    ]
    if current and all(o["value"] != current for o in options):  # a part of a name, from a link
        options.append({"value": current, "label": current, "count": total})
    return options


def _search_page(
    request: Request,
    caller: Caller,
    registry: Registry,
    session: Any,
    *,
    path: str,
    template: str,
    title: str,
    raw: dict[str, str | None],
    kind: str | None = None,
) -> HTMLResponse:
    """A search page: ``/catalogue`` (models and projects) or ``/projets`` (``kind`` projects only)."""
    notes: list[str] = []
    params: dict[str, str | None] = {
        "q": _text(raw.get("q")),
        "type": kind or _choice(raw.get("type"), KINDS, "type", notes),
        "theme": _choice(raw.get("theme"), THEMES, "thème", notes),
        "owner": _text(raw.get("owner")),
        "territory": _text(raw.get("territory")),
        "status": _choice(raw.get("status"), STATUSES, "statut", notes),
        "task": None if kind else _choice(raw.get("task"), TASKS, "tâche", notes),
    }
    sorts = {k: v for k, v in SORTS.items() if not (kind and k == "score")}  # projects: no score
    sort = raw.get("sort") or "recents"
    if sort not in sorts:
        notes.append(
            f"tri « {sort[:60]} » inconnu : les résultats vont du plus récent au plus ancien."
        )
        sort = "recents"
    scores = verified_scores(request, caller) if sort == "score" else {}
    gains = {name: score.gain for name, score in scores.items()}
    number = _page_number(raw.get("page"))
    shown_facets = [f for f in catalogue.FACETS if not (kind and f in ("type", "task"))]
    found = catalogue.search(
        session,
        registry,
        caller,
        catalogue.SearchFilters(**params),
        sort=sort,
        scores=gains,
        facets=shown_facets,
        page=number,
        per_page=PER_PAGE,
    )
    facets = [
        {
            "name": facet,
            "label": FACET_TITLES[facet][0],
            "everything": FACET_TITLES[facet][1],
            "options": _facet_options(facet, found.facets[facet], params[facet], found.total),
        }
        for facet in shown_facets
    ]
    if kind:
        params = {k: v for k, v in params.items() if k not in ("type", "task")}
    kept_sort = None if sort == "recents" else sort
    active = [
        {
            "text": f"la recherche « {value} »"
            if name == "q"
            else f"le filtre « {FACET_TITLES[name][0]} : {FACET_LABELS.get(name, {}).get(value, value)} »",
            "without": with_query(params, **{name: None}, sort=kept_sort),
        }
        for name, value in params.items()
        if value
    ]
    return render(
        request,
        template,
        title=title,
        base=path,
        params=params,
        sort=sort,
        sorts=sorts,
        query={**params, "sort": kept_sort},
        facets=facets,
        hits=found.hits,
        scores=scores,
        scored=found.scored,
        pager=_pages(found.total, number, PER_PAGE),
        notes=notes,
        active=active,
    )


@router.get("/catalogue", response_class=HTMLResponse)
def catalogue_page(
    request: Request,
    caller: PageCallerDep,
    registry: RegistryDep,
    session: SessionDep,
    q: str | None = None,
    kind: Annotated[str | None, Query(alias="type")] = None,
    theme: str | None = None,
    owner: str | None = None,
    territory: str | None = None,
    status: str | None = None,
    task: str | None = None,
    sort: str | None = None,
    page: str | None = None,
) -> HTMLResponse:
    """One search over models and projects, with each filter's counts."""
    raw = {
        "q": q,
        "type": kind,
        "theme": theme,
        "owner": owner,
        "territory": territory,
        "status": status,
        "task": task,
        "sort": sort,
        "page": page,
    }
    return _search_page(
        request,
        caller,
        registry,
        session,
        path="/catalogue",
        template="catalogue.html",
        title="Rechercher dans le catalogue",
        raw=raw,
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
        running_demos=(  # the launch block offers the organisation's running ones first
            request.app.state.demos.visible(caller, own_organisation=True, model=model["name"])
            if policy.may_launch_demo(caller)
            else []
        ),
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
    owner: str | None = None,
    territory: str | None = None,
    status: str | None = None,
    sort: str | None = None,
    page: str | None = None,
) -> HTMLResponse:
    """The projects: the catalogue's search, narrowed to projects."""
    raw = {
        "q": q,
        "theme": theme,
        "owner": owner,
        "territory": territory,
        "status": status,
        "sort": sort,
        "page": page,
    }
    return _search_page(
        request,
        caller,
        registry,
        session,
        path="/projets",
        template="projets.html",
        title="Projets des collectivités",
        raw=raw,
        kind="projet",
    )


@router.get("/projets/{slug}", response_class=HTMLResponse)
def project_page(
    request: Request, slug: str, caller: PageCallerDep, registry: RegistryDep, session: SessionDep
) -> HTMLResponse:
    try:
        project = catalogue.project_detail(session, registry, caller, slug)
    except NotFound as exc:
        raise NotFound(f"aucun projet « {slug[:100]} » dans le catalogue") from exc
    named = catalogue.list_models(session, registry, caller, CatalogueQuery(project=slug), 1, ALL)[
        "items"
    ]
    models = [m for m in named if m["name"] in set(project["models"])]  # the project's own only
    return render(request, "projet.html", title=project["title"], project=project, models=models)
