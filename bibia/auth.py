"""Who is calling: tokens (random, shown once, stored hashed) and the Caller.

Token format: ``bibia_<prefix>_<secret>``. ``prefix`` (8 hex chars) names the
token in lists and logs; the whole token is only ever stored as SHA-256 (a
token carries 256 bits of randomness, so a fast hash is the right tool, as
for GitHub's tokens: nothing to brute-force).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bibia.db.models import ApiToken, User, utcnow
from registry.errors import Unauthorized
from registry.tiers import Role, Tier

TOKEN_RE = re.compile(r"^bibia_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")


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

    @property
    def actor(self) -> str:
        """How the audit log names this caller (never a secret)."""
        if self.user is None:
            return "anonyme"
        return f"{self.user}@{self.organisation} (jeton {self.token_prefix})"

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None


ANONYMOUS = Caller(tier=Tier.PUBLIC)
SYSTEM = Caller(tier=Tier.ADMIN, user="systeme", organisation="bibia")


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
    if not TOKEN_RE.match(token):
        raise Unauthorized("jeton mal formé : attendu « bibia_<8 caractères>_<secret> », tel qu'affiché à sa création")
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None:
        raise Unauthorized("jeton inconnu : vérifiez qu'il a été copié en entier, ou demandez-en un nouveau")
    now = utcnow()
    if row.revoked_at is not None:
        raise Unauthorized(f"jeton {row.prefix} révoqué : demandez-en un nouveau à votre administrateur")
    if row.expires_at is not None and _aware(row.expires_at) <= now:
        raise Unauthorized(f"jeton {row.prefix} expiré : demandez-en un nouveau à votre administrateur")
    user: User = row.user
    if row.last_used_at is None or now - _aware(row.last_used_at) > dt.timedelta(minutes=1):
        row.last_used_at = now
    return Caller(
        tier=Role(user.role).tier,
        organisation=user.organisation.slug,
        organisation_id=user.organisation_id,
        organisation_siren=user.organisation.siren,
        user=user.name,
        user_id=user.id,
        token_prefix=row.prefix,
    )


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
