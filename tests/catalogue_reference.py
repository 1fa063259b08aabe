"""The catalogue's search as it was before the search index: every model and project read, filtered in Python.

Kept as the reference the SQL path (:mod:`bibia.catalogue_index`) is compared with
(``tests/test_catalogue_index.py``) and as the "before" of ``benchmarks/pages.py``.
It is the code of ``bibia.catalogue.search`` before the index (commit fe04dfc): it
returns which entries match, in which order, and the counts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bibia import catalogue, ownership
from bibia.auth import ANONYMOUS, Caller
from bibia.catalogue import FACETS, SearchFilters, search_words
from bibia.db.models import ProjectRecord
from registry.card import fold
from registry.entries import CatalogueQuery, ModelSummary
from registry.refs import is_siren
from registry.store import Registry
from registry.tiers import visible


@dataclass(frozen=True)
class Hit:
    kind: str
    key: str
    title: str
    created: dt.datetime
    text: str
    values: dict[str, tuple[str, ...]]
    sirens: tuple[str, ...]


@dataclass(frozen=True)
class Result:
    keys: list[tuple[str, str]]  # every match, in order
    facets: dict[str, dict[str, int]]
    scored: int


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def members(
    rows: Sequence[ProjectRecord], summaries: Iterable[ModelSummary]
) -> dict[str, list[str]]:
    """The models of each project (whose owner is one of the project's owners), from their tags."""
    owners = {r.slug: set(ownership.owner_sirens(r.data)) for r in rows}
    grouped: dict[str, list[str]] = {}
    for summary in summaries:
        project = summary.tags.get("bibia.project")
        if project and summary.owner_siren in owners.get(project, ()):
            grouped.setdefault(project, []).append(summary.name)
    return grouped


def _model_hit(summary: ModelSummary) -> Hit:
    card = summary.card
    if card is None:
        return Hit("modele", summary.name, summary.name, summary.created, "", {}, ())
    ident = card.identification
    values: dict[str, tuple[str, ...]] = {
        "type": ("modele",),
        "theme": (ident.theme.value,),
        "owner": (ident.owner.name,),
        "territory": (ident.territory,),
        "status": (ident.status.value,),
        "task": (card.model.task.value,),
    }
    return Hit(
        "modele",
        summary.name,
        ident.title,
        summary.created,
        card.search_text(),
        values,
        (ident.owner.siren,),
    )


def _project_hit(row: ProjectRecord) -> Hit:
    owners = row.data.get("owners", [])
    values = {
        "type": ("projet",),
        "theme": (row.theme,),
        "owner": tuple(dict.fromkeys(o["name"] for o in owners)),
        "territory": (row.territory,),
        "status": (row.status,),
        "task": (),
    }
    return Hit(
        "projet",
        row.slug,
        row.title,
        _aware(row.created_at),
        row.search_text,
        values,
        tuple(ownership.owner_sirens(row.data)),
    )


def _fails(hit: Hit, filters: SearchFilters, words: list[str]) -> list[str]:
    failed = [] if all(word in hit.text for word in words) else ["q"]
    for facet in ("type", "theme", "status", "task"):
        wanted = getattr(filters, facet)
        if wanted and wanted not in hit.values.get(facet, ()):
            failed.append(facet)
    if filters.owner:
        owner = fold(filters.owner)
        names = hit.values.get("owner", ())
        if not ((is_siren(owner) and owner in hit.sirens) or any(owner in fold(n) for n in names)):
            failed.append("owner")
    if filters.territory:
        place = fold(filters.territory)
        if not any(place in fold(t) for t in hit.values.get("territory", ())):
            failed.append("territory")
    return failed


def _ordered(hits: list[Hit], sort: str, scores: Mapping[str, float]) -> list[Hit]:
    def recent(hit: Hit) -> tuple[float, str]:
        return (-_aware(hit.created).timestamp(), fold(hit.title))

    if sort == "titre":
        return sorted(hits, key=lambda h: (fold(h.title), h.key))
    if sort == "score":

        def best_first(hit: Hit) -> tuple[int, float, float, str]:
            score = scores.get(hit.key) if hit.kind == "modele" else None
            if score is None:
                return (1, 0.0, *recent(hit))
            return (0, -score, *recent(hit))

        return sorted(hits, key=best_first)
    return sorted(hits, key=recent)


def search(
    session: Session,
    registry: Registry,
    filters: SearchFilters,
    *,
    sort: str = "recents",
    scores: Mapping[str, float] | None = None,
    caller: Caller = ANONYMOUS,
) -> Result:
    """Every match of ``filters`` in order, and the facets' counts, as before the index.

    As it did, it reads every model and project and builds each one's item for the
    caller (``caller``'s tier; the items are not returned: the SQL path builds the page's).
    """
    summaries = registry.search()
    rows = list(session.scalars(select(ProjectRecord)).all())
    projects = members(rows, summaries)
    for summary in summaries:
        visible(catalogue._model_out(summary), caller.tier)
    for row in rows:
        visible(catalogue._project_out(row, projects.get(row.slug, [])), caller.tier)
    hits = [_model_hit(s) for s in summaries] + [_project_hit(r) for r in rows]
    words = search_words(filters.q)
    facets: dict[str, dict[str, int]] = {facet: {} for facet in FACETS}
    matched: list[Hit] = []
    for hit in hits:
        failed = _fails(hit, filters, words)
        if len(failed) > 1 or failed == ["q"]:
            continue
        for facet in failed or FACETS:
            counts = facets[facet]
            for value in hit.values.get(facet, ()):
                counts[value] = counts.get(value, 0) + 1
        if not failed:
            matched.append(hit)
    scores = scores or {}
    scored = sum(1 for h in matched if h.kind == "modele" and h.key in scores)
    ordered = _ordered(matched, sort, scores)
    return Result(keys=[(h.kind, h.key) for h in ordered], facets=facets, scored=scored)


def list_models(registry: Registry, query: CatalogueQuery) -> list[str]:
    """The names the models' listing found before the index (MLflow's filters on the tags), by name."""
    return [s.name for s in registry.search(query)]
