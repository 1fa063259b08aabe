"""The catalogue's search index in bibia's database: a row per carded model and per project.

The search pages (``/catalogue``, ``/projets``) and the models' listing (``GET
/api/v1/models``) filter, count, sort and page in SQL on ``catalogue_entries``
(and ``catalogue_owners``): a constant number of statements per request, whatever
the size of the catalogue, and no model's tags read. The rows are written with
what they mirror, in the same transaction: a model's with its card
(:class:`bibia.cards.DatabaseCards`, the one place cards are written: registration,
card edit, seed, legacy move, and the undo of a failed registration), a project's
with its record (:func:`bibia.catalogue._store`).

What a search matches is folded (lowercase, accent-free, :func:`registry.card.fold`)
on both sides, so « cantine », « CANTINE » and « cantiné » find the same models, and
holds public fields only (title, summary, keywords, owner, territory): every tier
finds the same entries, and the counts say nothing a visitor could not read.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select, true
from sqlalchemy.orm import Session

from bibia.db.models import CatalogueEntry, CatalogueOwner, ModelCard, ProjectRecord, utcnow
from registry.card import Card, fold
from registry.refs import is_siren

#: An entry's kind: a model or a project. The filters a search combines (AND): ``q``,
#: ``type``, ``theme``, ``owner``, ``territory``, ``status``, ``task`` and ``project``
#: (the API's filter: models only).
MODEL, PROJECT = "modele", "projet"


def words(q: str | None) -> list[str]:
    """The words a search looks for, each matched anywhere (case and accents ignored), all required."""
    return fold(q or "").replace("%", " ").replace("_", " ").split()[:8]


# ------------------------------------------------------------------ writes


def _entry(session: Session, kind: str, key: str) -> CatalogueEntry | None:
    return session.scalar(
        select(CatalogueEntry).where(CatalogueEntry.kind == kind, CatalogueEntry.key == key)
    )


def _owner(siren: str, name: str) -> CatalogueOwner:
    return CatalogueOwner(siren=siren, name=name, name_key=fold(name))


def put_model(
    session: Session, name: str, version: int, card: Card, created: dt.datetime | None = None
) -> None:
    """Make ``card`` (``name``'s ``version``) the model's entry, unless a higher version's card is.

    Args:
        created: when the model was registered (MLflow's timestamp, for the « récents »
            order); a new entry without one is dated now (a registration writes its card
            right after creating the model).
    """
    entry = _entry(session, MODEL, name)
    if entry is not None and entry.version is not None and entry.version > version:
        return
    if entry is None:
        entry = CatalogueEntry(kind=MODEL, key=name, created=created or utcnow())
        session.add(entry)
    elif created is not None:
        entry.created = created
    _fill(entry, version, card)


def _fill(entry: CatalogueEntry, version: int, card: Card) -> None:
    ident = card.identification
    entry.version = version
    entry.title, entry.title_key = ident.title, fold(ident.title)
    entry.theme, entry.status = ident.theme.value, ident.status.value
    entry.task = card.model.task.value
    entry.territory, entry.territory_key = ident.territory, fold(ident.territory)
    entry.project = ident.project or None
    entry.search_text = card.search_text()
    entry.owners = [_owner(ident.owner.siren, ident.owner.name)]


def removed_model_card(session: Session, name: str, version: int) -> None:
    """After the card of ``name``/``version`` is gone: the next highest card becomes the entry, or none."""
    entry = _entry(session, MODEL, name)
    if entry is None or (entry.version is not None and entry.version != version):
        return
    rows = session.execute(
        select(ModelCard.version, ModelCard.card)
        .where(ModelCard.model_name == name, ModelCard.version != version)
        .order_by(ModelCard.version.desc())
    )
    for other, text in rows:
        with contextlib.suppress(ValueError):
            _fill(entry, other, Card.model_validate_json(text))
            return
    session.delete(entry)


def put_project(session: Session, row: ProjectRecord) -> None:
    """Mirror a project's record (its indexed columns and owners) into its entry."""
    entry = _entry(session, PROJECT, row.slug)
    # A new record is dated when flushed: date it now, so its entry has the same date.
    created: dt.datetime | None = row.created_at
    if created is None:
        created = row.created_at = utcnow()
    if entry is None:
        entry = CatalogueEntry(kind=PROJECT, key=row.slug)
        session.add(entry)
    data = row.data
    entry.created = created
    entry.title, entry.title_key = row.title, fold(row.title)
    entry.theme, entry.status, entry.task = row.theme, row.status, None
    entry.territory, entry.territory_key = row.territory, fold(row.territory)
    entry.project, entry.search_text = None, row.search_text
    owners = dict.fromkeys((o["siren"], o["name"]) for o in data.get("owners", []))
    entry.owners = [_owner(siren, name) for siren, name in owners]


def undated_models(session: Session) -> list[str]:
    """Models whose entry has no registration date yet (filled from MLflow at start-up)."""
    return list(
        session.scalars(
            select(CatalogueEntry.key).where(
                CatalogueEntry.kind == MODEL, CatalogueEntry.created.is_(None)
            )
        )
    )


def date_models(session: Session, created: Mapping[str, dt.datetime]) -> None:
    """Date the undated models' entries with ``created`` (name -> registration date)."""
    undated = session.scalars(
        select(CatalogueEntry).where(CatalogueEntry.kind == MODEL, CatalogueEntry.created.is_(None))
    )
    for entry in undated:
        if entry.key in created:
            entry.created = created[entry.key]


# ------------------------------------------------------------------ reads


def _conditions(filters: Mapping[str, str | None]) -> dict[str, ColumnElement[bool]]:
    """Each given filter as a condition on ``catalogue_entries`` (the same semantics as before:
    words and parts of names folded and matched anywhere, the rest exact)."""
    e = CatalogueEntry
    found: dict[str, ColumnElement[bool]] = {}
    wanted = words(filters.get("q"))
    if wanted:
        found["q"] = and_(*(e.search_text.contains(w, autoescape=True) for w in wanted))
    for name, column in (("type", e.kind), ("theme", e.theme), ("status", e.status)):
        if filters.get(name):
            found[name] = column == filters[name]
    if filters.get("task"):
        found["task"] = e.task == filters["task"]
    if filters.get("project"):
        found["project"] = and_(e.kind == MODEL, e.project == filters["project"])
    owner = fold(filters.get("owner") or "")
    if owner:
        by_name = CatalogueOwner.name_key.contains(owner, autoescape=True)
        match = or_(CatalogueOwner.siren == owner, by_name) if is_siren(owner) else by_name
        found["owner"] = exists().where(CatalogueOwner.entry_id == e.id, match)
    place = fold(filters.get("territory") or "")
    if place:
        found["territory"] = e.territory_key.contains(place, autoescape=True)
    return found


def _where(conditions: Mapping[str, ColumnElement[bool]], *, but: str | None = None) -> Any:
    kept = [c for name, c in conditions.items() if name != but]
    return and_(true(), *kept)


def _ordered(session: Session, column: Any) -> Any:
    """``column`` compared by code point, as Python sorts: PostgreSQL's default collation of
    the database may follow a locale (spaces and hyphens ignored), SQLite's is binary."""
    bind = session.get_bind()
    return column.collate("C") if bind.dialect.name == "postgresql" else column


def _order(session: Session, sort: str, scores: Mapping[str, float]) -> list[Any]:
    e = CatalogueEntry
    title, key = _ordered(session, e.title_key), _ordered(session, e.key)
    recent = [e.created.desc().nulls_last(), title, e.kind, key]
    if sort == "titre":
        return [title, key, e.kind]
    if sort == "score" and scores:
        scored = and_(e.kind == MODEL, e.key.in_(list(scores)))
        return [
            case((scored, 0), else_=1),
            case((scored, -case(dict(scores), value=e.key, else_=0.0)), else_=0.0),
            *recent,
        ]
    return recent


@dataclass(frozen=True)
class Found:
    """One page of a search: its entries' ``(kind, key)`` in order, how many match, the counts."""

    keys: list[tuple[str, str]]
    total: int
    facets: dict[str, dict[str, int]]
    scored: int


_FACET_COLUMNS = {
    "type": CatalogueEntry.kind,
    "theme": CatalogueEntry.theme,
    "territory": CatalogueEntry.territory,
    "status": CatalogueEntry.status,
    "task": CatalogueEntry.task,
}


def _facet(
    session: Session, facet: str, conditions: Mapping[str, ColumnElement[bool]]
) -> dict[str, int]:
    """``facet``'s value -> how many entries match the other filters with that value (one statement)."""
    where = _where(conditions, but=facet)
    rows: Sequence[Any]
    if facet == "owner":
        rows = session.execute(
            select(CatalogueOwner.name, func.count(func.distinct(CatalogueOwner.entry_id)))
            .join(CatalogueEntry, CatalogueEntry.id == CatalogueOwner.entry_id)
            .where(where)
            .group_by(CatalogueOwner.name)
        ).all()
    else:
        column = _FACET_COLUMNS[facet]
        rows = session.execute(select(column, func.count()).where(where).group_by(column)).all()
    return {str(value): int(n) for value, n in rows if value}


def search(
    session: Session,
    filters: Mapping[str, str | None],
    *,
    facets: Sequence[str],
    sort: str = "recents",
    scores: Mapping[str, float] | None = None,
    page: int = 1,
    per_page: int = 12,
) -> Found:
    """The entries matching ``filters``: one page in the order asked for, and each facet's counts.

    One statement per facet, one for the page and one for the total (none when the type
    facet says it), one for the scored count (with ``scores``): the same number whatever
    the size of the catalogue.

    Args:
        facets: the filters to count (an option's count is the number of matches if it
            were chosen, the other filters unchanged).
        sort: ``recents`` (newest first), ``titre`` (A → Z) or ``score`` (the models of
            ``scores`` first, highest first; then the others, newest first).
    """
    scores = scores or {}
    conditions = _conditions(filters)
    counts = {facet: _facet(session, facet, conditions) for facet in facets}
    if "type" in counts:
        chosen = filters.get("type")
        total = sum(n for kind, n in counts["type"].items() if not chosen or kind == chosen)
    else:
        total = session.scalar(select(func.count(CatalogueEntry.id)).where(_where(conditions))) or 0
    keys = [
        (kind, key)
        for kind, key in session.execute(
            select(CatalogueEntry.kind, CatalogueEntry.key)
            .where(_where(conditions))
            .order_by(*_order(session, sort, scores))
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    ]
    scored = 0
    if scores:
        scored = (
            session.scalar(
                select(func.count(CatalogueEntry.id)).where(
                    _where(conditions),
                    CatalogueEntry.kind == MODEL,
                    CatalogueEntry.key.in_(list(scores)),
                )
            )
            or 0
        )
    return Found(keys=keys, total=int(total), facets=counts, scored=int(scored))


def models_page(
    session: Session, filters: Mapping[str, str | None], page: int, per_page: int | None
) -> tuple[list[str], int]:
    """The names of one page of the models matching ``filters``, sorted by name, and how many match.

    Two statements whatever the size of the catalogue; ``per_page`` None: every match.
    """
    conditions = {**_conditions(filters), "type": CatalogueEntry.kind == MODEL}
    total = session.scalar(select(func.count(CatalogueEntry.id)).where(_where(conditions))) or 0
    query = (
        select(CatalogueEntry.key)
        .where(_where(conditions))
        .order_by(_ordered(session, CatalogueEntry.key))
    )
    if per_page is not None:
        query = query.offset((page - 1) * per_page).limit(per_page)
    return list(session.scalars(query)), int(total)
