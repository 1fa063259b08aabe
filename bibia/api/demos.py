"""Routes of the demonstrators' lifecycle (members launch; experts read logs)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field, model_validator

from bibia.demos import DemoService
from bibia.deps import CallerDep, ExpertDep, MemberDep
from bibia.schemas import ERRORS
from registry.refs import ModelRef

router = APIRouter(prefix="/api/v1/demos", tags=["démonstrateurs"])


def get_manager(request: Request) -> DemoService:
    manager: DemoService = request.app.state.demos
    return manager


ManagerDep = Annotated[DemoService, Depends(get_manager)]


class LaunchIn(BaseModel):
    model: str = Field(examples=["cantine-nantes"], description="Nom du modèle")
    alias: str | None = Field(None, examples=["production"])
    version: int | None = Field(None, ge=1, examples=[3])
    ttl_minutes: int | None = Field(None, ge=1, description="Durée de vie (30 minutes par défaut)")

    @model_validator(mode="after")
    def _one_of(self) -> LaunchIn:
        if self.alias is not None and self.version is not None:
            raise ValueError("indiquez alias ou version, pas les deux")
        return self

    def ref(self) -> ModelRef:
        return ModelRef(name=self.model, alias=self.alias, version=self.version)


class DemoOut(BaseModel):
    id: str
    state: str = Field(description="pending, starting, ready, stopped, failed ou expired")
    url: str | None = Field(
        description="Adresse du démonstrateur, servie par bibia (une fois prêt)"
    )
    model: str
    version: int
    created_at: str
    expires_at: str
    error: str | None


class ExtendIn(BaseModel):
    minutes: int = Field(ge=1, le=24 * 60, examples=[30])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Lancer un démonstrateur d'un modèle",
    description="Réservé aux membres d'une collectivité. Le démonstrateur démarre en arrière-plan : suivez son état avec GET.",
    responses={202: {"model": DemoOut}, 429: {"description": "Quota atteint"}, **ERRORS},
)
def launch(body: LaunchIn, caller: MemberDep, manager: ManagerDep) -> JSONResponse:
    view = manager.launch(caller, body.ref(), body.ttl_minutes)
    return JSONResponse(
        view.to_dict(),
        status_code=status.HTTP_202_ACCEPTED,
        headers={"Location": f"/api/v1/demos/{view.id}"},
    )


@router.get(
    "",
    summary="Les démonstrateurs de votre collectivité",
    responses={200: {"model": list[DemoOut]}, **ERRORS},
)
def list_demos(
    caller: MemberDep,
    manager: ManagerDep,
    all_: Annotated[
        bool, Query(alias="all", description="Inclure les démonstrateurs terminés")
    ] = False,
) -> JSONResponse:
    return JSONResponse([v.to_dict() for v in manager.visible(caller, include_finished=all_)])


@router.get(
    "/{demo_id}", summary="L'état d'un démonstrateur", responses={200: {"model": DemoOut}, **ERRORS}
)
def get_demo(demo_id: str, caller: CallerDep, manager: ManagerDep) -> JSONResponse:
    return JSONResponse(manager.get(caller, demo_id).to_dict())


@router.delete(
    "/{demo_id}", summary="Arrêter un démonstrateur", responses={200: {"model": DemoOut}, **ERRORS}
)
def stop_demo(demo_id: str, caller: MemberDep, manager: ManagerDep) -> JSONResponse:
    return JSONResponse(manager.stop(caller, demo_id).to_dict())


@router.post(
    "/{demo_id}/extend",
    summary="Prolonger un démonstrateur",
    responses={200: {"model": DemoOut}, **ERRORS},
)
def extend_demo(
    demo_id: str, body: ExtendIn, caller: MemberDep, manager: ManagerDep
) -> JSONResponse:
    return JSONResponse(manager.extend(caller, demo_id, body.minutes).to_dict())


@router.get(
    "/{demo_id}/logs",
    summary="Journaux d'un démonstrateur (experts)",
    response_class=PlainTextResponse,
    responses=ERRORS,
)
def demo_logs(
    demo_id: str,
    caller: ExpertDep,
    manager: ManagerDep,
    tail: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> PlainTextResponse:
    return PlainTextResponse(manager.logs(caller, demo_id, tail))
