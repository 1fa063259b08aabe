"""Evaluation protocol: clean series, injected anomalies, the baseline, metrics.

The baseline (:func:`baseline_flags`) and the task's metrics (:func:`prf`,
:func:`by_type`) are defined once, in :mod:`evaluation.tasks.velo`, which the
platform scores every model with; they are re-exported here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from demos.velo.pyfunc_model import zero_runs
from evaluation.tasks.velo import baseline_flags, by_type, prf

__all__ = [
    "baseline_flags",
    "by_type",
    "clean_series",
    "dice",
    "inject",
    "nantes_comparable",
    "prf",
]

MIN_CLEAN_DAYS = 150
EVENTS_PER_COUNTER = {"panne": 3, "derive": 3, "pic": 4}
GAP_DAYS = 7
RATIO_NANTES = 3.0


def clean_series(year: pd.DataFrame) -> pd.DataFrame:
    """The clean series of one year, into which anomalies are injected.

    A day is kept when its count is present and positive, neither neighbour
    is a zero or a missing day (partial days around outages), Nantes'
    published detector did not flag it, and its count is within a factor 3
    of Nantes' published ``Valeur modélisée`` (an outside reference: neither
    the evaluated model nor the baseline decides what is clean). Counters with fewer than ``MIN_CLEAN_DAYS``
    clean days in the year are dropped (in 2019: the long outages of 785,
    947 and 948).

    Args:
        year: rows of one year from :func:`demos.velo.data.load_daily`.

    Returns:
        Columns ``compteur``, ``jour``, ``comptage`` (clean days only).
    """
    keep = []
    for _, part in year.groupby("compteur"):
        s = part.set_index("jour")["comptage"]
        grid = s.reindex(pd.date_range(s.index.min(), s.index.max(), freq="D"))
        bad = grid.isna() | grid.eq(0)
        near = bad | bad.shift(1, fill_value=True) | bad.shift(-1, fill_value=True)
        ok = (~near).reindex(s.index).to_numpy() & ~part["drapeau_nantes"].to_numpy()
        ratio = (part["comptage"] / part["valeur_modelisee"].clip(lower=1)).to_numpy()
        ok &= (ratio >= 1 / RATIO_NANTES) & (ratio <= RATIO_NANTES)
        if ok.sum() >= MIN_CLEAN_DAYS:
            keep.append(part.loc[ok, ["compteur", "jour", "comptage"]])
    return pd.concat(keep, ignore_index=True)


def inject(clean: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Inject known anomalies into clean series (seeded, reproducible).

    Per counter: 3 outages (runs of 2-10 zero days), 3 sensor drifts (3-10
    days multiplied or divided by a factor drawn log-uniformly in [2, 10])
    and 4 isolated spikes (one day multiplied by 3-10), at random places,
    at least ``GAP_DAYS`` apart.

    Args:
        clean: output of :func:`clean_series`.
        seed: numpy seed.

    Returns:
        ``clean`` with modified ``comptage`` plus ``anomalie_injectee`` (bool),
        ``type_injection`` ("", "panne", "derive", "pic") and ``evenement``
        (event number, 0 for untouched days).
    """
    rng = np.random.default_rng(seed)
    out = clean.copy()
    out["anomalie_injectee"] = False
    out["type_injection"] = ""
    out["evenement"] = 0
    event = 0
    for _, part in out.groupby("compteur", sort=True):
        days = part["jour"].to_numpy()
        taken = np.zeros(len(part), dtype=bool)
        kinds = [k for k, n in EVENTS_PER_COUNTER.items() for _ in range(n)]
        for kind in rng.permutation(kinds):
            length = {"panne": rng.integers(2, 11), "derive": rng.integers(3, 11), "pic": 1}[kind]
            for _ in range(200):
                start = days[rng.integers(0, len(days))]
                end = start + np.timedelta64(int(length) - 1, "D")
                inside = (days >= start) & (days <= end)
                pad = np.timedelta64(GAP_DAYS, "D")
                near = (days >= start - pad) & (days <= end + pad)
                if inside.any() and not (taken & near).any():
                    break
            else:
                continue
            taken |= inside
            idx = part.index[inside]
            counts = out.loc[idx, "comptage"]
            if kind == "panne":
                new = counts * 0.0
            elif kind == "derive":
                factor = np.exp(rng.uniform(np.log(2), np.log(10)))
                new = np.round(counts * factor if rng.random() < 0.5 else counts / factor)
            else:
                new = np.round(counts * np.exp(rng.uniform(np.log(3), np.log(10))))
            out.loc[idx, "comptage"] = new
            out.loc[idx, "anomalie_injectee"] = True
            out.loc[idx, "type_injection"] = kind
            event += 1
            out.loc[idx, "evenement"] = event
    return out


def dice(a, b) -> float:
    """Agreement on positives, 2|A and B| / (|A| + |B|) (the symmetric F1)."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    return float(2 * np.sum(a & b) / max(a.sum() + b.sum(), 1))


def nantes_comparable(year: pd.DataFrame) -> pd.Series:
    """Days on which Nantes' published flag is defined: an observed count
    outside runs of 3+ zeros (Nantes sets those to NA before its model)."""
    mask = year["comptage"].notna().copy()
    for _, part in year.groupby("compteur"):
        s = part.set_index("jour")["comptage"].dropna()
        runs = zero_runs(s)
        mask.loc[part.index[part["comptage"].notna()]] &= ~runs.to_numpy()
    return mask
