"""What the registry hands out, as plain data, and the MLflow tags it keeps them in.

Cards are kept by version in the card store (:mod:`registry.cards`, bibia's
database) and their searchable fields are mirrored as ``bibia.*`` tags, so
that one ``search_registered_models`` call and one read of the store give a
whole catalogue page with its cards (no call per model) and the stock MLflow
UI/client sees them; ``bibia.card`` is where cards were kept before. Each
version carries its metrics and signature as ``bibia.metrics`` /
``bibia.signature`` version tags.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from registry.card import Card

CARD_TAG = "bibia.card"
OWNER_TAG = "bibia.owner_siren"
METRICS_TAG = "bibia.metrics"
SIGNATURE_TAG = "bibia.signature"
REGISTERED_BY_TAG = "bibia.registered_by"


@dataclass(frozen=True)
class ModelSummary:
    """A registered model as the catalogue shows it."""

    name: str
    card: Card | None
    aliases: dict[str, int]
    latest_version: int | None
    created: dt.datetime
    updated: dt.datetime
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def owner_siren(self) -> str | None:
        return self.tags.get(OWNER_TAG)


@dataclass(frozen=True)
class VersionInfo:
    """One model version: metrics, signature, and (expert-only) where it lives."""

    name: str
    version: int
    created: dt.datetime
    status: str
    aliases: list[str]
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    signature: dict[str, Any] | None
    registered_by: str | None
    run_id: str | None
    source: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ArtifactFile:
    path: str
    is_dir: bool
    size: int | None


@dataclass(frozen=True)
class CatalogueQuery:
    """Filters of the catalogue; all optional, combined with AND."""

    q: str | None = None
    theme: str | None = None
    owner: str | None = None
    territory: str | None = None
    status: str | None = None
    task: str | None = None
    project: str | None = None
