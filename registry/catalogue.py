"""Catalogue reads: search, one page and its count, a model, its versions, a reference resolved.

Every read is a bounded number of MLflow calls, never one per model: a
catalogue page is one ``search_registered_models`` call (cards included,
see :mod:`registry.entries`) and one count.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.tracking import MlflowClient
from mlflow.utils.search_utils import SearchUtils

from domain.errors import InvalidInput, NotFound
from registry.card import Card, fold
from registry.cards import CardStore
from registry.entries import (
    CARD_TAG,
    METRICS_TAG,
    OWNER_TAG,
    REGISTERED_BY_TAG,
    SIGNATURE_TAG,
    CatalogueQuery,
    ModelSummary,
    VersionInfo,
)
from registry.mlflow_client import PAGE, by_alias, translated
from registry.mlflow_count import count_registered_models
from registry.refs import ModelRef, check_name, is_siren

EVERY_MODEL = CatalogueQuery()
#: Names per ``name IN (...)`` filter: a page of the API (100) in one call.
NAMED = 200


class Catalogue:
    """The registry's reads."""

    def __init__(self, client: MlflowClient, cards: CardStore) -> None:
        self._client = client
        self._cards = cards

    def ping(self) -> None:
        """Check the backend answers (used by /healthz)."""
        with translated("registre"):
            self._client.search_registered_models(max_results=1)

    def search(self, query: CatalogueQuery = EVERY_MODEL) -> list[ModelSummary]:
        """Every registered model matching ``query``, sorted by name, with cards.

        One MLflow call per 1,000 matching models; never one per model.
        """
        filter_string = filter_string_of(query)
        found: list[ModelSummary] = []
        token = None
        with translated("catalogue"):
            while True:
                page = self._client.search_registered_models(
                    filter_string=filter_string or None,
                    max_results=PAGE,
                    order_by=["name ASC"],
                    page_token=token,
                )
                found.extend(self._summaries(page))
                token = page.token
                if not token:
                    break
        return found

    def search_page(
        self, query: CatalogueQuery, page: int, per_page: int
    ) -> tuple[list[ModelSummary], int]:
        """One page of the models matching ``query`` (sorted by name) and how many match in all.

        Reads ``per_page`` models and counts the rest without loading them, so
        its cost does not grow with the catalogue (``search`` reads every match).

        Args:
            page: page number, from 1.
            per_page: models per page (at most 1,000, MLflow's threshold).
        """
        if page < 1 or not 1 <= per_page <= PAGE:
            raise InvalidInput(f"pagination invalide : page ≥ 1 et 1 ≤ par page ≤ {PAGE}")
        filter_string = filter_string_of(query) or None
        offset = (page - 1) * per_page
        with translated("catalogue"):
            found = self._client.search_registered_models(
                filter_string=filter_string,
                max_results=per_page,
                order_by=["name ASC"],
                page_token=_offset_token(offset),
            )
            total = count_registered_models(self._client, filter_string)
        return self._summaries(found), total

    def summaries_of(self, names: Sequence[str]) -> list[ModelSummary]:
        """The models named ``names`` that exist, in that order, with cards.

        One MLflow call per :data:`NAMED` names (a ``name IN (...)`` filter) and one read of
        the card store: a page of a search made elsewhere (bibia's catalogue index) reads
        only its own models.
        """
        wanted = list(dict.fromkeys(names))
        found: dict[str, RegisteredModel] = {}
        with translated("catalogue"):
            for start in range(0, len(wanted), NAMED):
                chunk = wanted[start : start + NAMED]
                listed = ", ".join(f"'{_literal(name)}'" for name in chunk)
                token = None
                while True:
                    page = self._client.search_registered_models(
                        filter_string=f"name IN ({listed})", max_results=PAGE, page_token=token
                    )
                    found.update((rm.name, rm) for rm in page)
                    token = page.token
                    if not token:
                        break
        return self._summaries([found[name] for name in wanted if name in found])

    def recent(self, count: int) -> list[ModelSummary]:
        """The ``count`` most recently registered models, newest first (one MLflow call)."""
        with translated("catalogue"):
            found = self._client.search_registered_models(
                max_results=count, order_by=["timestamp DESC", "name ASC"]
            )
        return self._summaries(found)

    def get(self, name: str) -> ModelSummary:
        check_name(name)
        with translated(f"modèle « {name} »"):
            rm = self._client.get_registered_model(name)
        return self._summaries([rm])[0]

    def _summaries(self, found: list[RegisteredModel]) -> list[ModelSummary]:
        """``found`` as the catalogue shows them, their cards read from the store at once."""
        cards = self._cards.latest([rm.name for rm in found]) if found else {}
        return [summary_of(rm, cards.get(rm.name)) for rm in found]

    def exists(self, name: str) -> bool:
        try:
            self.get(name)
        except NotFound:
            return False
        return True

    def versions(self, name: str) -> list[VersionInfo]:
        """All versions of ``name``, newest first (one MLflow call)."""
        check_name(name)
        aliases = self.get(name).aliases
        with translated(f"versions de « {name} »"):
            found = self._client.search_model_versions(f"name = '{name}'", max_results=10_000)
        by_version: dict[int, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(version, []).append(alias)
        infos = [version_of(mv, by_version.get(int(mv.version))) for mv in found]
        return sorted(infos, key=lambda v: v.version, reverse=True)

    def version(self, name: str, version: int) -> VersionInfo:
        check_name(name)
        with translated(f"version {version} de « {name} »"):
            return version_of(self._client.get_model_version(name, str(version)))

    def resolve(self, ref: ModelRef) -> VersionInfo:
        """The version a reference points at (an alias, a number, or the newest)."""
        if ref.version is not None:
            return self.version(ref.name, ref.version)
        if ref.alias is not None:
            return version_of(by_alias(self._client, ref.name, ref.alias))
        versions = self.versions(ref.name)
        if not versions:
            raise NotFound(f"le modèle « {ref.name} » n'a encore aucune version")
        return versions[0]


def filter_string_of(query: CatalogueQuery) -> str:
    """The MLflow filter for ``query`` (empty for every model); caller values never leave a literal."""
    clauses = []
    if query.q:
        for word in fold(_literal(query.q)).replace("%", " ").replace("_", " ").split()[:8]:
            clauses.append(f"tags.`bibia.search` ILIKE '%{word}%'")
    exact = {
        "bibia.theme": query.theme,
        "bibia.status": query.status,
        "bibia.task": query.task,
        "bibia.project": query.project,
    }
    for tag, value in exact.items():
        if value:
            clauses.append(f"tags.`{tag}` = '{_literal(value)}'")
    if query.owner:
        owner = _literal(query.owner).strip()
        if is_siren(owner):
            clauses.append(f"tags.`{OWNER_TAG}` = '{owner}'")
        else:
            clauses.append(f"tags.`bibia.owner` ILIKE '%{owner.replace('%', ' ')}%'")
    if query.territory:
        clauses.append(
            f"tags.`bibia.territory` ILIKE '%{_literal(query.territory).replace('%', ' ')}%'"
        )
    return " AND ".join(clauses)


def _literal(value: str) -> str:
    """A value safe inside an MLflow filter string literal."""
    return value.replace("\\", " ").replace("'", " ").replace('"', " ")


def _offset_token(offset: int) -> str | None:
    """MLflow's page token for the matches from ``offset`` on (None for the first)."""
    return SearchUtils.create_page_token(offset) if offset else None  # type: ignore[no-untyped-call]


def from_millis(millis: int | None) -> dt.datetime:
    return dt.datetime.fromtimestamp((millis or 0) / 1000, tz=dt.UTC)


def summary_of(rm: RegisteredModel, card: Card | None = None) -> ModelSummary:
    """A registered model as the catalogue shows it, with ``card`` from the card store.

    Without one, a card still in the ``bibia.card`` tag (a catalogue deployed before the
    store, see :mod:`registry.cards`) is read from there; an unreadable one reads as no card.
    """
    tags = dict(rm.tags or {})
    if card is None and CARD_TAG in tags:
        with contextlib.suppress(ValueError):
            card = Card.model_validate_json(tags[CARD_TAG])
    aliases = {alias: int(version) for alias, version in (rm.aliases or {}).items()}
    latest = max((int(mv.version) for mv in rm.latest_versions or []), default=None)
    return ModelSummary(
        name=rm.name,
        card=card,
        aliases=aliases,
        latest_version=latest,
        created=from_millis(rm.creation_timestamp),
        updated=from_millis(rm.last_updated_timestamp),
        tags=tags,
    )


def version_of(mv: ModelVersion, aliases: list[str] | None = None) -> VersionInfo:
    """One version with its metrics and signature read back from their tags.

    Args:
        aliases: the version's aliases when the caller already knows them
            (a version found by a search does not carry them).
    """
    tags = dict(mv.tags or {})
    metrics: dict[str, Any] = {}
    with contextlib.suppress(ValueError, TypeError):
        metrics = json.loads(tags.get(METRICS_TAG, "{}"))
    signature = None
    with contextlib.suppress(ValueError, TypeError):
        signature = json.loads(tags[SIGNATURE_TAG]) if SIGNATURE_TAG in tags else None
    return VersionInfo(
        name=mv.name,
        version=int(mv.version),
        created=from_millis(mv.creation_timestamp),
        status=str(mv.status),
        aliases=sorted(aliases if aliases is not None else (mv.aliases or [])),
        metrics=metrics.get("model", {}),
        baseline_metrics=metrics.get("baseline", {}),
        signature=signature,
        registered_by=tags.get(REGISTERED_BY_TAG),
        run_id=mv.run_id,
        source=mv.source or "",
        tags=tags,
    )
