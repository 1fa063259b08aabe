"""The evaluation pages: tasks and their leaderboards, comparisons, an evaluation job, and the forms
of the model page (evaluate on my data, publish a report, declare a reuse).

Every read goes through the evaluation façade (``request.app.state.evaluations``),
whose views are already filtered for the caller; these routes choose what to
ask for, turn French query parameters into the façade's arguments, and hand
the views to a template. No script, no meta refresh: a running evaluation's
page has a link « Actualiser ».
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from bibia import policy
from bibia.auth import Caller
from bibia.evaluations.views import (
    ComparedMetric,
    Comparison,
    EvaluationView,
    TaskView,
)
from bibia.web import results
from bibia.web.pages import PageCallerDep, _model_name
from bibia.web.render import PageRoute, render
from domain.errors import InvalidInput, NotFound, PayloadTooLarge
from registry.refs import SLUG_RE, ModelRef, check_alias, check_version

if TYPE_CHECKING:
    from bibia.evaluations.service import EvaluationService

router = APIRouter(include_in_schema=False, route_class=PageRoute)

MAX_COMPARED = 8
MAX_TEXT = 4000
ORDERS = {"asc": False, "desc": True}


def evaluations(request: Request) -> EvaluationService:
    service: EvaluationService = request.app.state.evaluations
    return service


def _login_redirect(path: str) -> RedirectResponse:
    return RedirectResponse(f"/connexion?next={quote(path)}", status_code=303)


def _slug(value: str, missing: str) -> str:
    """A task's or a benchmark's slug from an address; one that cannot exist is not found."""
    if not SLUG_RE.fullmatch(value):
        raise NotFound(f"{missing} « {value[:80]} » dans bibia")
    return value


# ------------------------------------------------------------------ tasks and leaderboards


@router.get("/taches", response_class=HTMLResponse)
def tasks_page(request: Request, caller: PageCallerDep) -> HTMLResponse:
    tasks = evaluations(request).tasks(caller)
    return render(
        request,
        "taches.html",
        title="Tâches et classements",
        specific=[t for t in tasks if not t.generic],
        generic=[t for t in tasks if t.generic],
    )


@router.get("/taches/{slug}", response_class=HTMLResponse)
def leaderboard_page(
    request: Request,
    slug: str,
    caller: PageCallerDep,
    jeu: str | None = None,
    tri: str | None = None,
    ordre: str | None = None,
) -> HTMLResponse:
    service = evaluations(request)
    task = service.task(caller, _slug(slug, "aucune tâche"))
    notes: list[str] = []
    metric_names = [m.name for m in task.metrics]
    sort = tri or None
    if sort is not None and sort not in metric_names:
        notes.append(
            f"métrique « {sort[:60]} » inconnue pour cette tâche : le classement suit "
            f"la métrique principale. Métriques : {', '.join(metric_names)}."
        )
        sort = None
    descending = ORDERS.get(ordre or "")
    if ordre and descending is None:
        notes.append(
            f"ordre « {ordre[:20]} » inconnu (asc ou desc) : l'ordre habituel est appliqué."
        )
    benchmark = _slug(jeu, "aucun jeu d'évaluation") if jeu else None
    board = service.leaderboard(
        caller, task.slug, benchmark=benchmark, sort=sort, descending=descending
    )
    shown = list(task.metrics)
    return render(
        request,
        "tache.html",
        title=task.title,
        task=task,
        board=board,
        metrics=shown,
        infos={m.name: m for m in shown},
        notes=notes,
        params={"jeu": board.benchmark.slug if board.benchmark else None},
    )


# ------------------------------------------------------------------ comparison


def _refs(raw: str) -> list[ModelRef]:
    texts = [part.strip() for part in raw.replace(";", ",").split(",") if part.strip()]
    if len(texts) > MAX_COMPARED:
        raise InvalidInput(f"comparez au plus {MAX_COMPARED} modèles à la fois")
    refs = []
    for text in texts:
        try:
            refs.append(ModelRef.parse(text))
        except InvalidInput as exc:
            raise InvalidInput(f"référence « {text[:100]} » illisible : {exc.message}") from exc
    return refs


def comparison_rows(comparison: Comparison) -> list[tuple[str, list[ComparedMetric | None]]]:
    """One row per metric asked for: each model's figure on it (None when it has none)."""
    names = list(comparison.metrics)
    for model in comparison.models:
        for m in model.metrics:
            if m.name not in names:
                names.append(m.name)
    rows = []
    for name in names:
        cells: list[ComparedMetric | None] = []
        for model in comparison.models:
            cells.append(next((m for m in model.metrics if m.name == name), None))
        rows.append((name, cells))
    return rows


@router.get("/comparer", response_class=HTMLResponse)
def compare_page(
    request: Request,
    caller: PageCallerDep,
    modeles: str | None = None,
    metriques: str | None = None,
    jeu: str | None = None,
) -> HTMLResponse:
    service = evaluations(request)
    asked = (modeles or "").strip()[:1000]
    comparison: Comparison | None = None
    rows: list[tuple[str, list[ComparedMetric | None]]] = []
    task: TaskView | None = None
    if asked:
        refs = _refs(asked)
        metrics = [m.strip() for m in (metriques or "").split(",") if m.strip()][:20] or None
        benchmark = _slug(jeu, "aucun jeu d'évaluation") if jeu else None
        comparison = service.compare(caller, refs, metrics=metrics, benchmark=benchmark)
        rows = comparison_rows(comparison)
        task = results.task_or_none(service, caller, comparison.task)
    return render(
        request,
        "comparer.html",
        title="Comparer des modèles",
        asked=asked,
        metriques=(metriques or "")[:300],
        comparison=comparison,
        rows=rows,
        task=task,
        infos=results.metric_infos(task, [name for name, _ in rows]),
    )


# ------------------------------------------------------------------ one evaluation


def _evaluation_id(value: str) -> str:
    if not (0 < len(value) <= 32 and value.isascii() and value.replace("-", "").isalnum()):
        raise NotFound(f"aucune évaluation n° « {value[:40]} » parmi celles que vous pouvez voir")
    return value


def evaluation_context(
    service: EvaluationService, caller: Caller, evaluation: EvaluationView
) -> dict[str, Any]:
    task = results.task_or_none(service, caller, evaluation.task)
    names = list((evaluation.metrics or {}).keys())
    infos = results.metric_infos(task, [*names, evaluation.primary])
    primary = infos[evaluation.primary]
    metrics = evaluation.metrics or {}
    baseline = evaluation.baseline_metrics or {}
    return {
        "evaluation": evaluation,
        "task": task,
        "infos": infos,
        "primary": primary,
        "primary_value": metrics.get(evaluation.primary),
        "primary_baseline": baseline.get(evaluation.primary),
        "primary_verdict": results.verdict(
            metrics.get(evaluation.primary),
            baseline.get(evaluation.primary),
            primary.higher_is_better,
        ),
        "chart": results.evaluation_chart(
            evaluation.chart,
            f"{evaluation.model} version {evaluation.version} face à la référence",
        ),
        "may_publish": (
            evaluation.kind == "donnees"
            and evaluation.state == "done"
            and policy.may_submit_evaluation(caller)
        ),
        # Whether to show the button; the façade decides (policy.may_cancel_evaluation).
        "may_cancel": not evaluation.finished
        and (
            policy.may_administer(caller)
            or (
                policy.may_submit_evaluation(caller)
                and caller.organisation == evaluation.organisation
            )
        ),
    }


@router.get("/evaluations/{evaluation_id}", response_class=HTMLResponse)
def evaluation_page(request: Request, evaluation_id: str, caller: PageCallerDep) -> HTMLResponse:
    service = evaluations(request)
    evaluation = service.get(caller, _evaluation_id(evaluation_id))
    return render(
        request,
        "evaluation.html",
        title=f"Évaluation de {evaluation.model} (version {evaluation.version})",
        **evaluation_context(service, caller, evaluation),
    )


# ------------------------------------------------------------------ forms


def _evaluated_ref(name: str, choice: str) -> ModelRef:
    """``choice`` from the form: ``alias:production`` or ``version:3``."""
    kind, _, value = choice.partition(":")
    if kind == "alias":
        return ModelRef(name=name, alias=check_alias(value))
    if kind == "version":
        return ModelRef(name=name, version=check_version(value))
    raise InvalidInput("choisissez la version ou l'alias du modèle à évaluer")


async def _read_upload(upload: UploadFile | None, limit: int) -> tuple[bytes, str]:
    if upload is None or not upload.filename:
        raise InvalidInput("choisissez un fichier CSV à évaluer (entrées et valeurs observées)")
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"fichier trop volumineux : {limit // (1024 * 1024)} Mio au plus")
    if not data:
        raise InvalidInput(f"le fichier « {upload.filename[:100]} » est vide")
    return data, upload.filename[:200]


def _optional(value: str | None, limit: int = 100) -> str | None:
    value = (value or "").strip()[:limit]
    return value or None


@router.post("/modeles/{name}/evaluer")
async def evaluate_on_my_data(
    request: Request,
    name: str,
    caller: PageCallerDep,
    version: Annotated[str, Form()] = "",
    fichier: Annotated[UploadFile | None, File()] = None,
    colonne_verite: Annotated[str, Form()] = "",
    tache: Annotated[str, Form()] = "",
) -> Response:
    model = _model_name(name)
    if not caller.is_authenticated:
        return _login_redirect(f"/modeles/{model}")
    service = evaluations(request)
    limit = service.services.settings.evaluation_max_upload_mb * 1024 * 1024
    data, filename = await _read_upload(fichier, limit)
    # Reading the CSV, checking it and writing it are work: off the event loop.
    view = await run_in_threadpool(
        functools.partial(
            service.submit,
            caller,
            _evaluated_ref(model, version),
            data=data,
            filename=filename,
            truth_column=_optional(colonne_verite),
            task=_optional(tache, 64),
        )
    )
    return RedirectResponse(f"/evaluations/{quote(view.id)}", status_code=303)


@router.post("/evaluations/{evaluation_id}/annuler")
def cancel_evaluation(request: Request, evaluation_id: str, caller: PageCallerDep) -> Response:
    ident = _evaluation_id(evaluation_id)
    if not caller.is_authenticated:
        return _login_redirect(f"/evaluations/{ident}")
    evaluations(request).cancel(caller, ident)
    return RedirectResponse(f"/evaluations/{quote(ident)}", status_code=303)


@router.post("/evaluations/{evaluation_id}/publier")
def publish_report(
    request: Request,
    evaluation_id: str,
    caller: PageCallerDep,
    texte: Annotated[str, Form()] = "",
    audience: Annotated[str, Form()] = "",
) -> Response:
    ident = _evaluation_id(evaluation_id)
    if not caller.is_authenticated:
        return _login_redirect(f"/evaluations/{ident}")
    text = texte.strip()
    if not text:
        raise InvalidInput("écrivez quelques lignes pour accompagner ce retour d'expérience")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"texte trop long : {MAX_TEXT} caractères au plus")
    if audience not in results.AUDIENCES:
        raise InvalidInput("choisissez à qui publier ce retour : aux membres, ou à tout le monde")
    report = evaluations(request).publish(caller, ident, text=text, audience=audience)
    return RedirectResponse(f"/modeles/{quote(report.model)}#retours", status_code=303)


@router.post("/modeles/{name}/reutilisations")
def declare_reuse(
    request: Request,
    name: str,
    caller: PageCallerDep,
    texte: Annotated[str, Form()] = "",
    lien: Annotated[str, Form()] = "",
) -> Response:
    model = _model_name(name)
    if not caller.is_authenticated:
        return _login_redirect(f"/modeles/{model}")
    text = texte.strip()
    if not text:
        raise InvalidInput("dites en quelques mots comment votre collectivité réutilise ce modèle")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"texte trop long : {MAX_TEXT} caractères au plus")
    url = _optional(lien, 500)
    if url is not None and not url.startswith(("https://", "http://")):
        raise InvalidInput("le lien doit être une adresse web commençant par https://")
    evaluations(request).declare_reuse(caller, model, text=text, url=url)
    return RedirectResponse(f"/modeles/{quote(model)}#reutilisations", status_code=303)
