"""Demonstrators on the web: launch (or reuse), the waiting and ready page, « Mes démonstrateurs ».

Who may see, stop or extend a demonstrator is the façade's business
(:class:`bibia.demos.DemoService`, over :mod:`bibia.policy`); these pages
only show what it answers, in French, with times in the service's time zone
(``Settings.timezone``, Europe/Paris by default). Every form carries a CSRF
token. The waiting page needs no script: a small one served by bibia
(``/static/attente.js``, allowed by the page's CSP nonce) polls
``/demonstrateurs/{id}/etat`` and announces progress in the page's status
region; without it, the page's « Actualiser » link does the same.
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from bibia.accounts import demo_quota
from bibia.auth import Caller
from bibia.demos import DemoService, DemoState, DemoView
from bibia.demos.service import duration
from bibia.web.pages import PageCallerDep, _model_name
from bibia.web.render import PageRoute, date_fr, render
from domain.errors import Conflict, InvalidInput, NotFound, QuotaExceeded, Unauthorized
from registry.refs import ModelRef, check_alias, check_version

router = APIRouter(include_in_schema=False, route_class=PageRoute)
state_router = APIRouter(include_in_schema=False)  # JSON, for the waiting page's script

LIST = "/mes-demonstrateurs"
RECENT = dt.timedelta(hours=24)  # how long an ended demonstrator stays listed
POLL_MARGIN_S = 30  # the script polls for the start timeout plus this, then gives up

STATE_LABELS = {
    DemoState.PENDING: "En attente",
    DemoState.STARTING: "Démarrage en cours",
    DemoState.READY: "Prêt",
    DemoState.STOPPED: "Arrêté",
    DemoState.EXPIRED: "Expiré",
    DemoState.FAILED: "En échec",
}
MESSAGES = {
    DemoState.PENDING: "Démarrage en cours (en attente d'un bac à sable). Le démarrage prend en général quelques secondes.",
    DemoState.STARTING: "Démarrage en cours (lancement du bac à sable). Le démarrage prend en général quelques secondes.",
    DemoState.READY: "Le démonstrateur est prêt.",
    DemoState.STOPPED: "Ce démonstrateur est arrêté.",
    DemoState.EXPIRED: "Ce démonstrateur a expiré (sa durée de vie est écoulée).",
    DemoState.FAILED: "Ce démonstrateur n'a pas pu démarrer ou s'est arrêté sur une erreur.",
}
ALREADY = "Un démonstrateur de cette version tourne déjà pour votre collectivité ; le voici."
DONE = {
    "arrete": "Le démonstrateur est arrêté.",
    "prolonge": "Le démonstrateur est prolongé.",
}


# ------------------------------------------------------------ times


def _zone(request: Request) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(request.app.state.services.settings.timezone)


def _zone_name(zone: zoneinfo.ZoneInfo) -> str:
    city = zone.key.rsplit("/", 1)[-1].replace("_", " ")
    return f"heure de {city}"


def clock(value: dt.datetime, zone: zoneinfo.ZoneInfo, now: dt.datetime) -> str:
    """« 15 h 42 » today in ``zone``, else « 3 mars 2026 à 15 h 42 »."""
    local = value.astimezone(zone)
    hour = f"{local.hour} h {local.minute:02d}"
    if local.date() == now.astimezone(zone).date():
        return hour
    return f"{date_fr(local)} à {hour}"


def remaining(value: dt.datetime, now: dt.datetime) -> str:
    """« dans 27 min », « dans 1 h 05 », « dans moins d'une minute »."""
    seconds = (value - now).total_seconds()
    if seconds < 60:
        return "dans moins d'une minute"
    minutes = math.floor(seconds / 60)
    hours, rest = divmod(minutes, 60)
    return f"dans {rest} min" if not hours else f"dans {hours} h {rest:02d}"


def until(value: dt.datetime, zone: zoneinfo.ZoneInfo, now: dt.datetime) -> str:
    """« jusqu'à 15 h 42 (heure de Paris), dans 27 min »."""
    when = clock(value, zone, now)
    prefix = (
        "jusqu'à" if value.astimezone(zone).date() == now.astimezone(zone).date() else "jusqu'au"
    )
    return f"{prefix} {when} ({_zone_name(zone)}), {remaining(value, now)}"


# ------------------------------------------------------------ what the templates show


@dataclass(frozen=True)
class DemoRow:
    """A demonstrator as the pages show it: French state, times in the service's zone."""

    demo: DemoView
    title: str  # the model's title (its name when it has no card)
    state_label: str
    message: str
    until: str | None  # a live one's expiry: « jusqu'à 15 h 42 (heure de Paris), dans 27 min »
    ended: str | None  # an ended one's end: « 15 h 42 (heure de Paris) »
    extendable: bool  # live and below its maximum time to live

    @property
    def waiting(self) -> bool:
        return self.demo.state in (DemoState.PENDING.value, DemoState.STARTING.value)

    @property
    def ready(self) -> bool:
        return self.demo.state == DemoState.READY.value

    @property
    def failed(self) -> bool:
        return self.demo.state == DemoState.FAILED.value

    @property
    def live(self) -> bool:
        return self.demo.is_live


def _titles(request: Request, names: set[str]) -> dict[str, str]:
    """Each model's title (a public field of its card), its name when unknown or without a card."""
    registry = request.app.state.services.registry
    titles: dict[str, str] = {}
    for name in names:
        try:
            card = registry.get(name).card
        except NotFound:
            card = None
        titles[name] = card.identification.title if card is not None else name
    return titles


def rows(request: Request, demos: list[DemoView]) -> list[DemoRow]:
    manager: DemoService = request.app.state.demos
    zone, now = _zone(request), dt.datetime.now(dt.UTC)
    titles = _titles(request, {d.model for d in demos})
    out = []
    for demo in demos:
        state = DemoState(demo.state)
        ended = demo.ended_at
        out.append(
            DemoRow(
                demo=demo,
                title=titles[demo.model],
                state_label=STATE_LABELS[state],
                message=MESSAGES[state],
                until=until(demo.expires_at, zone, now) if demo.is_live else None,
                ended=f"{clock(ended, zone, now)} ({_zone_name(zone)})" if ended else None,
                extendable=demo.is_live and demo.expires_at < manager.max_expiry(demo),
            )
        )
    return out


def _sign_in(path: str) -> RedirectResponse:
    return RedirectResponse(f"/connexion?next={quote(path)}", status_code=303)


def _manager(request: Request) -> DemoService:
    manager: DemoService = request.app.state.demos
    return manager


def _page(request: Request, demo_id: str) -> str:
    return f"/demonstrateurs/{quote(demo_id, safe='')}"


# ------------------------------------------------------------ launch


def _launch_ref(name: str, choice: str) -> ModelRef:
    """``choice`` from the launch form: ``alias:production`` or ``version:3``."""
    kind, _, value = choice.partition(":")
    if kind == "alias":
        return ModelRef(name=name, alias=check_alias(value))
    if kind == "version":
        return ModelRef(name=name, version=check_version(value))
    raise InvalidInput("choisissez une version ou un alias du modèle à lancer")


@router.post("/modeles/{name}/demonstrateur")
def launch(
    request: Request,
    name: str,
    caller: PageCallerDep,
    version: Annotated[str, Form()] = "",
    nouveau: Annotated[str, Form()] = "",
) -> Response:
    """Open the organisation's running demonstrator of this version, else start one.

    ``nouveau=1`` (« En lancer un autre ») always starts a new one. At the
    quota, a French page lists the organisation's demonstrators to stop.
    """
    if not caller.is_authenticated:
        return _sign_in(f"/modeles/{name}")
    manager = _manager(request)
    ref = _launch_ref(_model_name(name), version)
    try:
        view, reused = manager.launch_or_reuse(caller, ref, reuse=nouveau != "1")
    except QuotaExceeded:
        return _quota_page(request, caller, ref)
    target = _page(request, view.id)
    return RedirectResponse(f"{target}?deja=1" if reused else target, status_code=303)


def _quota_page(request: Request, caller: Caller, ref: ModelRef) -> HTMLResponse:
    services = request.app.state.services
    mine = _manager(request).visible(caller, own_organisation=True)
    with services.db.session() as session:  # the organisation's own quota, else the service's
        quota = demo_quota(session, caller.organisation_id, services.settings.demo_quota_per_org)
    return render(
        request,
        "demonstrateurs_quota.html",
        status=429,
        title="Quota de démonstrateurs atteint",
        items=rows(request, mine),
        organisation_full=len(mine) >= quota,
        quota=quota,
        model_name=ref.name,
    )


# ------------------------------------------------------------ one demonstrator


@router.get("/demonstrateurs/{demo_id}", response_class=HTMLResponse)
def demo_page(
    request: Request,
    demo_id: str,
    caller: PageCallerDep,
    deja: str | None = None,
    fait: str | None = None,
) -> Response:
    """Waiting (with the polling script), ready (open, extend, stop), or ended (neutral, or an error)."""
    if not caller.is_authenticated:
        return _sign_in(request.url.path)
    row = rows(request, [_manager(request).get(caller, demo_id)])[0]
    settings = request.app.state.services.settings
    zone = _zone(request)
    launched = row.demo.created_at
    return render(
        request,
        "demonstrateur.html",
        title=f"Démonstrateur de {row.title}",
        row=row,
        demo=row.demo,
        already=ALREADY if deja == "1" and row.live else None,
        done=DONE.get(fait or ""),
        poll_limit_s=int(settings.demo_start_timeout_s) + POLL_MARGIN_S,
        extend_minutes=settings.demo_ttl_minutes,
        max_duration=duration(settings.demo_max_ttl_minutes),
        launched_at=f"{clock(launched, zone, dt.datetime.now(dt.UTC))} ({_zone_name(zone)})",
        scripts=row.waiting,
    )


@state_router.get("/demonstrateurs/{demo_id}/etat")
def demo_state(request: Request, demo_id: str, caller: PageCallerDep) -> JSONResponse:
    """What the waiting page's script reads: the state, its French message, and where to open it."""
    if not caller.is_authenticated:
        raise Unauthorized("authentification requise : connectez-vous pour suivre ce démonstrateur")
    row = rows(request, [_manager(request).get(caller, demo_id)])[0]
    return JSONResponse(
        {
            "state": row.demo.state,
            "label": row.state_label,
            "message": row.message,
            "waiting": row.waiting,
            "ready": row.ready,
            "url": row.demo.url if row.ready else None,
            "until": row.until,
        },
        headers={"Cache-Control": "no-store"},
    )


def _back(demo_id: str, retour: str, fait: str) -> RedirectResponse:
    target = f"/demonstrateurs/{quote(demo_id, safe='')}" if retour == "demonstrateur" else LIST
    return RedirectResponse(f"{target}?fait={fait}", status_code=303)


@router.post("/demonstrateurs/{demo_id}/arreter")
def stop(
    request: Request,
    demo_id: str,
    caller: PageCallerDep,
    retour: Annotated[str, Form()] = "",
) -> Response:
    """Stop it (whoever the façade lets: its organisation's members, an administrator)."""
    if not caller.is_authenticated:
        return _sign_in(LIST)
    _manager(request).stop(caller, demo_id)
    return _back(demo_id, retour, "arrete")


@router.post("/demonstrateurs/{demo_id}/prolonger", response_class=HTMLResponse)
def extend(
    request: Request,
    demo_id: str,
    caller: PageCallerDep,
    retour: Annotated[str, Form()] = "",
) -> Response:
    """Push its expiry back by the default time to live, within the maximum (the façade's rule)."""
    if not caller.is_authenticated:
        return _sign_in(LIST)
    manager = _manager(request)
    try:
        manager.extend(caller, demo_id, request.app.state.services.settings.demo_ttl_minutes)
    except Conflict as exc:
        return list_page(request, caller, error=exc.message, status=409)
    return _back(demo_id, retour, "prolonge")


# ------------------------------------------------------------ « Mes démonstrateurs »


@router.get(LIST, response_class=HTMLResponse)
def my_demos(request: Request, caller: PageCallerDep, fait: str | None = None) -> Response:
    if not caller.is_authenticated:
        return _sign_in(request.url.path)
    return list_page(request, caller, done=DONE.get(fait or ""))


def list_page(
    request: Request,
    caller: Caller,
    *,
    done: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The caller's organisation's live demonstrators, then those that ended in the last 24 hours."""
    demos = _manager(request).visible(caller, include_finished=True, own_organisation=True)
    since = dt.datetime.now(dt.UTC) - RECENT
    listed = rows(
        request, [d for d in demos if d.is_live or (d.ended_at is not None and d.ended_at >= since)]
    )
    return render(
        request,
        "mes_demonstrateurs.html",
        status=status,
        title="Mes démonstrateurs",
        live=[r for r in listed if r.live],
        ended=[r for r in listed if not r.live],
        done=done,
        error=error,
    )
