"""The metric primitives on hand-computed examples (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation import metrics

T = [10.0, 20.0, 30.0]
P = [12.0, 18.0, 33.0]  # errors: +2, -2, +3


def test_mae_rmse_wmape_r2_by_hand():
    # mae = (2 + 2 + 3) / 3 = 7/3
    assert metrics.mae(T, P) == pytest.approx(7 / 3)
    # rmse = sqrt((4 + 4 + 9) / 3) = sqrt(17/3)
    assert metrics.rmse(T, P) == pytest.approx(math.sqrt(17 / 3))
    # wmape = (2 + 2 + 3) / (10 + 20 + 30) = 7/60
    assert metrics.wmape(T, P) == pytest.approx(7 / 60)
    # mean 20; SStot = 100 + 0 + 100 = 200; SSres = 17; r2 = 1 - 17/200 = 0.915
    assert metrics.r2(T, P) == pytest.approx(0.915)
    # mean squared error = 17/3
    assert metrics.mean_squared(T, P) == pytest.approx(17 / 3)


def test_missing_and_infinite_rows_are_left_out():
    # the second and third rows drop: only (10, 12) is scored
    assert metrics.mae([10, np.nan, 30], [12, 18, math.inf]) == pytest.approx(2.0)
    assert metrics.rmse([10, None, 30], [12, 18, np.nan]) == pytest.approx(2.0)


def test_empty_rules():
    for fn in (metrics.mae, metrics.rmse, metrics.wmape, metrics.mean_squared, metrics.brier):
        assert fn([], []) == 0.0
    assert metrics.accuracy([], []) == 0.0
    assert metrics.f1_macro([], []) == 0.0


def test_wmape_zero_total():
    assert metrics.wmape([0, 0], [0, 0]) == 0.0  # no error: 0
    assert metrics.wmape([0, 0], [1, 0]) == 1.0  # errors on a zero total: 1


def test_r2_constant_truth():
    assert metrics.r2([5, 5], [5, 5]) == 1.0
    assert metrics.r2([5, 5], [4, 6]) == 0.0
    assert metrics.r2([5], [7]) == 0.0


def test_lengths_must_agree():
    with pytest.raises(ValueError):
        metrics.mae([1, 2], [1])


def test_precision_recall_f1_by_hand():
    truth = [True, True, False, False, True]
    pred = [True, False, True, False, True]
    # TP = 2 (rows 1, 5), FP = 1 (row 3), FN = 1 (row 2)
    # precision = 2/3, recall = 2/3, f1 = 2/3
    scores = metrics.precision_recall_f1(truth, pred)
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3)
    # no positive predicted, none to find: all 0
    assert metrics.precision_recall_f1([False], [False]) == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
    }


def test_accuracy_and_f1_macro_by_hand():
    truth = ["a", "a", "b", "c"]
    pred = ["a", "b", "b", "b"]
    # accuracy: rows 1 and 3 right = 2/4
    assert metrics.accuracy(truth, pred) == 0.5
    # class a: TP 1, FP 0, FN 1 -> 2/3 ; class b: TP 1, FP 2, FN 0 -> 2/4 ;
    # class c: TP 0, FP 0, FN 1 -> 0 ; macro = (2/3 + 1/2 + 0) / 3 = 7/18
    assert metrics.f1_macro(truth, pred) == pytest.approx(7 / 18)
    # a missing label leaves its row out: 1 of 1 right
    assert metrics.accuracy(["a", None], ["a", "b"]) == 1.0


def test_brier_false_alarms_skill():
    # brier = ((0.8-1)^2 + (0.3-0)^2) / 2 = (0.04 + 0.09) / 2 = 0.065
    assert metrics.brier([True, False], [0.8, 0.3]) == pytest.approx(0.065)
    # alerts on rows 1, 2; row 2 is no event: 1/2
    assert metrics.false_alarm_ratio([True, False, True], [True, True, False]) == 0.5
    assert metrics.false_alarm_ratio([True], [False]) == 0.0  # no alert: 0
    assert metrics.skill(0.05, 0.1) == pytest.approx(0.5)
    assert metrics.skill(0.05, 0.0) == 0.0


def test_finite_drops_what_is_not_a_finite_number():
    scores = {
        "a": 1,
        "b": math.nan,
        "c": math.inf,
        "d": None,
        "e": "x",
        "f": np.float32(2.5),
        "g": True,
    }
    assert metrics.finite(scores) == {"a": 1.0, "f": 2.5}
    assert all(type(v) is float for v in metrics.finite(scores).values())
