"""Routes of tasks and benchmarks: list tasks, register and read benchmarks (and download their data).

Every route hands its caller to the evaluation façade, which asks
:mod:`bibia.policy` (who sees a benchmark, who downloads its inputs, that
nobody downloads a hidden truth) and returns views already filtered.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from bibia.api.evaluations import (
    SLUG,
    UPLOAD_ERRORS,
    EvaluationsDep,
    SlugPath,
    VersionQ,
    check_text_field,
    read_upload,
    upload_name,
)
from bibia.deps import CallerDep, ExpertDep, SettingsDep, get_caller
from bibia.evaluations.service import EvaluationService
from bibia.evaluations.views import BenchmarkView
from bibia.schemas import ERRORS
from registry.refs import check_slug

router = APIRouter(tags=["évaluation"], dependencies=[Depends(get_caller)])


class ColumnOut(BaseModel):
    name: str = Field(examples=["date"])
    type: str = Field(examples=["date"], description="date, string, long, double ou boolean")
    required: bool
    label: str = Field(examples=["Date du repas"])


class MetricOut(BaseModel):
    name: str = Field(examples=["wmape"])
    label: str = Field(examples=["Erreur absolue pondérée (WMAPE)"])
    higher_is_better: bool
    unit: str = Field(examples=["%"])
    description: str


class TaskOut(BaseModel):
    slug: str = Field(examples=["cantine-frequentation"])
    title: str = Field(examples=["Prévision de la fréquentation des cantines scolaires"])
    description: str
    inputs: list[ColumnOut] = Field(description="Colonnes d'entrée que le modèle reçoit")
    truth: list[ColumnOut] = Field(description="Colonnes des valeurs observées (la vérité)")
    outputs: list[ColumnOut] = Field(description="Colonnes que le modèle doit prédire")
    metrics: list[MetricOut]
    primary: str = Field(examples=["wmape"], description="Métrique principale")
    baseline_name: str = Field(description="Référence naïve calculée sur les mêmes lignes")
    baseline_description: str
    generic: bool = Field(description="Tâche générique (régression, classification, prévision)")
    benchmarks: list[str] = Field(description="Jeux d'évaluation de la tâche que vous voyez")


class BenchmarkOut(BaseModel):
    slug: str = Field(examples=["cantine-nantes-2017-2018"])
    version: int
    task: str
    title: str
    description: str | None
    organisation: str
    organisation_name: str
    producer: str = Field(description="Qui a produit les données")
    period_start: str | None
    period_end: str | None
    licence: str = Field(examples=["Licence Ouverte 2.0"])
    source_url: str | None
    visibility: str = Field(description="public, membres ou verite-cachee")
    reference: bool = Field(description="Jeu d'évaluation de référence de la tâche")
    content_hash: str = Field(
        description="SHA-256 des entrées et de la vérité, sous forme canonique"
    )
    n_rows: int
    input_columns: list[str]
    truth_columns: list[str]
    created_at: str
    data_readable: bool = Field(description="Vous pouvez télécharger les entrées")
    truth_readable: bool = Field(description="Vous pouvez télécharger la vérité")


# ------------------------------------------------------------------ tasks


@router.get(
    "/api/v1/tasks",
    summary="Les tâches : colonnes, métriques et référence naïve",
    responses={200: {"model": list[TaskOut]}, **ERRORS},
)
def list_tasks(caller: CallerDep, evaluations: EvaluationsDep) -> JSONResponse:
    return JSONResponse([t.as_dict() for t in evaluations.tasks(caller)])


@router.get(
    "/api/v1/tasks/{slug}", summary="Une tâche", responses={200: {"model": TaskOut}, **ERRORS}
)
def get_task(slug: SlugPath, caller: CallerDep, evaluations: EvaluationsDep) -> JSONResponse:
    return JSONResponse(evaluations.task(caller, slug).as_dict())


# ------------------------------------------------------------------ benchmarks


@router.get(
    "/api/v1/benchmarks",
    summary="Les jeux d'évaluation que vous voyez",
    responses={200: {"model": list[BenchmarkOut]}, **ERRORS},
)
def list_benchmarks(
    caller: CallerDep,
    evaluations: EvaluationsDep,
    task: Annotated[
        str | None,
        Query(max_length=64, pattern=SLUG, description="Tâche", examples=["cantine-frequentation"]),
    ] = None,
) -> JSONResponse:
    return JSONResponse([b.as_dict() for b in evaluations.benchmarks_visible(caller, task=task)])


@router.post(
    "/api/v1/benchmarks",
    status_code=status.HTTP_201_CREATED,
    summary="Enregistrer un jeu d'évaluation (ou sa nouvelle version)",
    description=(
        "Réservé aux experts, pour les données de leur collectivité. Corps multipart : `fichier` "
        "(un CSV avec les colonnes d'entrée et de vérité de la tâche ; séparateur « ; » ou « , », "
        "virgule décimale et dates jj/mm/aaaa acceptées) et les champs de provenance. Le même "
        "identifiant à nouveau crée la version suivante."
    ),
    responses={
        201: {"model": BenchmarkOut},
        409: {"description": "Contenu identique"},
        **UPLOAD_ERRORS,
        **ERRORS,
    },
)
def register_benchmark(
    caller: ExpertDep,
    evaluations: EvaluationsDep,
    settings: SettingsDep,
    fichier: Annotated[UploadFile, File(description="Le CSV : entrées et vérité")],
    slug: Annotated[str, Form(max_length=64, examples=["cantine-lyon-2023"])],
    task: Annotated[str, Form(max_length=64, examples=["cantine-frequentation"])],
    title: Annotated[str, Form(max_length=300, examples=["Cantines de Lyon, 2023"])],
    licence: Annotated[str, Form(max_length=300, examples=["Licence Ouverte 2.0"])],
    visibility: Annotated[
        str, Form(max_length=16, description="public, membres ou verite-cachee")
    ] = "public",
    producer: Annotated[
        str | None, Form(max_length=300, description="Producteur des données")
    ] = None,
    description: Annotated[str | None, Form(max_length=5000)] = None,
    period_start: Annotated[
        str | None, Form(max_length=10, description="Début de la période (AAAA-MM-JJ)")
    ] = None,
    period_end: Annotated[
        str | None, Form(max_length=10, description="Fin de la période (AAAA-MM-JJ)")
    ] = None,
    source_url: Annotated[str | None, Form(max_length=500)] = None,
    reference: Annotated[
        bool,
        Form(
            description="Administrateurs : le jeu de référence de la tâche (celui du contrôle de promotion)"
        ),
    ] = False,
    truth_column: Annotated[
        str | None,
        Form(
            max_length=100,
            description="Tâches génériques : la colonne des valeurs observées (les autres sont les entrées)",
        ),
    ] = None,
) -> JSONResponse:
    # A sync route: FastAPI runs it in the threadpool, so reading and parsing the CSV never
    # holds the event loop.
    check_slug(slug, "de jeu d'évaluation")
    texts = {
        name: check_text_field(name, value, multiline=name == "description")
        for name, value in (
            ("task", task),
            ("title", title),
            ("licence", licence),
            ("visibility", visibility),
            ("producer", producer),
            ("description", description),
            ("period_start", period_start),
            ("period_end", period_end),
            ("source_url", source_url),
            ("truth_column", truth_column),
        )
    }
    data = read_upload(fichier.file, settings)
    view = evaluations.register_benchmark(
        caller,
        slug=slug,
        task=texts["task"] or "",
        title=texts["title"] or "",
        data=data,
        filename=upload_name(fichier.filename, "benchmark.csv"),
        licence=texts["licence"] or "",
        visibility=texts["visibility"] or "",
        producer=texts["producer"],
        description=texts["description"],
        period_start=texts["period_start"],
        period_end=texts["period_end"],
        source_url=texts["source_url"],
        reference=reference,
        truth_column=texts["truth_column"],
    )
    return JSONResponse(
        view.as_dict(),
        status_code=status.HTTP_201_CREATED,
        headers={"Location": _benchmark_url(view)},
    )


def _benchmark_url(view: BenchmarkView) -> str:
    return f"/api/v1/benchmarks/{view.slug}?version={view.version}"


@router.get(
    "/api/v1/benchmarks/{slug}",
    summary="Un jeu d'évaluation : sa provenance (jamais ses données)",
    responses={200: {"model": BenchmarkOut}, **ERRORS},
)
def get_benchmark(
    slug: SlugPath, caller: CallerDep, evaluations: EvaluationsDep, version: VersionQ = None
) -> JSONResponse:
    return JSONResponse(evaluations.benchmark(caller, slug, version).as_dict())


def _csv(
    evaluations: EvaluationService, caller: Any, slug: str, version: int | None, part: str
) -> Response:
    filename, data = evaluations.benchmark_csv(caller, slug, version, part)
    return Response(
        data,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{upload_name(filename, part + ".csv")}"'
        },
    )


@router.get(
    "/api/v1/benchmarks/{slug}/entrees.csv",
    summary="Les entrées d'un jeu d'évaluation (CSV)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **ERRORS},
)
def benchmark_inputs(
    slug: SlugPath, caller: CallerDep, evaluations: EvaluationsDep, version: VersionQ = None
) -> Response:
    return _csv(evaluations, caller, slug, version, "entrees")


@router.get(
    "/api/v1/benchmarks/{slug}/verite.csv",
    summary="La vérité d'un jeu d'évaluation (CSV ; jamais pour une vérité cachée)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **ERRORS},
)
def benchmark_truth(
    slug: SlugPath, caller: CallerDep, evaluations: EvaluationsDep, version: VersionQ = None
) -> Response:
    return _csv(evaluations, caller, slug, version, "verite")
