"""The model card of cantine-nantes: its prose in ``card.yaml``, its figures from the evaluation."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml

from demos.cards import build_card

CARD_FILE = Path(__file__).with_name("card.yaml")
STAFF_CARD_FILE = Path(__file__).with_name("card_commande.yaml")


def card(
    metrics: dict[str, float],
    baseline: dict[str, float],
    staff_order: bool = False,
    validation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The card, in French, with every metric beside the staff's value.

    Args:
        metrics: the model's metrics on the test year.
        baseline: the staff's orders' metrics, measured the same way.
        staff_order: the staff-order variant's card: ``card_commande.yaml``
            replaces the parts of ``card.yaml`` it gives (inputs, purpose,
            results).
        validation: the design choice (:func:`demos.cantine.builder.validation_figures`),
            whose share aimed at and day guard the texts may name as ``part_deficit_visee``
            and ``garde_commande_equipes``.

    Returns:
        A dict that validates as :class:`registry.card.Card`.
    """
    figures = {**metrics, **{f"{key}_reference": value for key, value in baseline.items()}}
    if validation is not None:
        figures["part_deficit_visee"] = validation["part_deficit_visee"]
        figures["garde_commande_equipes"] = validation.get("garde_commande_equipes", 0.0)
    values = {
        key: {"value": float(metrics[key]), "baseline": float(baseline[key])} for key in metrics
    }
    if not staff_order:
        return build_card(CARD_FILE, figures, values)
    prose = yaml.safe_load(CARD_FILE.read_text(encoding="utf-8"))
    _overlay(prose, yaml.safe_load(STAFF_CARD_FILE.read_text(encoding="utf-8")))
    with tempfile.TemporaryDirectory() as tmp:
        merged = Path(tmp) / CARD_FILE.name
        merged.write_text(yaml.safe_dump(prose, allow_unicode=True), encoding="utf-8")
        return build_card(merged, figures, values)


def _overlay(base: dict[str, Any], over: dict[str, Any]) -> None:
    """Replace in ``base`` what ``over`` gives, mappings key by key, anything else whole."""
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _overlay(base[key], value)
        else:
            base[key] = value
