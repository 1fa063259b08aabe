"""The model card of ``pics-pollution-lille``: its prose in ``card.yaml``, its figures from the evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from demos.air.protocol import TEST_YEARS, TRAIN_YEARS
from demos.cards import build_card

NAME = "pics-pollution-lille"
PROJECT = "pics-pollution-lille"
CARD_FILE = Path(__file__).with_name("card.yaml")


def card(
    metrics: dict[str, float], baseline: dict[str, float], extra: dict[str, Any]
) -> dict[str, Any]:
    """The card, filled with the numbers the evaluation protocol measured.

    Args:
        metrics: the model's pooled metrics (:class:`demos.air.protocol.Result`).
        baseline: persistence's pooled metrics.
        extra: the protocol's extra figures (climatology, per pollutant...).

    Returns:
        A dict that validates as :class:`registry.card.Card`.
    """
    figures = {
        "premiere_annee_apprentissage": TRAIN_YEARS[0],
        "derniere_annee_apprentissage": TRAIN_YEARS[1],
        "premiere_annee_test": TEST_YEARS[0],
        "derniere_annee_test": TEST_YEARS[1],
        "jours_test": extra["jours_test"],
        "evenements_test": extra["evenements_test"],
        "taux_fausses_alertes": metrics["taux_fausses_alertes"],
    }
    values: dict[str, dict[str, float]] = {
        key: {"value": metrics[key], "baseline": baseline[key]} for key in baseline
    }
    for skill in ("brier_skill_score_persistance", "brier_skill_score_climatologie"):
        values[skill] = {"value": metrics[skill], "baseline": 0.0}  # a skill score's reference
    for key in ("brier_climatologie", "brier_persistance_binaire"):
        values[key] = {"value": extra[key]}
    for pollutant, blocks in extra["par_polluant"].items():
        for key in baseline:
            values[f"{pollutant}/{key}"] = {
                "value": blocks["modele"][key],
                "baseline": blocks["persistance"][key],
            }
    return build_card(CARD_FILE, figures, values)
