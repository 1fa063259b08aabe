"""The model card of cantine-nantes: its prose in ``card.yaml``, its figures from the evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from demos.cards import build_card

CARD_FILE = Path(__file__).with_name("card.yaml")


def card(metrics: dict[str, float], baseline: dict[str, float]) -> dict[str, Any]:
    """The card, in French, with every metric beside the staff's value.

    Args:
        metrics: the model's metrics on the test year.
        baseline: the staff's orders' metrics, measured the same way.

    Returns:
        A dict that validates as :class:`registry.card.Card`.
    """
    figures = {**metrics, **{f"{key}_reference": value for key, value in baseline.items()}}
    values = {
        key: {"value": float(metrics[key]), "baseline": float(baseline[key])} for key in metrics
    }
    return build_card(CARD_FILE, figures, values)
