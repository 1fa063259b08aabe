"""The generic tasks: regression, classification, forecasting, bound to a model's signature.

A generic task has no fixed columns: :func:`bind` gives it the model's
signature's input columns, the model's (first) output, and the ground-truth
column the user names. Unbound, the tasks of :data:`TASKS` show the default
names: the truth is ``observe``, the output ``prediction``.

Which truth column, when the user names none (:func:`truth_column_for`): the
first of ``observe``, ``observe_<sortie>``, ``reel`` that the file holds
(when the caller passes the file's columns), else ``observe``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from domain.errors import InvalidInput
from evaluation import metrics
from evaluation.frames import NUMERIC, find_date_column, parse_dates
from evaluation.task import Column, Metric, Task

#: The truth column's name when the user names none and the file has none of the others.
DEFAULT_TRUTH = "observe"
#: The output column's name when the model's signature does not name its output.
DEFAULT_OUTPUT = "prediction"
#: MLflow column types as a task column's type (``datetime`` travels as an ISO string).
_TYPES = {
    "string": "string",
    "long": "long",
    "integer": "integer",
    "double": "double",
    "float": "double",
    "boolean": "boolean",
    "datetime": "date",
    "date": "date",
}

MAE = Metric(
    "mae", "Erreur absolue moyenne", False, "", "Moyenne des écarts absolus |prédit − observé|."
)
RMSE = Metric(
    "rmse",
    "Racine de l'erreur quadratique moyenne",
    False,
    "",
    "Racine de la moyenne des carrés des écarts (pénalise les grandes erreurs).",
)
WMAPE = Metric(
    "wmape",
    "Erreur relative pondérée (WMAPE)",
    False,
    "fraction",
    "Somme des écarts absolus divisée par la somme des valeurs observées.",
)
R2 = Metric(
    "r2",
    "Coefficient de détermination (R²)",
    True,
    "",
    "1 − somme des carrés des écarts / somme des carrés des écarts à la moyenne observée.",
)
ACCURACY = Metric(
    "accuracy",
    "Exactitude",
    True,
    "fraction",
    "Part des lignes où la classe prédite est la classe observée.",
)
F1 = Metric(
    "f1",
    "F1 macro",
    True,
    "fraction",
    "Moyenne sur les classes du F1 (moyenne harmonique de la précision et du rappel).",
)


# ---------------------------------------------------------------- the three tasks


def regression_task(
    inputs: tuple[Column, ...] = (), truth: str = DEFAULT_TRUTH, output: str = DEFAULT_OUTPUT
) -> Task:
    """Regression: one numeric truth column, the model's numeric output; primary ``mae``."""

    def score(inp: pd.DataFrame, tru: pd.DataFrame, pred: pd.DataFrame) -> dict[str, float]:
        t, p = tru[truth].to_numpy(float), pred[output].to_numpy(float)
        return {
            "mae": metrics.mae(t, p),
            "rmse": metrics.rmse(t, p),
            "wmape": metrics.wmape(t, p),
            "r2": metrics.r2(t, p),
        }

    def baseline(inp: pd.DataFrame, tru: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({output: np.full(len(tru), _mean(tru[truth]))})

    return Task(
        slug="regression",
        title="Régression",
        description="Prédire une valeur numérique observée (générique : colonnes prises de la "
        "signature du modèle).",
        inputs=inputs,
        truth=(Column(truth, "double", label="valeur observée"),),
        outputs=(Column(output, "double", label="valeur prédite"),),
        metrics=(MAE, RMSE, WMAPE, R2),
        primary="mae",
        baseline_name="moyenne des valeurs observées",
        baseline_description="Chaque ligne reçoit la moyenne des valeurs observées du jeu évalué.",
        score=score,
        baseline=baseline,
        generic=True,
        card_tasks=("regression",),
    )


def classification_task(
    inputs: tuple[Column, ...] = (),
    truth: str = DEFAULT_TRUTH,
    output: str = DEFAULT_OUTPUT,
    label_type: str = "string",
) -> Task:
    """Classification: one label column, the model's label output; primary ``f1`` (macro)."""

    def score(inp: pd.DataFrame, tru: pd.DataFrame, pred: pd.DataFrame) -> dict[str, float]:
        t, p = labels(tru[truth]), labels(pred[output])
        return {"accuracy": metrics.accuracy(t, p), "f1": metrics.f1_macro(t, p)}

    def baseline(inp: pd.DataFrame, tru: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({output: [majority(tru[truth])] * len(tru)})

    return Task(
        slug="classification",
        title="Classification",
        description="Prédire une classe observée (générique : colonnes prises de la signature "
        "du modèle).",
        inputs=inputs,
        truth=(Column(truth, label_type, label="classe observée"),),
        outputs=(Column(output, label_type, label="classe prédite"),),
        metrics=(ACCURACY, F1),
        primary="f1",
        baseline_name="classe majoritaire",
        baseline_description="Chaque ligne reçoit la classe la plus fréquente parmi les valeurs "
        "observées (à égalité, la première dans l'ordre alphabétique).",
        score=score,
        baseline=baseline,
        generic=True,
        card_tasks=("classification", "detection-anomalies"),
    )


def prevision_task(
    inputs: tuple[Column, ...] = (), truth: str = DEFAULT_TRUTH, output: str = DEFAULT_OUTPUT
) -> Task:
    """Forecasting: one numeric truth column over dated rows; primary ``wmape``."""

    def score(inp: pd.DataFrame, tru: pd.DataFrame, pred: pd.DataFrame) -> dict[str, float]:
        t, p = tru[truth].to_numpy(float), pred[output].to_numpy(float)
        return {
            "mae": metrics.mae(t, p),
            "rmse": metrics.rmse(t, p),
            "wmape": metrics.wmape(t, p),
        }

    def baseline(inp: pd.DataFrame, tru: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({output: persistence(inp, tru[truth], inputs)})

    return Task(
        slug="prevision",
        title="Prévision de série temporelle",
        description="Prévoir une valeur numérique datée (générique : colonnes prises de la "
        "signature du modèle).",
        inputs=inputs,
        truth=(Column(truth, "double", label="valeur observée"),),
        outputs=(Column(output, "double", label="valeur prévue"),),
        metrics=(MAE, RMSE, WMAPE),
        primary="wmape",
        baseline_name="persistance (valeur observée précédente)",
        baseline_description="Chaque ligne reçoit la valeur observée à la date précédente de la "
        "même série (la série : la première colonne de texte des entrées autre que la date ; la "
        "date : la première colonne d'entrée lisible comme une date ; sans date, l'ordre des "
        "lignes). Le premier jour d'une série reçoit la moyenne des valeurs observées.",
        score=score,
        baseline=baseline,
        generic=True,
        card_tasks=("prevision-serie-temporelle",),
    )


REGRESSION = regression_task()
CLASSIFICATION = classification_task()
PREVISION = prevision_task()
TASKS = (REGRESSION, CLASSIFICATION, PREVISION)
_FACTORIES = {"regression", "classification", "prevision"}


# ---------------------------------------------------------------- baselines


def persistence(
    inputs: pd.DataFrame, truth: pd.Series, columns: Sequence[Column] = ()
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The previous observed value of the same series, in date order (see :func:`prevision_task`).

    The value of the *latest earlier date* of the series (rows sharing a date
    never see each other's truth; when a series has several rows on a date,
    the last of them in the file is that date's value). No earlier date: the
    mean of the observed values (0 without any).
    """
    values = pd.Series(np.asarray(truth, dtype=float)).reset_index(drop=True)
    inp = inputs.reset_index(drop=True)
    fallback = _mean(values)
    date = find_date_column(inp, columns)
    key = _series_key(inp, columns, date)
    frame = pd.DataFrame(
        {
            "key": inp[key].astype(str).to_numpy() if key else "",
            "order": parse_dates(inp[date]).to_numpy() if date else np.arange(len(inp)),
            "value": values.to_numpy(),
        }
    )
    frame = frame[frame["value"].notna()]
    last = frame.groupby(["key", "order"], sort=True)["value"].last().reset_index()
    keys = inp[key].astype(str).to_numpy() if key else np.full(len(inp), "")
    orders = parse_dates(inp[date]).to_numpy() if date else np.arange(len(inp))
    return _previous_by_date(last, keys, orders, fallback)


def _previous_by_date(
    last: pd.DataFrame, keys: Any, orders: Any, fallback: float
) -> np.ndarray[Any, np.dtype[np.float64]]:
    out = np.full(len(keys), fallback, dtype=float)
    series = dict(iter(last.groupby("key")))
    for i, (k, o) in enumerate(zip(keys, orders, strict=True)):
        group = series.get(k)
        if group is None or pd.isna(o):
            continue
        stamps = group["order"].to_numpy()
        position = int(np.searchsorted(stamps, o, side="left"))
        if position > 0:
            out[i] = float(group["value"].to_numpy()[position - 1])
    return out


def _series_key(inputs: pd.DataFrame, columns: Sequence[Column], date: str | None) -> str | None:
    if columns:
        names = [c.name for c in columns if c.type == "string" and c.name in inputs.columns]
    else:
        names = [
            str(c)
            for c in inputs.columns
            if not pd.api.types.is_numeric_dtype(inputs[c])
            and not pd.api.types.is_bool_dtype(inputs[c])
        ]
    return next((n for n in names if n != date), None)


def _mean(values: pd.Series) -> float:
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    numbers = numbers[np.isfinite(numbers)]
    return float(numbers.mean()) if numbers.size else 0.0


def labels(values: pd.Series) -> list[str | None]:
    """Class labels as comparable text: ``True``/``"true"`` → ``"true"``, ``1``/``1.0``/``"1.0"``
    → ``"1"``; other text stripped; missing → None."""
    return [_label(v) for v in values]


def _label(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return None
        return str(int(number)) if number.is_integer() else repr(number)
    text = str(value).strip()
    if text.lower() in ("true", "false"):
        return text.lower()
    try:
        number = float(text.replace(",", "."))
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() and abs(number) < 2**53 else text


def majority(values: pd.Series) -> Any:
    """The most frequent value (ties: the first by label in alphabetical order); None when empty."""
    counts: dict[str, tuple[int, Any]] = {}
    for value, label in zip(values, labels(values), strict=True):
        if label is None:
            continue
        n, first = counts.get(label, (0, value))
        counts[label] = (n + 1, first)
    if not counts:
        return None
    best = min(counts, key=lambda lab: (-counts[lab][0], lab))
    return counts[best][1]


# ---------------------------------------------------------------- binding


def truth_column_for(output: str, columns: Sequence[str] | None) -> str:
    """The truth column when the user names none: the first of ``observe``,
    ``observe_<output>``, ``reel`` in ``columns``, else ``observe``."""
    for name in (DEFAULT_TRUTH, f"{DEFAULT_TRUTH}_{output}", "reel"):
        if columns is not None and name in columns:
            return name
    return DEFAULT_TRUTH


def signature_columns(signature: dict[str, Any] | None, part: str) -> list[Column]:
    """The named columns of ``signature[part]`` (``inputs`` or ``outputs``); unnamed ones skipped.

    The signature is untrusted data (a registered model's ``MLmodel``):
    anything not shaped like a column spec is ignored; types outside
    MLflow's scalar ones become ``string``.
    """
    if not isinstance(signature, dict):
        return []
    specs = signature.get(part)
    if not isinstance(specs, list):
        return []
    columns = []
    for spec in specs[:1000]:
        if not isinstance(spec, dict):
            continue
        name = spec.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            continue
        raw = spec.get("type")
        kind = _TYPES.get(raw, "string") if isinstance(raw, str) else "string"
        columns.append(Column(name, kind, required=spec.get("required", True) is not False))
    return columns


def output_spec(signature: dict[str, Any] | None, numeric: bool) -> tuple[str, str | None]:
    """``(name, type)`` of the model's output to score: its first output (the first numeric
    one when ``numeric``); ``prediction`` when the signature does not name it; the type is None
    when the signature does not give one."""
    named = signature_columns(signature, "outputs")
    raw = signature.get("outputs") if isinstance(signature, dict) else None
    if named:
        chosen = next((c for c in named if c.type in NUMERIC), None) if numeric else None
        chosen = chosen or named[0]
        return chosen.name, chosen.type
    if isinstance(raw, list) and raw and isinstance(raw[0], dict):
        kind = raw[0].get("type")
        return DEFAULT_OUTPUT, _TYPES.get(kind) if isinstance(kind, str) else None
    return DEFAULT_OUTPUT, None


def bind(
    task: Task,
    signature: dict[str, Any] | None,
    truth_column: str | None = None,
    *,
    columns: Sequence[str] | None = None,
) -> Task:
    """``task`` (a generic one) with the model's columns and the truth column.

    Inputs: the signature's named input columns, with their types
    (``datetime`` as ``date``; none when the signature names no input: the
    model then gets the file's other columns as they are). Output: the
    model's first output (regression, forecasting: its first numeric one),
    ``prediction`` when unnamed. Truth: ``truth_column``, else
    :func:`truth_column_for` over the file's ``columns``.

    Raises:
        InvalidInput: the truth column is empty, too long, or one of the
            model's inputs or its output.
    """
    if not task.generic or task.slug not in _FACTORIES:
        return task
    inputs = tuple(signature_columns(signature, "inputs"))
    output, kind = output_spec(signature, numeric=task.slug != "classification")
    if truth_column is not None:
        truth = truth_column.strip()
        if not truth or len(truth) > 200:
            raise InvalidInput("Nom de colonne de vérité invalide (vide ou trop long).")
    else:
        truth = truth_column_for(output, columns)
    if truth in {c.name for c in inputs}:
        raise InvalidInput(
            f"La colonne de vérité « {truth} » est une entrée du modèle : nommez la colonne des "
            "valeurs observées."
        )
    if truth == output:
        raise InvalidInput(
            f"La colonne de vérité « {truth} » porte le nom de la sortie du modèle : renommez-la "
            "(par exemple « observe »)."
        )
    if task.slug == "regression":
        return regression_task(inputs, truth, output)
    if task.slug == "prevision":
        return prevision_task(inputs, truth, output)
    label_type = kind if kind in {"string", "long", "integer", "boolean"} else "string"
    return classification_task(inputs, truth, output, label_type)
