"""Routes of evaluation results: comparison, leaderboards, a model's results and settings,
reuse reports ("retours d'expérience chiffrés") and reuses.

Like :mod:`bibia.api.evaluations`, every route hands its caller to the
evaluation façade, which asks :mod:`bibia.policy` and returns views already
filtered for that caller.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from bibia.api.evaluations import (
    SLUG,
    EvaluationIdPath,
    EvaluationOut,
    EvaluationsDep,
    SlugPath,
)
from bibia.deps import CallerDep, ExpertDep, MemberDep, get_caller
from bibia.schemas import ERRORS
from domain.errors import InvalidInput
from registry.refs import ModelRef, check_name

router = APIRouter(tags=["évaluation"], dependencies=[Depends(get_caller)])

MAX_COMPARED = 20
MAX_METRICS = 30
METRIC = r"^[A-Za-z0-9_.-]+$"

NamePath = Annotated[
    str, Path(max_length=100, description="Nom du modèle", examples=["cantine-nantes"])
]


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


# ------------------------------------------------------------------ documentation models


class ComparedMetricOut(BaseModel):
    name: str = Field(examples=["wmape"])
    value: float | None
    baseline: float | None = Field(description="La référence naïve, sur les mêmes lignes")
    higher_is_better: bool
    verified: bool = Field(
        description="Mesurée par la plateforme (vrai) ou déclarée par le propriétaire (faux)"
    )
    benchmark: str | None = Field(examples=["cantine-nantes-2017-2018/1"])
    protocol: str | None = Field(description="Protocole déclaré dans la fiche")
    baseline_name: str | None
    evaluation: str | None


class ComparedModelOut(BaseModel):
    ref: str = Field(examples=["cantine-nantes@production"])
    model: str
    version: int
    task: str | None
    metrics: list[ComparedMetricOut]


class ComparisonOut(BaseModel):
    models: list[ComparedModelOut]
    task: str | None
    benchmark: str | None
    metrics: list[str]
    comparable: bool
    reasons: list[str] = Field(description="Pourquoi certains résultats ne se comparent pas")


class LeaderboardRowOut(BaseModel):
    model: str
    version: int
    aliases: list[str]
    organisation: str
    evaluation: str | None = Field(description="L'évaluation d'où viennent les scores")
    metrics: dict[str, float]
    is_baseline: bool = Field(description="La ligne de la référence naïve")
    finished_at: str | None


class LeaderboardOut(BaseModel):
    task: dict[str, Any]
    benchmark: dict[str, Any] | None
    benchmarks: list[dict[str, Any]]
    sort: str
    descending: bool
    rows: list[LeaderboardRowOut]


class ReportOut(BaseModel):
    id: int
    model: str
    version: int
    organisation: str
    organisation_name: str
    text: str
    audience: str = Field(description="membres ou public")
    evaluation: str
    metrics: dict[str, float] | None
    baseline_metrics: dict[str, float] | None
    n_rows: int | None
    created_at: str


class ReuseOut(BaseModel):
    id: int
    model: str
    organisation: str
    organisation_name: str
    text: str
    url: str | None
    created_at: str


class ModelResultsOut(BaseModel):
    model: str
    task: str | None
    promotion_gate: bool = Field(
        description="Déplacer l'alias production exige une évaluation vérifiée au moins aussi "
        "bonne que la référence naïve"
    )
    verified: list[EvaluationOut]
    by_version: dict[int, dict[str, float]]
    reports: list[ReportOut]
    reuses: list[ReuseOut]
    demo_cost: dict[str, Any] | None


class SettingsIn(BaseModel):
    task: str | None = Field(
        None, max_length=64, examples=["cantine-frequentation"], description="Tâche du modèle"
    )
    promotion_gate: bool | None = Field(None, description="Activer la garde de promotion")


class ReportIn(BaseModel):
    # Checked by the façade (French messages): 1 to 5000 characters, « membres » or « public ».
    text: str = Field(
        examples=["Testé sur nos 12 cantines de septembre à décembre 2023 : erreur de 6 %."],
        description="Votre retour d'expérience (1 à 5000 caractères)",
    )
    audience: str = Field(
        examples=["membres"],
        description="membres (collectivités membres) ou public (tout le monde)",
    )


class ReuseIn(BaseModel):
    text: str = Field(
        examples=["Nous utilisons ce modèle pour commander les repas de nos 40 cantines."],
        description="Ce que vous en faites (1 à 5000 caractères)",
    )
    url: str | None = Field(
        None, examples=["https://www.lyon.fr/cantines"], description="Une page qui en parle"
    )


# ------------------------------------------------------------------ comparison, leaderboards


@router.get(
    "/api/v1/compare",
    summary="Comparer des modèles, côte à côte",
    description=(
        "Les métriques de chaque modèle, avec leur jeu d'évaluation, leur protocole, la référence "
        "naïve et leur origine (vérifiée par la plateforme ou déclarée). Seuls les résultats sur la "
        "même tâche et le même jeu d'évaluation se comparent ; la réponse dit pourquoi sinon."
    ),
    responses={200: {"model": ComparisonOut}, **ERRORS},
)
def compare(
    caller: CallerDep,
    evaluations: EvaluationsDep,
    models: Annotated[
        str,
        Query(
            max_length=4000,
            description="Références séparées par des virgules",
            examples=["cantine-nantes@production,cantine-nantes/1"],
        ),
    ],
    metrics: Annotated[str | None, Query(max_length=2000, examples=["mae,wmape"])] = None,
    benchmark: Annotated[
        str | None, Query(max_length=64, pattern=SLUG, examples=["cantine-nantes-2017-2018"])
    ] = None,
) -> JSONResponse:
    refs = [ModelRef.parse(text) for text in _split(models)]
    if not refs:
        raise InvalidInput("indiquez au moins un modèle : models=NOM@ALIAS,NOM/VERSION")
    if len(refs) > MAX_COMPARED:
        raise InvalidInput(f"trop de modèles à comparer : {MAX_COMPARED} au plus")
    names = _split(metrics)
    if len(names) > MAX_METRICS:
        raise InvalidInput(f"trop de métriques demandées : {MAX_METRICS} au plus")
    comparison = evaluations.compare(
        caller, refs, metrics=names or None, benchmark=benchmark or None
    )
    return JSONResponse(comparison.as_dict())


@router.get(
    "/api/v1/tasks/{slug}/leaderboard",
    summary="Le classement d'une tâche sur un jeu d'évaluation",
    description="Les meilleurs scores vérifiés de chaque modèle, à côté de ceux de la référence naïve.",
    responses={200: {"model": LeaderboardOut}, **ERRORS},
)
def leaderboard(
    slug: SlugPath,
    caller: CallerDep,
    evaluations: EvaluationsDep,
    benchmark: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=SLUG,
            description="Jeu d'évaluation (celui de référence par défaut)",
        ),
    ] = None,
    sort: Annotated[
        str | None,
        Query(
            max_length=64, pattern=METRIC, description="Métrique de tri (la principale par défaut)"
        ),
    ] = None,
    order: Annotated[
        Literal["asc", "desc"] | None,
        Query(description="asc ou desc (le meilleur d'abord par défaut)"),
    ] = None,
) -> JSONResponse:
    board = evaluations.leaderboard(
        caller,
        slug,
        benchmark=benchmark or None,
        sort=sort or None,
        descending=None if order is None else order == "desc",
    )
    return JSONResponse(board.as_dict())


# ------------------------------------------------------------------ a model's results and settings


@router.get(
    "/api/v1/models/{name}/evaluations",
    summary="Les résultats d'un modèle : évaluations vérifiées, retours d'expérience, réutilisations",
    responses={200: {"model": ModelResultsOut}, **ERRORS},
)
def model_results(name: NamePath, caller: CallerDep, evaluations: EvaluationsDep) -> JSONResponse:
    return JSONResponse(evaluations.model_results(caller, check_name(name)).as_dict())


@router.put(
    "/api/v1/models/{name}/evaluation-settings",
    summary="Choisir la tâche d'un modèle et activer sa garde de promotion",
    description="Réservé aux experts de la collectivité propriétaire du modèle.",
    responses={200: {"model": ModelResultsOut}, **ERRORS},
)
def put_settings(
    name: NamePath, body: SettingsIn, caller: ExpertDep, evaluations: EvaluationsDep
) -> JSONResponse:
    results = evaluations.set_model_settings(
        caller, check_name(name), task=body.task, promotion_gate=body.promotion_gate
    )
    return JSONResponse(results.as_dict())


# ------------------------------------------------------------------ reports and reuses


@router.post(
    "/api/v1/evaluations/{evaluation_id}/report",
    status_code=status.HTTP_201_CREATED,
    summary="Publier le résultat d'une évaluation comme retour d'expérience chiffré",
    description=(
        "Réservé aux membres de la collectivité qui a lancé l'évaluation (terminée). Publier à "
        "nouveau met à jour le texte et le public visé."
    ),
    responses={
        201: {"model": ReportOut},
        409: {"description": "Évaluation non terminée"},
        **ERRORS,
    },
)
def publish_report(
    evaluation_id: EvaluationIdPath, body: ReportIn, caller: MemberDep, evaluations: EvaluationsDep
) -> JSONResponse:
    view = evaluations.publish(caller, evaluation_id, text=body.text, audience=body.audience)
    return JSONResponse(view.as_dict(), status_code=status.HTTP_201_CREATED)


@router.delete(
    "/api/v1/reports/{report_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Retirer un retour d'expérience publié",
    responses=ERRORS,
)
def unpublish_report(
    report_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    caller: MemberDep,
    evaluations: EvaluationsDep,
) -> Response:
    evaluations.unpublish(caller, report_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/api/v1/models/{name}/reuses",
    status_code=status.HTTP_201_CREATED,
    summary="Déclarer que votre collectivité réutilise ce modèle",
    description="Réservé aux membres d'une collectivité ; déclarer à nouveau met à jour.",
    responses={201: {"model": ReuseOut}, **ERRORS},
)
def declare_reuse(
    name: NamePath, body: ReuseIn, caller: MemberDep, evaluations: EvaluationsDep
) -> JSONResponse:
    view = evaluations.declare_reuse(caller, check_name(name), text=body.text, url=body.url)
    return JSONResponse(view.as_dict(), status_code=status.HTTP_201_CREATED)


@router.delete(
    "/api/v1/models/{name}/reuses",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Retirer la déclaration de réutilisation de votre collectivité",
    responses=ERRORS,
)
def withdraw_reuse(name: NamePath, caller: MemberDep, evaluations: EvaluationsDep) -> Response:
    evaluations.withdraw_reuse(caller, check_name(name))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
