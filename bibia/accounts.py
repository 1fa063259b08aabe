"""Organisations, users, tokens and the audit log: bibia's own records."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import false, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bibia.auth import Caller, hash_token, new_token
from bibia.db.models import ApiToken, AuditEvent, Organisation, User, utcnow
from domain.errors import Conflict, InvalidInput, NotFound
from registry.refs import SLUG_RE, check_siren, check_slug
from registry.tiers import Role

PREFIX_RE = re.compile(r"[0-9a-f]{8}")  # a token's prefix (bibia.auth.new_token)


def check_text(value: str | None, what: str, max_length: int = 200) -> str:
    """``value`` stripped, if it has 1 to ``max_length`` characters and no control character
    (PostgreSQL refuses a NUL anywhere in a query; a tab or a newline has no place in a name)."""
    text = (value or "").strip()
    if not text:
        raise InvalidInput(f"{what} est obligatoire")
    if len(text) > max_length:
        raise InvalidInput(f"{what} est trop long ({max_length} caractères au plus)")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text):
        raise InvalidInput(
            f"{what} contient un caractère de contrôle (tabulation, retour à la ligne...)"
        )
    return text


MAX_TOKEN_DAYS = 5 * 366  # how far a token's expiry may be


def check_expiry(expires_at: dt.datetime) -> dt.datetime:
    """A token's expiry: an aware moment in the future, within MAX_TOKEN_DAYS."""
    if expires_at.tzinfo is None:
        raise InvalidInput("date d'expiration sans fuseau horaire")
    now = utcnow()
    if expires_at <= now:
        raise InvalidInput("la date d'expiration est passée : choisissez une date à venir")
    if expires_at > now + dt.timedelta(days=MAX_TOKEN_DAYS):
        raise InvalidInput("la date d'expiration est trop lointaine (5 ans au plus)")
    return expires_at


def audit(session: Session, caller: Caller, action: str, target: str, **details: Any) -> None:
    """Record who did what, when, in the same unit of work as the change itself."""
    session.add(
        AuditEvent(
            actor=caller.actor,
            organisation=caller.organisation,
            action=action,
            target=target,
            details=details or None,
        )
    )


def create_organisation(
    session: Session, caller: Caller, slug: str, name: str, siren: str | None
) -> Organisation:
    """Create an organisation.

    Raises:
        InvalidInput: bad slug or SIREN.
        Conflict: the slug or the SIREN is already taken.
    """
    check_slug(slug, "d'organisation")
    if not (name or "").strip():
        raise InvalidInput("le nom de l'organisation est obligatoire (--name)")
    name = check_text(name, "le nom de l'organisation", 300)
    if siren is not None:
        check_siren(siren)
    if session.scalar(select(Organisation).where(Organisation.slug == slug)):
        raise Conflict(f"l'organisation « {slug} » existe déjà")
    if siren and session.scalar(select(Organisation).where(Organisation.siren == siren)):
        raise Conflict(f"une organisation porte déjà le SIREN {siren}")
    org = Organisation(slug=slug, name=name.strip(), siren=siren)
    session.add(org)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"l'organisation « {slug} » existe déjà") from exc
    audit(session, caller, "org.create", slug, name=org.name, siren=siren)
    return org


def get_organisation(session: Session, slug: str) -> Organisation:
    # an identifier no organisation can have is not looked for (PostgreSQL refuses a NUL in a query)
    org = (
        session.scalar(select(Organisation).where(Organisation.slug == slug))
        if SLUG_RE.fullmatch(slug or "")
        else None
    )
    if org is None:
        raise NotFound(f"organisation inconnue : « {slug} » (bibia org ls pour la liste)")
    return org


def organisation_by_siren(session: Session, siren: str) -> Organisation | None:
    return session.scalar(select(Organisation).where(Organisation.siren == siren))


def list_organisations(session: Session) -> list[Organisation]:
    return list(session.scalars(select(Organisation).order_by(Organisation.slug)))


@dataclass(frozen=True)
class IssuedToken:
    token: str
    prefix: str
    organisation: str
    user: str
    role: Role


def create_token(
    session: Session,
    caller: Caller,
    org_slug: str,
    role: str,
    user_name: str | None = None,
    label: str | None = None,
    expires_at: dt.datetime | None = None,
) -> IssuedToken:
    """Issue a token for a user of ``org_slug`` (created with ``role`` if new), valid until
    ``expires_at`` (None: until revoked; else in the future, within MAX_TOKEN_DAYS).

    The plaintext token is returned once and never stored.
    """
    if expires_at is not None:  # stored in UTC (SQLite keeps no time zone)
        expires_at = check_expiry(expires_at).astimezone(dt.UTC)
    try:
        role_ = Role(role)
    except ValueError as exc:
        raise InvalidInput(
            f"rôle inconnu : {role!r} ; rôles possibles : member, expert, admin"
        ) from exc
    org = get_organisation(session, org_slug)
    name = (user_name or f"{role_.value}").strip()
    if not name or len(name) > 200:
        raise InvalidInput("nom d'utilisateur invalide (1 à 200 caractères)")
    name = check_text(name, "le nom d'utilisateur")
    if label is not None:
        label = check_text(label, "le libellé") if label.strip() else None
    user = session.scalar(select(User).where(User.organisation_id == org.id, User.name == name))
    if user is None:
        user = User(organisation=org, name=name, role=role_.value)
        session.add(user)
    elif user.role != role_.value:
        raise Conflict(
            f"l'utilisateur « {name} » de {org.slug} a le rôle {user.role}, pas {role_.value} ; "
            "choisissez un autre nom (--user) ou changez son rôle (bibia user role)"
        )
    token, prefix = new_token()
    session.add(
        ApiToken(
            user=user,
            prefix=prefix,
            token_hash=hash_token(token),
            label=label,
            expires_at=expires_at,
        )
    )
    session.flush()
    expiry = {"expires_at": expires_at.isoformat(timespec="seconds")} if expires_at else {}
    audit(
        session,
        caller,
        "token.create",
        prefix,
        organisation=org.slug,
        user=name,
        role=role_.value,
        **expiry,
    )
    return IssuedToken(token=token, prefix=prefix, organisation=org.slug, user=name, role=role_)


def revoke_token(session: Session, caller: Caller, prefix: str) -> ApiToken:
    row = (
        session.scalar(select(ApiToken).where(ApiToken.prefix == prefix))
        if PREFIX_RE.fullmatch(prefix)
        else None
    )
    if row is None:
        raise NotFound(f"jeton inconnu : « {prefix} » (bibia token ls pour la liste)")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit(session, caller, "token.revoke", prefix)
    return row


def list_tokens(session: Session, org_slug: str | None = None) -> list[ApiToken]:
    query = select(ApiToken).join(User).join(Organisation).order_by(ApiToken.created_at)
    if org_slug:
        if not SLUG_RE.fullmatch(org_slug):
            return []  # no organisation has it (and PostgreSQL refuses a NUL in a query)
        query = query.where(Organisation.slug == org_slug)
    return list(session.scalars(query))


def set_role(session: Session, caller: Caller, org_slug: str, user_name: str, role: str) -> User:
    try:
        role_ = Role(role)
    except ValueError as exc:
        raise InvalidInput(
            f"rôle inconnu : {role!r} ; rôles possibles : member, expert, admin"
        ) from exc
    org = get_organisation(session, org_slug)
    user = session.scalar(
        select(User).where(
            User.organisation_id == org.id,
            User.name == check_text(user_name, "le nom d'utilisateur"),
        )
    )
    if user is None:
        raise NotFound(f"utilisateur inconnu : « {user_name} » dans {org_slug}")
    if caller.user_id is not None and caller.user_id == user.id and user.role != role_.value:
        raise Conflict(
            "vous ne pouvez pas changer votre propre rôle (vous pourriez perdre l'accès à "
            "l'administration) : demandez-le à un autre administrateur"
        )
    user.role = role_.value
    audit(session, caller, "user.role", f"{user_name}@{org_slug}", role=role_.value)
    return user


# ------------------------------------------------------------ quotas per organisation

MAX_QUOTA = 1000


@dataclass(frozen=True)
class Quotas:
    """An organisation's quotas as they apply: its own (set by an administrator) or the service's."""

    demos: int
    evaluations: int
    demos_own: bool  # True: the organisation's own quota; False: the service's setting
    evaluations_own: bool


def quotas_of(org: Organisation | None, demo_default: int, evaluation_default: int) -> Quotas:
    """``org``'s quotas: its own where set, else the service's (``demo_quota_per_org``,
    ``evaluation_quota_per_org``)."""
    demos = org.demo_quota if org is not None else None
    evaluations = org.evaluation_quota if org is not None else None
    return Quotas(
        demos=demo_default if demos is None else demos,
        evaluations=evaluation_default if evaluations is None else evaluations,
        demos_own=demos is not None,
        evaluations_own=evaluations is not None,
    )


def demo_quota(session: Session, organisation_id: int | None, default: int) -> int:
    """Active demonstrators the organisation may have at once (its own quota, else ``default``)."""
    org = session.get(Organisation, organisation_id) if organisation_id is not None else None
    return quotas_of(org, default, 0).demos


def evaluation_quota(session: Session, organisation_id: int | None, default: int) -> int:
    """Evaluations the organisation may have queued or running (its own quota, else ``default``)."""
    org = session.get(Organisation, organisation_id) if organisation_id is not None else None
    return quotas_of(org, 0, default).evaluations


def check_quota(value: object, what: str) -> int | None:
    """A quota from a form, the API or the CLI: None (the service's setting) or 0 to MAX_QUOTA."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = (
        str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    )
    if not text.isascii() or not text.isdigit() or len(text) > 6 or int(text) > MAX_QUOTA:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise InvalidInput(
            f"quota {what} invalide : {shown} ; attendu : un nombre entier de 0 à {MAX_QUOTA}, "
            "ou rien pour appliquer le réglage du service"
        )
    return int(text)


def set_quotas(
    session: Session,
    caller: Caller,
    org_slug: str,
    demos: object,
    evaluations: object,
) -> Organisation:
    """Set ``org_slug``'s own quotas (None: the service's setting applies again), audit-logged.

    Raises:
        InvalidInput: a quota that is not an integer from 0 to MAX_QUOTA (nothing is changed).
        NotFound: no such organisation.
    """
    demos_ = check_quota(demos, "de démonstrateurs")
    evaluations_ = check_quota(evaluations, "d'évaluations")
    org = get_organisation(session, org_slug)
    previous = {"demos": org.demo_quota, "evaluations": org.evaluation_quota}
    org.demo_quota = demos_
    org.evaluation_quota = evaluations_
    audit(
        session,
        caller,
        "org.quotas",
        org.slug,
        demos=demos_,
        evaluations=evaluations_,
        previous=previous,
    )
    return org


# ------------------------------------------------------------ members


def members(session: Session, org_slug: str) -> list[User]:
    """The people and service accounts of ``org_slug``, by name."""
    org = get_organisation(session, org_slug)
    return list(
        session.scalars(select(User).where(User.organisation_id == org.id).order_by(User.name))
    )


# ------------------------------------------------------------ the audit log, filtered

#: The actions bibia records, with what a person reads for each (the log's filter offers them all).
AUDIT_ACTIONS: dict[str, str] = {
    "org.create": "Organisation créée",
    "org.quotas": "Quotas d'une organisation modifiés",
    "user.create": "Compte créé (première connexion)",
    "user.role": "Rôle modifié",
    "token.create": "Jeton créé",
    "token.revoke": "Jeton révoqué",
    "session.open": "Session ouverte",
    "session.close": "Session fermée (déconnexion)",
    "session.revoke": "Session révoquée",
    "model.register": "Version de modèle publiée",
    "model.card": "Fiche de modèle modifiée",
    "model.alias": "Alias déplacé",
    "model.alias.delete": "Alias supprimé",
    "model.evaluation_settings": "Réglages d'évaluation modifiés",
    "project.create": "Projet créé",
    "project.update": "Projet modifié",
    "project.invitation.accept": "Invitation à un projet acceptée",
    "project.invitation.decline": "Invitation à un projet refusée",
    "demo.launch": "Démonstrateur lancé",
    "demo.stop": "Démonstrateur arrêté",
    "demo.extend": "Démonstrateur prolongé",
    "demo.tampered": "Démonstrateur altéré (arrêté par bibia)",
    "evaluation.submit": "Évaluation demandée",
    "evaluation.sandbox": "Bac à sable d'évaluation lancé",
    "evaluation.cancel": "Évaluation annulée",
    "benchmark.register": "Jeu d'évaluation enregistré",
    "report.publish": "Retour d'expérience publié",
    "report.update": "Retour d'expérience modifié",
    "report.unpublish": "Retour d'expérience retiré",
    "reuse.declare": "Réutilisation déclarée",
    "reuse.update": "Réutilisation modifiée",
    "reuse.withdraw": "Réutilisation retirée",
}


@dataclass(frozen=True)
class AuditQuery:
    """Filters of the audit log; every one optional. ``start``/``end`` are UTC moments (end excluded)."""

    actor: str | None = None  # contained in the actor (case-insensitive)
    action: str | None = None  # exactly
    target: str | None = None  # contained in the target: a model's name, an organisation...
    start: dt.datetime | None = None
    end: dt.datetime | None = None


def _moment(value: str, zone: ZoneInfo, label: str, *, end: bool) -> dt.datetime:
    """An ISO 8601 date (the day in ``zone``: its start, or the next day's when ``end``)
    or date and time (in ``zone`` unless it says its offset), as a UTC moment."""
    text = value.strip()
    try:
        moment = (
            dt.datetime.combine(dt.date.fromisoformat(text), dt.time())
            if len(text) == 10
            else dt.datetime.fromisoformat(text)
        )
    except ValueError:
        raise InvalidInput(
            f"date {label} invalide : « {text[:40]} » ; attendu : une date comme 2026-03-01 "
            "ou une date et heure comme 2026-03-01T14:30 (heure de Paris sauf décalage indiqué)"
        ) from None
    if not 2000 <= moment.year <= 2100:  # checked before a day is added (9999-12-31 + 1 day)
        raise InvalidInput(f"date {label} invalide : choisissez une année entre 2000 et 2100")
    if end and len(text) == 10:
        moment += dt.timedelta(days=1)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(dt.UTC)


def audit_query(
    zone: ZoneInfo,
    *,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> AuditQuery:
    """The filters of the API's and the CLI's audit log. ``since`` and ``until`` are ISO 8601
    dates (days in ``zone``, both included) or dates and times (``until`` excluded).

    Raises:
        InvalidInput: a date that is not one, or ``until`` before ``since``.
    """
    start = _moment(since, zone, "de début", end=False) if since else None
    end = _moment(until, zone, "de fin", end=True) if until else None
    if start is not None and end is not None and end <= start:
        raise InvalidInput("la date de fin est avant la date de début")
    return AuditQuery(
        actor=actor or None, action=action or None, target=target or None, start=start, end=end
    )


def _audit_where(query: Any, q: AuditQuery) -> Any:
    if any(
        any(ord(c) < 32 or ord(c) == 127 for c in text)
        for text in (q.actor, q.action, q.target)
        if text
    ):
        return query.where(false())  # nothing holds one (and PostgreSQL refuses a NUL)
    if q.actor:
        query = query.where(func.lower(AuditEvent.actor).contains(q.actor.lower(), autoescape=True))
    if q.action:
        query = query.where(AuditEvent.action == q.action)
    if q.target:
        query = query.where(
            func.lower(AuditEvent.target).contains(q.target.lower(), autoescape=True)
        )
    if q.start is not None:
        query = query.where(AuditEvent.at >= q.start)
    if q.end is not None:
        query = query.where(AuditEvent.at < q.end)
    return query


def search_audit(
    session: Session, q: AuditQuery, *, offset: int = 0, limit: int | None = 50
) -> tuple[list[AuditEvent], int]:
    """The events matching ``q``, newest first (``limit`` None: all of them), and how many match."""
    total = session.scalar(_audit_where(select(func.count()).select_from(AuditEvent), q)) or 0
    query = (
        _audit_where(select(AuditEvent), q)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query)), total


def audit_actions_seen(session: Session) -> list[str]:
    """The actions the log holds (with :data:`AUDIT_ACTIONS`, what the filter offers)."""
    return sorted(session.scalars(select(AuditEvent.action).distinct()))
