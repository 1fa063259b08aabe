"""The ``velo-anomalies`` task: which days of a bike counter's series are anomalies.

A model answers, per counter and day, whether the count is an anomaly
(``anomalie``) and, optionally, a ``score``. A benchmark's truth is
``anomalie_injectee``: anomalies injected into clean series, where the truth
is known (Nantes' own published flag is too weak a label to score on), and
optionally ``type_injection`` (``panne``, ``derive``, ``pic``; empty for an
untouched day).

The scores are those the reference model ``velo-anomalies-nantes`` records
at registration (``demos/velo`` calls :func:`prf`, :func:`by_type` and
:func:`baseline_flags` here: one definition): ``precision``, ``recall``,
``f1`` on the injected anomalies, their count ``n_anomalies_injectees``, and
the recall per type of injection (``rappel_panne``, ``rappel_derive``,
``rappel_pic``) when the truth carries the type.

The naive baseline is the rolling same-weekday median ± MAD of
:func:`baseline_flags`, with the parameters the reference build tunes
(:data:`BASELINE_PARAMS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import pandas as pd

from domain.errors import InvalidData
from evaluation.task import Column, Metric, Task

SLUG = "velo-anomalies"
#: The kinds of injected anomaly, in the order the recall per type is reported.
INJECTION_TYPES = ("panne", "derive", "pic")
#: The baseline's parameters: those the reference build chooses on the validation
#: years 2017-2018 (best mean F1 over a family of injection draws,
#: ``demos/velo/protocol.py::choose_baseline``); a test checks the build still picks them.
BASELINE_PARAMS: dict[str, int | float | str] = {"semaines": 8, "seuil": 4.0, "espace": "brut"}

BoolLike: TypeAlias = pd.Series | np.ndarray | Sequence[bool]


def zero_runs(counts: pd.Series, min_len: int = 3) -> pd.Series:
    """True on days inside a run of ``min_len`` or more consecutive zero counts.

    The same rule as the reference model's (``demos/velo/pyfunc_model.py``,
    which runs in a sandbox and cannot import this package; a test checks
    both agree).

    Args:
        counts: counts of one counter indexed by day (consecutive calendar
            days only count as a run).
        min_len: shortest run flagged.

    Returns:
        Boolean series aligned on ``counts``.
    """
    grid = counts.reindex(pd.date_range(counts.index.min(), counts.index.max(), freq="D"))
    is_zero = grid.eq(0).to_numpy()
    edges = np.diff(np.concatenate([[0], is_zero.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    runs = np.zeros(len(grid), dtype=bool)
    for start, end in zip(starts, ends, strict=True):
        if end - start >= min_len:
            runs[start:end] = True
    flagged = pd.Series(runs, index=grid.index).reindex(counts.index)
    return flagged.fillna(False).astype(bool)


def baseline_flags(
    df: pd.DataFrame, semaines: int, seuil: float, espace: str = "brut"
) -> np.ndarray:
    """Rolling same-weekday median +/- MAD, plus the 3-zeros rule.

    For each day, the same weekday ``semaines`` weeks before and after (the
    day itself excluded, at least 3 values) gives a median ``m`` and a MAD;
    the day is flagged when ``|x - m| > seuil * s`` with
    ``s = max(1.4826 * MAD, sqrt(m))`` (the square-root floor is Poisson
    noise: it keeps a zero MAD from flagging everything). Any run of 3+
    zeros is flagged too.

    Args:
        df: columns ``compteur``, ``jour`` (datetime64), ``comptage``; one row
            per counter and day.
        semaines: half-width of the window in weeks.
        seuil: threshold in robust standard deviations.
        espace: "brut" (counts) or "log" (log1p counts, floor 0.05).

    Returns:
        Boolean array aligned on ``df`` rows.
    """
    ecart, zeros = baseline_deviation(df, semaines, espace)
    return np.asarray((ecart > seuil) | zeros, dtype=bool)


def baseline_deviation(
    df: pd.DataFrame, semaines: int, espace: str = "brut"
) -> tuple[np.ndarray, np.ndarray]:
    """What :func:`baseline_flags` compares with its threshold, for every threshold at once.

    Args:
        df, semaines, espace: as for :func:`baseline_flags`.

    Returns:
        ``|x - m| / s`` (``-inf`` where fewer than 3 values) and the 3-zeros
        mask, both aligned on ``df`` rows: the flags for ``seuil`` are
        ``(ecart > seuil) | zeros``.
    """
    ecart = np.full(len(df), -np.inf)
    zeros = np.zeros(len(df), dtype=bool)
    jours, counts = df["jour"].to_numpy(), df["comptage"].to_numpy(dtype=float)
    for pos in df.groupby("compteur").indices.values():
        s = pd.Series(counts[pos], index=pd.DatetimeIndex(jours[pos]))
        grid = s.reindex(pd.date_range(s.index.min(), s.index.max(), freq="D"))
        x = np.log1p(grid) if espace == "log" else grid
        shifted = [x.shift(7 * j) for j in range(-semaines, semaines + 1) if j != 0]
        mat = np.column_stack([v.to_numpy() for v in shifted])
        n = np.sum(~np.isnan(mat), axis=1)
        ok = n >= 3
        med = np.full(len(x), np.nan)
        mad = np.full(len(x), np.nan)
        med[ok] = np.nanmedian(mat[ok], axis=1)
        mad[ok] = np.nanmedian(np.abs(mat[ok] - med[ok, None]), axis=1)
        if espace == "log":
            scale = np.maximum(1.4826 * mad, 0.05)
        else:
            scale = np.maximum(1.4826 * mad, np.sqrt(np.maximum(med, 1.0)))
        ratio = np.abs(x.to_numpy() - med) / scale
        ratio = np.where(ok & ~np.isnan(ratio), ratio, -np.inf)
        ecart[pos] = pd.Series(ratio, index=grid.index).reindex(s.index).to_numpy()
        zeros[pos] = zero_runs(s).to_numpy()
    return ecart, zeros


def prf(truth: BoolLike, pred: BoolLike) -> dict[str, float]:
    """Precision, recall and F1 of boolean predictions (fractions).

    An empty denominator gives 0 (no prediction: precision 0; no positive:
    recall 0).
    """
    t = np.asarray(truth, dtype=bool)
    p_ = np.asarray(pred, dtype=bool)
    tp = float(np.sum(t & p_))
    p = float(tp / max(int(p_.sum()), 1))
    r = float(tp / max(int(t.sum()), 1))
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f1}


def by_type(truth_type: pd.Series, pred: BoolLike) -> dict[str, float]:
    """Recall per injected anomaly type (``rappel_<type>``); a type absent from the truth is left out."""
    flags = np.asarray(pred, dtype=bool)
    kinds = np.asarray(truth_type, dtype=object)
    out = {}
    for kind in INJECTION_TYPES:
        m = kinds == kind
        if m.any():
            out[f"rappel_{kind}"] = float(flags[m].mean())
    return out


def score(inputs: pd.DataFrame, truth: pd.DataFrame, predictions: pd.DataFrame) -> dict[str, float]:
    """Precision, recall, F1, the number of injected anomalies, the recall per type.

    Raises:
        InvalidData: the three frames do not have the same number of rows.
    """
    _same_length(inputs, truth, predictions)
    injected = _booleans(truth["anomalie_injectee"], "anomalie_injectee")
    flags = _booleans(predictions["anomalie"], "anomalie")
    scores = dict(prf(injected, flags))
    scores["n_anomalies_injectees"] = float(injected.sum())
    if "type_injection" in truth.columns:
        kinds = truth["type_injection"].fillna("").astype(str).str.strip().str.lower()
        scores.update(by_type(kinds, flags))
    return scores


def rolling_median_mad(inputs: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """The naive baseline: :func:`baseline_flags` with :data:`BASELINE_PARAMS`.

    It reads the counts only (the inputs), never the truth.

    Raises:
        InvalidData: an unreadable day or count, or a counter and day on two rows.

    Returns:
        ``anomalie`` (bool), aligned on ``inputs``' rows.
    """
    _same_length(inputs, truth)
    frame = series_frame(inputs)
    flags = baseline_flags(
        frame,
        int(BASELINE_PARAMS["semaines"]),
        float(BASELINE_PARAMS["seuil"]),
        str(BASELINE_PARAMS["espace"]),
    )
    return pd.DataFrame({"anomalie": flags.astype(bool)}, index=inputs.index)


def series_frame(inputs: pd.DataFrame) -> pd.DataFrame:
    """``compteur`` (text), ``jour`` (datetime64) and ``comptage`` (float) of the inputs, checked.

    Raises:
        InvalidData: an unreadable day or count, or a counter and day on two rows.
    """
    jours = pd.to_datetime(pd.Series(inputs["jour"]).astype(str), errors="coerce")
    if jours.isna().any():
        row = int(np.flatnonzero(jours.isna().to_numpy())[0]) + 1
        raise InvalidData(f"Jour illisible à la ligne {row} (format attendu AAAA-MM-JJ).")
    counts = pd.to_numeric(pd.Series(inputs["comptage"]), errors="coerce").astype(float)
    frame = pd.DataFrame(
        {
            "compteur": pd.Series(inputs["compteur"]).astype(str).to_numpy(),
            "jour": jours.dt.normalize().to_numpy(),
            "comptage": counts.to_numpy(),
        },
        index=inputs.index,
    )
    dup = frame.duplicated(["compteur", "jour"])
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0]) + 1
        first = frame.loc[dup].iloc[0]
        raise InvalidData(
            f"Ligne {row} en double : compteur {first['compteur']}, jour "
            f"{first['jour']:%Y-%m-%d} (une seule ligne par compteur et par jour)."
        )
    return frame


def _booleans(values: pd.Series, column: str) -> np.ndarray:
    series = pd.Series(values)
    if series.isna().any():
        raise InvalidData(f"Valeur manquante dans la colonne « {column} ».")
    return np.asarray(series.astype(bool).to_numpy(), dtype=bool)


def _same_length(*frames: pd.DataFrame) -> None:
    lengths = {len(frame) for frame in frames}
    if len(lengths) > 1:
        raise InvalidData(
            "Les entrées, la vérité et les prédictions n'ont pas le même nombre de lignes "
            f"({', '.join(str(len(frame)) for frame in frames)})."
        )


def _recall_metric(kind: str, label: str, title: str) -> Metric:
    return Metric(
        f"rappel_{kind}",
        title,
        higher_is_better=True,
        unit="fraction",
        description=(
            f"Part des jours d'anomalie injectée de ce type ({label}) signalés "
            "(si la vérité indique le type d'injection)."
        ),
    )


TASK = Task(
    slug=SLUG,
    title="Détection d'anomalies de comptage vélo",
    description=(
        "Signaler, dans les séries journalières des compteurs vélo, les jours dont le comptage "
        "est anormal (panne, dérive du capteur, pic isolé), pour ne pas publier ni exploiter de "
        "chiffres faux. Les jeux d'évaluation contiennent des anomalies injectées dans des séries "
        "propres : la vérité y est connue."
    ),
    inputs=(
        Column("compteur", "long", label="identifiant du compteur"),
        Column("jour", "date", label="jour du comptage (AAAA-MM-JJ)"),
        Column("comptage", "long", label="passages de vélos comptés ce jour"),
    ),
    truth=(
        Column("anomalie_injectee", "boolean", label="anomalie injectée ce jour (vérité)"),
        Column(
            "type_injection",
            "string",
            required=False,
            label="type d'anomalie injectée : panne, derive, pic (vide sinon)",
        ),
    ),
    outputs=(
        Column("anomalie", "boolean", label="jour signalé comme anomalie"),
        Column("score", "double", required=False, label="score d'anomalie (≥ 1 : anomalie)"),
    ),
    metrics=(
        Metric(
            "f1",
            "Score F1",
            higher_is_better=True,
            unit="fraction",
            description="Moyenne harmonique de la précision et du rappel.",
        ),
        Metric(
            "precision",
            "Précision",
            higher_is_better=True,
            unit="fraction",
            description="Part des jours signalés qui sont des anomalies injectées.",
        ),
        Metric(
            "recall",
            "Rappel",
            higher_is_better=True,
            unit="fraction",
            description="Part des jours d'anomalie injectée qui sont signalés.",
        ),
        Metric(
            "n_anomalies_injectees",
            "Jours d'anomalie injectés",
            higher_is_better=True,
            unit="jour",
            description=(
                "Nombre de jours d'anomalie injectée (un fait sur l'évaluation, pas une performance)."
            ),
            kind="contexte",
        ),
        _recall_metric("panne", "pannes, séries de zéros", "Pannes repérées"),
        _recall_metric("derive", "dérives du capteur", "Dérives repérées"),
        _recall_metric("pic", "pics isolés", "Pics repérés"),
    ),
    primary="f1",
    baseline_name="médiane glissante du même jour de la semaine ± MAD",
    baseline_description=(
        f"Pour chaque jour : la médiane des comptages du même jour de la semaine, "
        f"{BASELINE_PARAMS['semaines']} semaines avant et après (le jour lui-même exclu, au moins "
        "3 valeurs) ; le jour est signalé quand il s'en écarte de plus de "
        f"{str(BASELINE_PARAMS['seuil']).replace('.', ',')} fois l'écart robuste (1,4826 × MAD, "
        "au moins la racine carrée de la médiane, le bruit d'un comptage). Toute série de 3 zéros "
        "consécutifs ou plus est signalée aussi. Paramètres choisis sur 2017 et 2018 par le "
        "modèle de référence de Nantes, comme les siens."
    ),
    score=score,
    baseline=rolling_median_mad,
    batch_key="compteur",
    # The model measures a city-wide effect from every counter of a request: all rows at once.
    single_batch=True,
    card_tasks=("detection-anomalies",),
)
