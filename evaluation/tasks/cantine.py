"""The ``cantine-frequentation`` task: how many meals a school canteen will serve.

A model answers, per canteen and day, the meals it expects (``repas_prevus``)
and, optionally, the meals to order (``commande_recommandee``). The scores are
exactly those the reference model ``cantine-nantes`` records at registration
(``demos/cantine/train.py`` calls :func:`metrics` here: one definition):

- ``mae`` and ``wmape`` compare the expected meals to the meals served, per
  canteen-day;
- ``surproduction`` and ``jours_en_deficit`` compare the order to the meals
  served on daily totals (the central kitchen's view), and
  ``part_cantine_jours_en_deficit`` is the share of canteen-days whose order
  was short; a model that gives no order is judged on its expected meals;
- ``n_jours_test`` is the number of days scored.

The naive baseline is the mean of the canteen's meals on the same weekday in
the previous weeks (see :func:`same_weekday_mean`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import pandas as pd

from domain.errors import InvalidData
from evaluation.task import Column, Metric, Task

SLUG = "cantine-frequentation"
#: How many earlier weeks the baseline averages.
BASELINE_WEEKS = 4
#: The baseline uses only days at least this many days before the day forecast
#: (an order is placed about a week ahead), except in its last fallbacks.
BASELINE_LEAD_DAYS = 7

ArrayLike: TypeAlias = pd.Series | np.ndarray | Sequence[float]


def metrics(
    dates: pd.Series | np.ndarray | Sequence[object],
    served: ArrayLike,
    expected: ArrayLike,
    order: ArrayLike,
) -> dict[str, float]:
    """The protocol's metrics (fractions, not percents).

    ``mae`` and ``wmape`` compare ``expected`` to ``served`` per canteen-day;
    the rest compares ``order`` to ``served``: over-production and days short
    on daily totals (the central kitchen's view), and the share of
    canteen-days where the order was short.

    Args:
        dates: the day of each row (any type that groups by day: datetimes
            or ISO strings).
        served: meals served (the truth).
        expected: meals the model expected.
        order: meals it recommended to order.
    """
    frame = pd.DataFrame(
        {
            "date": np.asarray(dates),
            "reel": np.asarray(served, float),
            "prevu": np.asarray(expected, float),
            "commande": np.asarray(order, float),
        }
    )
    daily = frame.groupby("date")[["reel", "commande"]].sum()
    error = (frame["prevu"] - frame["reel"]).abs()
    return {
        "mae": float(error.mean()),
        "wmape": float(error.sum() / frame["reel"].sum()),
        "surproduction": float(
            np.maximum(daily["commande"] - daily["reel"], 0).sum() / daily["commande"].sum()
        ),
        "jours_en_deficit": float((daily["commande"] < daily["reel"]).sum()),
        "part_cantine_jours_en_deficit": float((frame["commande"] < frame["reel"]).mean()),
        "n_jours_test": float(len(daily)),
    }


def score(inputs: pd.DataFrame, truth: pd.DataFrame, predictions: pd.DataFrame) -> dict[str, float]:
    """The task's scores: :func:`metrics` on the benchmark's rows.

    The order is ``commande_recommandee`` when the model answers it, else
    ``repas_prevus``. A ratio whose denominator is zero (no meal served, no
    meal ordered) is left out rather than returned as infinite or NaN.

    Raises:
        InvalidData: the three frames do not have the same number of rows.
    """
    _same_length(inputs, truth, predictions)
    expected = predictions["repas_prevus"]
    order = (
        predictions["commande_recommandee"]
        if "commande_recommandee" in predictions.columns
        else expected
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = metrics(inputs["date"], truth["reel"], expected, order)
    return {name: value for name, value in scores.items() if np.isfinite(value)}


def same_weekday_mean(inputs: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """The naive baseline: the mean of the previous weeks on the same weekday.

    For each canteen and day: the mean of the meals served by that canteen on
    the same weekday in the :data:`BASELINE_WEEKS` most recent earlier weeks
    present in the benchmark (hence at least 7 days before). Fallbacks, in
    order, for the first days of a canteen in the benchmark:

    1. no earlier same weekday: the mean of its :data:`BASELINE_WEEKS` most
       recent days at least :data:`BASELINE_LEAD_DAYS` days before;
    2. none either: the mean of its :data:`BASELINE_WEEKS` most recent earlier
       days, however recent;
    3. no earlier day at all (its first day in the benchmark): 0 meals.

    Only days strictly before a day are read, never the day's own truth;
    several rows of one canteen and day count as one day (their mean).

    Returns:
        ``repas_prevus`` and ``commande_recommandee``, both that mean rounded
        to the nearest integer, a half up (``int64``), aligned on ``inputs``' rows.
    """
    _same_length(inputs, truth)
    days = pd.to_datetime(pd.Series(inputs["date"]).reset_index(drop=True), errors="coerce")
    if days.isna().any():
        row = int(np.flatnonzero(days.isna().to_numpy())[0]) + 1
        raise InvalidData(f"Date illisible à la ligne {row} (format attendu AAAA-MM-JJ).")
    frame = pd.DataFrame(
        {
            "cantine_nom": pd.Series(inputs["cantine_nom"]).astype(str).to_numpy(),
            "date": days.dt.normalize().to_numpy(),
            "reel": pd.to_numeric(pd.Series(truth["reel"]), errors="coerce").to_numpy(float),
        }
    )
    per_day = frame.groupby(["cantine_nom", "date"], as_index=False)["reel"].mean()
    per_day["prevu"] = np.nan
    for _, group in per_day.groupby("cantine_nom", sort=False):
        dates = group["date"].to_numpy()
        values = group["reel"].to_numpy(float)
        weekdays = pd.DatetimeIndex(dates).dayofweek.to_numpy()
        forecast = np.zeros(len(group))
        for i in range(len(group)):
            before = dates < dates[i]
            same = before & (weekdays == weekdays[i])
            lead = before & (dates <= dates[i] - np.timedelta64(BASELINE_LEAD_DAYS, "D"))
            for mask in (same, lead, before):
                history = values[mask & ~np.isnan(values)]
                if len(history):
                    # Rows are sorted by date within a canteen: the last ones are the most recent.
                    forecast[i] = history[-BASELINE_WEEKS:].mean()
                    break
        per_day.loc[group.index, "prevu"] = forecast
    mapped = frame.merge(
        per_day[["cantine_nom", "date", "prevu"]], on=["cantine_nom", "date"], how="left"
    )
    rounded = np.floor(mapped["prevu"].to_numpy(float) + 0.5).astype("int64")
    return pd.DataFrame(
        {"repas_prevus": rounded, "commande_recommandee": rounded.copy()},
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
    title="Prévision de la fréquentation des cantines scolaires",
    description=(
        "Prévoir, pour chaque cantine et chaque jour, le nombre de repas qui seront servis "
        "(et, si le modèle le propose, la commande à passer), pour commander au plus juste : "
        "moins de gaspillage sans manquer de repas."
    ),
    inputs=(
        Column("date", "date", label="jour du repas (AAAA-MM-JJ)"),
        Column("cantine_nom", "string", label="nom de la cantine"),
        Column("greve", "boolean", required=False, label="jour de grève annoncé"),
        # An input, not the truth: the staff's order is known when an order is recommended,
        # and a model may correct it (cantine-nantes@correction-commande); others ignore it.
        Column(
            "prevision",
            "long",
            required=False,
            label="commande passée par les équipes (repas)",
        ),
    ),
    truth=(Column("reel", "long", label="repas effectivement servis"),),
    outputs=(
        Column("repas_prevus", "long", label="repas prévus"),
        Column(
            "commande_recommandee",
            "long",
            required=False,
            label="commande recommandée (repas à commander)",
        ),
    ),
    metrics=(
        Metric(
            "mae",
            "Erreur absolue moyenne",
            higher_is_better=False,
            unit="repas",
            description="Moyenne, sur les couples cantine-jour, de |repas prévus − repas servis|.",
        ),
        Metric(
            "wmape",
            "Erreur absolue pondérée",
            higher_is_better=False,
            unit="fraction",
            description=(
                "Somme des |repas prévus − repas servis| divisée par la somme des repas servis."
            ),
        ),
        Metric(
            "surproduction",
            "Surproduction",
            higher_is_better=False,
            unit="fraction",
            description=(
                "Sur les totaux journaliers (toutes cantines) : repas commandés en trop "
                "divisés par les repas commandés (la commande recommandée, ou à défaut les "
                "repas prévus)."
            ),
        ),
        Metric(
            "jours_en_deficit",
            "Jours en déficit",
            higher_is_better=False,
            unit="jour",
            description="Nombre de jours où le total commandé est inférieur au total servi.",
        ),
        Metric(
            "part_cantine_jours_en_deficit",
            "Cantines en déficit",
            higher_is_better=False,
            unit="fraction",
            description="Part des couples cantine-jour où la commande est inférieure aux repas servis.",
        ),
        Metric(
            "n_jours_test",
            "Jours évalués",
            higher_is_better=True,
            unit="jour",
            description="Nombre de jours distincts évalués (un fait sur l'évaluation, pas une performance).",
            kind="contexte",
        ),
    ),
    primary="wmape",
    baseline_name="moyenne du même jour de la semaine sur les semaines précédentes",
    baseline_description=(
        "Pour chaque cantine et chaque jour : la moyenne des repas servis par cette cantine "
        f"le même jour de la semaine lors des {BASELINE_WEEKS} semaines précédentes présentes "
        "dans le jeu d'évaluation (donc au moins 7 jours avant), arrondie à l'entier le plus "
        "proche ; elle "
        "sert à la fois de prévision et de commande. À défaut (premiers jours d'une cantine) : "
        f"la moyenne de ses {BASELINE_WEEKS} derniers jours servis au moins 7 jours avant, "
        "puis de ses derniers jours servis, puis 0 pour son tout premier jour."
    ),
    score=score,
    baseline=same_weekday_mean,
    # A day's rows travel together: cantine-nantes@correction-commande keeps each day's
    # total order at least a fraction of the staff's total over the rows sent together.
    batch_key="date",
    card_tasks=("prevision-serie-temporelle",),
)
