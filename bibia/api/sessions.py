"""``/api/v1/sessions``: the web sessions of the token's owner, listed and revocable (the JSON twin of /compte/sessions)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from bibia import sessions
from bibia.deps import MemberDep, SessionDep
from bibia.schemas import ERRORS

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])

SessionId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Le numéro de la session")]


class SessionOut(BaseModel):
    id: int
    created_at: dt.datetime
    last_seen_at: dt.datetime
    expires_at: dt.datetime
    user_agent: str | None
    token: str  # the prefix of the token the session was opened with
    current: bool


class SessionsOut(BaseModel):
    items: list[SessionOut]


@router.get(
    "", summary="Vos sessions web ouvertes", responses={200: {"model": SessionsOut}, **ERRORS}
)
def list_sessions(caller: MemberDep, session: SessionDep) -> JSONResponse:
    rows = sessions.active_sessions(session, caller)
    items = [sessions.describe(row, caller.session_id) for row in rows]
    return JSONResponse(jsonable_encoder({"items": items}), headers={"Cache-Control": "no-store"})


@router.delete(
    "/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Fermer une de vos sessions web",
    responses=ERRORS,
)
def revoke_session(session_id: SessionId, caller: MemberDep, session: SessionDep) -> Response:
    sessions.revoke(session, caller, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
