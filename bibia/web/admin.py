"""The administrators' pages (``/admin``): organisations, members and roles, tokens, quotas, the audit log.

Every route asks the one access policy (:func:`bibia.policy.may_administer`):
an anonymous visitor is sent to the sign-in page, anyone else who is not an
administrator gets the French 403 page, for reads and actions alike. Every
change goes through :mod:`bibia.accounts` (validated, audit-logged in the same
unit of work) and every form carries the CSRF token. A token's value is shown
once, on the page that answers its creation (``Cache-Control: no-store``), and
nowhere else: not in a list, a log, the audit log or a later page.

Form errors are shown next to their field with the status of the error (400,
404, 409) and nothing written; the audit log's filters are hostile input,
checked before any query, and its CSV export is the French Excel kind
(:mod:`domain.csv_export`: ``;``, UTF-8 with a BOM, no cell read as a formula).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import zoneinfo
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bibia import accounts, policy
from bibia.auth import Caller
from bibia.db.models import ApiToken, DemoSession, Evaluation, User
from bibia.demos.sessions import active as demo_active
from bibia.demos.sessions import demonstrators
from bibia.evaluations.jobs import ACTIVE as EVALUATION_ACTIVE
from bibia.web.pages import PageCallerDep
from bibia.web.render import PageRoute, render
from domain.csv_export import french_csv
from domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from registry.refs import SIREN_HELP, SLUG_HELP, check_page, check_siren, check_slug
from registry.tiers import Role

router = APIRouter(include_in_schema=False, route_class=PageRoute)

HOME = "/admin"
JOURNAL = "/admin/journal"
PER_PAGE = 50
EXPORT_MAX = 100_000  # events in one CSV export, the newest first
TEXT_MAX = 100  # characters of a text filter
ROLES = {
    Role.MEMBER.value: "Membre",
    Role.EXPERT.value: "Expert",
    Role.ADMIN.value: "Administrateur",
}
DONE = {
    "creee": "L'organisation est créée. Ajoutez-lui des jetons ci-dessous ; ses agents peuvent aussi se connecter avec leur compte.",
    "role": "Le rôle est modifié.",
    "revoque": "Le jeton est révoqué : il ne donne plus accès à rien, et les sessions ouvertes avec lui sont fermées.",
    "quotas": "Les quotas sont enregistrés.",
}
REFUSED = "cette page est réservée aux administrateurs de bibia"
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
ACTION_RE = re.compile(r"[a-z_]{1,32}(?:\.[a-z_]{1,32}){0,3}")


def _guard(request: Request, caller: Caller, back: str | None = None) -> Response | None:
    """A redirect to the sign-in page for an anonymous visitor, a 403 for a non-administrator,
    None for an administrator."""
    if not caller.is_authenticated:
        target = back or request.url.path
        return RedirectResponse(f"/connexion?next={quote(target)}", status_code=303)
    if not policy.may_administer(caller):
        raise Forbidden(REFUSED)
    return None


def _org_page(slug: str) -> str:
    return f"{HOME}/organisations/{quote(slug, safe='')}"


def _db(request: Request) -> Any:
    return request.app.state.services.db


def _settings(request: Request) -> Any:
    return request.app.state.services.settings


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


# ------------------------------------------------------------ organisations


@dataclass(frozen=True)
class OrgRow:
    slug: str
    name: str
    siren: str | None
    members: int
    demos: int
    evaluations: int
    quotas: accounts.Quotas


def _org_rows(session: Session, settings: Any) -> list[OrgRow]:
    def counts(query: Any) -> dict[int, int]:
        return {int(org_id): int(n) for org_id, n in session.execute(query).tuples()}

    members = counts(select(User.organisation_id, func.count()).group_by(User.organisation_id))
    demos = counts(
        select(DemoSession.organisation_id, func.count())
        .where(demo_active(), demonstrators())
        .group_by(DemoSession.organisation_id)
    )
    evaluations = counts(
        select(Evaluation.organisation_id, func.count())
        .where(Evaluation.state.in_(EVALUATION_ACTIVE))
        .group_by(Evaluation.organisation_id)
    )
    return [
        OrgRow(
            slug=org.slug,
            name=org.name,
            siren=org.siren,
            members=members.get(org.id, 0),
            demos=demos.get(org.id, 0),
            evaluations=evaluations.get(org.id, 0),
            quotas=accounts.quotas_of(
                org, settings.demo_quota_per_org, settings.evaluation_quota_per_org
            ),
        )
        for org in accounts.list_organisations(session)
    ]


def _home(
    request: Request,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    with _db(request).session() as session:
        orgs = _org_rows(session, _settings(request))
    return render(
        request,
        "admin_accueil.html",
        status=status,
        title="Administration — organisations",
        orgs=orgs,
        form=form or {},
        errors=errors or {},
        slug_help=SLUG_HELP,
        siren_help=SIREN_HELP,
    )


@router.get(HOME, response_class=HTMLResponse)
def admin_home(request: Request, caller: PageCallerDep) -> Response:
    """The organisations, their members and what they run, and the form to create one."""
    return _guard(request, caller) or _home(request)


def _field_of(message: str) -> str:
    """Which field of the organisation form an error of :func:`accounts.create_organisation` is about."""
    if "SIREN" in message:
        return "siren"
    if "nom" in message and "identifiant" not in message:
        return "name"
    return "slug"


@router.post(f"{HOME}/organisations", response_class=HTMLResponse)
def create_organisation(
    request: Request,
    caller: PageCallerDep,
    slug: Annotated[str, Form(max_length=200)] = "",
    name: Annotated[str, Form(max_length=1000)] = "",
    siren: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Create an organisation; a wrong field is shown next to itself (400, 409) and nothing is created."""
    refused = _guard(request, caller, HOME)
    if refused:
        return refused
    form = {"slug": slug, "name": name, "siren": siren}
    errors: dict[str, str] = {}
    slug, name = slug.strip(), name.strip()
    siren_ = siren.replace(" ", "").strip() or None
    if not name:
        errors["name"] = (
            "le nom de l'organisation est obligatoire, par exemple « Nantes Métropole »"
        )
    elif len(name) > 300:
        errors["name"] = "le nom de l'organisation est trop long (300 caractères au plus)"
    try:
        check_slug(slug, "d'organisation")
    except InvalidInput as exc:
        errors["slug"] = exc.message
    if siren_ is not None:
        try:
            check_siren(siren_)
        except InvalidInput as exc:
            errors["siren"] = exc.message
    if errors:
        return _home(request, form=form, errors=errors, status=400)
    try:
        with _db(request).session() as session:
            org = accounts.create_organisation(session, caller, slug, name, siren_)
            created = org.slug
    except (InvalidInput, Conflict) as exc:
        status = 409 if isinstance(exc, Conflict) else 400
        return _home(
            request, form=form, errors={_field_of(exc.message): exc.message}, status=status
        )
    return RedirectResponse(f"{_org_page(created)}?fait=creee", status_code=303)


# ------------------------------------------------------------ one organisation


@dataclass(frozen=True)
class MemberRow:
    name: str
    full_name: str | None
    email: str | None
    role: str
    via_oidc: bool
    created_at: dt.datetime
    last_login_at: dt.datetime | None
    tokens: int  # live tokens


@dataclass(frozen=True)
class TokenRow:
    prefix: str
    user: str
    role: str
    label: str | None
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and _aware(self.expires_at) <= dt.datetime.now(dt.UTC)

    @property
    def live(self) -> bool:
        return self.revoked_at is None and not self.expired


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


@dataclass
class OrgForms:
    """What the organisation page's forms were filled with, and their errors by field."""

    token: dict[str, str] = field(default_factory=dict)
    quotas: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _organisation(
    request: Request,
    slug: str,
    *,
    done: str | None = None,
    forms: OrgForms | None = None,
    status: int = 200,
) -> HTMLResponse:
    settings = _settings(request)
    with _db(request).session() as session:
        org = accounts.get_organisation(session, slug)
        users = accounts.members(session, org.slug)
        now = dt.datetime.now(dt.UTC)
        members = [
            MemberRow(
                name=u.name,
                full_name=u.full_name,
                email=u.email,
                role=u.role,
                via_oidc=u.oidc_issuer is not None,
                created_at=u.created_at,
                last_login_at=u.last_login_at,
                tokens=sum(
                    1
                    for t in u.tokens
                    if t.revoked_at is None and (t.expires_at is None or _aware(t.expires_at) > now)
                ),
            )
            for u in users
        ]
        tokens = [
            TokenRow(
                prefix=t.prefix,
                user=t.user.name,
                role=t.user.role,
                label=t.label,
                created_at=t.created_at,
                last_used_at=t.last_used_at,
                expires_at=t.expires_at,
                revoked_at=t.revoked_at,
            )
            for t in reversed(accounts.list_tokens(session, org.slug))
        ]
        quotas = accounts.quotas_of(
            org, settings.demo_quota_per_org, settings.evaluation_quota_per_org
        )
        info = {
            "slug": org.slug,
            "name": org.name,
            "siren": org.siren,
            "created_at": org.created_at,
            "demo_quota": org.demo_quota,
            "evaluation_quota": org.evaluation_quota,
        }
    forms = forms or OrgForms()
    if not forms.quotas:
        forms.quotas = {
            "demos": "" if info["demo_quota"] is None else str(info["demo_quota"]),
            "evaluations": ""
            if info["evaluation_quota"] is None
            else str(info["evaluation_quota"]),
        }
    return render(
        request,
        "admin_organisation.html",
        status=status,
        title=f"Administration — {info['name']}",
        org=info,
        members=members,
        tokens=tokens,
        live_tokens=[t for t in tokens if t.live],
        ended_tokens=[t for t in tokens if not t.live],
        quotas=quotas,
        service_quotas={
            "demos": settings.demo_quota_per_org,
            "evaluations": settings.evaluation_quota_per_org,
        },
        max_quota=accounts.MAX_QUOTA,
        roles=ROLES,
        done=done,
        forms=forms,
    )


@router.get(f"{HOME}/organisations/{{slug}}", response_class=HTMLResponse)
def organisation_page(
    request: Request, slug: str, caller: PageCallerDep, fait: str | None = None
) -> Response:
    """Members and roles, tokens (never their value), quotas."""
    return _guard(request, caller) or _organisation(request, slug, done=DONE.get(fait or ""))


def _role(value: str) -> str:
    if value not in ROLES:
        raise InvalidInput(
            f"rôle inconnu : « {value[:40]} » ; choisissez Membre, Expert ou Administrateur"
        )
    return value


@router.post(f"{HOME}/organisations/{{slug}}/roles", response_class=HTMLResponse)
def change_role(
    request: Request,
    slug: str,
    caller: PageCallerDep,
    user: Annotated[str, Form(max_length=300)] = "",
    role: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    refused = _guard(request, caller, _org_page(slug))
    if refused:
        return refused
    with _db(request).session() as session:
        accounts.set_role(session, caller, slug, user, _role(role))
    return RedirectResponse(f"{_org_page(slug)}?fait=role", status_code=303)


@router.post(f"{HOME}/organisations/{{slug}}/jetons", response_class=HTMLResponse)
def create_token(
    request: Request,
    slug: str,
    caller: PageCallerDep,
    user: Annotated[str, Form(max_length=300)] = "",
    role: Annotated[str, Form(max_length=40)] = "",
    label: Annotated[str, Form(max_length=1000)] = "",
    expire: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Issue a token (valid until the end of ``expire``'s day in the service's zone, when given);
    its value is on this answer only (``no-store``), never again."""
    refused = _guard(request, caller, _org_page(slug))
    if refused:
        return refused
    forms = OrgForms(token={"user": user, "role": role, "label": label, "expire": expire})
    day = _day(expire, "d'expiration", forms.errors, "token-expire")
    zone = _zone(request)
    expires_at = _paris_midnight(day + dt.timedelta(days=1), zone) if day else None
    user, label_ = user.strip(), label.strip() or None
    if not user:
        forms.errors["token-user"] = (
            "indiquez le nom de l'utilisateur : un membre existant, ou un nouveau compte de service"
        )
    elif len(user) > 200:
        forms.errors["token-user"] = "nom d'utilisateur trop long (200 caractères au plus)"
    if role not in ROLES:
        forms.errors["token-role"] = "choisissez un rôle : Membre, Expert ou Administrateur"
    if label_ is not None and len(label_) > 200:
        forms.errors["token-label"] = "libellé trop long (200 caractères au plus)"
    if forms.errors:
        return _organisation(request, slug, forms=forms, status=400)
    try:
        with _db(request).session() as session:
            issued = accounts.create_token(
                session, caller, slug, role, user, label_, expires_at=expires_at
            )
            org_name = accounts.get_organisation(session, slug).name
    except (InvalidInput, Conflict) as exc:
        key = "token-user"
        if "libellé" in exc.message:
            key = "token-label"
        elif "expiration" in exc.message:
            key = "token-expire"
        forms.errors[key] = exc.message
        return _organisation(
            request, slug, forms=forms, status=409 if isinstance(exc, Conflict) else 400
        )
    return _no_store(
        render(
            request,
            "admin_jeton.html",
            title="Jeton créé",
            issued=issued,
            org_slug=slug,
            org_name=org_name,
            label=label_,
            expires_on=day,
            roles=ROLES,
        )
    )


@router.post(
    f"{HOME}/organisations/{{slug}}/jetons/{{prefix}}/revoquer", response_class=HTMLResponse
)
def revoke_token(request: Request, slug: str, prefix: str, caller: PageCallerDep) -> Response:
    refused = _guard(request, caller, _org_page(slug))
    if refused:
        return refused
    with _db(request).session() as session:
        org = accounts.get_organisation(session, slug)
        row = (
            None
            if not accounts.PREFIX_RE.fullmatch(prefix)
            else session.scalar(
                select(ApiToken)
                .join(User)
                .where(ApiToken.prefix == prefix, User.organisation_id == org.id)
            )
        )
        if row is None:
            raise NotFound(f"aucun jeton « {prefix[:20]} » parmi ceux de {org.name}")
        accounts.revoke_token(session, caller, row.prefix)
    return RedirectResponse(f"{_org_page(slug)}?fait=revoque", status_code=303)


@router.post(f"{HOME}/organisations/{{slug}}/quotas", response_class=HTMLResponse)
def set_quotas(
    request: Request,
    slug: str,
    caller: PageCallerDep,
    demos: Annotated[str, Form(max_length=100)] = "",
    evaluations: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Both quotas at once; an empty field: the service's setting applies."""
    refused = _guard(request, caller, _org_page(slug))
    if refused:
        return refused
    forms = OrgForms(quotas={"demos": demos, "evaluations": evaluations})
    for name, value, what in (
        ("demos", demos, "de démonstrateurs"),
        ("evaluations", evaluations, "d'évaluations"),
    ):
        try:
            accounts.check_quota(value, what)
        except InvalidInput as exc:
            forms.errors[f"quota-{name}"] = exc.message
    if forms.errors:
        return _organisation(request, slug, forms=forms, status=400)
    with _db(request).session() as session:
        accounts.set_quotas(session, caller, slug, demos, evaluations)
    return RedirectResponse(f"{_org_page(slug)}?fait=quotas", status_code=303)


# ------------------------------------------------------------ the audit log


@dataclass
class JournalFilters:
    """The audit log's filters as typed (``values``), what they mean (``query``), their errors."""

    values: dict[str, str]
    query: accounts.AuditQuery
    errors: dict[str, str]
    page: int


def _day(value: str, label: str, errors: dict[str, str], key: str) -> dt.date | None:
    value = value.strip()
    if not value:
        return None
    if not DATE_RE.fullmatch(value):
        errors[key] = (
            f"date {label} invalide : « {value[:30]} » ; attendu : une date comme 2026-03-01"
        )
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        errors[key] = f"date {label} invalide : le {value} n'existe pas"
        return None
    if not 2000 <= day.year <= 2100:
        errors[key] = f"date {label} invalide : choisissez une année entre 2000 et 2100"
        return None
    return day


def _paris_midnight(day: dt.date, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)


def journal_filters(
    zone: zoneinfo.ZoneInfo,
    known_actions: set[str],
    *,
    qui: str | None,
    action: str | None,
    objet: str | None,
    du: str | None,
    au: str | None,
    page: str | None,
) -> JournalFilters:
    """The filters of a request, checked: text at most :data:`TEXT_MAX` characters without
    control characters, a known action, dates ``AAAA-MM-JJ`` (days in ``zone``, both included)."""
    values = {
        "qui": qui or "",
        "action": action or "",
        "objet": objet or "",
        "du": du or "",
        "au": au or "",
    }
    errors: dict[str, str] = {}
    texts: dict[str, str | None] = {}
    for key, label in (("qui", "« Qui »"), ("objet", "« Modèle ou objet »")):
        text = values[key].strip()
        if len(text) > TEXT_MAX:
            errors[key] = f"le filtre {label} est trop long ({TEXT_MAX} caractères au plus)"
        elif any(ord(c) < 32 or ord(c) == 127 for c in text):
            errors[key] = f"le filtre {label} contient un caractère de contrôle"
        texts[key] = text or None
    wanted = values["action"].strip()
    if wanted and (not ACTION_RE.fullmatch(wanted) or wanted not in known_actions):
        errors["action"] = f"action inconnue : « {wanted[:40]} » ; choisissez-en une dans la liste"
    start = _day(values["du"], "de début", errors, "du")
    end = _day(values["au"], "de fin", errors, "au")
    if start and end and end < start:
        errors["au"] = "la date de fin est avant la date de début"
    try:
        number = check_page(page) if page else 1
    except InvalidInput:
        number = 1
    query = accounts.AuditQuery(
        actor=texts["qui"],
        action=wanted or None,
        target=texts["objet"],
        start=_paris_midnight(start, zone) if start else None,
        end=_paris_midnight(end + dt.timedelta(days=1), zone) if end else None,
    )
    return JournalFilters(values=values, query=query, errors=errors, page=number)


def _zone(request: Request) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(_settings(request).timezone)


DETAIL_KEYS = {
    "organisation": "organisation",
    "user": "utilisateur",
    "role": "rôle",
    "name": "nom",
    "siren": "SIREN",
    "demos": "démonstrateurs",
    "evaluations": "évaluations",
    "previous": "avant",
    "version": "version",
    "minutes": "minutes",
    "reason": "motif",
    "by": "par",
    "state": "état",
    "method": "méthode",
}


def _details(details: dict[str, Any] | None) -> str:
    """An event's details as a person reads them: « utilisateur : alice, rôle : expert »."""
    if not details:
        return ""

    def shown(value: Any) -> str:
        if value is None:
            return "—"
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    return ", ".join(
        f"{DETAIL_KEYS.get(key, key)} : {shown(value)}" for key, value in details.items()
    )


def _filters_from(request: Request, session: Session) -> tuple[JournalFilters, list[str]]:
    params = request.query_params
    actions = sorted(set(accounts.AUDIT_ACTIONS) | set(accounts.audit_actions_seen(session)))
    filters = journal_filters(
        _zone(request),
        set(actions),
        qui=params.get("qui"),
        action=params.get("action"),
        objet=params.get("objet"),
        du=params.get("du"),
        au=params.get("au"),
        page=params.get("page"),
    )
    return filters, actions


@router.get(JOURNAL, response_class=HTMLResponse)
def journal(request: Request, caller: PageCallerDep) -> Response:
    """Who did what, when: filtered, newest first, 50 a page, times in the service's zone."""
    refused = _guard(request, caller)
    if refused:
        return refused
    with _db(request).session() as session:
        filters, actions = _filters_from(request, session)
        events: list[dict[str, Any]] = []
        total = 0
        if not filters.errors:
            rows, total = accounts.search_audit(
                session, filters.query, offset=(filters.page - 1) * PER_PAGE, limit=PER_PAGE
            )
            if not rows and total:  # past the last page: the last page
                filters.page = -(-total // PER_PAGE)
                rows, total = accounts.search_audit(
                    session, filters.query, offset=(filters.page - 1) * PER_PAGE, limit=PER_PAGE
                )
            events = [
                {
                    "at": e.at,
                    "actor": e.actor,
                    "organisation": e.organisation,
                    "action": e.action,
                    "label": accounts.AUDIT_ACTIONS.get(e.action, e.action),
                    "target": e.target,
                    "details": _details(e.details),
                }
                for e in rows
            ]
    pages = max(1, -(-total // PER_PAGE))
    params = {k: v for k, v in filters.values.items() if v}
    return render(
        request,
        "admin_journal.html",
        status=400 if filters.errors else 200,
        title="Administration — journal d'audit",
        filters=filters.values,
        errors=filters.errors,
        actions=[(a, accounts.AUDIT_ACTIONS.get(a, a)) for a in actions],
        events=events,
        pager={"page": min(filters.page, pages), "pages": pages, "total": total},
        params=params,
        export_max=EXPORT_MAX,
        zone=_zone(request).key,
    )


CSV_HEADER = (
    "Date et heure (heure de Paris)",
    "Qui",
    "Organisation",
    "Action",
    "Action (code)",
    "Objet",
    "Détails",
)


@router.get(f"{JOURNAL}.csv")
def journal_csv(request: Request, caller: PageCallerDep) -> Response:
    """The filtered events as a French Excel CSV (newest first, :data:`EXPORT_MAX` at most)."""
    refused = _guard(request, caller, JOURNAL)
    if refused:
        return refused
    zone = _zone(request)
    with _db(request).session() as session:
        filters, _ = _filters_from(request, session)
        if filters.errors:
            raise InvalidInput("filtres invalides : " + " ; ".join(filters.errors.values()))
        rows, _total = accounts.search_audit(session, filters.query, limit=EXPORT_MAX)
        lines = [
            (
                _aware(e.at).astimezone(zone).strftime("%d/%m/%Y %H:%M:%S"),
                e.actor,
                e.organisation or "",
                accounts.AUDIT_ACTIONS.get(e.action, e.action),
                e.action,
                e.target,
                json.dumps(e.details, ensure_ascii=False) if e.details else "",
            )
            for e in rows
        ]
    day = dt.datetime.now(zone).strftime("%Y-%m-%d")
    return Response(
        french_csv(CSV_HEADER, lines),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="journal-bibia-{day}.csv"',
            "Cache-Control": "no-store",
        },
    )
