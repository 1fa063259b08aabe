"""Who is calling: tokens (random, shown once, stored hashed) and the Caller.

Token format: ``bibia_<prefix>_<secret>``. ``prefix`` (8 hex chars) names the
token in lists and logs; the whole token is only ever stored as SHA-256 (a
token carries 256 bits of randomness, so a fast hash is the right tool, as
for GitHub's tokens: nothing to brute-force).

Refused credentials are noted for the brake on failed authentication
(:class:`bibia.guards.FailedAuthBrake`): every refusal is built with
:func:`refused`, which records it for the request being served (a context
variable the brake sets around each request; outside a request, e.g. in the
CLI, nothing is recorded).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bibia.db.models import ApiToken, User, utcnow
from domain.errors import Unauthorized
from registry.tiers import Role, Tier

TOKEN_RE = re.compile(r"bibia_([0-9a-f]{8})_([A-Za-z0-9_-]{43})")  # always fullmatch


@dataclass(frozen=True)
class Caller:
    """The identity and tier of whoever makes a request or runs a command."""

    tier: Tier
    organisation: str | None = None
    organisation_id: int | None = None
    organisation_siren: str | None = None
    user: str | None = None
    user_id: int | None = None
    token_prefix: str | None = None
    session_id: int | None = (
        None  # set when the caller is a browser's web session (opened with that token)
    )

    @property
    def actor(self) -> str:
        """How the audit log names this caller (never a secret)."""
        if self.user is None:
            return "anonyme"
        details = [f"jeton {self.token_prefix}"] if self.token_prefix else []
        if self.session_id is not None:
            details.append(f"session {self.session_id}")
        who = f"{self.user}@{self.organisation}"
        return f"{who} ({', '.join(details)})" if details else who  # never « jeton None »

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None


ANONYMOUS = Caller(tier=Tier.PUBLIC)
SYSTEM = Caller(tier=Tier.ADMIN, user="systeme", organisation="bibia")


_failures: ContextVar[list[str] | None] = ContextVar("bibia_auth_failures", default=None)


@contextmanager
def watching_failures() -> Iterator[list[str]]:
    """Collect the credentials refused while serving one request (see :func:`refused`)."""
    noted: list[str] = []
    reset = _failures.set(noted)
    try:
        yield noted
    finally:
        _failures.reset(reset)


def refused(message: str) -> Unauthorized:
    """The error for presented credentials that were refused, noted for the current request's brake.

    Only for credentials that were presented and refused; a request that
    simply has none is not a failure (use ``Unauthorized`` directly).
    """
    noted = _failures.get()
    if noted is not None:
        noted.append(message)
    return Unauthorized(message)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh ``(token, prefix)``."""
    prefix = secrets.token_hex(4)
    return f"bibia_{prefix}_{secrets.token_urlsafe(32)}", prefix


def authenticate(session: Session, token: str) -> Caller:
    """The caller a bearer token stands for.

    Raises:
        Unauthorized: malformed, unknown, expired or revoked token.
    """
    if not TOKEN_RE.fullmatch(token):
        raise refused(
            "jeton mal formé : attendu « bibia_<8 caractères>_<secret> », tel qu'affiché à sa création"
        )
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None:
        raise refused(
            "jeton inconnu : vérifiez qu'il a été copié en entier, ou demandez-en un nouveau"
        )
    now = utcnow()
    problem = token_problem(row, now)
    if problem is not None:
        raise refused(problem)
    if row.last_used_at is None or now - aware(row.last_used_at) > dt.timedelta(minutes=1):
        row.last_used_at = now
    return caller_for(row.user, row)


def token_problem(row: ApiToken, now: dt.datetime) -> str | None:
    """Why ``row`` may no longer be used (revoked, expired), or None."""
    if row.revoked_at is not None:
        return f"jeton {row.prefix} révoqué : demandez-en un nouveau à votre administrateur"
    if row.expires_at is not None and aware(row.expires_at) <= now:
        return f"jeton {row.prefix} expiré : demandez-en un nouveau à votre administrateur"
    return None


def caller_for(user: User, token: ApiToken | None, *, session_id: int | None = None) -> Caller:
    """The caller ``user`` is, through ``token`` and/or the web session ``session_id``.

    A web session opened through OpenID Connect has no token.
    """
    return Caller(
        tier=Role(user.role).tier,
        organisation=user.organisation.slug,
        organisation_id=user.organisation_id,
        organisation_siren=user.organisation.siren,
        user=user.name,
        user_id=user.id,
        token_prefix=token.prefix if token is not None else None,
        session_id=session_id,
    )


def aware(value: dt.datetime) -> dt.datetime:
    """``value`` as an aware UTC datetime (SQLite hands back naive ones)."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
