"""The catalogue as the service offers it: models and projects, by tier.

Routes and CLI commands stay thin and call these functions. Reads return
plain data already filtered for the caller's tier; writes ask
:mod:`bibia.policy` who may write, then land all or nothing and leave an
audit event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy import false, func, or_, select
from sqlalchemy.orm import Session

from bibia import catalogue_index, ownership, policy
from bibia.accounts import audit
from bibia.auth import Caller
from bibia.cards import carded_models
from bibia.db.models import ProjectRecord
from bibia.schemas import ModelOut, ProjectOut, VersionOut
from domain.errors import Forbidden, InvalidInput, NotFound
from registry.card import Card, Project, fold
from registry.entries import CatalogueQuery, ModelSummary, VersionInfo
from registry.store import Registry
from registry.tiers import visible


def model_uri(name: str, version: int) -> str:
    return f"models:/{name}/{version}"


def _model_out(summary: ModelSummary) -> ModelOut:
    return ModelOut(
        name=summary.name,
        card=summary.card,
        aliases=summary.aliases,
        latest_version=summary.latest_version,
        created=summary.created,
        updated=summary.updated,
    )


def _version_out(info: VersionInfo) -> VersionOut:
    return VersionOut(
        name=info.name,
        version=info.version,
        created=info.created,
        status=info.status,
        aliases=info.aliases,
        metrics=info.metrics,
        baseline_metrics=info.baseline_metrics,
        signature=info.signature,
        registered_by=info.registered_by,
        run_id=info.run_id,
        artifact_uri=info.source,
        model_uri=model_uri(info.name, info.version),
    )


# ------------------------------------------------------------------ models


def list_models(
    session: Session,
    registry: Registry,
    caller: Caller,
    query: CatalogueQuery,
    page: int,
    per_page: int,
) -> dict[str, Any]:
    """One page of the models matching ``query``, sorted by name, and how many match.

    Filtered, counted and paged in bibia's catalogue index (:mod:`bibia.catalogue_index`);
    only the page's models are read from MLflow.
    """
    if page < 1 or per_page < 1:
        raise InvalidInput("pagination invalide : page ≥ 1 et éléments par page ≥ 1")
    criteria = {
        "q": query.q,
        "theme": query.theme,
        "owner": query.owner,
        "territory": query.territory,
        "status": query.status,
        "task": query.task,
        "project": query.project,
    }
    names, total = catalogue_index.models_page(session, criteria, page, per_page)
    release(session)
    found = registry.summaries_of(names) if names else []
    items = [visible(_model_out(s), caller.tier) for s in found]
    return {"items": items, "total": total, "page": page, "per_page": per_page}


def release(session: Session) -> None:
    """End ``session``'s read so that its connection goes back to the pool before the registry runs.

    The registry reads cards through a session of its own from the same pool: a request
    holding one connection while it waits for a second deadlocks, under load, with every
    other request doing the same (all of the pool held, each waiting for one more, until
    the pool's timeout). The session goes on with a new transaction when used again.
    """
    session.commit()


def recent_models(registry: Registry, caller: Caller, count: int) -> list[dict[str, Any]]:
    """The ``count`` most recently registered models, newest first (one catalogue read)."""
    return [visible(_model_out(s), caller.tier) for s in registry.recent(count)]


def model_detail(registry: Registry, caller: Caller, name: str) -> dict[str, Any]:
    summary = registry.get(name)
    body = visible(_model_out(summary), caller.tier)
    body["versions"] = [visible(_version_out(v), caller.tier) for v in registry.versions(name)]
    return body


def version_detail(registry: Registry, caller: Caller, name: str, version: int) -> dict[str, Any]:
    return visible(_version_out(registry.version(name, version)), caller.tier)


def version_by_alias(registry: Registry, caller: Caller, name: str, alias: str) -> dict[str, Any]:
    from registry.refs import ModelRef

    return visible(_version_out(registry.resolve(ModelRef(name=name, alias=alias))), caller.tier)


def _refuse_write(caller: Caller, siren: str | None, what: str) -> NoReturn:
    """Refuse ``caller`` the write of ``what``, owned by ``siren`` (None: no owner on record)."""
    if siren is None:
        raise Forbidden(f"accès refusé : seuls les experts peuvent modifier {what}")
    raise Forbidden(
        f"accès refusé : seuls les experts de la collectivité propriétaire (SIREN {siren}) peuvent modifier {what}",
    )


def _check_can_write_model(registry: Registry, caller: Caller, name: str, card: Card) -> None:
    """Raise unless ``caller`` may write ``card`` as model ``name`` (new, or existing with its owner)."""
    existing = None
    try:
        existing = registry.get(name)
    except NotFound:
        pass
    named = card.identification.owner.siren
    if existing is not None and existing.owner_siren:
        if not policy.may_write_model(caller, existing.owner_siren):
            _refuse_write(caller, existing.owner_siren, f"le modèle « {name} »")
        if named != existing.owner_siren and not policy.may_change_model_owner(caller):
            raise Forbidden(
                f"la fiche désigne un autre propriétaire (SIREN {named}) que celui du "
                f"modèle « {name} » (SIREN {existing.owner_siren}) : un modèle ne change pas de propriétaire ainsi",
            )
    elif not policy.may_write_model(caller, named):
        _refuse_write(caller, named, f"un modèle de SIREN {named}")


def _check_can_move_alias(caller: Caller, summary: ModelSummary) -> None:
    owner = summary.owner_siren or None
    if not policy.may_move_alias(caller, owner):
        _refuse_write(caller, owner, f"le modèle « {summary.name} »")


def _owned_card(
    registry: Registry, session: Session, caller: Caller, name: str, card: Card
) -> Card:
    """``card`` once ``caller`` may write it as ``name``, with its owner as bibia records it.

    The owner written to the catalogue (card, ``bibia.owner*`` tags) is the
    organisation on record with the card's SIREN, whatever name the card gives.
    """
    _check_can_write_model(registry, caller, name, card)
    owned = ownership.with_record_owner(session, card)
    _check_project(session, caller, owned)
    return owned


def _check_project(session: Session, caller: Caller, card: Card) -> None:
    """A model joins a project only if its owner is one of the project's owners."""
    slug = card.identification.project
    if not slug:
        return
    row = session.get(ProjectRecord, slug)
    if row is None:
        raise InvalidInput(
            f"projet inconnu : « {slug} » (identification.project) ; créez d'abord le projet "
            "ou laissez ce champ vide (liste : GET /api/v1/projects)"
        )
    owner = card.identification.owner
    if policy.may_attach_model(owner.siren, ownership.owner_sirens(row.data)):
        return
    owners = ownership.owner_names(row.data)
    if policy.may_set_project_owners(caller):
        raise InvalidInput(
            f"le modèle appartient à {owner.name} (SIREN {owner.siren}), qui ne porte pas le projet « {slug} » "
            f"(porteurs : {owners}) : ajoutez d'abord cette collectivité aux porteurs du projet, "
            "ou laissez identification.project vide"
        )
    if owner.siren in ownership.invitation_sirens(row.data):
        ask = f"votre collectivité y est invitée : acceptez d'abord l'invitation (POST /api/v1/projects/{slug}/invitations/accept)"
    else:
        ask = f"demandez à un expert de {owners} d'inviter votre collectivité parmi les porteurs du projet, puis acceptez l'invitation"
    raise Forbidden(
        f"accès refusé : seuls les experts d'une collectivité porteuse du projet « {slug} » peuvent y rattacher "
        f"un modèle ; {ask} ; ou laissez identification.project vide",
    )


def check_can_register(
    registry: Registry, session: Session, caller: Caller, name: str, card: Card
) -> None:
    """Raise Forbidden or InvalidInput now if ``caller`` may not register ``card`` as ``name``.

    Called before an uploaded archive is even extracted, so that a caller
    without the right costs the service nothing.
    """
    _owned_card(registry, session, caller, name, card)


def register_version(
    registry: Registry,
    session: Session,
    caller: Caller,
    name: str,
    model_dir: Path,
    card: Card,
    *,
    alias: str | None = None,
    metrics: dict[str, float] | None = None,
    baseline_metrics: dict[str, float] | None = None,
    version_tags: dict[str, str] | None = None,
    promotion_gate: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Register a new version with its card: checks, then all-or-nothing, then audit.

    The card is stored with its owner as bibia records it (see :func:`_owned_card`).
    Publishing straight under the ``production`` alias passes the model's
    promotion gate first, as moving the alias does (:func:`check_publication_alias`).

    Raises:
        PromotionRefused: the alias is ``production`` and the model's gate refuses the new version.
    """
    card = _owned_card(registry, session, caller, name, card)
    check_publication_alias(registry, name, alias, promotion_gate)
    info = registry.register(
        name,
        model_dir,
        card,
        actor=caller.actor,
        alias=alias,
        metrics=metrics,
        baseline_metrics=baseline_metrics,
        version_tags=version_tags,
    )
    audit(
        session,
        caller,
        "model.register",
        f"{name}/{info.version}",
        alias=alias,
        project=card.identification.project,
        owner=card.identification.owner.siren,
    )
    return visible(_version_out(info), caller.tier)


#: The alias a model's promotion gate guards (``EvaluationService.check_promotion``).
GATED_ALIAS = "production"


def check_publication_alias(
    registry: Registry,
    name: str,
    alias: str | None,
    promotion_gate: Callable[[str, int], None] | None,
) -> None:
    """Raise PromotionRefused if a new version of ``name`` may not be published under ``alias``.

    Only ``production`` is gated; the gate judges the version about to be
    registered (one past the latest), which has no verified evaluation yet: with
    the gate on, a version is published without the alias, evaluated, then promoted.
    """
    if alias != GATED_ALIAS or promotion_gate is None:
        return
    try:
        latest = registry.get(name).latest_version or 0
    except NotFound:
        latest = 0
    promotion_gate(name, latest + 1)


def set_alias(
    registry: Registry,
    session: Session,
    caller: Caller,
    name: str,
    alias: str,
    version: int,
    *,
    promotion_gate: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Point ``alias`` at ``version``; moving ``production`` passes the model's promotion gate first.

    Raises:
        Forbidden: not an expert of the owner. PromotionRefused: the gate is on and refuses.
    """
    summary = registry.get(name)
    previous = summary.aliases.get(alias)
    _check_can_move_alias(caller, summary)
    if alias == GATED_ALIAS and promotion_gate is not None:
        promotion_gate(name, version)
    info = registry.set_alias(name, alias, version)
    audit(session, caller, "model.alias", f"{name}@{alias}", version=version, previous=previous)
    return visible(_version_out(info), caller.tier)


def delete_alias(
    registry: Registry, session: Session, caller: Caller, name: str, alias: str
) -> None:
    _check_can_move_alias(caller, registry.get(name))
    registry.delete_alias(name, alias)
    audit(session, caller, "model.alias.delete", f"{name}@{alias}")


def update_card(
    registry: Registry, session: Session, caller: Caller, name: str, card: Card
) -> dict[str, Any]:
    card = _owned_card(registry, session, caller, name, card)
    summary = registry.update_card(name, card)
    audit(
        session,
        caller,
        "model.card",
        name,
        project=card.identification.project,
        owner=card.identification.owner.siren,
    )
    return visible(_model_out(summary), caller.tier)


# ---------------------------------------------------------------- projects


def _project_out(row: ProjectRecord, models: list[str]) -> ProjectOut:
    return ProjectOut.model_validate({**row.data, "models": models})


def _check_can_write_project(
    caller: Caller, project: Project, current: dict[str, Any] | None
) -> None:
    """Experts of an owner on record may write a project; a new one, experts of an organisation it names."""
    # The owners on record, never those a request names (nobody takes a project over by naming
    # their own collectivité); naming an organisation only invites it (bibia.ownership).
    owners = (
        ownership.owner_sirens(current)
        if current is not None
        else [o.siren for o in project.owners]
    )
    if not policy.may_edit_project(caller, owners):
        invited = current is not None and caller.organisation_siren in ownership.invitation_sirens(
            current
        )
        hint = (
            f" ; votre collectivité y est invitée : acceptez d'abord l'invitation (POST /api/v1/projects/{project.slug}/invitations/accept)"
            if invited
            else ""
        )
        raise Forbidden(
            f"accès refusé : seuls les experts d'une collectivité porteuse du projet « {project.slug} » "
            f"(ou un administrateur) peuvent le modifier{hint}",
        )


# Marks an owner's SIREN in ``search_text``: the ``owner`` filter matches these tokens only, so
# a project is never found under a collectivité that its title or keywords merely name. The
# mark is removed from the free text, where nobody can plant a token.
OWNER_MARK = "§"


def _owner_token(siren: str) -> str:
    return f"{OWNER_MARK}{siren}{OWNER_MARK}"


def _store(session: Session, row: ProjectRecord, data: dict[str, Any]) -> None:
    """Write ``data`` (a project's JSON, owners and invitations included), its indexed columns
    and its entry in the catalogue's search index."""
    words = [data["title"], data["summary"], data["territory"], *data.get("keywords", [])]
    # Owners only: an organisation that is merely invited is not found under its name.
    words += [f"{o['name']} {o['siren']}" for o in data["owners"]]
    text = fold(" ".join(words)).replace(OWNER_MARK, " ")
    tokens = " ".join(_owner_token(siren) for siren in ownership.owner_sirens(data))
    row.title, row.theme, row.status = data["title"], data["theme"], data["status"]
    row.territory, row.search_text, row.data = data["territory"], f"{text} {tokens}", data
    catalogue_index.put_project(session, row)


def upsert_project(
    session: Session, caller: Caller, project: Project
) -> tuple[ProjectRecord, bool]:
    """Create or replace a project record; returns ``(row, created)``.

    Owners are organisations on record, named by SIREN (with their recorded
    names). An admin sets them directly; an expert's own organisation must be an
    owner, the other organisations it names are invited (see
    :func:`bibia.ownership.project_ownership`).

    Raises:
        Forbidden: the caller may not write this project, or would remove another owner.
        InvalidInput: a SIREN of no organisation, or no owner left.
    """
    row = session.get(ProjectRecord, project.slug)
    current = None if row is None else dict(row.data)
    _check_can_write_project(caller, project, current)
    owned = ownership.project_ownership(session, caller, project.owners, current)
    data = {
        **project.model_dump(mode="json"),
        "owners": [o.model_dump(mode="json") for o in owned.owners],
        "invitations": owned.invitations,
    }
    created = row is None
    changed = created or current != data
    if row is None:
        row = ProjectRecord(slug=project.slug)
        session.add(row)
    _store(session, row, data)
    session.flush()
    if changed:
        audit(
            session,
            caller,
            "project.create" if created else "project.update",
            project.slug,
            owners=ownership.owner_sirens(data),
            invitations=ownership.invitation_sirens(data),
        )
    return row, created


def answer_invitation(
    session: Session, caller: Caller, slug: str, *, accept: bool, siren: str | None = None
) -> ProjectRecord:
    """Accept (the organisation becomes an owner) or decline an invitation to co-own project ``slug``.

    ``siren``: the invited organisation; by default the caller's (only an admin may name another).

    Raises:
        NotFound: no such project, or no pending invitation for that organisation.
        Forbidden: below the expert tier, or answering for another organisation.
    """
    invited = ownership.invited_siren(caller, siren)
    row = session.get(ProjectRecord, slug)
    if row is None:
        raise NotFound(f"projet inconnu : « {slug} » (liste : GET /api/v1/projects)")
    data = dict(row.data)
    if invited not in ownership.invitation_sirens(data):
        raise NotFound(
            f"aucune invitation en attente pour la collectivité de SIREN {invited} sur le projet « {slug} »"
        )
    data["invitations"] = [i for i in data["invitations"] if i["siren"] != invited]
    if accept:
        owner = ownership.record_owner(session, invited, "invitation")
        data["owners"] = [*data["owners"], owner.model_dump(mode="json")]
    _store(session, row, data)
    session.flush()
    audit(
        session,
        caller,
        "project.invitation.accept" if accept else "project.invitation.decline",
        slug,
        organisation=invited,
    )
    return row


def _models_by_project(session: Session, rows: Sequence[ProjectRecord]) -> dict[str, list[str]]:
    """Registered models per project (as :func:`_members` decides), sorted by name.

    One statement on bibia's card store (each model's latest card names its project and
    owner), whatever the size of the catalogue: no model's tags are read.
    """
    owners = {r.slug: set(ownership.owner_sirens(r.data)) for r in rows}
    grouped: dict[str, list[str]] = {}
    for name, project, siren in carded_models(session, list(owners)):
        if siren in owners.get(project, ()):
            grouped.setdefault(project, []).append(name)
    return grouped


def search_words(q: str | None) -> list[str]:
    """The words a search looks for, each matched anywhere (case and accents ignored), all required.

    The same words as the models' search (:func:`bibia.catalogue_index.words`).
    """
    return catalogue_index.words(q)


def list_projects(
    session: Session,
    registry: Registry,
    caller: Caller,
    *,
    q: str | None,
    theme: str | None,
    status: str | None,
    owner: str | None,
    territory: str | None,
    page: int,
    per_page: int,
) -> dict[str, Any]:
    query = select(ProjectRecord)
    if theme:
        query = query.where(ProjectRecord.theme == theme)
    if status:
        query = query.where(ProjectRecord.status == status)
    if territory:
        query = query.where(
            ProjectRecord.territory.ilike(f"%{territory.replace('%', ' ').replace('_', ' ')}%")
        )
    if owner:
        tokens = [
            ProjectRecord.search_text.contains(_owner_token(s))
            for s in ownership.sirens_matching(session, owner)
        ]
        query = query.where(or_(*tokens) if tokens else false())
    for word in search_words(q):
        query = query.where(ProjectRecord.search_text.contains(word))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(ProjectRecord.slug).offset((page - 1) * per_page).limit(per_page)
    ).all()
    models = _models_by_project(session, rows) if rows else {}
    items = [visible(_project_out(r, models.get(r.slug, [])), caller.tier) for r in rows]
    return {"items": items, "total": total, "page": page, "per_page": per_page}


def project_detail_raw(session: Session, slug: str) -> dict[str, Any] | None:
    """The stored record of a project, unfiltered (for the seed's idempotence check)."""
    row = session.get(ProjectRecord, slug)
    return None if row is None else dict(row.data)


def project_detail(
    session: Session, registry: Registry, caller: Caller, slug: str
) -> dict[str, Any]:
    row = session.get(ProjectRecord, slug)
    if row is None:
        raise NotFound(f"projet inconnu : « {slug} » (liste : GET /api/v1/projects)")
    models = _models_by_project(session, [row]).get(slug, [])
    return visible(_project_out(row, models), caller.tier)


# ------------------------------------------------------------------ search

#: What a search may be narrowed to: a model (``modele``) or a project (``projet``).
KINDS = ("modele", "projet")
#: The filters of a search, in the order the pages show them; each has facet counts.
FACETS = ("type", "theme", "owner", "territory", "status", "task")
#: The orders of a search's results.
SORTS = ("recents", "titre", "score")


@dataclass(frozen=True)
class SearchFilters:
    """One search over models and projects; every filter optional, combined with AND.

    ``theme``, ``status``, ``task`` and ``type`` are exact values; ``owner`` is a
    SIREN or part of a collectivité's name, ``territory`` part of a territory's
    name (as the API's filters). A project has no task: a ``task`` filter keeps
    models only.
    """

    q: str | None = None
    type: str | None = None
    theme: str | None = None
    owner: str | None = None
    territory: str | None = None
    status: str | None = None
    task: str | None = None


@dataclass(frozen=True)
class Hit:
    """A search result: a model or a project, filtered for the caller's tier."""

    kind: str  # "modele" or "projet"
    key: str  # the model's name or the project's slug
    item: dict[str, Any]


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]  # the page asked for, in the order asked for
    total: int  # how many match in all
    facets: dict[str, dict[str, int]]  # facet -> value -> matches (given the other filters)
    scored: int  # how many of the matches have a verified score (the ``score`` order)


def search(
    session: Session,
    registry: Registry,
    caller: Caller,
    filters: SearchFilters,
    *,
    sort: str = "recents",
    scores: Mapping[str, float] | None = None,
    facets: Sequence[str] = FACETS,
    page: int = 1,
    per_page: int = 12,
) -> SearchResult:
    """One page of the models and projects matching ``filters``, with ``facets``' counts, for the caller.

    Filtered, counted, sorted and paged in bibia's catalogue index
    (:mod:`bibia.catalogue_index`): a constant number of statements, whatever the
    size of the catalogue; only the page's models are read from MLflow and only its
    projects' records. An option's count is the number of matches if it were chosen,
    the other filters unchanged. The words match what the API's searches match
    (title, summary, keywords, owner, territory), public fields only, case and
    accents ignored.

    Args:
        sort: ``recents`` (newest first), ``titre`` (A → Z), or ``score``
            (the models of ``scores`` first, highest score first; then the
            others, newest first).
        scores: model name → its verified score (only read by the ``score`` order).
        page: from 1; ``per_page`` hits per page.
    """
    criteria = {facet: getattr(filters, facet) for facet in FACETS}
    criteria["q"] = filters.q
    found = catalogue_index.search(
        session,
        criteria,
        facets=facets,
        sort=sort,
        scores=scores,
        page=max(1, page),
        per_page=per_page,
    )
    names = [key for kind, key in found.keys if kind == catalogue_index.MODEL]
    slugs = [key for kind, key in found.keys if kind == catalogue_index.PROJECT]
    release(session)
    models = {s.name: s for s in registry.summaries_of(names)} if names else {}
    rows = (
        {
            r.slug: r
            for r in session.scalars(select(ProjectRecord).where(ProjectRecord.slug.in_(slugs)))
        }
        if slugs
        else {}
    )
    members = _models_by_project(session, list(rows.values())) if rows else {}
    hits = []
    for kind, key in found.keys:
        if kind == catalogue_index.MODEL and key in models:
            hits.append(Hit(kind, key, visible(_model_out(models[key]), caller.tier)))
        elif kind == catalogue_index.PROJECT and key in rows:
            project = _project_out(rows[key], members.get(key, []))
            hits.append(Hit(kind, key, visible(project, caller.tier)))
    return SearchResult(hits=hits, total=found.total, facets=found.facets, scored=found.scored)
