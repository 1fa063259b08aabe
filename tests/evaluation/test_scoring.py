"""Scoring beside the baseline, and the chart's data."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from domain.errors import InvalidPredictions
from evaluation import scoring
from evaluation.task import Column, Metric, Task
from evaluation.tasks import generic

DATED = generic.prevision_task(
    inputs=(Column("jour", "date"), Column("site", "string")), truth="y", output="p"
)


def test_series_chart_daily_totals():
    inputs = pd.DataFrame(
        {"jour": ["2020-01-01", "2020-01-01", "2020-01-02"], "site": ["A", "B", "A"]}
    )
    truth = pd.DataFrame({"y": [10.0, 20.0, 12.0]})
    predictions = pd.DataFrame({"p": [11.0, 19.0, 13.0]})
    outcome = scoring.evaluate(DATED, inputs, truth, predictions)
    chart = outcome.chart
    assert chart["kind"] == "series"
    assert chart["x"] == ["2020-01-01", "2020-01-02"]
    assert chart["observed"] == [30.0, 12.0]  # 10 + 20, 12
    assert chart["model"] == [30.0, 13.0]  # 11 + 19, 13
    # baseline: A/01 and B/01 have no history -> mean (10+20+12)/3 = 14 each; A/02 -> 10
    assert chart["baseline"] == [28.0, 10.0]
    assert chart["x_label"] == "jour"
    json.dumps(chart)  # JSON-ready


def test_long_series_are_aggregated_by_week():
    days = pd.date_range("2019-01-01", periods=600, freq="D")
    inputs = pd.DataFrame({"jour": days.strftime("%Y-%m-%d"), "site": "A"})
    truth = pd.DataFrame({"y": np.ones(600)})
    outcome = scoring.evaluate(DATED, inputs, truth, pd.DataFrame({"p": np.ones(600)}))
    chart = outcome.chart
    assert chart["x_label"] == "semaine (lundi)"
    assert len(chart["x"]) <= scoring.MAX_POINTS
    assert sum(chart["observed"]) == 600.0
    assert chart["x"][1] == "2019-01-07"  # a Monday


def test_non_finite_scores_are_dropped():
    def score(inputs, truth, predictions):
        return {"ok": 1.0, "nan": math.nan, "inf": math.inf}

    task = Task(
        slug="t",
        title="t",
        description="",
        inputs=(),
        truth=(Column("y", "string"),),
        outputs=(Column("p", "string"),),
        metrics=(Metric("ok", "OK", True), Metric("nan", "NaN", True)),
        primary="ok",
        baseline_name="",
        baseline_description="",
        score=score,
        baseline=lambda inputs, truth: pd.DataFrame({"p": ["a"] * len(truth)}),
    )
    outcome = scoring.evaluate(
        task,
        pd.DataFrame(index=range(2)),
        pd.DataFrame({"y": ["a", "b"]}),
        pd.DataFrame({"p": ["a", "a"]}),
    )
    assert outcome.metrics == {"ok": 1.0} and outcome.baseline_metrics == {"ok": 1.0}
    assert outcome.chart == {
        "kind": "bars",
        "labels": ["OK"],
        "metrics": ["ok"],
        "model": [1.0],
        "baseline": [1.0],
    }


def test_misaligned_frames_are_refused():
    with pytest.raises(InvalidPredictions, match="2 prédiction"):
        scoring.evaluate(
            DATED,
            pd.DataFrame({"jour": ["2020-01-01"] * 3, "site": "A"}),
            pd.DataFrame({"y": [1.0, 2.0, 3.0]}),
            pd.DataFrame({"p": [1.0, 2.0]}),
        )


def test_indexes_do_not_matter():
    inputs = pd.DataFrame({"jour": ["2020-01-01", "2020-01-02"], "site": "A"}, index=[7, 9])
    truth = pd.DataFrame({"y": [1.0, 3.0]}, index=[2, 3])
    outcome = scoring.evaluate(DATED, inputs, truth, pd.DataFrame({"p": [1.0, 3.0]}))
    assert outcome.metrics["mae"] == 0.0
