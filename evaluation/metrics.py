"""Metric primitives: plain functions of a truth and a prediction, fractions rather than percents.

Every function takes array-likes of the same length, aligned row by row, and
returns a finite Python ``float``. The rules every function follows:

- **NaN-safe**: a row where the truth or the prediction is missing (NaN,
  None) is left out (for numbers); the rest is scored.
- **Empty-safe**: with no row left, a score is ``0.0`` (nothing scored, no
  error counted); each function documents its own zero-denominator rule.
- **Finite**: infinite inputs are left out like missing ones; no function
  returns NaN or infinity. :func:`finite` drops non-finite values of a
  score dictionary that other code produced.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def _pairs(truth: Any, pred: Any) -> tuple[FloatArray, FloatArray]:
    """Truth and prediction as float arrays, rows where either is missing or infinite left out."""
    t = np.asarray(truth, dtype=np.float64).ravel()
    p = np.asarray(pred, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"lengths differ: {t.shape[0]} truths, {p.shape[0]} predictions")
    keep = np.isfinite(t) & np.isfinite(p)
    return t[keep], p[keep]


def _bools(values: Any) -> BoolArray:
    return np.asarray(values, dtype=bool).ravel()


def mae(truth: Any, pred: Any) -> float:
    """Mean absolute error: ``Σ |p − t| / n``. No row: 0."""
    t, p = _pairs(truth, pred)
    return float(np.mean(np.abs(p - t))) if t.size else 0.0


def rmse(truth: Any, pred: Any) -> float:
    """Root mean squared error: ``√(Σ (p − t)² / n)``. No row: 0."""
    t, p = _pairs(truth, pred)
    return float(np.sqrt(np.mean((p - t) ** 2))) if t.size else 0.0


def wmape(truth: Any, pred: Any) -> float:
    """Weighted mean absolute percentage error: ``Σ |p − t| / Σ |t|`` (a fraction).

    Zero total (``Σ |t| = 0``, or no row): 0 when every error is 0, else 1
    (as bad as predicting 0 everywhere would be on a non-zero truth).
    """
    t, p = _pairs(truth, pred)
    errors = float(np.sum(np.abs(p - t)))
    total = float(np.sum(np.abs(t)))
    if total == 0.0:
        return 0.0 if errors == 0.0 else 1.0
    return errors / total


def r2(truth: Any, pred: Any) -> float:
    """Coefficient of determination: ``1 − Σ (t − p)² / Σ (t − t̄)²``.

    Constant truth (``Σ (t − t̄)² = 0``, one row, or none): 1 when every
    prediction is exact, else 0.
    """
    t, p = _pairs(truth, pred)
    residual = float(np.sum((t - p) ** 2))
    spread = float(np.sum((t - t.mean()) ** 2)) if t.size else 0.0
    if spread == 0.0:
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / spread


def accuracy(truth: Any, pred: Any) -> float:
    """Share of rows where the prediction equals the truth: ``#{p = t} / n``. No row: 0.

    Labels are compared as they are (normalise them first, see
    :func:`evaluation.tasks.generic.labels`); a missing truth or prediction
    (None, NaN) leaves the row out.
    """
    t, p = _label_pairs(truth, pred)
    return sum(a == b for a, b in zip(t, p, strict=True)) / len(t) if t else 0.0


def precision_recall_f1(truth: Any, pred: Any) -> dict[str, float]:
    """Precision, recall and F1 of boolean predictions, the positive class being ``True``.

    ``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)``,
    ``f1 = 2 · precision · recall / (precision + recall)``. A zero denominator
    gives 0 (no positive predicted: precision 0; no positive to find: recall
    0), as ``demos/velo/evaluate.py::prf`` records them.

    Returns:
        ``{"precision", "recall", "f1"}``.
    """
    t, p = _bools(truth), _bools(pred)
    if t.shape != p.shape:
        raise ValueError(f"lengths differ: {t.shape[0]} truths, {p.shape[0]} predictions")
    tp = float(np.sum(t & p))
    precision = tp / max(float(p.sum()), 1.0)
    recall = tp / max(float(t.sum()), 1.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def f1_macro(truth: Any, pred: Any) -> float:
    """Macro-averaged F1: the mean over classes of ``2·TP / (2·TP + FP + FN)``.

    The classes are every label seen in the truth or the predictions (as
    scikit-learn's default); a missing truth or prediction leaves the row out.
    No row: 0.
    """
    t, p = _label_pairs(truth, pred)
    classes = set(t) | set(p)
    if not classes:
        return 0.0
    scores = []
    for label in classes:
        tp = sum(a == label and b == label for a, b in zip(t, p, strict=True))
        fp = sum(a != label and b == label for a, b in zip(t, p, strict=True))
        fn = sum(a == label and b != label for a, b in zip(t, p, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(sum(scores) / len(scores))


def false_alarm_ratio(event: Any, alert: Any) -> float:
    """False alerts among alerts: ``FP / (TP + FP)`` (1 − precision). No alert: 0."""
    e, a = _bools(event), _bools(alert)
    if e.shape != a.shape:
        raise ValueError(f"lengths differ: {e.shape[0]} truths, {a.shape[0]} predictions")
    alerts = float(a.sum())
    return float(np.sum(a & ~e)) / alerts if alerts else 0.0


def brier(event: Any, probability: Any) -> float:
    """Brier score: ``Σ (p − o)² / n``, ``o`` the outcome (1 or 0), ``p`` its probability. No row: 0."""
    return mean_squared(np.asarray(event, dtype=np.float64), probability)


def mean_squared(truth: Any, pred: Any) -> float:
    """Mean squared error ``Σ (p − t)² / n``. No row: 0."""
    t, p = _pairs(truth, pred)
    return float(np.mean((p - t) ** 2)) if t.size else 0.0


def skill(score: float, reference: float) -> float:
    """Skill score of a lower-is-better score against a reference: ``1 − score / reference``.

    Zero reference: 0 (the reference is perfect, no skill can be shown).
    """
    return 1.0 - score / reference if reference > 0 else 0.0


def finite(scores: Mapping[str, Any]) -> dict[str, float]:
    """``scores`` as floats, values that are not finite numbers (NaN, ±inf, None, text) dropped.

    This is the one rule for non-finite scores: they are left out of what is
    recorded and shown (a score that cannot be computed is absent, never 0).
    """
    out: dict[str, float] = {}
    for name, value in scores.items():
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            continue
        number = float(value)
        if math.isfinite(number):
            out[str(name)] = number
    return out


def _label_pairs(truth: Any, pred: Any) -> tuple[list[Any], list[Any]]:
    t, p = _as_list(truth), _as_list(pred)
    if len(t) != len(p):
        raise ValueError(f"lengths differ: {len(t)} truths, {len(p)} predictions")
    kept = [(a, b) for a, b in zip(t, p, strict=True) if not _missing(a) and not _missing(b)]
    return [a for a, _ in kept], [b for _, b in kept]


def _as_list(values: Any) -> list[Any]:
    if isinstance(values, Iterable) and not isinstance(values, str | bytes):
        return list(values)
    return list(np.asarray(values).ravel())


def _missing(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, float | np.floating) and not math.isfinite(float(value))
