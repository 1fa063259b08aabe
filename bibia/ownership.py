"""Who owns a model or a project: organisations as bibia records them, never a string in a card.

A card or a project names its owners by SIREN only in effect: the name written
to the catalogue (card, ``bibia.owner*`` tags, project record, search text) is
always the one on the :class:`~bibia.db.models.Organisation` record with that
SIREN. Naming another organisation as co-owner of a project does not make it
one: it is invited, and becomes an owner when one of its experts accepts
(DESIGN.md, "Tiers and access").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from bibia import policy
from bibia.accounts import list_organisations, organisation_by_siren
from bibia.auth import Caller
from domain.errors import Forbidden, InvalidInput
from registry.card import Card, Owner, fold
from registry.refs import is_siren


def record_owner(session: Session, siren: str, where: str) -> Owner:
    """The organisation on record with ``siren``, as a card or project owner.

    Raises:
        InvalidInput: no organisation of bibia has this SIREN.
    """
    org = organisation_by_siren(session, siren)
    if org is None:
        raise InvalidInput(
            f"aucune organisation de bibia ne porte le SIREN {siren} ({where}) : corrigez le SIREN, ou demandez "
            f"à un administrateur de créer l'organisation (bibia org create SLUG --name NOM --siren {siren})"
        )
    return Owner(name=org.name, siren=siren)


def with_record_owner(session: Session, card: Card) -> Card:
    """``card`` with its owner's name (and SIREN) replaced by the organisation record's."""
    owner = record_owner(session, card.identification.owner.siren, "identification.owner.siren")
    identification = card.identification.model_copy(update={"owner": owner})
    return card.model_copy(update={"identification": identification})


def sirens_matching(session: Session, text: str) -> list[str]:
    """The SIRENs an ``owner`` search means: a SIREN, or organisations whose recorded name contains ``text``."""
    wanted = fold(text)
    found = [
        o.siren
        for o in list_organisations(session)
        if o.siren and (wanted == o.siren or wanted in fold(o.name))
    ]
    if is_siren(wanted) and wanted not in found:
        found.append(wanted)  # an owner not (or no longer) on record is still found by its SIREN
    return found


def owner_sirens(data: dict[str, Any]) -> list[str]:
    """The SIRENs of a project record's owners (confirmed ones: never invitations)."""
    return [o["siren"] for o in data.get("owners", [])]


def owner_names(data: dict[str, Any]) -> str:
    return ", ".join(f"{o['name']} (SIREN {o['siren']})" for o in data.get("owners", []))


def invitation_sirens(data: dict[str, Any]) -> list[str]:
    return [i["siren"] for i in data.get("invitations", [])]


@dataclass(frozen=True)
class Ownership:
    """A project's owners after a write, and the organisations still invited."""

    owners: list[Owner]
    invitations: list[dict[str, str]]  # {"name", "siren", "invited_by"} (JSON, stored as is)


def project_ownership(
    session: Session, caller: Caller, named: list[Owner], current: dict[str, Any] | None
) -> Ownership:
    """What a project's owners become when ``caller`` names ``named`` (``current``: the stored record, if any).

    An admin sets the owners directly. An expert (already checked to be of an
    owner, or of a named owner for a new project) keeps the owners on record,
    may remove only their own organisation, and only invites the others.

    Raises:
        InvalidInput: a SIREN no organisation has, or a project left without owners.
        Forbidden: an expert removing another organisation from the owners.
    """
    wanted: list[Owner] = []
    for index, owner in enumerate(named):
        if owner.siren not in {o.siren for o in wanted}:
            wanted.append(record_owner(session, owner.siren, f"owners[{index}].siren"))
    if policy.may_set_project_owners(caller):
        return Ownership(owners=wanted, invitations=[])

    mine = caller.organisation_siren
    on_record = owner_sirens(current) if current is not None else [mine]
    wanted_sirens = {o.siren for o in wanted}
    for kept in current.get("owners", []) if current is not None else []:
        if kept["siren"] not in wanted_sirens and not policy.may_remove_project_owner(
            caller, kept["siren"]
        ):
            raise Forbidden(
                f"accès refusé : {kept['name']} (SIREN {kept['siren']}) porte ce projet ; seule cette collectivité "
                "elle-même, ou un administrateur, peut la retirer des porteurs : remettez-la dans owners",
            )
    owners = [o for o in wanted if o.siren in on_record]
    if not owners:
        raise InvalidInput(
            "un projet garde au moins une collectivité porteuse : votre collectivité ne peut se retirer que s'il en "
            "reste une autre (les collectivités invitées ne le deviennent qu'en acceptant l'invitation)"
        )
    pending = {i["siren"]: i for i in (current or {}).get("invitations", [])}
    inviter = organisation_by_siren(session, mine) if mine else None
    invited_by = inviter.name if inviter is not None else str(caller.organisation)
    invitations = [
        pending.get(o.siren) or {"name": o.name, "siren": o.siren, "invited_by": invited_by}
        for o in wanted
        if o.siren not in on_record
    ]
    return Ownership(owners=owners, invitations=invitations)


def invited_siren(caller: Caller, organisation_siren: str | None) -> str:
    """Whose invitation ``caller`` answers: their own organisation's; an admin may name another.

    Raises:
        Forbidden: below the expert tier, or an expert answering for another organisation.
        InvalidInput: an admin without an organisation who names none.
    """
    if not policy.may_answer_invitations(caller):
        raise Forbidden(
            "accès refusé : seuls les experts de la collectivité invitée (ou un administrateur) répondent à une invitation",
        )
    if organisation_siren is None or organisation_siren == caller.organisation_siren:
        if caller.organisation_siren is None:
            raise InvalidInput(
                "précisez l'organisation invitée (son SIREN) : vous n'appartenez à aucune collectivité qui en ait un"
            )
        return caller.organisation_siren
    if not policy.may_answer_invitation(caller, organisation_siren):
        raise Forbidden(
            "accès refusé : vous ne répondez qu'aux invitations faites à votre propre collectivité",
        )
    return organisation_siren
