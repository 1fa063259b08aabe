"""The ``pollution-pics`` task: will tomorrow's concentration reach the information threshold.

One row is one day D and one pollutant: what is known on D (the day's
observed concentration, the weather forecast for D+1); the truth is the
concentration observed on D+1 (``concentration_observee_lendemain``). A model
answers the probability that it reaches the pollutant's information threshold
(``probabilite_depassement``; an alert is a probability of at least
:data:`ALERT_PROBABILITY`) and, optionally, the concentration it expects.

The scores are those the reference model ``pics-pollution-lille`` records at
registration (``demos/air`` calls :func:`scores` and rounds with
:data:`DECIMALS` here: one definition): ``taux_detection`` (alerted events /
events), ``taux_fausses_alertes`` (false alerts / alerts, a false-alarm
*ratio*) and ``brier`` (mean squared error of the probability), pooled over
both pollutants, rounded to 4 decimals. The reference model's Brier skill
scores are measured against references fitted on its training years, which a
benchmark does not hold: they are not scores of the task.

The naive baseline is persistence (see :func:`persistence`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import pandas as pd

from domain.errors import InvalidData
from evaluation.task import Column, Metric, Task

SLUG = "pollution-pics"
#: Information-and-recommendation thresholds (µg/m³): PM10 daily mean, O3
#: hourly maximum. The reference model carries the same table
#: (``demos/air/pyfunc_model.py::POLLUTANTS``; a test checks they agree).
THRESHOLDS: dict[str, float] = {"PM10": 50.0, "O3": 180.0}
#: A forecast probability at least this high is an alert.
ALERT_PROBABILITY = 0.5
#: The task's scores are rounded to this many decimals, as the reference model records them.
DECIMALS = 4
#: The scores the task reports.
REPORTED = ("taux_detection", "taux_fausses_alertes", "brier")
TARGET = "concentration_observee_lendemain"
WEATHER_COLUMNS = (
    ("temperature_prevue", "température moyenne prévue pour J+1 (°C)"),
    ("temperature_max_prevue", "température maximale prévue pour J+1 (°C)"),
    ("vent_prevu", "vent moyen prévu pour J+1 (m/s)"),
    ("pression_prevue", "pression au niveau de la mer prévue pour J+1 (hPa)"),
    ("couche_limite_prevue", "hauteur maximale de couche limite prévue pour J+1 (m)"),
    ("ensoleillement_prevu", "ensoleillement prévu pour J+1 (heures)"),
    ("pluie_prevue", "pluie prévue pour J+1 (mm)"),
)

FloatLike: TypeAlias = pd.Series | np.ndarray | Sequence[float]
BoolLike: TypeAlias = pd.Series | np.ndarray | Sequence[bool]


def scores(probability: FloatLike, alert: BoolLike, event: BoolLike) -> dict[str, float]:
    """Hit rate, false-alarm ratio and Brier score.

    Args:
        probability: forecast probabilities of an exceedance.
        alert: whether an alert was raised.
        event: whether the threshold was actually exceeded.

    Returns:
        ``taux_detection``, ``taux_fausses_alertes``, ``brier``, plus the
        counts ``evenements`` and ``alertes``. A rate with an empty
        denominator is reported as 0.0 (no event: nothing to detect; no
        alert: no false alert).
    """
    p = np.asarray(probability, dtype=float)
    a = np.asarray(alert, dtype=bool)
    e = np.asarray(event, dtype=bool)
    hits = int((a & e).sum())
    n_events, n_alerts = int(e.sum()), int(a.sum())
    return {
        "taux_detection": hits / n_events if n_events else 0.0,
        "taux_fausses_alertes": (n_alerts - hits) / n_alerts if n_alerts else 0.0,
        "brier": float(np.mean((p - e) ** 2)),
        "evenements": float(n_events),
        "alertes": float(n_alerts),
    }


def thresholds(inputs: pd.DataFrame) -> np.ndarray:
    """Each row's threshold, from its ``polluant``.

    Raises:
        InvalidData: a pollutant the task has no threshold for.
    """
    pollutant = pd.Series(inputs["polluant"]).astype(str).str.strip().str.upper()
    unknown = sorted(set(pollutant) - set(THRESHOLDS))
    if unknown:
        raise InvalidData(
            f"Polluant inconnu : {', '.join(unknown)} "
            f"(valeurs possibles : {', '.join(THRESHOLDS)})."
        )
    return np.asarray(pollutant.map(THRESHOLDS).to_numpy(dtype=float), dtype=float)


def score(inputs: pd.DataFrame, truth: pd.DataFrame, predictions: pd.DataFrame) -> dict[str, float]:
    """The detection rate, the false-alarm ratio and the Brier score, rounded to :data:`DECIMALS`.

    Raises:
        InvalidData: frames of different lengths, an unknown pollutant, a
            missing observed concentration, a probability outside [0, 1].
    """
    _same_length(inputs, truth, predictions)
    observed = pd.to_numeric(pd.Series(truth[TARGET]), errors="coerce").to_numpy(dtype=float)
    if np.isnan(observed).any():
        row = int(np.flatnonzero(np.isnan(observed))[0]) + 1
        raise InvalidData(f"Concentration observée manquante à la ligne {row} ({TARGET}).")
    probability = pd.Series(predictions["probabilite_depassement"]).to_numpy(dtype=float)
    if not np.all((probability >= 0) & (probability <= 1)):
        row = int(np.flatnonzero(~((probability >= 0) & (probability <= 1)))[0]) + 1
        raise InvalidData(
            f"Probabilité de dépassement hors de [0, 1] à la ligne {row} "
            f"({float(probability[row - 1])})."
        )
    event = observed >= thresholds(inputs)
    result = scores(probability, probability >= ALERT_PROBABILITY, event)
    return {name: round(float(result[name]), DECIMALS) for name in REPORTED}


def persistence(inputs: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """The naive baseline: tomorrow will be like today.

    The forecast concentration is today's; an alert (probability 1) is raised
    when today's concentration reaches the threshold, else probability 0 (the
    binary persistence of ``demos/air``; it reads the inputs only, never the
    truth).

    Returns:
        ``concentration_prevue``, ``probabilite_depassement`` and ``seuil``,
        aligned on ``inputs``' rows.
    """
    _same_length(inputs, truth)
    today = pd.to_numeric(pd.Series(inputs["concentration_jour"]), errors="coerce")
    limit = thresholds(inputs)
    alert = today.to_numpy(dtype=float) >= limit
    return pd.DataFrame(
        {
            "concentration_prevue": today.to_numpy(dtype=float),
            "probabilite_depassement": alert.astype(float),
            "seuil": limit,
        },
        index=inputs.index,
    )


def _same_length(*frames: pd.DataFrame) -> None:
    lengths = {len(frame) for frame in frames}
    if len(lengths) > 1:
        raise InvalidData(
            "Les entrées, la vérité et les prédictions n'ont pas le même nombre de lignes "
            f"({', '.join(str(len(frame)) for frame in frames)})."
        )


TASK = Task(
    slug=SLUG,
    title="Prévision des pics de pollution",
    description=(
        "Prévoir, la veille, si la concentration d'un polluant (PM10 en moyenne journalière, O3 "
        "en maximum horaire) atteindra le seuil d'information et de recommandation "
        f"({', '.join(f'{k} : {v:g} µg/m³' for k, v in THRESHOLDS.items())}), pour prévenir "
        "les personnes sensibles à temps sans multiplier les fausses alertes."
    ),
    inputs=(
        Column("date", "date", label="jour J de l'observation (la prévision porte sur J+1)"),
        Column("polluant", "string", label=f"polluant : {', '.join(THRESHOLDS)}"),
        Column("concentration_jour", "double", label="concentration observée le jour J (µg/m³)"),
        *(Column(name, "double", label=label) for name, label in WEATHER_COLUMNS),
    ),
    truth=(Column(TARGET, "double", label="concentration observée le lendemain J+1 (µg/m³)"),),
    outputs=(
        Column(
            "probabilite_depassement",
            "double",
            label="probabilité que le seuil soit atteint à J+1 (alerte à partir de 0,5)",
        ),
        Column(
            "concentration_prevue",
            "double",
            required=False,
            label="concentration prévue pour J+1 (µg/m³)",
        ),
        Column("seuil", "double", required=False, label="seuil appliqué (µg/m³)"),
    ),
    metrics=(
        Metric(
            "brier",
            "Score de Brier",
            higher_is_better=False,
            description=(
                "Moyenne de (probabilité prévue − dépassement observé)², dépassement valant 1 "
                "ou 0 ; arrondi à 4 décimales."
            ),
        ),
        Metric(
            "taux_detection",
            "Taux de détection",
            higher_is_better=True,
            unit="fraction",
            description=(
                "Part des jours de dépassement observé pour lesquels une alerte a été donnée "
                "(probabilité ≥ 0,5) ; 0 sans dépassement."
            ),
        ),
        Metric(
            "taux_fausses_alertes",
            "Taux de fausses alertes",
            higher_is_better=False,
            unit="fraction",
            description=(
                "Part des alertes données qui ne sont pas suivies d'un dépassement ; 0 sans alerte."
            ),
        ),
    ),
    primary="brier",
    baseline_name="persistance",
    baseline_description=(
        "Demain sera comme aujourd'hui : alerte (probabilité 1) quand la concentration du jour "
        "atteint déjà le seuil, sinon probabilité 0 ; la concentration prévue est celle du jour."
    ),
    score=score,
    baseline=persistence,
    card_tasks=("prevision-serie-temporelle",),
)
