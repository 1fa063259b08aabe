"""Fitting the per-counter profiles and noise scales."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge

from demos.velo.pyfunc_model import calendar_features, profile_design, residuals, scale_factor

MAD_TO_SIGMA = 1.4826
RIDGE_ALPHA = 1.0
TRIM_SIGMAS = 4.0
TAIL_Q = 0.95
TAIL_Z = 1.96  # the normal quantile of TAIL_Q (two-sided)


@dataclass
class Fitted:
    """What the detector learned.

    Attributes:
        profils: counter id -> fitted Ridge (log1p count on calendar + year).
        compteurs: counter id -> ``nom``, ``annees``, ``annee_niveau``,
            ``ref_log`` (median expected log1p count, see
            :func:`~demos.velo.pyfunc_model.scale_factor`), ``beta``,
            ``sigma_ville``, ``sigma_seul``.
    """

    profils: dict[str, Ridge]
    compteurs: dict[str, dict]


def robust_sigma(x: np.ndarray) -> float:
    """1.4826 x the median absolute deviation around the median (NaN ignored)."""
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    return float(MAD_TO_SIGMA * np.median(np.abs(x - np.median(x))))


def tail_scale(x: np.ndarray) -> float:
    """Noise scale from the tail: the 95th percentile of |x - median| / 1.96.

    Equal to the standard deviation for normal noise, but larger for a
    counter with heavy tails (events, works), so a global threshold in
    these units means about the same false-alarm rate on every counter.
    Chosen over the MAD on the 2018 tuning F1 (0.929 against 0.924).
    """
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    return float(np.quantile(np.abs(x - np.median(x)), TAIL_Q) / TAIL_Z)


def usable_days(df: pd.DataFrame) -> pd.Series:
    """Days fit for learning a profile: a positive count, not next to a zero.

    A day right before or after a zero count is often a partial day (the
    sensor failed or came back mid-day), so it is left out too.

    Args:
        df: one or several counters, columns ``compteur``, ``jour``, ``comptage``.

    Returns:
        Boolean mask aligned on ``df.index``.
    """
    ok = pd.Series(False, index=df.index)
    for _, part in df.groupby("compteur"):
        s = part.set_index("jour")["comptage"]
        grid = s.reindex(pd.date_range(s.index.min(), s.index.max(), freq="D"))
        zero = grid.eq(0)
        near_zero = zero | zero.shift(1, fill_value=False) | zero.shift(-1, fill_value=False)
        good = (grid > 0) & ~near_zero
        ok.loc[part.index] = good.reindex(s.index).to_numpy()
    return ok


def fit(
    train: pd.DataFrame, calendrier: pd.DataFrame, params: dict, names: dict[str, str]
) -> Fitted:
    """Fit the detector on training days (see :func:`fit_variants`).

    Args:
        train: columns ``compteur``, ``jour``, ``comptage``.
        calendrier: see :func:`demos.velo.data.build_calendar`.
        params: ``fenetre_niveau``, ``min_jours_niveau``, ``min_autres``,
            optionally ``exposant_echelle`` (0 by default).
        names: counter id -> display name.

    Returns:
        The fitted state.
    """
    exposant = float(params.get("exposant_echelle", 0.0))
    return fit_variants(train, calendrier, params, names, (exposant,))[exposant]


def fit_variants(
    train: pd.DataFrame,
    calendrier: pd.DataFrame,
    params: dict,
    names: dict[str, str],
    exposants: tuple[float, ...],
) -> dict[float, Fitted]:
    """Fit the detector on training days, once per noise-scale exponent.

    Per counter: a ridge regression of log1p(count) on calendar features and
    one intercept per year, refitted once without days beyond 4 robust
    sigmas (outages, drifts, events the published flag missed). Then, on the
    training days themselves, the sensitivity ``beta`` to the other counters'
    median residual and the two noise scales (with and without city context),
    in units of each day's relative scale (see
    :func:`~demos.velo.pyfunc_model.scale_factor`). The profiles and residuals
    do not depend on the exponent: they are fitted once for all of ``exposants``.

    Args:
        train: columns ``compteur``, ``jour``, ``comptage``.
        calendrier: see :func:`demos.velo.data.build_calendar`.
        params: ``fenetre_niveau``, ``min_jours_niveau``, ``min_autres``.
        names: counter id -> display name.
        exposants: the exponents (``exposant_echelle``) to fit the scales for.

    Returns:
        exponent -> the fitted state (the profiles shared).
    """
    train = train.loc[usable_days(train)].copy()
    feats = calendar_features(train["jour"], calendrier)
    profils: dict[str, Ridge] = {}
    compteurs: dict[str, dict] = {}
    prof_last = pd.Series(np.nan, index=train.index)
    for cid, part in train.groupby("compteur"):
        years = sorted(int(a) for a in part["jour"].dt.year.unique())
        X = profile_design(feats.loc[part.index], years, part["jour"].dt.year.to_numpy())
        y = np.log1p(part["comptage"].to_numpy())
        model = Ridge(alpha=RIDGE_ALPHA).fit(X, y)
        r = y - model.predict(X)
        keep = np.abs(r - np.median(r)) <= TRIM_SIGMAS * robust_sigma(r)
        model = Ridge(alpha=RIDGE_ALPHA).fit(X[keep], y[keep])
        profils[cid] = model
        # The profile at the level it predicts with (the last year's): its median is the
        # reference of the day's relative scale (see scale_factor), each day its distance to it.
        prof_last.loc[part.index] = model.predict(
            profile_design(feats.loc[part.index], years, years[-1])
        )
        compteurs[cid] = {
            "nom": names.get(cid, cid),
            "annees": years,
            "annee_niveau": years[-1],
            "ref_log": float(np.median(prof_last.loc[part.index])),
        }

    res = residuals(train, profils, compteurs, calendrier, params, annee_reelle=True)
    out = {}
    for exposant in exposants:
        scaled = {cid: dict(info) for cid, info in compteurs.items()}
        for cid, part in res.groupby("compteur"):
            # Residuals in units of the day's relative scale (see scale_factor): one scale per
            # counter.
            factor = scale_factor(
                prof_last.loc[part.index].to_numpy(), scaled[cid]["ref_log"], exposant
            )
            r1 = part["r1"].to_numpy() / factor
            g = part["g"].to_numpy() / factor
            s_seul = tail_scale(r1)
            both = ~np.isnan(r1) & ~np.isnan(g) & (np.abs(r1) <= TRIM_SIGMAS * robust_sigma(r1))
            beta = (
                float(np.dot(g[both], r1[both]) / np.dot(g[both], g[both]))
                if both.sum() > 30
                else 1.0
            )
            beta = float(np.clip(beta, 0.0, 2.0))
            s_ville = tail_scale(r1[both] - beta * g[both]) if both.sum() > 30 else s_seul
            scaled[cid].update(beta=beta, sigma_seul=s_seul, sigma_ville=s_ville)
        out[float(exposant)] = Fitted(profils=profils, compteurs=scaled)
    return out
