"""Evaluation protocol: clean series, injected anomalies, the baseline, metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd

from demos.velo.pyfunc_model import zero_runs

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
        df: columns ``compteur``, ``jour``, ``comptage``.
        semaines: half-width of the window in weeks.
        seuil: threshold in robust standard deviations.
        espace: "brut" (counts) or "log" (log1p counts, floor 0.05).

    Returns:
        Boolean array aligned on ``df`` rows.
    """
    flags = pd.Series(False, index=df.index)
    for _, part in df.groupby("compteur"):
        s = part.set_index("jour")["comptage"]
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
        out = ok & (np.abs(x.to_numpy() - med) > seuil * scale)
        day_flags = pd.Series(out, index=grid.index).reindex(s.index).to_numpy()
        flags.loc[part.index] = day_flags | zero_runs(s).to_numpy()
    return flags.to_numpy()


def prf(truth, pred) -> dict[str, float]:
    """Precision, recall and F1 of boolean predictions (fractions)."""
    truth = np.asarray(truth, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    tp = float(np.sum(truth & pred))
    p = tp / max(pred.sum(), 1)
    r = tp / max(truth.sum(), 1)
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f1}


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


def by_type(truth_type: pd.Series, pred) -> dict[str, float]:
    """Recall per injected anomaly type."""
    pred = np.asarray(pred, dtype=bool)
    out = {}
    for kind in EVENTS_PER_COUNTER:
        m = (truth_type == kind).to_numpy()
        out[f"rappel_{kind}"] = float(pred[m].mean()) if m.any() else float("nan")
    return out
