"""Who may do what: pure predicates over the :class:`~bibia.auth.Caller` and plain facts.

No I/O and no database: each predicate takes the caller and the facts the
call site already holds (an organisation id, SIRENs) and answers ``bool``.
Call sites decide what a refusal looks like; :func:`refuse` raises the one
error class that fits the caller, with the call site's French message.
Field filtering by tier stays in :func:`registry.tiers.visible`.
"""

from __future__ import annotations

from typing import NoReturn

from bibia.auth import Caller
from domain.errors import Forbidden, Unauthorized
from registry.tiers import Tier


def refuse(caller: Caller, message: str, *, anonymous: str | None = None) -> NoReturn:
    """Raise Unauthorized for an anonymous caller, Forbidden for an authenticated one.

    Args:
        message: what the refused caller reads.
        anonymous: what an anonymous caller reads instead, when it differs
            (typically « authentification requise : … »).
    """
    if not caller.is_authenticated:
        raise Unauthorized(message if anonymous is None else anonymous)
    raise Forbidden(message)


def is_admin(caller: Caller) -> bool:
    """A platform administrator (the CLI's system caller included)."""
    return caller.tier >= Tier.ADMIN


def reaches(caller: Caller, tier: Tier) -> bool:
    """Whether the caller's tier is ``tier`` or above (reads of that tier, the API's ``require``)."""
    return caller.tier >= tier


def _member_of(caller: Caller, organisation_id: int | None) -> bool:
    return (
        caller.tier >= Tier.RESTRICTED
        and caller.organisation_id is not None
        and caller.organisation_id == organisation_id
    )


# ------------------------------------------------------------ demonstrators


def may_launch_demo(caller: Caller) -> bool:
    """A member of an organisation (a demonstrator belongs to the launcher's organisation)."""
    return caller.tier >= Tier.RESTRICTED and caller.organisation_id is not None


def may_list_demos(caller: Caller) -> bool:
    """Members and above; what the list holds is :func:`sees_every_demo` or their organisation's."""
    return caller.tier >= Tier.RESTRICTED


def sees_every_demo(caller: Caller) -> bool:
    """Administrators see every organisation's demonstrators."""
    return is_admin(caller)


def may_see_demo(caller: Caller, organisation_id: int | None) -> bool:
    """An administrator, or a member of the organisation the demonstrator belongs to."""
    return sees_every_demo(caller) or _member_of(caller, organisation_id)


def may_stop_demo(caller: Caller, organisation_id: int | None) -> bool:
    """Whoever may see the demonstrator may stop (or extend) it."""
    return may_see_demo(caller, organisation_id)


def may_read_demo_logs(caller: Caller, organisation_id: int | None) -> bool:
    """An expert (or above) who may see the demonstrator: its logs are the sandbox's raw output."""
    return caller.tier >= Tier.EXPERT and may_see_demo(caller, organisation_id)
