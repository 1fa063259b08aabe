"""Organisations, users, tokens and the audit log: bibia's own records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bibia.auth import Caller, hash_token, new_token
from bibia.db.models import ApiToken, AuditEvent, Organisation, User, utcnow
from domain.errors import Conflict, InvalidInput, NotFound
from registry.refs import check_siren, check_slug
from registry.tiers import Role


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
    org = session.scalar(select(Organisation).where(Organisation.slug == slug))
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
) -> IssuedToken:
    """Issue a token for a user of ``org_slug`` (created with ``role`` if new).

    The plaintext token is returned once and never stored.
    """
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
    session.add(ApiToken(user=user, prefix=prefix, token_hash=hash_token(token), label=label))
    session.flush()
    audit(
        session, caller, "token.create", prefix, organisation=org.slug, user=name, role=role_.value
    )
    return IssuedToken(token=token, prefix=prefix, organisation=org.slug, user=name, role=role_)


def revoke_token(session: Session, caller: Caller, prefix: str) -> ApiToken:
    row = session.scalar(select(ApiToken).where(ApiToken.prefix == prefix))
    if row is None:
        raise NotFound(f"jeton inconnu : « {prefix} » (bibia token ls pour la liste)")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit(session, caller, "token.revoke", prefix)
    return row


def list_tokens(session: Session, org_slug: str | None = None) -> list[ApiToken]:
    query = select(ApiToken).join(User).join(Organisation).order_by(ApiToken.created_at)
    if org_slug:
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
        select(User).where(User.organisation_id == org.id, User.name == user_name)
    )
    if user is None:
        raise NotFound(f"utilisateur inconnu : « {user_name} » dans {org_slug}")
    user.role = role_.value
    audit(session, caller, "user.role", f"{user_name}@{org_slug}", role=role_.value)
    return user


def audit_events(session: Session, limit: int = 100, action: str | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if action:
        query = query.where(AuditEvent.action == action)
    return list(session.scalars(query))
