"""Training, calibration and evaluation of the cantine-nantes model.

Protocol (fixed by the issue): train on school years up to 2016-2017, test on
2017-2018, canteen-days with meals served, Wednesdays excluded. Two versions
share it: the calendar-only model and the staff-order variant, which also
reads the staff's order of the day (``staff_order``).

The design (the share of canteen-days short the order aims at and, for the
staff-order variant, the day guard: each day's total order kept at least a
fraction of the staff's total) is chosen on validation years by
:func:`choose`, which receives only data before the test year
(:func:`before_test_year`) and refuses anything later; the chosen design's
per-canteen safety factors are then calibrated on 2016-2017 and the models
refitted up to it. The test year is read once, by
:func:`evaluate`, with what was chosen (README.md logs the choices and the
validation figures behind them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from demos.cantine.model import (
    CATEGORICAL,
    WEDNESDAY,
    Tables,
    day_guard,
    feature_names,
    features,
    predict_frame,
)
from evaluation.tasks.cantine import metrics

TEST_YEAR = "2017-2018"
#: The validation year: designs are chosen on it (models fitted on the years
#: before it), then the chosen design's order factors are calibrated on it.
VALIDATION_YEAR = "2016-2017"
CALIBRATION_YEAR = VALIDATION_YEAR
#: Quantile the order model is fitted on, then scaled by the calibrated factor.
UPPER_QUANTILE = 0.8
#: Candidate shares of canteen-days short aimed at when calibrating the order
#: factors; :func:`choose` picks one on the validation year (see :func:`pick`).
SHARES = (0.14, 0.15, 0.16, 0.17, 0.18)
#: Candidate day guards of the staff-order variant: each day's total order is kept at least
#: this fraction of the staff's total order for the day (0: no guard; see
#: :func:`demos.cantine.model.day_guard`). :func:`choose` picks one with the share
#: (see :func:`pick_guarded`); the calendar-only model has no staff order, hence no guard.
GUARDS = (0.0, 0.96, 0.97, 0.98, 0.99, 1.0)
#: The staff-order variant's validation years, each with models fitted on the years before
#: it and factors calibrated on the year just before: the calendar-only model keeps its
#: first design's single year (2016-2017).
GUARDED_VALIDATION_YEARS = ("2015-2016", VALIDATION_YEAR)
#: Margin below the staff's share of canteen-days short that :func:`pick`
#: prefers on validation: the share drifted by up to 1.9 points from one year to
#: the next in earlier trials (README).
SHARE_MARGIN = 0.015
#: Empirical-Bayes shrinkage: a canteen's own ratio quantiles weigh n / (n + k)
#: against the pooled ones, n being its calibration days.
SHRINK_DAYS = 40
#: Quantile grid each canteen's order factor is chosen on.
GRID = np.linspace(0.5, 0.98, 49)
SEED = 0


@dataclass
class Choice:
    """The design chosen on the validation years and the figures behind it.

    ``candidates`` maps each design ``(share aimed at, day guard)`` to the
    metrics of its orders on each validation year (``{year: metrics}``, with
    ``marge_jour_min``, see :func:`day_slack`); ``staff`` holds the staff's
    orders' metrics on the same rows, per year; ``share`` and ``guard`` are
    the ones :func:`pick` (calendar-only) or :func:`pick_guarded` (staff
    order) chose.
    """

    staff_order: bool
    share: float
    guard: float
    candidates: dict[tuple[float, float], dict[str, dict[str, float]]]
    staff: dict[str, dict[str, float]]


@dataclass
class Fitted:
    """The fitted estimators, the calibrated order factors and the design choice.

    ``factors`` maps a canteen to the factor its quantile forecast is
    multiplied by; ``factor`` is the pooled one, for canteens absent from the
    calibration year.
    """

    central: HistGradientBoostingRegressor
    upper: HistGradientBoostingRegressor
    factor: float
    factors: dict[str, float]
    calibration: dict[str, float]
    choice: Choice
    staff_order: bool = False
    guard: float = 0.0


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


def _estimator(loss: str, staff_order: bool) -> HistGradientBoostingRegressor:
    kwargs = {"quantile": UPPER_QUANTILE} if loss == "quantile" else {}
    names = feature_names(staff_order)
    return HistGradientBoostingRegressor(
        loss=loss,
        max_iter=200,
        learning_rate=0.08,
        l2_regularization=1.0,
        early_stopping=False,
        categorical_features=[names.index(c) for c in CATEGORICAL],
        random_state=SEED,
        **kwargs,
    )


def fit(
    frame: pd.DataFrame, tables: Tables, years: list[str], staff_order: bool = False
) -> tuple[HistGradientBoostingRegressor, HistGradientBoostingRegressor]:
    """Fit the central (mean) and upper (quantile) models on ``years``.

    The target is the ratio of meals served to the canteen's recent level, so
    one model serves canteens of 30 and of 600 meals. With ``staff_order``
    the staff's order of the day is a feature too.
    """
    rows = frame[
        tables.school_year(frame["date"]).isin(years)
        & (frame["reel"] > 0)
        & tables.is_school_day(frame["date"])
    ]
    rows = with_strikes(rows, tables).reset_index(drop=True)
    x = features(rows, tables, staff_order)
    keep = x["niveau_recent"].notna().to_numpy()
    x, y = x[keep], (rows["reel"].to_numpy()[keep] / x["niveau_recent"].to_numpy()[keep])
    # One thread: OpenMP on a shared 2-core machine is several times slower.
    with threadpool_limits(1):
        central = _estimator("squared_error", staff_order).fit(x, y)
        upper = _estimator("quantile", staff_order).fit(x, y)
    return central, upper


def before_test_year(frame: pd.DataFrame, tables: Tables) -> tuple[pd.DataFrame, Tables]:
    """``frame`` and ``tables`` without a served meal of the test year or later.

    Everything that trains, calibrates or chooses a design receives these:
    the test year is read once, by :func:`evaluate`, with what was chosen.
    """
    start = tables.annees.set_index("annee_scolaire").loc[TEST_YEAR, "date_debut"]
    past = frame[frame["date"] < start].reset_index(drop=True)
    history = tables.historique
    return past, Tables(
        tables.cantines,
        tables.annees,
        tables.vacances,
        tables.feries,
        tables.greves,
        tables.effectifs,
        history.loc[history["date"] < start, ["cantine_nom", "date", "reel"]],
    )


def _school_rows(frame: pd.DataFrame, tables: Tables, year: str) -> pd.DataFrame:
    # In 2015-16 and 2016-17 some weeks with meals served are holidays in the
    # zone B calendar; the model answers 0 there by design, so they are left
    # out of validation and calibration as they are of the training.
    rows = protocol_rows(frame, tables, year)
    return rows[tables.is_school_day(rows["date"])].reset_index(drop=True)


def _raw(models, rows: pd.DataFrame, tables: Tables, staff_order: bool):
    """Expected meals and the unrounded quantile forecast (the order rounds up after the factor)."""
    central, upper = models
    x = features(rows, tables, staff_order)
    level = x["niveau_recent"].to_numpy()
    expected = np.nan_to_num(np.clip(central.predict(x), 0, None) * level)
    raw = np.nan_to_num(np.clip(upper.predict(x), 0, None) * level)
    return expected, raw


def calibrate(rows: pd.DataFrame, expected, raw, share: float) -> tuple[float, dict[str, float]]:
    """The pooled and per-canteen order factors reaching ``share`` canteen-days short on ``rows``."""
    factor = float(np.quantile(rows["reel"] / np.maximum(raw, 1), 1 - share))
    return factor, canteen_factors(rows["cantine_nom"], rows["reel"], raw, share, expected)


def _orders(
    rows: pd.DataFrame, expected, raw, factor: float, factors: dict[str, float], guard: float = 0.0
):
    scale = rows["cantine_nom"].map(factors).fillna(factor).to_numpy(float)
    order = np.maximum(np.ceil(raw * scale), np.round(expected))
    return day_guard(rows["date"].to_numpy(), rows["prevision"].to_numpy(float), order, guard)


def day_slack(rows: pd.DataFrame, order) -> float:
    """The tightest day's margin of the order's daily total over the meals served
    (total order / total served - 1), over the days where the staff's total order sufficed.

    Negative: the order was short on a day where the staff's was not. NaN when
    the staff was short every day.
    """
    daily = (
        pd.DataFrame(
            {
                "date": rows["date"].to_numpy(),
                "reel": rows["reel"].to_numpy(float),
                "order": np.asarray(order, float),
                "staff": rows["prevision"].fillna(0).to_numpy(float),
            }
        )
        .groupby("date")[["reel", "order", "staff"]]
        .sum()
    )
    kept = daily[daily["staff"] >= daily["reel"]]
    return float((kept["order"] / kept["reel"] - 1).min()) if len(kept) else float("nan")


def staff_metrics(rows: pd.DataFrame) -> dict[str, float]:
    """The staff's orders (``prevision``) scored on ``rows`` as an order and a forecast."""
    staff = rows["prevision"].fillna(0)
    return metrics(rows["date"], rows["reel"], staff, staff)


def dominates(model: dict[str, float], staff: dict[str, float], margin: float = 0.0) -> bool:
    """Less over-production, no more days short and no larger share of canteen-days short
    (by ``margin`` at least) than the staff."""
    return (
        model["surproduction"] < staff["surproduction"]
        and model["jours_en_deficit"] <= staff["jours_en_deficit"]
        and model["part_cantine_jours_en_deficit"]
        <= staff["part_cantine_jours_en_deficit"] - margin
    )


def pick(candidates: dict[float, dict[str, float]], staff: dict[str, float]) -> float:
    """The share to aim at, from the validation figures of each candidate.

    Among the candidates that dominate the staff with :data:`SHARE_MARGIN`
    of canteen-days short to spare, else among those that dominate it, the
    one with the least over-production; if none dominates, the most prudent
    (the smallest share, fewest days short).
    """
    for margin in (SHARE_MARGIN, 0.0):
        pool = [s for s, m in candidates.items() if dominates(m, staff, margin)]
        if pool:
            return min(pool, key=lambda s: (candidates[s]["surproduction"], s))
    return min(candidates, key=lambda s: (candidates[s]["jours_en_deficit"], s))


def pick_guarded(
    candidates: dict[tuple[float, float], dict[str, dict[str, float]]],
    staff: dict[str, dict[str, float]],
) -> tuple[float, float]:
    """The design ``(share, guard)`` of the staff-order variant, from its validation figures.

    A day short is the failure the central kitchen sees, and 119 or so days
    per year measure its tail badly; so safety comes first, measured
    continuously: among the designs that dominate the staff on *every*
    validation year (:func:`dominates`, with :data:`SHARE_MARGIN`, else
    without) and are never short on a day where the staff's total sufficed,
    the one whose tightest such day keeps the largest margin
    (``marge_jour_min``, the worst year's), ties going to the least
    over-production (averaged over the years). If none dominates, the one
    with the fewest days short, then the largest margin.
    """

    def worst_slack(key) -> float:
        return min(m["marge_jour_min"] for m in candidates[key].values())

    def mean_over(key) -> float:
        return float(np.mean([m["surproduction"] for m in candidates[key].values()]))

    for margin in (SHARE_MARGIN, 0.0):
        pool = [
            key
            for key, years in candidates.items()
            if worst_slack(key) >= 0
            and all(dominates(m, staff[year], margin) for year, m in years.items())
        ]
        if pool:
            return min(pool, key=lambda k: (-worst_slack(k), mean_over(k), k))
    return min(
        candidates,
        key=lambda k: (
            sum(m["jours_en_deficit"] for m in candidates[k].values()),
            -worst_slack(k),
            k,
        ),
    )


def choose(frame: pd.DataFrame, tables: Tables, staff_order: bool = False):
    """Choose the design on the validation years, from data before the test year only.

    For each validation year (:data:`VALIDATION_YEAR`; for the staff-order
    variant also the year before it, :data:`GUARDED_VALIDATION_YEARS`),
    models fitted on the years before the year preceding it give that
    preceding year's orders, on which each candidate share's factors are
    calibrated; models fitted on the years before the validation year then
    order for it, with each day guard of :data:`GUARDS` (staff-order variant
    only), and each design is compared with the staff there: :func:`pick`
    (calendar-only) or :func:`pick_guarded` (staff order) chooses.

    Args:
        frame, tables: served meals and tables *before the test year* (see
            :func:`before_test_year`; the function refuses anything later).

    Returns:
        ``(choice, models, rows, expected, raw)``: the :class:`Choice`, the
        models fitted before :data:`VALIDATION_YEAR`, and its rows with their
        expected meals and raw order (the final model's calibration reuses
        them).
    """
    start = tables.annees.set_index("annee_scolaire").loc[TEST_YEAR, "date_debut"]
    if (frame["date"] >= start).any() or (tables.historique["date"] >= start).any():
        raise ValueError(f"choose() must not read {TEST_YEAR}")
    years = school_years(tables, VALIDATION_YEAR)
    validation_years = GUARDED_VALIDATION_YEARS if staff_order else (VALIDATION_YEAR,)
    guards = GUARDS if staff_order else (0.0,)
    candidates: dict[tuple[float, float], dict[str, dict[str, float]]] = {}
    staff: dict[str, dict[str, float]] = {}
    fitted: dict[tuple[str, ...], tuple] = {}

    def fit_once(until: list[str]):
        # Consecutive validation years share a fit (models up to 2014-15 order 2015-16 and
        # calibrate 2016-17's factors): fitting is deterministic, so fit once.
        if tuple(until) not in fitted:
            fitted[tuple(until)] = fit(frame, tables, until, staff_order)
        return fitted[tuple(until)]

    for year in validation_years:
        at = years.index(year)
        early = fit_once(years[: at - 1])
        cal = _school_rows(frame, tables, years[at - 1])
        cal_expected, cal_raw = _raw(early, cal, tables, staff_order)
        models = fit_once(years[:at])
        val = _school_rows(frame, tables, year)
        expected, raw = _raw(models, val, tables, staff_order)
        for share in SHARES:
            factor, factors = calibrate(cal, cal_expected, cal_raw, share)
            for guard in guards:
                order = _orders(val, expected, raw, factor, factors, guard)
                figures = metrics(val["date"], val["reel"], expected, order)
                figures["marge_jour_min"] = day_slack(val, order)
                candidates.setdefault((share, guard), {})[year] = figures
        staff[year] = staff_metrics(val)
    if staff_order:
        share, guard = pick_guarded(candidates, staff)
    else:
        by_share = {s: years_[VALIDATION_YEAR] for (s, _), years_ in candidates.items()}
        share, guard = pick(by_share, staff[VALIDATION_YEAR]), 0.0
    choice = Choice(staff_order, share, guard, candidates, staff)
    # The last year's models and rows are those of VALIDATION_YEAR.
    return choice, models, val, expected, raw


def train(frame: pd.DataFrame, tables: Tables, staff_order: bool = False) -> Fitted:
    """Choose the design on validation, calibrate it there, then fit on every training year.

    Nothing of the test year reaches this function's work: the frame and
    tables are cut before it first (:func:`before_test_year`).
    """
    past, past_tables = before_test_year(frame, tables)
    choice, models, cal, expected, raw = choose(past, past_tables, staff_order)
    factor, factors = calibrate(cal, expected, raw, choice.share)
    calibrated = predict_frame(
        cal, past_tables, *models, factor, factors, staff_order, choice.guard
    )
    calibration = metrics(
        cal["date"], cal["reel"], calibrated["repas_prevus"], calibrated["commande_recommandee"]
    )
    central, upper = fit(past, past_tables, school_years(tables, VALIDATION_YEAR), staff_order)
    return Fitted(central, upper, factor, factors, calibration, choice, staff_order, choice.guard)


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
    pred = predict_frame(
        rows,
        tables,
        fitted.central,
        fitted.upper,
        fitted.factor,
        fitted.factors,
        fitted.staff_order,
        fitted.guard,
    )
    rows = pd.concat([rows, pred], axis=1)
    model = metrics(rows["date"], rows["reel"], rows["repas_prevus"], rows["commande_recommandee"])
    return rows, model, staff_metrics(rows)
