"""Who may do what: pure predicates over the :class:`~bibia.auth.Caller` and plain facts.

No I/O and no database: each predicate takes the caller and the facts the
call site already holds (an organisation id, SIRENs) and answers ``bool``.
Call sites decide what a refusal looks like; :func:`refuse` raises the error
class that fits the caller, with the call site's French message. Which
fields a tier reads is not decided here but by :func:`registry.tiers.visible`.

Organisations are named by id for demonstrators (a row holds the
launcher's organisation id) and by SIREN for models and projects (a card
and a project record name their owners by SIREN).
"""

from __future__ import annotations

from collections.abc import Collection
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


# ------------------------------------------------------------ tiers and roles


def may_read_tier(caller: Caller, tier: Tier) -> bool:
    """Whether the caller reaches ``tier`` (the API's ``require``, the catalogue's reads)."""
    return caller.tier >= tier


def may_administer(caller: Caller) -> bool:
    """A platform administrator (the CLI's system caller included)."""
    return caller.tier >= Tier.ADMIN


def may_open_web_session(caller: Caller) -> bool:
    """Members and above sign in to the web pages (a public token has nothing more to show)."""
    return caller.tier >= Tier.RESTRICTED


def may_revoke_own(caller: Caller, owner_user_id: int | None) -> bool:
    """A person closes their own web sessions and revokes their own tokens (« Mes sessions et
    jetons »), nobody else's, whatever their tier (administrators use the admin pages)."""
    return caller.user_id is not None and owner_user_id == caller.user_id


def may_pull_artifacts(caller: Caller) -> bool:
    """Experts and above download model artifacts (the MLflow gateway, ``bibia pull``)."""
    return caller.tier >= Tier.EXPERT


def _expert_of(caller: Caller, sirens: Collection[str]) -> bool:
    return (
        caller.tier >= Tier.EXPERT
        and caller.organisation_siren is not None
        and caller.organisation_siren in sirens
    )


# ------------------------------------------------------------ demonstrators


def may_launch_demo(caller: Caller) -> bool:
    """A member of an organisation (a demonstrator belongs to the launcher's organisation)."""
    return caller.tier >= Tier.RESTRICTED and caller.organisation_id is not None


def may_list_demos(caller: Caller) -> bool:
    """Members and above; the list holds every demonstrator (:func:`sees_every_demo`) or their organisation's."""
    return caller.tier >= Tier.RESTRICTED


def sees_every_demo(caller: Caller) -> bool:
    """Administrators see every organisation's demonstrators."""
    return may_administer(caller)


def may_see_demo(caller: Caller, organisation_id: int | None) -> bool:
    """An administrator, or a member of the organisation the demonstrator belongs to."""
    if sees_every_demo(caller):
        return True
    return (
        caller.tier >= Tier.RESTRICTED
        and caller.organisation_id is not None
        and caller.organisation_id == organisation_id
    )


def may_stop_demo(caller: Caller, organisation_id: int | None) -> bool:
    """Whoever may see the demonstrator may stop (or extend) it."""
    return may_see_demo(caller, organisation_id)


def may_read_demo_logs(caller: Caller, organisation_id: int | None) -> bool:
    """An expert (or above) who may see the demonstrator: its logs are the sandbox's raw output."""
    return caller.tier >= Tier.EXPERT and may_see_demo(caller, organisation_id)


# ------------------------------------------------------------ models


def may_register_models(caller: Caller) -> bool:
    """Experts and above send model versions and cards (which models: :func:`may_write_model`)."""
    return caller.tier >= Tier.EXPERT


def may_write_model(caller: Caller, owner_siren: str | None) -> bool:
    """An administrator, or an expert of the owner: a new model's card owner, an existing model's owner.

    ``owner_siren`` is None for a model with no owner on record (registered
    before owners were recorded): any expert may write it.
    """
    if may_administer(caller):
        return True
    if owner_siren is None:
        return may_register_models(caller)
    return _expert_of(caller, (owner_siren,))


def may_move_alias(caller: Caller, owner_siren: str | None) -> bool:
    """Setting or deleting an alias is a write of the model (:func:`may_write_model`)."""
    return may_write_model(caller, owner_siren)


def may_change_model_owner(caller: Caller) -> bool:
    """Only an administrator may write a card naming another owner than the model's."""
    return may_administer(caller)


def may_attach_model(model_owner_siren: str, project_owner_sirens: Collection[str]) -> bool:
    """A model joins a project only if its owner is one of the project's owners (on record).

    No caller: an administrator is bound too (they add the organisation to
    the project's owners first).
    """
    return model_owner_siren in project_owner_sirens


# ------------------------------------------------------------ projects


def may_edit_project(caller: Caller, owner_sirens: Collection[str]) -> bool:
    """An administrator, or an expert of one of ``owner_sirens``.

    The call site passes the owners on record for an existing project (never
    those a request names: nobody takes a project over by naming their own
    organisation), and the owners it names for a new one.
    """
    return may_administer(caller) or _expert_of(caller, owner_sirens)


def may_set_project_owners(caller: Caller) -> bool:
    """An administrator sets a project's owners directly; an expert's other names are invitations."""
    return may_administer(caller)


def may_remove_project_owner(caller: Caller, owner_siren: str) -> bool:
    """An administrator, or an expert of that owner (an organisation withdraws itself)."""
    return may_administer(caller) or _expert_of(caller, (owner_siren,))


def may_answer_invitations(caller: Caller) -> bool:
    """Experts and above answer invitations to co-own a project (whose: :func:`may_answer_invitation`)."""
    return caller.tier >= Tier.EXPERT


def may_answer_invitation(caller: Caller, invited_siren: str) -> bool:
    """An expert of the invited organisation, or an administrator for any organisation."""
    return may_administer(caller) or _expert_of(caller, (invited_siren,))


# ------------------------------------------------------------ evaluation
#
# A benchmark's visibility is ``public`` (anyone reads its inputs, its truth
# and its scores), ``membres`` (members only) or ``verite-cachee`` (its
# metadata and scores are public, its inputs for members, its truth for
# nobody: only the platform reads it). An evaluation is ``benchmark`` (a
# verified one, seen as its benchmark is) or ``donnees`` (a member's labelled
# CSV: its organisation's only, until published as a report).

PUBLIC_VISIBILITIES = frozenset({"public", "verite-cachee"})


def _member_of(caller: Caller, organisation_id: int | None) -> bool:
    return (
        caller.tier >= Tier.RESTRICTED
        and caller.organisation_id is not None
        and caller.organisation_id == organisation_id
    )


def may_register_benchmark(caller: Caller) -> bool:
    """An expert of an organisation registers benchmarks of their organisation's data."""
    return caller.tier >= Tier.EXPERT and caller.organisation_id is not None


def may_see_benchmark(caller: Caller, visibility: str) -> bool:
    """Its metadata and the scores measured on it: public unless it is for members."""
    return visibility in PUBLIC_VISIBILITIES or caller.tier >= Tier.RESTRICTED


def may_read_benchmark_inputs(caller: Caller, visibility: str) -> bool:
    """Its inputs: anyone for a public benchmark, members otherwise."""
    return visibility == "public" or caller.tier >= Tier.RESTRICTED


def may_read_benchmark_truth(caller: Caller, visibility: str) -> bool:
    """Its truth: anyone for a public one, members for a members' one, nobody for a hidden truth."""
    if visibility == "verite-cachee":
        return False
    return visibility == "public" or caller.tier >= Tier.RESTRICTED


def may_submit_evaluation(caller: Caller) -> bool:
    """A member of an organisation (the evaluation belongs to it and counts in its quota)."""
    return caller.tier >= Tier.RESTRICTED and caller.organisation_id is not None


def may_see_evaluation(
    caller: Caller, kind: str, organisation_id: int | None, visibility: str | None
) -> bool:
    """A verified one as its benchmark is seen; a private one by its organisation (and administrators)."""
    if may_administer(caller) or _member_of(caller, organisation_id):
        return True
    return kind == "benchmark" and visibility is not None and may_see_benchmark(caller, visibility)


def may_cancel_evaluation(caller: Caller, organisation_id: int | None) -> bool:
    """A member of the organisation it belongs to, or an administrator."""
    return may_administer(caller) or _member_of(caller, organisation_id)


def may_publish_report(caller: Caller, organisation_id: int | None) -> bool:
    """A member of the organisation whose evaluation it is publishes (or withdraws) its report."""
    return _member_of(caller, organisation_id) or may_administer(caller)


def may_read_report(caller: Caller, audience: str) -> bool:
    """A report published to everyone, or to members."""
    return audience == "public" or caller.tier >= Tier.RESTRICTED


def may_declare_reuse(caller: Caller) -> bool:
    """A member of an organisation declares (or withdraws) that it reuses a model."""
    return caller.tier >= Tier.RESTRICTED and caller.organisation_id is not None


def may_configure_evaluation(caller: Caller, owner_siren: str | None) -> bool:
    """The model's task and promotion gate are a write of the model (:func:`may_write_model`)."""
    return may_write_model(caller, owner_siren)
