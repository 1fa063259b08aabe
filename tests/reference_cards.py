"""The reference models' real cards (their ``card.yaml``), filled with stand-in figures.

Tests of where cards are kept use them: they are real-sized (about 9,000
characters once serialised, past MLflow's 5,000-character tag limit on
PostgreSQL), and building them trains nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import yaml

from demos.cards import build_card
from registry.card import Card

DEMOS = Path(__file__).resolve().parents[1] / "demos"
CARD_FILES = {
    "cantine-nantes": DEMOS / "cantine" / "card.yaml",
    "velo-comptages": DEMOS / "velo" / "card.yaml",
    "air-lille": DEMOS / "air" / "card.yaml",
}


class _AnyFigure(Mapping[str, object]):
    """Every figure a card's text names, as one stand-in number."""

    def __getitem__(self, key: str) -> object:
        return "2026-12-07" if key.startswith("date") else 2020

    def __contains__(self, key: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def reference_card(name: str) -> Card:
    """The card of reference model ``name`` (a key of :data:`CARD_FILES`), figures stood in."""
    path = CARD_FILES[name]
    prose = yaml.safe_load(path.read_text(encoding="utf-8"))
    metrics = {
        entry["name"]: {"value": 0.5, "baseline": 0.7}
        for entry in prose["model"]["evaluation"]["metrics"]
    }
    data = build_card(path, _AnyFigure(), metrics)
    data["identification"].pop("project", None)
    return Card.model_validate(data)
