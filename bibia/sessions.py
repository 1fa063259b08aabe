"""Web sessions: what a browser's ``bibia_session`` cookie names, held server-side.

A session is opened at sign-in, with an API token or through OpenID Connect
(:func:`open_oidc_session`, no token; :mod:`bibia.oidc`): its identifier is 256
random bits (``secrets``), given to the browser once and stored only as
SHA-256, like tokens. It lives until its expiry (``session_hours``), its
revocation (sign-out, a new sign-in from the same browser, its owner from the
sessions page), or the revocation or expiry of the token it was opened with;
removing the user removes it (``ON DELETE CASCADE``). The caller it stands for
is recomputed from the user's current role on every request.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bibia import policy
from bibia.accounts import audit
from bibia.auth import Caller, aware, caller_for, hash_token, refused, token_problem
from bibia.db.models import ApiToken, User, WebSession, utcnow
from domain.errors import NotFound, Unauthorized

SECRET_RE = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32); always fullmatch
SEEN_EVERY = dt.timedelta(minutes=1)  # last_seen_at is written at most this often


@dataclass(frozen=True)
class OpenedSession:
    """A new session: ``secret`` goes into the cookie and is never stored."""

    secret: str
    id: int
    expires_at: dt.datetime


def open_session(
    session: Session,
    caller: Caller,
    *,
    lifetime: dt.timedelta,
    user_agent: str | None,
    replacing: str | None = None,
) -> OpenedSession:
    """Open a session for ``caller`` (just authenticated with its token); revoke the one it replaces.

    Args:
        caller: who signed in (``caller.token_prefix`` names the token used).
        lifetime: how long the session may live.
        user_agent: the browser's User-Agent header, kept as a short label.
        replacing: the value of the browser's previous session cookie, if any.
    """
    token = session.scalar(select(ApiToken).where(ApiToken.prefix == caller.token_prefix))
    if token is None or caller.user_id is None:
        raise Unauthorized("connexion impossible : ce jeton n'existe plus")
    secret, row = _add(
        session,
        replacing,
        lifetime=lifetime,
        user_agent=user_agent,
        user_id=caller.user_id,
        token_id=token.id,
    )
    audit(
        session,
        caller,
        "session.open",
        f"session {row.id}",
        token=token.prefix,
        user_agent=row.user_agent,
    )
    return OpenedSession(secret=secret, id=row.id, expires_at=row.expires_at)


def open_oidc_session(
    session: Session,
    user_id: int,
    *,
    id_token: str,
    provider: str,
    lifetime: dt.timedelta,
    user_agent: str | None,
    replacing: str | None = None,
) -> OpenedSession:
    """Open a session for a person who signed in through OpenID Connect (no token).

    Args:
        user_id: the account :func:`bibia.oidc.sign_in` found or created.
        id_token: the provider's ID token, kept for its sign-out (``id_token_hint``), never shown.
        provider: the provider's name, for the audit log.
        lifetime: how long the session may live.
        user_agent: the browser's User-Agent header, kept as a short label.
        replacing: the value of the browser's previous session cookie, if any.
    """
    user = session.get(User, user_id)
    if user is None:
        raise Unauthorized("connexion impossible : ce compte n'existe plus")
    secret, row = _add(
        session,
        replacing,
        lifetime=lifetime,
        user_agent=user_agent,
        user_id=user.id,
        token_id=None,
        method="oidc",
        oidc_id_token=id_token,
    )
    audit(
        session,
        caller_for(user, None, session_id=row.id),
        "session.open",
        f"session {row.id}",
        method="oidc",
        provider=provider,
        user_agent=row.user_agent,
    )
    return OpenedSession(secret=secret, id=row.id, expires_at=row.expires_at)


def _add(
    session: Session,
    replacing: str | None,
    *,
    lifetime: dt.timedelta,
    user_agent: str | None,
    **columns: Any,
) -> tuple[str, WebSession]:
    """Revoke the session ``replacing`` names, if any, and add a new one: its secret and its row."""
    if replacing:
        close_session(session, replacing)
    now = utcnow()
    secret = secrets.token_urlsafe(32)
    row = WebSession(
        secret_hash=hash_token(secret),
        **columns,
        user_agent=user_agent_label(user_agent),
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
    )
    session.add(row)
    session.flush()
    return secret, row


def resolve(session: Session, secret: str) -> Caller:
    """The caller a session cookie stands for.

    Raises:
        Unauthorized: malformed, unknown, expired or revoked session, or its token revoked or expired.
    """
    row = _by_secret(session, secret)
    if row is None:
        raise refused("session inconnue : reconnectez-vous")
    now = utcnow()
    problem = _problem(row, now)
    if problem is not None:
        raise refused(problem)
    if now - aware(row.last_seen_at) > SEEN_EVERY:
        row.last_seen_at = now
    return caller_for(row.user, row.token, session_id=row.id)


def close_session(session: Session, secret: str) -> str | None:
    """Revoke the session a cookie names (sign-out); an unknown or already closed one is left as is.

    Returns:
        the provider's ID token of a session opened through OpenID Connect (for the provider's
        own sign-out, ``id_token_hint``), else None. The session forgets it.
    """
    row = _by_secret(session, secret)
    if row is None or row.revoked_at is not None:
        return None
    row.revoked_at = utcnow()
    id_token, row.oidc_id_token = row.oidc_id_token, None
    audit(
        session,
        caller_for(row.user, row.token, session_id=row.id),
        "session.close",
        f"session {row.id}",
    )
    return id_token


def revoke(session: Session, caller: Caller, session_id: int) -> WebSession:
    """Revoke one of ``caller``'s own sessions.

    Raises:
        NotFound: no session ``session_id`` belongs to the caller.
    """
    row = session.get(WebSession, session_id)
    if row is None or not policy.may_revoke_own(caller, row.user_id):
        raise NotFound(f"aucune session n° {session_id} parmi les vôtres")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit(session, caller, "session.revoke", f"session {row.id}")
    return row


def active_sessions(session: Session, caller: Caller) -> list[WebSession]:
    """The caller's sessions that still let a browser in, most recently used first."""
    if caller.user_id is None:
        return []
    rows = session.scalars(
        select(WebSession).where(
            WebSession.user_id == caller.user_id, WebSession.revoked_at.is_(None)
        )
    )
    now = utcnow()
    alive = [row for row in rows if _problem(row, now) is None]
    return sorted(alive, key=lambda row: aware(row.last_seen_at), reverse=True)


def own_tokens(session: Session, caller: Caller) -> list[ApiToken]:
    """The caller's own API tokens still usable (not revoked, not expired), newest first."""
    if caller.user_id is None:
        return []
    rows = session.scalars(
        select(ApiToken).where(ApiToken.user_id == caller.user_id, ApiToken.revoked_at.is_(None))
    )
    now = utcnow()
    alive = [row for row in rows if token_problem(row, now) is None]
    return sorted(alive, key=lambda row: aware(row.created_at), reverse=True)


def describe_token(row: ApiToken) -> dict[str, Any]:
    """A token as its owner sees it: prefix, label, times (never its value or its hash)."""
    return {
        "prefix": row.prefix,
        "label": row.label,
        "created_at": aware(row.created_at),
        "last_used_at": aware(row.last_used_at) if row.last_used_at else None,
        "expires_at": aware(row.expires_at) if row.expires_at else None,
    }


def revoke_own_token(session: Session, caller: Caller, prefix: str) -> ApiToken:
    """Revoke one of ``caller``'s own tokens (its sessions close with it).

    Raises:
        NotFound: no token ``prefix`` belongs to the caller (another person's is not found either).
    """
    row = session.scalar(select(ApiToken).where(ApiToken.prefix == prefix))
    if row is None or not policy.may_revoke_own(caller, row.user_id):
        raise NotFound(f"aucun jeton « {prefix} » parmi les vôtres")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit(session, caller, "token.revoke", row.prefix, by="owner")
    return row


def describe(row: WebSession, current_id: int | None) -> dict[str, Any]:
    """A session as its owner sees it (never its identifier's secret)."""
    return {
        "id": row.id,
        "created_at": aware(row.created_at),
        "last_seen_at": aware(row.last_seen_at),
        "expires_at": aware(row.expires_at),
        "user_agent": row.user_agent,
        "token": row.token.prefix if row.token is not None else None,
        "method": row.method,
        "current": row.id == current_id,
    }


def user_agent_label(header: str | None) -> str | None:
    """A short, readable label for a User-Agent (« Firefox · Linux »), never the raw header whole."""
    if not header:
        return None
    browsers = (
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    )
    systems = (
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    )
    browser = next((name for key, name in browsers if key in header), None)
    system = next((name for key, name in systems if key in header), None)
    if browser or system:
        return " · ".join(part for part in (browser, system) if part)
    printable = "".join(c for c in header if c.isprintable())[:60].strip()
    return printable or None


def _by_secret(session: Session, secret: str) -> WebSession | None:
    if not SECRET_RE.fullmatch(secret):
        return None
    return session.scalar(select(WebSession).where(WebSession.secret_hash == hash_token(secret)))


def _problem(row: WebSession, now: dt.datetime) -> str | None:
    if row.revoked_at is not None:
        return "session fermée : reconnectez-vous"
    if aware(row.expires_at) <= now:
        return "session expirée : reconnectez-vous"
    token_problem_ = token_problem(row.token, now) if row.token is not None else None
    if token_problem_ is not None:
        return f"session fermée : {token_problem_}"
    return None
