"""Where the registry keeps cards, and the card's searchable fields as MLflow tags.

A card is bibia's own concept and grows past what MLflow keeps in a tag
(5,000 characters for a registered model's tag on PostgreSQL; a reference
model's card is about 9,000). The registry therefore keeps each version's
card in a :class:`CardStore` — bibia's database (``model_cards``, one row
per model version), handed in by the service — and mirrors only the
searchable fields as ``bibia.*`` registered-model tags, each cut to MLflow's
limit (:func:`search_tags`), so that the stock MLflow client and UI see them
and MLflow's search filters on them.

Why bibia's database rather than a version artifact: a catalogue page
needs the cards of its models at once (one statement for a page, where
artifacts would be one object-store read per model), cards are edited
after registration (artifacts are immutable), and the catalogue must answer
while the object store does not. The version's ``model/bibia/card.json``
artifact stays what it was: the card as registered, shipped with the model.

A catalogue deployed before this kept the card in the ``bibia.card`` tag
(:data:`registry.entries.CARD_TAG`): such a card is still read from the tag
until :meth:`registry.store.Registry.move_legacy_cards` moves it into the store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Protocol

from registry.card import Card

#: MLflow's longest registered-model tag value (``registered_model_tags.value``,
#: ``VARCHAR(5000)``: enforced by PostgreSQL, not by SQLite).
TAG_VALUE_MAX = 5000


class CardStore(Protocol):
    """Cards by model version; the catalogue shows each model's latest version's card."""

    def latest(self, names: Collection[str]) -> dict[str, Card]:
        """The card of each model's highest carded version, for those of ``names`` that have one.

        One statement (a bounded number for very long lists), whatever the number of names.
        """

    def of_version(self, name: str, version: int) -> Card | None:
        """The card of one version, if it has one."""

    def put(
        self, name: str, version: int, card: Card, *, created: dt.datetime | None = None
    ) -> Card | None:
        """Write the card of ``name``/``version``; returns the card it replaced, if any.

        ``created``: when the model was registered, if known (the catalogue's « récents » order).
        """

    def remove(self, name: str, version: int) -> None:
        """Forget the card of ``name``/``version`` (nothing if it has none)."""


def within_limit(value: str, limit: int = TAG_VALUE_MAX) -> str:
    """``value`` cut to ``limit`` characters, at a word boundary when there is one near the end."""
    if len(value) <= limit:
        return value
    cut = value[:limit]
    space = cut.rfind(" ")
    return cut[:space].rstrip() if space > limit - 200 else cut


def search_tags(card: Card) -> dict[str, str]:
    """The card's searchable fields as ``bibia.*`` tags, each within MLflow's limits."""
    return {key: within_limit(value) for key, value in card.search_tags().items()}
