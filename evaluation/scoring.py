"""Scoring a model's predictions against the truth, beside the task's naive baseline on the same rows.

:func:`evaluate` returns the model's scores, the baseline's, and a small
chart (at most :data:`MAX_POINTS` points) that the pages draw as inline SVG:

- ``{"kind": "series", "x": [ISO dates], "observed": [...], "model": [...],
  "baseline": [...], "x_label", "y_label"}`` when the task has a date input
  and its first truth column and first output are numbers or booleans:
  totals per day of the observed values, the model's and the baseline's
  (a count per day for booleans); per week (Monday) when there are more
  than :data:`MAX_POINTS` days, per month, then per year, beyond;
- ``{"kind": "bars", "labels": [metric labels], "metrics": [names],
  "model": [...], "baseline": [...]}`` otherwise: the scores side by side.

Non-finite scores are dropped (:func:`evaluation.metrics.finite`): a score
that cannot be computed is absent, never NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from domain.errors import InvalidPredictions
from evaluation.frames import NUMERIC, find_date_column, parse_dates
from evaluation.metrics import finite
from evaluation.task import Task

#: At most this many points on a chart.
MAX_POINTS = 400
_PERIODS = (("D", "jour"), ("W", "semaine (lundi)"), ("M", "mois"), ("Y", "année"))


@dataclass(frozen=True)
class Outcome:
    """What an evaluation measured.

    Attributes:
        metrics: the model's scores (finite floats only).
        baseline_metrics: the task's naive baseline's scores on the same rows.
        chart: small JSON-ready data for a chart (see the module's docstring).
    """

    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    chart: dict[str, Any] = field(default_factory=dict)


def evaluate(
    task: Task, inputs: pd.DataFrame, truth: pd.DataFrame, predictions: pd.DataFrame
) -> Outcome:
    """Score ``predictions`` and the task's baseline against ``truth``, row by row.

    Args:
        task: the (bound) task.
        inputs: the rows the model got (:func:`evaluation.frames.conform`'s table).
        truth: the ground truth of the same rows.
        predictions: the model's answer (:func:`evaluation.frames.predictions_frame`).

    Raises:
        InvalidPredictions: the predictions do not have one row per input row.
    """
    n = len(inputs)
    if len(predictions) != n or len(truth) != n:
        raise InvalidPredictions(
            f"{len(predictions)} prédiction(s) et {len(truth)} valeur(s) observée(s) pour {n} "
            "ligne(s) : elles ne peuvent pas être associées."
        )
    inputs = inputs.reset_index(drop=True)
    truth = truth.reset_index(drop=True)
    predictions = predictions.reset_index(drop=True)
    model = finite(task.score(inputs, truth, predictions))
    reference = task.baseline(inputs, truth).reset_index(drop=True)
    baseline = finite(task.score(inputs, truth, reference))
    return Outcome(
        model, baseline, chart(task, inputs, truth, predictions, reference, model, baseline)
    )


def chart(
    task: Task,
    inputs: pd.DataFrame,
    truth: pd.DataFrame,
    predictions: pd.DataFrame,
    reference: pd.DataFrame,
    model: dict[str, float],
    baseline: dict[str, float],
) -> dict[str, Any]:
    """The chart of an evaluation (see the module's docstring)."""
    series = _series(task, inputs, truth, predictions, reference)
    if series is not None:
        return series
    names = [  # the scores (a fact such as the number of days scored is no bar beside them)
        m.name
        for m in task.metrics
        if m.kind == "score" and (m.name in model or m.name in baseline)
    ]
    return {
        "kind": "bars",
        "labels": [task.metric(n).label or n for n in names],
        "metrics": names,
        "model": [_round(model.get(n)) for n in names],
        "baseline": [_round(baseline.get(n)) for n in names],
    }


def _series(
    task: Task,
    inputs: pd.DataFrame,
    truth: pd.DataFrame,
    predictions: pd.DataFrame,
    reference: pd.DataFrame,
) -> dict[str, Any] | None:
    date = find_date_column(inputs, task.inputs)
    if date is None or not task.truth or not task.outputs or len(inputs) == 0:
        return None
    observed_col, output_col = task.truth[0], task.outputs[0]
    if (
        not all(c.type in NUMERIC or c.type == "boolean" for c in (observed_col, output_col))
        or not all(output_col.name in frame.columns for frame in (predictions, reference))
        or observed_col.name not in truth.columns
    ):
        return None
    stamps = parse_dates(inputs[date])
    frame = pd.DataFrame(
        {
            "date": stamps.to_numpy(),
            "observed": _numbers(truth[observed_col.name]),
            "model": _numbers(predictions[output_col.name]),
            "baseline": _numbers(reference[output_col.name]),
        }
    ).dropna(subset=["date"])
    if frame.empty:
        return None
    label = _PERIODS[0][1]
    for code, label in _PERIODS:  # noqa: B007 (the period kept is the one the loop stops on)
        keys = (
            frame["date"].dt.to_period(code).dt.start_time
            if code != "D"
            else frame["date"].dt.normalize()
        )
        totals = frame.groupby(keys)[["observed", "model", "baseline"]].sum(min_count=1)
        if len(totals) <= MAX_POINTS:
            break
    else:
        totals = totals.tail(MAX_POINTS)
    per = "total" if observed_col.type in NUMERIC else "nombre"
    return {
        "kind": "series",
        "x": [stamp.strftime("%Y-%m-%d") for stamp in totals.index],
        "observed": [_round(v) for v in totals["observed"]],
        "model": [_round(v) for v in totals["model"]],
        "baseline": [_round(v) for v in totals["baseline"]],
        "x_label": label,
        "y_label": f"{observed_col.label or observed_col.name} ({per} par {label.split()[0]})",
    }


def _numbers(values: pd.Series) -> np.ndarray[Any, np.dtype[np.float64]]:
    if pd.api.types.is_bool_dtype(values):
        return np.array(values.to_numpy(dtype=float), dtype=np.float64)
    numbers: np.ndarray[Any, np.dtype[np.float64]] = np.asarray(
        pd.to_numeric(values.map(_number_or_nan), errors="coerce"), dtype=np.float64
    ).copy()
    numbers[~np.isfinite(numbers)] = np.nan
    return numbers


def _number_or_nan(value: Any) -> float:
    if value is None:
        return float("nan")
    if isinstance(value, bool | np.bool_):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _round(value: float | None) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return float(round(float(value), 6))
