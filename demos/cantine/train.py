"""Training, calibration and evaluation of the cantine-nantes model.

Protocol (fixed by the issue): train on school years up to 2016-2017, test on
2017-2018, canteen-days with meals served, Wednesdays excluded. The order's
per-canteen safety factors are calibrated on 2016-2017 held out from a first
fit on the years before it; the test year is never used to choose anything
(the choices and the validation figures behind them are logged in README.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from demos.cantine.model import CATEGORICAL, FEATURES, WEDNESDAY, Tables, features, predict_frame
from evaluation.tasks.cantine import metrics

TEST_YEAR = "2017-2018"
CALIBRATION_YEAR = "2016-2017"
#: Quantile the order model is fitted on, then scaled by the calibrated factor.
UPPER_QUANTILE = 0.8
#: Share of canteen-days short aimed at on the calibration year. Chosen on
#: validation (calibrated on 2015-16, evaluated on 2016-17): 0.17 kept both
#: constraints (17.5 % short, 2 days short) where 0.175 reached 3 days short.
TARGET_SHORT_SHARE = 0.17
#: Empirical-Bayes shrinkage: a canteen's own ratio quantiles weigh n / (n + k)
#: against the pooled ones, n being its calibration days.
SHRINK_DAYS = 40
#: Quantile grid each canteen's order factor is chosen on.
GRID = np.linspace(0.5, 0.98, 49)
SEED = 0


@dataclass
class Fitted:
    """The fitted estimators and the calibrated order factors.

    ``factors`` maps a canteen to the factor its quantile forecast is
    multiplied by; ``factor`` is the pooled one, for canteens absent from the
    calibration year.
    """

    central: HistGradientBoostingRegressor
    upper: HistGradientBoostingRegressor
    factor: float
    factors: dict[str, float]
    calibration: dict[str, float]


def school_years(tables: Tables, until: str) -> list[str]:
    """School years from the first one up to ``until`` included."""
    years = list(tables.annees.sort_values("date_debut")["annee_scolaire"])
    return years[: years.index(until) + 1]


def with_strikes(frame: pd.DataFrame, tables: Tables) -> pd.DataFrame:
    """``frame`` with a boolean ``greve`` column from the known strike days."""
    return frame.assign(greve=frame["date"].isin(tables.greves["date"]))


def protocol_rows(frame: pd.DataFrame, tables: Tables, year: str) -> pd.DataFrame:
    """Evaluation rows of a school year: meals served, Wednesdays excluded."""
    rows = frame[
        (tables.school_year(frame["date"]) == year)
        & (frame["reel"] > 0)
        & (frame["date"].dt.day_of_week != WEDNESDAY)
    ]
    return with_strikes(rows, tables).reset_index(drop=True)


def _estimator(loss: str) -> HistGradientBoostingRegressor:
    kwargs = {"quantile": UPPER_QUANTILE} if loss == "quantile" else {}
    return HistGradientBoostingRegressor(
        loss=loss,
        max_iter=200,
        learning_rate=0.08,
        l2_regularization=1.0,
        early_stopping=False,
        categorical_features=[FEATURES.index(c) for c in CATEGORICAL],
        random_state=SEED,
        **kwargs,
    )


def fit(
    frame: pd.DataFrame, tables: Tables, years: list[str]
) -> tuple[HistGradientBoostingRegressor, HistGradientBoostingRegressor]:
    """Fit the central (mean) and upper (quantile) models on ``years``.

    The target is the ratio of meals served to the canteen's recent level, so
    one model serves canteens of 30 and of 600 meals.
    """
    rows = frame[
        tables.school_year(frame["date"]).isin(years)
        & (frame["reel"] > 0)
        & tables.is_school_day(frame["date"])
    ]
    rows = with_strikes(rows, tables).reset_index(drop=True)
    x = features(rows, tables)
    keep = x["niveau_recent"].notna().to_numpy()
    x, y = x[keep], (rows["reel"].to_numpy()[keep] / x["niveau_recent"].to_numpy()[keep])
    # One thread: OpenMP on a shared 2-core machine is several times slower.
    with threadpool_limits(1):
        central = _estimator("squared_error").fit(x, y)
        upper = _estimator("quantile").fit(x, y)
    return central, upper


def train(frame: pd.DataFrame, tables: Tables) -> Fitted:
    """Calibrate the order factor on the held-out year, then fit on every training year."""
    cal_central, cal_upper = fit(frame, tables, school_years(tables, CALIBRATION_YEAR)[:-1])
    cal = protocol_rows(frame, tables, CALIBRATION_YEAR)
    # In 2015-16 and 2016-17 some weeks with meals served are holidays in the
    # zone B calendar; the model answers 0 there by design, so they are left
    # out of the calibration as they are of the training.
    cal = cal[tables.is_school_day(cal["date"])].reset_index(drop=True)
    # The unrounded quantile forecast: the order rounds up after the factor.
    x = features(cal, tables)
    raw = np.nan_to_num(np.clip(cal_upper.predict(x), 0, None) * x["niveau_recent"].to_numpy())
    factor = float(np.quantile(cal["reel"] / np.maximum(raw, 1), 1 - TARGET_SHORT_SHARE))
    expected = np.nan_to_num(
        np.clip(cal_central.predict(x), 0, None) * x["niveau_recent"].to_numpy()
    )
    factors = canteen_factors(cal["cantine_nom"], cal["reel"], raw, TARGET_SHORT_SHARE, expected)
    calibrated = predict_frame(cal, tables, cal_central, cal_upper, factor, factors)
    calibration = metrics(
        cal["date"], cal["reel"], calibrated["repas_prevus"], calibrated["commande_recommandee"]
    )
    central, upper = fit(frame, tables, school_years(tables, CALIBRATION_YEAR))
    return Fitted(central, upper, factor, factors, calibration)


def canteen_factors(
    canteens: pd.Series, served: pd.Series, raw_order: pd.Series, share: float, expected=None
) -> dict[str, float]:
    """Per-canteen order factors that reach ``share`` canteen-days short with the fewest meals.

    The share short counts every canteen-day alike while over-production
    counts meals, so a small or steady canteen buys a low shortfall rate
    cheaply and a large volatile one dearly. For each canteen the factor is
    a quantile q of its ratios served / raw order (shrunk towards the
    pooled ratios, empirical Bayes), with q minimising
    ``mean raw order x factor(q) + lam x (1 - q)``; ``lam`` is set by
    bisection so that the calibration rows reach ``share`` short, the order
    being never below the ``expected`` meals (as in ``predict_frame``).

    Returns:
        canteen name -> factor.
    """
    frame = pd.DataFrame(
        {
            "cantine_nom": np.asarray(canteens),
            "reel": np.asarray(served, float),
            "raw": np.maximum(np.asarray(raw_order, float), 1),
            "expected": np.round(
                np.zeros(len(canteens)) if expected is None else np.asarray(expected, float)
            ),
        }
    )
    frame["ratio"] = frame["reel"] / frame["raw"]
    pooled = np.quantile(frame["ratio"], GRID)
    names, curves, means = [], [], []
    for name, group in frame.groupby("cantine_nom"):
        weight = len(group) / (len(group) + SHRINK_DAYS)
        names.append(name)
        curves.append(weight * np.quantile(group["ratio"], GRID) + (1 - weight) * pooled)
        means.append(group["raw"].mean())
    curves, means = np.array(curves), np.array(means)[:, None]

    def choose(lam: float) -> dict[str, float]:
        best = np.argmin(means * curves + lam * (1 - GRID)[None, :], axis=1)
        return dict(zip(names, curves[np.arange(len(names)), best]))

    def short(factors: dict[str, float]) -> float:
        order = np.maximum(
            np.ceil(frame["raw"] * frame["cantine_nom"].map(factors)), frame["expected"]
        )
        return float((order < frame["reel"]).mean())

    low, high = 1e-3, 1e5
    for _ in range(60):
        mid = np.sqrt(low * high)
        low, high = (mid, high) if short(choose(mid)) > share else (low, mid)
    return {name: float(f) for name, f in choose(high).items()}


def evaluate(
    frame: pd.DataFrame, tables: Tables, fitted: Fitted
) -> tuple[pd.DataFrame, dict, dict]:
    """Test-year predictions, the model's metrics and the staff baseline's metrics.

    Returns:
        ``(rows, model_metrics, baseline_metrics)`` where ``rows`` holds
        date, cantine_nom, reel, prevision, repas_prevus, commande_recommandee.
    """
    rows = protocol_rows(frame, tables, TEST_YEAR)
    pred = predict_frame(rows, tables, fitted.central, fitted.upper, fitted.factor, fitted.factors)
    rows = pd.concat([rows, pred], axis=1)
    model = metrics(rows["date"], rows["reel"], rows["repas_prevus"], rows["commande_recommandee"])
    staff = rows["prevision"].fillna(0)
    baseline = metrics(rows["date"], rows["reel"], staff, staff)
    return rows, model, baseline
