"""Bike-counter anomaly detector, as an MLflow "model from code".

This file is loaded inside the demonstrator sandbox: it imports only numpy,
pandas, scikit-learn (through skops) and mlflow. The training code in
``demos.velo`` imports its pure functions so that training, evaluation and
serving share one implementation.

How a day is judged (everything in log space, ``log1p(count)``):

1. *Profile*: one ridge regression per counter on calendar features
   (weekday, yearly Fourier terms, bank holidays, bridge days, school
   holidays) plus one intercept per training year; predictions use the last
   training year's level.
2. *Level*: when the input holds enough days of a counter, a centred rolling
   median of its residuals re-estimates the counter's current level (slow
   trend, works rerouting traffic); otherwise the last training level is used.
3. *City-wide day effect*: when the input holds enough other counters on the
   same day, the median of their residuals (weather, strikes, events) is
   removed, scaled by the counter's learned sensitivity ``beta``.
4. *Decision*: ``z`` = residual / the counter's learned noise scale, widened
   on days quieter than usual for the counter (``exposant_echelle``, see
   :func:`scale_factor`). A day is an anomaly when ``z >= seuil_hausse``
   (above expected) or ``-z >= seuil_jour`` (below), or when it and a
   neighbouring day both deviate by ``seuil_serie`` or more in the same
   direction (``z3``: several consecutive days off, e.g. a sensor drift), or
   when it lies in a window of ``duree_longue`` days that all deviate by
   ``seuil_long`` or more in the same direction (``zl``: a slow drift), or in
   a run of 3+ zeros. ``score = max(z / seuil_hausse or -z / seuil_jour,
   |z3| / seuil_serie, |zl| / seuil_long)``: ``anomalie`` is exactly
   ``score >= 1``. Without ``seuil_hausse`` (version 2 of the model), both
   directions use ``seuil_jour``.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

INPUT_COLUMNS = ["compteur", "jour", "comptage"]
OUTPUT_COLUMNS = ["attendu", "borne_basse", "borne_haute", "anomalie", "score"]
SKOPS_TRUSTED = ["sklearn.linear_model._ridge.Ridge"]
#: The one type of the stored classifier (version 4) skops does not trust by default.
SKOPS_TRUSTED_CLASSIFIER = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
#: Deviations are clipped to this many noise scales before they become features.
CLIP = 12.0
#: Centred rolling windows (days) of the features, and the before/after windows.
ROLL_WINDOWS = (3, 7, 14, 28)
SIDE_WINDOWS = (7, 14)
#: Features compared with the median of the other counters on the same day.
CROSS_COLUMNS = ("z", "z_m7", "z0_m7", "z_m28", "z0_m28", "z_m3")


class ErreurEntree(ValueError):
    """Input a person must fix (message in French)."""


# --------------------------------------------------------------------------
# Calendar features
# --------------------------------------------------------------------------


def calendar_features(jours: pd.Series, calendrier: pd.DataFrame) -> pd.DataFrame:
    """Calendar design matrix for the given days.

    Args:
        jours: datetime64 series of days.
        calendrier: one row per day (index: datetime64 day) with integer
            columns ``ferie`` and ``vacances`` (0 none, 1 short holidays,
            2 Christmas, 3 summer).

    Returns:
        DataFrame aligned on ``jours``: weekday dummies ``jsem_0..6``,
        ``sin_k``/``cos_k`` (k = 1..3) of the day of year, ``ferie``,
        ``pont`` (working day squeezed between a bank holiday and a weekend),
        ``vac_courtes``, ``vac_noel``, ``vac_ete`` and ``we_ete``.

    Raises:
        ErreurEntree: a day lies outside the calendar table.
    """
    jours = pd.to_datetime(pd.Series(jours)).dt.normalize()
    idx = pd.DatetimeIndex(jours)
    if len(idx) and (idx.min() < calendrier.index.min() or idx.max() > calendrier.index.max()):
        raise ErreurEntree(
            "Date hors du calendrier connu du modèle "
            f"({calendrier.index.min():%Y-%m-%d} à {calendrier.index.max():%Y-%m-%d})."
        )
    cal = calendrier.reindex(idx)
    wd = idx.dayofweek.to_numpy()
    out = {f"jsem_{k}": (wd == k).astype(float) for k in range(7)}
    angle = 2 * np.pi * (idx.dayofyear.to_numpy() - 1) / 365.25
    for k in (1, 2, 3):
        out[f"sin_{k}"] = np.sin(k * angle)
        out[f"cos_{k}"] = np.cos(k * angle)
    ferie = cal["ferie"].to_numpy(dtype=float)
    prev_ferie = calendrier["ferie"].reindex(idx - pd.Timedelta(days=1)).fillna(0).to_numpy()
    next_ferie = calendrier["ferie"].reindex(idx + pd.Timedelta(days=1)).fillna(0).to_numpy()
    out["ferie"] = ferie
    out["pont"] = (((wd == 4) & (prev_ferie == 1)) | ((wd == 0) & (next_ferie == 1))).astype(float)
    vac = cal["vacances"].to_numpy()
    out["vac_courtes"] = (vac == 1).astype(float)
    out["vac_noel"] = (vac == 2).astype(float)
    out["vac_ete"] = (vac == 3).astype(float)
    out["we_ete"] = out["vac_ete"] * (wd >= 5)
    return pd.DataFrame(out, index=jours.index)


def profile_design(feats: pd.DataFrame, annees: list[int], annee: pd.Series | int) -> np.ndarray:
    """Append one-hot training-year columns to the calendar features.

    Args:
        feats: output of :func:`calendar_features`.
        annees: the counter's training years (column order).
        annee: the year of each row, or one year for all rows (the level to
            predict with).

    Returns:
        The design matrix as a float array.
    """
    annee = np.broadcast_to(np.asarray(annee), (len(feats),))
    years = np.column_stack([(annee == a).astype(float) for a in annees])
    return np.hstack([feats.to_numpy(dtype=float), years])


# --------------------------------------------------------------------------
# Context: level and city-wide day effect
# --------------------------------------------------------------------------


def rolling_level(resid: pd.Series, fenetre: int, min_jours: int) -> pd.Series:
    """Centred rolling median of one counter's residuals over calendar days.

    Args:
        resid: residuals indexed by day (zeros / missing counts as NaN).
        fenetre: window length in days (odd).
        min_jours: minimum valid days in the window, else the level is 0
            (the last training level).

    Returns:
        The level correction, aligned on ``resid``.
    """
    grid = resid.reindex(pd.date_range(resid.index.min(), resid.index.max(), freq="D"))
    lvl = grid.rolling(fenetre, center=True, min_periods=min_jours).median()
    return lvl.reindex(resid.index).fillna(0.0)


def day_effect(resid: pd.DataFrame, min_autres: int) -> pd.DataFrame:
    """Leave-one-out median of the other counters' residuals, per day.

    Args:
        resid: days x counters matrix of level-corrected residuals (NaN where
            a counter has no usable count that day).
        min_autres: minimum number of other counters with a value.

    Returns:
        Same shape; NaN where fewer than ``min_autres`` others are present.
    """
    out = pd.DataFrame(np.nan, index=resid.index, columns=resid.columns)
    values = resid.to_numpy(dtype=float)
    for j, col in enumerate(resid.columns):
        others = np.delete(values, j, axis=1)
        n = np.sum(~np.isnan(others), axis=1)
        ok = n >= max(min_autres, 1)
        med = np.full(len(values), np.nan)
        if ok.any():
            med[ok] = np.nanmedian(others[ok], axis=1)
        out[col] = med
    return out


def zero_runs(counts: pd.Series, min_len: int = 3) -> pd.Series:
    """True on days inside a run of ``min_len`` or more consecutive zero counts.

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
    flagged = np.zeros(len(grid), dtype=bool)
    for start, end in zip(starts, ends, strict=True):
        if end - start >= min_len:
            flagged[start:end] = True
    out = pd.Series(flagged, index=grid.index).reindex(counts.index)
    return out.fillna(False).astype(bool)


# --------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------


def residuals(
    df: pd.DataFrame,
    profils: dict,
    compteurs: dict,
    calendrier: pd.DataFrame,
    params: dict,
    annee_reelle: bool = False,
) -> pd.DataFrame:
    """Profile, level and city-wide day effect for validated input rows.

    Args:
        df: columns ``compteur`` (str), ``jour`` (datetime64), ``comptage``
            (float, NaN allowed), unique per (compteur, jour).
        profils: counter id -> fitted ``Ridge`` (log1p count on
            :func:`profile_design`).
        compteurs: counter id -> dict with ``annees``, ``annee_niveau`` and,
            once fitted, ``beta``.
        calendrier: see :func:`calendar_features`.
        params: ``fenetre_niveau``, ``min_jours_niveau``, ``min_autres``.
        annee_reelle: use each row's own year intercept (training data)
            instead of the last training level.

    Returns:
        ``df`` plus ``prof`` (profile), ``niveau`` (level correction),
        ``r1`` (log residual after level, NaN for zero or missing counts),
        ``g`` (others' median residual, NaN without city context),
        ``contexte_ville`` and ``centre`` (expected log1p count).
    """
    df = df.copy()
    feats = calendar_features(df["jour"], calendrier)
    df["prof"] = np.nan
    for cid, part in df.groupby("compteur"):
        info = compteurs[cid]
        annee = part["jour"].dt.year.to_numpy() if annee_reelle else info["annee_niveau"]
        X = profile_design(feats.loc[part.index], info["annees"], annee)
        df.loc[part.index, "prof"] = profils[cid].predict(X)
    r0 = np.log1p(df["comptage"].where(df["comptage"] > 0)) - df["prof"]
    df["niveau"] = 0.0
    for cid, part in df.groupby("compteur"):
        r = pd.Series(r0.loc[part.index].to_numpy(), index=part["jour"])
        lvl = rolling_level(r, params["fenetre_niveau"], params["min_jours_niveau"])
        df.loc[part.index, "niveau"] = lvl.to_numpy()
    df["r1"] = r0 - df["niveau"]
    mat = df.pivot(index="jour", columns="compteur", values="r1")
    eff = day_effect(mat, params["min_autres"]).stack(future_stack=True).rename("g")
    df = df.join(eff, on=["jour", "compteur"])
    df["contexte_ville"] = df["g"].notna()
    beta = df["compteur"].map(lambda c: compteurs[c].get("beta", 1.0)).astype(float)
    df["centre"] = df["prof"] + df["niveau"] + (beta * df["g"]).fillna(0.0)
    return df


def scale_factor(prof, ref_log, exposant: float) -> np.ndarray:
    """How much wider the noise is on a day of lower expected traffic than usual for its counter.

    ``exp(-exposant * (prof - ref_log))``, clipped to [1/3, 3]: a counter's
    log residuals are noisier on quiet days (weekends, holidays, winter) than
    on busy ones, as for counting noise (``exposant`` 0.5 is Poisson's).

    Args:
        prof: the expected log1p count of each day (profile).
        ref_log: the counter's median expected log1p count on its training days.
        exposant: 0 gives 1 everywhere (one scale per counter).
    """
    prof = np.asarray(prof, dtype=float)
    if not exposant:
        return np.ones_like(prof)
    return np.clip(np.exp(-exposant * (prof - np.asarray(ref_log, dtype=float))), 1 / 3, 3.0)


def deviations(
    df: pd.DataFrame, compteurs: dict, duree_longue: int = 0, exposant: float = 0.0
) -> pd.DataFrame:
    """Standardised deviations from the output of :func:`residuals`.

    Args:
        df: output of :func:`residuals`.
        compteurs: the fitted counters (``sigma_ville``, ``sigma_seul`` and,
            when ``exposant`` is not 0, ``ref_log``).
        duree_longue: length of the long persistence window (``zl``, see
            :func:`run_deviation`); 0 leaves ``zl`` at 0.
        exposant: how the noise scale grows on quieter days (see
            :func:`scale_factor`); 0 is one scale per counter.

    Returns:
        ``df`` plus ``sigma`` (noise scale used), ``z`` (today's deviation;
        a zero count is measured from log1p(0) = 0, far below), ``z3``
        (persistent deviation, see :func:`persistent_deviation`), ``zl``
        (deviation held over ``duree_longue`` days, see :func:`run_deviation`)
        and ``run0`` (inside a run of 3+ zeros).
    """
    df = df.copy()
    df["sigma"] = np.where(
        df["contexte_ville"],
        df["compteur"].map(lambda c: compteurs[c]["sigma_ville"]).astype(float),
        df["compteur"].map(lambda c: compteurs[c]["sigma_seul"]).astype(float),
    )
    if exposant:
        ref = df["compteur"].map(lambda c: compteurs[c]["ref_log"]).astype(float)
        df["sigma"] = df["sigma"] * scale_factor(df["prof"], ref, exposant)
    df["z"] = (np.log1p(df["comptage"]) - df["centre"]) / df["sigma"]
    z3 = np.full(len(df), np.nan)
    zl = np.zeros(len(df))
    run0 = np.zeros(len(df), dtype=bool)
    z_all, jours, counts = df["z"].to_numpy(), df["jour"].to_numpy(), df["comptage"].to_numpy()
    for pos in df.groupby("compteur").indices.values():
        days = pd.DatetimeIndex(jours[pos])
        grid = pd.date_range(days.min(), days.max(), freq="D")
        grid_z = pd.Series(z_all[pos], index=days).reindex(grid)
        z3[pos] = persistent_deviation(grid_z).reindex(days).to_numpy()
        if duree_longue > 2:
            zl[pos] = run_deviation(grid_z, duree_longue).reindex(days).to_numpy()
        run0[pos] = zero_runs(pd.Series(counts[pos], index=days)).to_numpy()
    df["z3"] = z3
    df["zl"] = zl
    df["run0"] = run0
    return df


def persistent_deviation(z: pd.Series) -> pd.Series:
    """How far today *and* a neighbouring day both deviate in one direction.

    For each day: over its previous and next calendar day, the smaller of the
    two absolute deviations when both have the same sign, keeping the larger
    of the two pairs, signed. A lone outlier gives its neighbours nothing; a
    drift of two days or more lifts every day of it.

    Args:
        z: deviations on a complete daily grid (NaN where no count).

    Returns:
        The signed persistent deviation (0 where no neighbour agrees).
    """
    v = z.to_numpy(dtype=float)
    best = np.zeros(len(v))
    if not len(v):
        return pd.Series(best, index=z.index)
    before = np.concatenate([[np.nan], v[:-1]])
    after = np.concatenate([v[1:], [np.nan]])
    for nb in (before, after):
        agree = (np.sign(nb) == np.sign(v)) & ~np.isnan(nb) & ~np.isnan(v)
        pair = np.where(agree, np.minimum(np.abs(v), np.abs(nb)), 0.0)
        best = np.maximum(best, pair)
    return pd.Series(np.nan_to_num(np.sign(v), nan=0.0) * best, index=z.index)


def run_deviation(z: pd.Series, duree: int) -> pd.Series:
    """How far a run of ``duree`` days around today all deviate in one direction.

    For each window of ``duree`` consecutive calendar days, the smallest
    absolute deviation when all point the same way (0 otherwise, or when a
    day is missing); each day keeps the strongest window that holds it,
    signed. A slow sensor drift, a few standard deviations every day for a
    week or more, stands out here while no single day does.

    Args:
        z: deviations on a complete daily grid (NaN where no count).
        duree: window length in days (at least 2).

    Returns:
        The signed run deviation, aligned on ``z``.
    """
    v = z.to_numpy(dtype=float)
    n = len(v)

    def held(x: np.ndarray) -> np.ndarray:
        # The smallest value of each window, labelled by its last day (0 before a full window)...
        low = np.zeros(n)
        if n >= duree:
            low[duree - 1 :] = np.lib.stride_tricks.sliding_window_view(x, duree).min(axis=1)
        # ...then a day takes the best window ending in the next ``duree`` (values are >= 0).
        padded = np.concatenate([low, np.zeros(duree - 1)])
        return np.lib.stride_tricks.sliding_window_view(padded, duree).max(axis=1)

    up = held(np.nan_to_num(np.clip(v, 0.0, None), nan=0.0))
    down = held(np.nan_to_num(np.clip(-v, 0.0, None), nan=0.0))
    return pd.Series(np.where(up >= down, up, -down), index=z.index)


def decide(
    z,
    z3,
    run0,
    seuil_jour: float,
    seuil_serie: float,
    zl=None,
    seuil_long: float = 0.0,
    seuil_hausse: float | None = None,
):
    """Anomaly score from deviations.

    ``max(|z|/seuil_jour, |z3|/seuil_serie, |zl|/seuil_long)``: ``z3`` and
    ``zl`` count only when they point the same way as ``z`` (``zl`` only when
    ``seuil_long`` > 0); days in a run of 3+ zeros score at least 1. The
    anomaly flag is ``score >= 1``. When ``seuil_hausse`` is given, a day
    *above* its expected count is measured against it instead of
    ``seuil_jour`` (the natural noise is lighter-tailed upwards than
    downwards: a modest spike stands out sooner than a modest dip).

    Returns:
        The score as a float array (NaN where the count is missing).
    """
    z = np.asarray(z, dtype=float)
    z3 = np.asarray(z3, dtype=float)
    haut = seuil_jour if seuil_hausse is None else seuil_hausse
    s_jour = np.abs(z) / np.where(z > 0, haut, seuil_jour)
    s_serie = np.where(np.sign(z) == np.sign(z3), np.abs(z3) / seuil_serie, 0.0)
    s_serie = np.nan_to_num(s_serie, nan=0.0)
    score = np.maximum(s_jour, s_serie)
    if zl is not None and seuil_long > 0:
        zl = np.asarray(zl, dtype=float)
        s_long = np.where(np.sign(z) == np.sign(zl), np.abs(zl) / seuil_long, 0.0)
        score = np.maximum(score, np.nan_to_num(s_long, nan=0.0))
    return np.where(np.asarray(run0, dtype=bool), np.maximum(score, 1.0), score)


def v3_score(d: pd.DataFrame, params: dict) -> np.ndarray:
    """Version 3's hand-set score (:func:`decide`) from the output of :func:`deviations`."""
    longue = int(params.get("duree_longue", 0))
    return decide(
        d["z"],
        d["z3"],
        d["run0"],
        params["seuil_jour"],
        params["seuil_serie"],
        d["zl"],
        float(params.get("seuil_long", 0.0)) if longue > 2 else 0.0,
        params.get("seuil_hausse"),
    )


def day_features(d: pd.DataFrame, compteurs: dict, params: dict) -> pd.DataFrame:
    """Per-day features of the learned detector (version 4) from the output of :func:`deviations`.

    The day's deviations (``z``, ``z3``, ``zl``, clipped to ±:data:`CLIP`), a zero count, the run
    of zeros, the city context, the level correction and ``z0`` (the deviation before it), the
    others' median residual, the noise scale, the profile against the counter's usual traffic,
    the weekday and version 3's score (capped at 5); then, per counter over calendar days, the
    centred rolling means and medians of ``z`` and ``z0`` over :data:`ROLL_WINDOWS` days, their
    means over the :data:`SIDE_WINDOWS` days before and after, the neighbours' ``z``, the share
    of days beyond 2 over a week and the 28-day spread; finally, for :data:`CROSS_COLUMNS`, the
    median over the counters of the frame on the same day and the day's difference to it, and
    the day's rank of ``z`` among them.

    Args:
        d: output of :func:`deviations`.
        compteurs: the fitted counters (``ref_log``).
        params: the detector's parameters (version 3's thresholds for its score).

    Returns:
        One row per row of ``d`` (same index), one column per feature (NaN allowed).
    """
    ref = d["compteur"].map(lambda c: compteurs[c]["ref_log"]).astype(float)
    f = pd.DataFrame(index=d.index)
    z = d["z"].clip(-CLIP, CLIP)
    f["z"] = z
    f["z3"] = d["z3"].clip(-CLIP, CLIP)
    f["zl"] = d["zl"].clip(-CLIP, CLIP)
    f["run0"] = d["run0"].astype(float)
    f["zero"] = (d["comptage"] == 0).astype(float)
    f["ctx"] = d["contexte_ville"].astype(float)
    f["niv"] = (d["niveau"] / d["sigma"]).clip(-CLIP, CLIP)
    f["z0"] = (z + f["niv"]).clip(-CLIP, CLIP)
    f["g"] = (d["g"] / d["sigma"]).clip(-CLIP, CLIP)
    f["sigma"] = d["sigma"]
    f["rel"] = d["prof"] - ref
    f["ref"] = ref
    f["wd"] = d["jour"].dt.dayofweek.astype(float)
    f["s3"] = np.clip(np.nan_to_num(v3_score(d, params)), 0, 5)
    cols: dict[str, np.ndarray] = {}

    def put(name: str, pos: np.ndarray, values: pd.Series, days: pd.DatetimeIndex) -> None:
        cols.setdefault(name, np.full(len(d), np.nan))[pos] = values.reindex(days).to_numpy()

    jours = d["jour"].to_numpy()
    for pos in d.groupby("compteur").indices.values():
        days = pd.DatetimeIndex(jours[pos])
        grid = pd.date_range(days.min(), days.max(), freq="D")
        for name in ("z", "z0"):
            s = pd.Series(f[name].to_numpy()[pos], index=days).reindex(grid)
            for w in ROLL_WINDOWS:
                roll = s.rolling(w, center=True, min_periods=1)
                put(f"{name}_m{w}", pos, roll.mean(), days)
                put(f"{name}_md{w}", pos, roll.median(), days)
            for w in SIDE_WINDOWS:
                put(f"{name}_b{w}", pos, s.rolling(w, min_periods=1).mean(), days)
                put(f"{name}_f{w}", pos, s[::-1].rolling(w, min_periods=1).mean()[::-1], days)
            if name == "z":
                put("z_prev", pos, s.shift(1), days)
                put("z_next", pos, s.shift(-1), days)
                far = (s.abs() > 2).astype(float).where(s.notna())
                put("n2_7", pos, far.rolling(7, center=True, min_periods=1).mean(), days)
                put("sd_28", pos, s.rolling(28, center=True, min_periods=3).std(), days)
    for name, values in cols.items():
        f[name] = values
    by_day = f.groupby(d["jour"].to_numpy())
    for name in CROSS_COLUMNS:
        med = by_day[name].transform("median")
        f["c_" + name] = med
        f["d_" + name] = f[name] - med
    f["rank_z"] = by_day["z"].rank(pct=True)
    return f


def score_frame(df, profils, compteurs, calendrier, params, classifieur=None) -> pd.DataFrame:
    """Score validated input rows end to end.

    Args:
        df, profils, compteurs, calendrier: see :func:`residuals`.
        params: as in :func:`residuals` plus ``seuil_jour`` and ``seuil_serie``,
            optionally ``seuil_hausse``, ``duree_longue``, ``seuil_long`` and
            ``exposant_echelle``; with a classifier, ``seuil_proba`` and
            ``variables`` (its feature columns, in order).
        classifieur: version 4's classifier (``predict_proba`` on
            :func:`day_features`); without it, version 3's hand-set rule decides.

    Returns:
        The output columns plus diagnostics ``z``, ``z3``,
        ``contexte_ville`` (and ``proba`` with a classifier), aligned on ``df.index``.
    """
    longue = int(params.get("duree_longue", 0))
    d = deviations(
        residuals(df, profils, compteurs, calendrier, params),
        compteurs,
        longue,
        float(params.get("exposant_echelle", 0.0)),
    )
    extra: list[str] = []
    if classifieur is None:
        score = v3_score(d, params)
        d["anomalie"] = np.nan_to_num(score, nan=0.0) >= 1.0
    else:
        feats = day_features(d, compteurs, params)[params["variables"]]
        proba = classifieur.predict_proba(feats)[:, 1]
        # No count, no judgement (as version 3's NaN score).
        d["proba"] = np.where(d["comptage"].isna(), np.nan, proba)
        d["anomalie"] = np.nan_to_num(d["proba"].to_numpy(), nan=0.0) >= params["seuil_proba"]
        # anomalie is exactly score >= 1 (IEEE division by a positive threshold is monotone).
        score = d["proba"].to_numpy() / params["seuil_proba"]
        extra = ["proba"]
    d["score"] = score
    below = params["seuil_jour"] * d["sigma"]
    above = params.get("seuil_hausse", params["seuil_jour"]) * d["sigma"]
    d["attendu"] = np.expm1(d["centre"])
    d["borne_basse"] = np.clip(np.expm1(d["centre"] - below), 0.0, None)
    d["borne_haute"] = np.expm1(d["centre"] + above)
    return d[OUTPUT_COLUMNS + ["z", "z3", "contexte_ville", *extra]]


def validate_input(data: pd.DataFrame, compteurs: dict) -> pd.DataFrame:
    """Check and normalise the model input.

    Args:
        data: a DataFrame with ``compteur``, ``jour``, ``comptage``.
        compteurs: the known counters (id -> info with ``nom``).

    Returns:
        A copy with ``compteur`` as str, ``jour`` as datetime64 and
        ``comptage`` as float.

    Raises:
        ErreurEntree: missing column, unknown counter, bad date or count,
            duplicated (compteur, jour).
    """
    if not isinstance(data, pd.DataFrame):
        data = pd.DataFrame(data)
    missing = [c for c in INPUT_COLUMNS if c not in data.columns]
    if missing:
        raise ErreurEntree(
            f"Colonne(s) manquante(s) : {', '.join(missing)}. "
            f"Colonnes attendues : {', '.join(INPUT_COLUMNS)}."
        )
    df = data[INPUT_COLUMNS].copy()
    ids = pd.to_numeric(df["compteur"], errors="coerce")
    if ids.isna().any() or (ids % 1 != 0).any():
        bad = df.loc[ids.isna() | (ids % 1 != 0), "compteur"].iloc[0]
        raise ErreurEntree(
            f"Identifiant de compteur invalide : {bad!r} (un entier, comme dans la colonne "
            "« Identifiant du compteur » des comptages de Nantes Métropole)."
        )
    df["compteur"] = ids.astype("int64").astype(str)
    unknown = sorted(set(df["compteur"]) - set(compteurs), key=int)
    if unknown:
        valid = ", ".join(
            f"{k} ({v['nom']})" for k, v in sorted(compteurs.items(), key=lambda kv: int(kv[0]))
        )
        raise ErreurEntree(
            f"Compteur(s) inconnu(s) : {', '.join(unknown)}. Le modèle ne connaît que les compteurs "
            "sur lesquels il a été entraîné ; les identifiants valides sont ceux de la colonne "
            "« Identifiant du compteur » du jeu « Comptages vélo de Nantes Métropole » "
            f"(fichier bibia/sample.csv pour un exemple) : {valid}."
        )
    jours = pd.to_datetime(df["jour"].astype(str), format="%Y-%m-%d", errors="coerce")
    if jours.isna().any():
        bad = df.loc[jours.isna(), "jour"].iloc[0]
        raise ErreurEntree(f"Date invalide : {bad!r} (format attendu AAAA-MM-JJ, ex. 2019-03-14).")
    df["jour"] = jours
    counts = pd.to_numeric(df["comptage"], errors="coerce")
    bad_count = df["comptage"].notna() & counts.isna()
    if bad_count.any() or (counts < 0).any():
        raise ErreurEntree("Le comptage doit être un nombre positif ou nul (vide si inconnu).")
    df["comptage"] = counts.astype(float)
    dup = df.duplicated(["compteur", "jour"])
    if dup.any():
        row = df.loc[dup].iloc[0]
        raise ErreurEntree(
            f"Ligne en double : compteur {row['compteur']}, jour {row['jour']:%Y-%m-%d} "
            "(une seule ligne par compteur et par jour)."
        )
    return df


def load_calendar(path: str | Path) -> pd.DataFrame:
    """Read the calendar artifact (``jour,ferie,vacances``) indexed by day."""
    cal = pd.read_csv(path, parse_dates=["jour"]).set_index("jour")
    return cal.astype(int)


class VeloAnomalyModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: input compteur/jour/comptage, output expected count,
    band, anomaly flag and score (see the module docstring)."""

    def load_context(self, context):
        import skops.io as sio

        self.profils = sio.load(context.artifacts["profils"], trusted=SKOPS_TRUSTED)
        state = json.loads(Path(context.artifacts["etat"]).read_text(encoding="utf-8"))
        self.compteurs = state["compteurs"]
        self.params = state["params"]
        self.calendrier = load_calendar(context.artifacts["calendrier"])
        self.classifieur = None
        if "classifieur" in context.artifacts:
            self.classifieur = sio.load(
                context.artifacts["classifieur"], trusted=SKOPS_TRUSTED_CLASSIFIER
            )

    def predict(self, context, model_input, params=None):
        df = validate_input(model_input, self.compteurs)
        if df.empty:
            return pd.DataFrame({c: pd.Series(dtype=float) for c in OUTPUT_COLUMNS})
        out = score_frame(
            df, self.profils, self.compteurs, self.calendrier, self.params, self.classifieur
        )
        out = out[OUTPUT_COLUMNS].copy()
        for col in ("attendu", "borne_basse", "borne_haute"):
            out[col] = out[col].astype(float).round(3)
        # Rounded down, so that a day just under the threshold does not show a score of 1.
        out["score"] = np.floor(out["score"].astype(float) * 1000) / 1000
        out["anomalie"] = out["anomalie"].astype(bool)
        return out.reset_index(drop=True)


mlflow.models.set_model(VeloAnomalyModel())
