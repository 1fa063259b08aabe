"""The task registry, binding to a signature, and the generic tasks' baselines by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from domain.errors import InvalidInput, NotFound
from evaluation import scoring, tasks
from evaluation.tasks import generic

SIGNATURE = {
    "inputs": [
        {"name": "jour", "type": "datetime"},
        {"name": "site", "type": "string"},
        {"name": "temp", "type": "double", "required": False},
    ],
    "outputs": [{"name": "classe", "type": "string"}, {"name": "valeur", "type": "double"}],
}


def test_registry_and_get():
    assert {"regression", "classification", "prevision"} <= set(tasks.TASKS)
    assert tasks.get("regression") is tasks.TASKS["regression"]
    with pytest.raises(NotFound) as caught:
        tasks.get("inconnue")
    assert caught.value.message.startswith("tâche inconnue : inconnue (tâches : ")
    assert "regression" in caught.value.message


def test_bind_takes_the_signature_columns():
    bound = tasks.bind(tasks.get("regression"), SIGNATURE, "mesure")
    assert [(c.name, c.type, c.required) for c in bound.inputs] == [
        ("jour", "date", True),
        ("site", "string", True),
        ("temp", "double", False),
    ]
    assert [c.name for c in bound.outputs] == ["valeur"]  # the first numeric output
    assert [c.name for c in bound.truth] == ["mesure"]
    classes = tasks.bind(tasks.get("classification"), SIGNATURE, None)
    assert [(c.name, c.type) for c in classes.outputs] == [("classe", "string")]
    assert classes.truth[0].name == "observe"


def test_bind_unnamed_output_and_default_truth():
    signature = {"inputs": [{"name": "x", "type": "long"}], "outputs": [{"type": "tensor"}]}
    bound = tasks.bind(tasks.get("regression"), signature, None, columns=["x", "reel"])
    assert bound.outputs[0].name == "prediction"
    assert bound.truth[0].name == "reel"
    bound = tasks.bind(
        tasks.get("regression"), signature, None, columns=["x", "observe_prediction"]
    )
    assert bound.truth[0].name == "observe_prediction"
    assert tasks.bind(tasks.get("regression"), None, None).truth[0].name == "observe"
    assert tasks.bind(tasks.get("regression"), None, None).inputs == ()


def test_bind_refuses_a_truth_that_is_an_input_or_the_output():
    with pytest.raises(InvalidInput, match="« site » est une entrée"):
        tasks.bind(tasks.get("regression"), SIGNATURE, "site")
    with pytest.raises(InvalidInput, match="nom de la sortie"):
        tasks.bind(tasks.get("regression"), SIGNATURE, "valeur")
    with pytest.raises(InvalidInput):
        tasks.bind(tasks.get("regression"), SIGNATURE, "  ")


def test_hostile_signatures_are_ignored_not_fatal():
    junk = {"inputs": [1, None, {"name": 3}, {"name": "ok", "type": ["x"]}], "outputs": "zz"}
    bound = tasks.bind(tasks.get("regression"), junk, None)
    assert [(c.name, c.type) for c in bound.inputs] == [("ok", "string")]
    assert tasks.check_signature(bound, junk) == []
    assert tasks.check_signature(tasks.get("regression"), "pas un dict") == []  # type: ignore[arg-type]


def test_check_signature_names_the_problems():
    task = tasks.bind(tasks.get("regression"), SIGNATURE, "mesure")
    assert tasks.check_signature(task, SIGNATURE) == []
    other = {
        "inputs": [{"name": "site", "type": "double"}, {"name": "z", "type": "long"}],
        "outputs": [{"name": "autre", "type": "double"}],
    }
    problems = tasks.check_signature(task, other)
    assert any("« jour » de la tâche est absente" in p for p in problems)
    assert any("« site » est de type string pour la tâche et double" in p for p in problems)
    assert any("exige la colonne d'entrée « z »" in p for p in problems)
    assert any("sortie « valeur » de la tâche est absente" in p for p in problems)


def test_candidates():
    slugs = [t.slug for t in tasks.candidates(SIGNATURE, None)]
    assert slugs == ["regression", "classification", "prevision"]
    assert [t.slug for t in tasks.candidates(SIGNATURE, "classification")] == ["classification"]
    text_only = {
        "inputs": [{"name": "x", "type": "string"}],
        "outputs": [{"name": "y", "type": "string"}],
    }
    assert [t.slug for t in tasks.candidates(text_only, None)] == ["classification"]
    forecast = [t for t in tasks.candidates(SIGNATURE, "prevision-serie-temporelle")]
    assert [t.slug for t in forecast] == ["prevision"] and forecast[0].inputs[0].name == "jour"
    assert [t for t in tasks.candidates(SIGNATURE, None) if not t.generic] == [
        t for t in tasks.TASKS.values() if not t.generic and not tasks.check_signature(t, SIGNATURE)
    ]


def test_regression_baseline_is_the_mean():
    task = generic.regression_task(truth="y", output="p")
    truth = pd.DataFrame({"y": [1.0, 2.0, 6.0]})
    base = task.baseline(pd.DataFrame(index=range(3)), truth)
    assert base["p"].tolist() == [3.0, 3.0, 3.0]  # (1 + 2 + 6) / 3
    outcome = scoring.evaluate(
        task, pd.DataFrame({"x": [0, 0, 0]}), truth, pd.DataFrame({"p": [1.0, 2.0, 5.0]})
    )
    # model: errors 0, 0, 1 -> mae 1/3 ; baseline: errors 2, 1, 3 -> mae 2
    assert outcome.metrics["mae"] == pytest.approx(1 / 3)
    assert outcome.baseline_metrics["mae"] == pytest.approx(2.0)
    # baseline r2: it predicts the mean, so 1 - SStot/SStot = 0
    assert outcome.baseline_metrics["r2"] == pytest.approx(0.0)
    assert outcome.chart["kind"] == "bars" and outcome.chart["metrics"] == [
        "mae",
        "rmse",
        "wmape",
        "r2",
    ]
    assert outcome.chart["baseline"][0] == 2.0


def test_classification_baseline_is_the_majority_class():
    task = generic.classification_task(truth="y", output="p")
    truth = pd.DataFrame({"y": ["b", "a", "b", "c", "a"]})  # a: 2, b: 2 -> tie, "a" first
    assert task.baseline(pd.DataFrame(index=range(5)), truth)["p"].tolist() == ["a"] * 5
    outcome = scoring.evaluate(
        task, pd.DataFrame(index=range(5)), truth, pd.DataFrame({"p": ["b", "a", "b", "c", "b"]})
    )
    # model: 4/5 right ; baseline "a": 2/5 right
    assert outcome.metrics["accuracy"] == pytest.approx(0.8)
    assert outcome.baseline_metrics["accuracy"] == pytest.approx(0.4)
    # baseline f1 macro: a: TP 2, FP 3, FN 0 -> 4/7 ; b: 0 ; c: 0 -> 4/21
    assert outcome.baseline_metrics["f1"] == pytest.approx(4 / 21)
    # labels compare across types: 1 / 1.0 / "1.0" / True are normalised
    assert generic.labels(pd.Series([1, 1.0, "1.0", True, " x ", None], dtype=object)) == [
        "1",
        "1",
        "1",
        "true",
        "x",
        None,
    ]


def test_prevision_baseline_is_persistence_per_series_in_date_order():
    task = generic.prevision_task(
        inputs=(generic.Column("jour", "date"), generic.Column("site", "string")),
        truth="y",
        output="p",
    )
    inputs = pd.DataFrame(
        {
            "jour": [
                "2020-01-03",
                "2020-01-01",
                "2020-01-02",
                "2020-01-01",
                "2020-01-02",
                "2020-01-02",
            ],
            "site": ["A", "A", "A", "B", "B", "B"],
        }
    )
    truth = pd.DataFrame({"y": [30.0, 10.0, 20.0, 100.0, 200.0, 210.0]})
    base = task.baseline(inputs, truth)["p"].tolist()
    # A: 01 -> no history: mean of all = (30+10+20+100+200+210)/6 = 95 ; 02 -> 10 ; 03 -> 20
    # B: 01 -> 95 ; both rows of 02 -> 100 (same-date rows never see each other)
    assert base == [20.0, 95.0, 10.0, 95.0, 100.0, 100.0]
    no_date = generic.prevision_task(truth="y", output="p")
    assert no_date.baseline(pd.DataFrame({"n": [1, 2, 3]}), pd.DataFrame({"y": [1.0, 2.0, 3.0]}))[
        "p"
    ].tolist() == [2.0, 1.0, 2.0]  # file order, one series; first row: mean 2
