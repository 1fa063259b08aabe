"""Scores of a probabilistic exceedance forecast, and the two baselines.

Definitions (also in the card and the README):

- an *event* is a day whose observed concentration reaches the threshold;
- an *alert* is a forecast probability ≥ ``ALERT_PROBABILITY`` (model) or,
  for persistence, an exceedance observed today;
- ``taux_detection`` = alerted events / events (hit rate, POD);
- ``taux_fausses_alertes`` = false alerts / alerts (false-alarm *ratio*:
  the share of alerts that were false, not the share of non-events alerted);
- ``brier`` = mean of (probability − outcome)²;
- skill scores: 1 − brier / brier of the reference.

:func:`scores` and ``ALERT_PROBABILITY`` are defined once, in
:mod:`evaluation.tasks.air` (the platform scores every model with them), and
re-exported here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.tasks.air import ALERT_PROBABILITY, scores

__all__ = [
    "ALERT_PROBABILITY",
    "climatology_probability",
    "persistence_probability",
    "reliability",
    "scores",
    "skill",
]


def skill(brier: float, reference: float) -> float:
    """Brier skill score against a reference (1 is perfect, 0 is no better)."""
    return 1.0 - brier / reference if reference > 0 else 0.0


def persistence_probability(
    train: pd.DataFrame, test: pd.DataFrame, thresholds: dict[str, float]
) -> np.ndarray:
    """Calibrated persistence: P(exceedance tomorrow | exceedance today or not).

    The two conditional frequencies are counted per pollutant on ``train``
    (columns ``polluant``, ``concentration_jour``,
    ``concentration_observee_lendemain``) and applied to ``test``.
    """
    out = np.zeros(len(test))
    for pollutant, threshold in thresholds.items():
        tr = train[train["polluant"] == pollutant]
        today = tr["concentration_jour"] >= threshold
        tomorrow = tr["concentration_observee_lendemain"] >= threshold
        p_after_event = tomorrow[today].mean() if today.any() else 0.0
        p_after_calm = tomorrow[~today].mean()
        rows = (test["polluant"] == pollutant).to_numpy()
        today_test = test.loc[rows, "concentration_jour"].to_numpy() >= threshold
        out[rows] = np.where(today_test, p_after_event, p_after_calm)
    return out


def climatology_probability(
    train: pd.DataFrame, test: pd.DataFrame, thresholds: dict[str, float]
) -> np.ndarray:
    """Monthly exceedance frequency of the target day, per pollutant, counted on ``train``."""
    out = np.zeros(len(test))
    target_month = lambda frame: (pd.to_datetime(frame["date"]) + pd.Timedelta(days=1)).dt.month  # noqa: E731
    for pollutant, threshold in thresholds.items():
        tr = train[train["polluant"] == pollutant]
        freq = (
            (tr["concentration_observee_lendemain"] >= threshold).groupby(target_month(tr)).mean()
        )
        rows = (test["polluant"] == pollutant).to_numpy()
        out[rows] = target_month(test[rows]).map(freq).fillna(0.0).to_numpy()
    return out


def reliability(probability: np.ndarray, event: np.ndarray, bins: int = 5) -> pd.DataFrame:
    """Mean forecast probability vs observed frequency, per probability bin."""
    probability = np.asarray(probability, dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(probability, edges[1:-1]), 0, bins - 1)
    frame = pd.DataFrame({"bin": which, "p": probability, "event": np.asarray(event, dtype=float)})
    table = frame.groupby("bin").agg(
        probabilite_moyenne=("p", "mean"),
        frequence_observee=("event", "mean"),
        effectif=("p", "size"),
    )
    return table.reset_index(drop=True)
