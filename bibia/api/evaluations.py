"""Routes of evaluation jobs: submit, list, follow and cancel evaluations.

Every route hands its caller to the evaluation façade
(``request.app.state.evaluations``), which asks :mod:`bibia.policy` and
returns views already filtered for that caller. Uploaded CSVs (a benchmark,
a member's labelled data) are read with a bound, and parsed off the event
loop. Tasks and benchmarks are in :mod:`bibia.api.benchmarks`; comparisons,
leaderboards, model results, reports and reuses in
:mod:`bibia.api.evaluation_results`. The helpers they share live here.
"""

from __future__ import annotations

import os
import unicodedata
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.exceptions import HTTPException as StarletteHTTPException

from bibia.deps import CallerDep, MemberDep, SettingsDep, get_caller
from bibia.evaluations.service import EvaluationService
from bibia.evaluations.views import EvaluationView
from bibia.schemas import ERRORS
from bibia.settings import Settings
from domain.errors import InvalidInput, PayloadTooLarge
from registry.refs import NAME_PATTERN, SLUG_PATTERN, ModelRef, anchored

# A token, when one is presented, is always checked (a revoked token is a 401 everywhere).
router = APIRouter(tags=["évaluation"], dependencies=[Depends(get_caller)])


def get_evaluations(request: Request) -> EvaluationService:
    service: EvaluationService = request.app.state.evaluations
    return service


EvaluationsDep = Annotated[EvaluationService, Depends(get_evaluations)]

SLUG = anchored(SLUG_PATTERN)
SlugPath = Annotated[
    str,
    Path(
        max_length=64,
        pattern=SLUG,
        description="Identifiant (minuscules, chiffres et tirets)",
        examples=["cantine-frequentation"],
    ),
]
SlugQ = Annotated[str | None, Query(max_length=64, pattern=SLUG)]
EvaluationIdPath = Annotated[
    str,
    Path(
        max_length=64,
        pattern=r"^[0-9A-Za-z_-]+$",
        description="Identifiant de l'évaluation",
        examples=["3f2a9c0d1e4b5a69788796a5b4c3d2e1"],
    ),
]
VersionQ = Annotated[
    int | None, Query(ge=1, le=999_999_999, description="Version (la dernière par défaut)")
]

UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"description": "Fichier trop volumineux"},
    422: {"description": "Fichier CSV ou colonnes invalides"},
}


# ------------------------------------------------------------------ uploads


def read_upload(file: BinaryIO, settings: Settings) -> bytes:
    """An uploaded CSV, read to ``evaluation_max_upload_mb`` and no further.

    Raises:
        PayloadTooLarge: in French, with the limit.
    """
    limit = settings.evaluation_max_upload_mb * 1024 * 1024
    data = file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(
            f"fichier trop volumineux : {settings.evaluation_max_upload_mb} Mio au plus"
        )
    if not data:
        raise InvalidInput(
            "le fichier envoyé est vide : attendu un fichier CSV avec une ligne d'en-tête"
        )
    return data


def check_text_field(name: str, value: str | None, *, multiline: bool = False) -> str | None:
    """A form field's text, stripped, or None when empty; control characters are refused.

    Raises:
        InvalidInput: naming the field.
    """
    if value is None:
        return None
    allowed = "\n\r\t" if multiline else ""
    if any(unicodedata.category(c) == "Cc" and c not in allowed for c in value):
        raise InvalidInput(f"le champ « {name} » contient des caractères de contrôle")
    return value.strip() or None


def upload_name(filename: str | None, default: str = "donnees.csv") -> str:
    """The file name a client gave, as shown back: its last part, printable, 200 characters at most."""
    name = os.path.basename((filename or "").replace("\\", "/"))
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    return name[:200] or default


def _accepted(view: EvaluationView) -> JSONResponse:
    return JSONResponse(
        view.as_dict(),
        status_code=status.HTTP_202_ACCEPTED,
        headers={"Location": f"/api/v1/evaluations/{view.id}"},
    )


# ------------------------------------------------------------------ documentation models


class CostOut(BaseModel):
    duration_s: float | None
    cpu_seconds: float | None = Field(description="Temps CPU mesuré par le bac à sable")
    peak_memory_bytes: int | None
    energy_wh: float | None
    co2e_g: float | None = Field(description="Émissions estimées, en grammes d'équivalent CO₂")


class EvaluationOut(BaseModel):
    id: str
    kind: str = Field(description="benchmark (vérifiée) ou donnees (vos données, privée)")
    state: str = Field(description="queued, running, done, failed ou cancelled")
    progress: float = Field(ge=0, le=1)
    stage: str | None
    model: str
    version: int
    model_ref: str = Field(examples=["cantine-nantes@production"])
    task: str
    benchmark: str | None = Field(examples=["cantine-nantes-2017-2018/1"])
    benchmark_hash: str | None
    data_name: str | None
    n_rows: int | None
    organisation: str
    requested_by: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    error: str | None = Field(description="Pourquoi elle a échoué, en français")
    metrics: dict[str, float] | None
    baseline_metrics: dict[str, float] | None
    primary: str
    verified: bool = Field(description="Vérifiée par la plateforme")
    bibia_version: str | None
    runner: str | None
    cost: CostOut
    chart: dict[str, Any] | None
    url: str


class EvaluationIn(BaseModel):
    model: str = Field(
        max_length=200,
        examples=["cantine-nantes@production"],
        description="Modèle à évaluer : NOM, NOM@ALIAS ou NOM/VERSION",
    )
    benchmark: str = Field(
        max_length=64,
        pattern=SLUG,
        examples=["cantine-nantes-2017-2018"],
        description="Jeu d'évaluation",
    )
    benchmark_version: int | None = Field(
        None,
        ge=1,
        le=999_999_999,
        description="Version du jeu d'évaluation (la dernière par défaut)",
    )


# ------------------------------------------------------------------ evaluations

_SUBMIT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": EvaluationIn.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["model", "fichier"],
                    "properties": {
                        "model": {"type": "string", "example": "cantine-nantes@production"},
                        "fichier": {
                            "type": "string",
                            "format": "binary",
                            "description": "Vos données : les entrées et les valeurs observées (CSV)",
                        },
                        "truth_column": {
                            "type": "string",
                            "description": "Colonne des valeurs observées (tâches génériques)",
                        },
                        "task": {
                            "type": "string",
                            "description": "Tâche (celle du modèle par défaut)",
                        },
                    },
                }
            },
        },
    }
}


@router.post(
    "/api/v1/evaluations",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Évaluer un modèle sur un jeu d'évaluation, ou sur vos données",
    description=(
        'Réservé aux membres d\'une collectivité. En JSON, `{"model": "cantine-nantes@production", '
        '"benchmark": "cantine-nantes-2017-2018"}` lance une évaluation vérifiée par la plateforme. '
        "En multipart, `model` et `fichier` (vos données avec les valeurs observées ; `truth_column` et "
        "`task` facultatifs) lancent une évaluation privée à votre collectivité. L'évaluation tourne en "
        "arrière-plan : suivez-la avec GET (en-tête `Location`)."
    ),
    openapi_extra=_SUBMIT_BODY,
    responses={
        202: {"model": EvaluationOut},
        429: {"description": "Quota d'évaluations atteint"},
        **UPLOAD_ERRORS,
        **ERRORS,
    },
)
async def submit_evaluation(
    request: Request, caller: MemberDep, evaluations: EvaluationsDep, settings: SettingsDep
) -> JSONResponse:
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        return await _submit_upload(request, caller, evaluations, settings)
    raw = await request.body()
    try:
        body = EvaluationIn.model_validate_json(raw or b"null")
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from exc

    def work() -> EvaluationView:
        return evaluations.submit(
            caller,
            ModelRef.parse(body.model),
            benchmark=body.benchmark,
            benchmark_version=body.benchmark_version,
        )

    return _accepted(await run_in_threadpool(work))


_FORM_FIELDS = ("model", "truth_column", "task", "benchmark")


async def _submit_upload(
    request: Request, caller: Any, evaluations: EvaluationService, settings: Settings
) -> JSONResponse:
    try:
        form = await request.form(max_files=1, max_fields=len(_FORM_FIELDS) + 2)
    except StarletteHTTPException as exc:
        raise InvalidInput(
            "corps multipart illisible : envoyez `model` et un seul fichier `fichier`"
        ) from exc
    try:
        fields: dict[str, str | None] = {}
        for key in _FORM_FIELDS:
            value = form.get(key)
            if value is not None and not isinstance(value, str):
                raise InvalidInput(f"le champ « {key} » doit être un texte, pas un fichier")
            if value is not None and len(value) > 200:
                raise InvalidInput(f"le champ « {key} » est trop long (200 caractères au plus)")
            fields[key] = check_text_field(key, value)
        upload = form.get("fichier")
        if fields["benchmark"] is not None:
            raise InvalidInput(
                "indiquez un jeu d'évaluation (requête JSON) ou un fichier (multipart), pas les deux"
            )
        if not isinstance(upload, StarletteUpload):
            raise InvalidInput(
                "fichier manquant : joignez vos données en CSV dans le champ « fichier »"
            )
        model = fields["model"]
        if not model:
            raise InvalidInput("modèle manquant : indiquez-le dans le champ « model » (NOM@ALIAS)")
        ref = ModelRef.parse(model)

        def work() -> EvaluationView:
            data = read_upload(upload.file, settings)
            return evaluations.submit(
                caller,
                ref,
                data=data,
                filename=upload_name(upload.filename),
                truth_column=fields["truth_column"],
                task=fields["task"],
            )

        view = await run_in_threadpool(work)
    finally:
        await form.close()
    return _accepted(view)


@router.get(
    "/api/v1/evaluations",
    summary="Les évaluations que vous voyez, les plus récentes d'abord",
    responses={200: {"model": list[EvaluationOut]}, **ERRORS},
)
def list_evaluations(
    caller: CallerDep,
    evaluations: EvaluationsDep,
    model: Annotated[
        str | None,
        Query(max_length=100, pattern=anchored(NAME_PATTERN), examples=["cantine-nantes"]),
    ] = None,
    benchmark: SlugQ = None,
    mine: Annotated[bool, Query(description="Seulement celles de votre collectivité")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JSONResponse:
    views = evaluations.visible(caller, model=model, benchmark=benchmark, mine=mine, limit=limit)
    return JSONResponse([v.as_dict() for v in views])


@router.get(
    "/api/v1/evaluations/{evaluation_id}",
    summary="Une évaluation : son état, sa progression et son résultat",
    responses={200: {"model": EvaluationOut}, **ERRORS},
)
def get_evaluation(
    evaluation_id: EvaluationIdPath, caller: CallerDep, evaluations: EvaluationsDep
) -> JSONResponse:
    return JSONResponse(evaluations.get(caller, evaluation_id).as_dict())


@router.delete(
    "/api/v1/evaluations/{evaluation_id}",
    summary="Annuler une évaluation en attente ou en cours",
    responses={200: {"model": EvaluationOut}, **ERRORS},
)
def cancel_evaluation(
    evaluation_id: EvaluationIdPath, caller: MemberDep, evaluations: EvaluationsDep
) -> JSONResponse:
    return JSONResponse(evaluations.cancel(caller, evaluation_id).as_dict())
