"""The three reference tasks: scoring functions and baselines on tiny hand-computed frames."""

from __future__ import annotations

import ast

import numpy as np
import pandas as pd
import pytest

from domain.errors import InvalidData
from evaluation.task import Task
from evaluation.tasks import air, cantine, velo
from tests.conftest import ROOT

REFERENCE_TASKS = (cantine.TASK, velo.TASK, air.TASK)


def frames(task: Task, data: dict[str, list[object]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split hand-written columns into the task's inputs and truth."""
    frame = pd.DataFrame(data)
    inputs = frame[[c.name for c in task.inputs if c.name in frame.columns]]
    truth = frame[[c.name for c in task.truth if c.name in frame.columns]]
    return inputs, truth


# --------------------------------------------------------------------- contracts


@pytest.mark.parametrize("task", REFERENCE_TASKS, ids=lambda t: t.slug)
def test_a_task_contract_is_consistent(task: Task) -> None:
    names = [m.name for m in task.metrics]
    assert task.primary in names
    assert len(set(names)) == len(names)
    assert not task.generic
    assert [c.name for c in task.outputs if c.required]
    assert task.baseline_name and task.baseline_description and task.title


def test_the_slugs_are_those_of_the_design() -> None:
    assert [t.slug for t in REFERENCE_TASKS] == [
        "cantine-frequentation",
        "velo-anomalies",
        "pollution-pics",
    ]
    assert velo.TASK.batch_key == "compteur"
    # cantine-nantes@correction-commande guards each day's total: a day's rows travel together.
    assert cantine.TASK.batch_key == "date"


@pytest.mark.parametrize(
    "path",
    ["demos/cantine/model.py", "demos/velo/pyfunc_model.py", "demos/air/pyfunc_model.py"],
)
def test_sandboxed_model_code_never_imports_evaluation(path: str) -> None:
    """These files run in a sandbox holding only numpy, pandas, scikit-learn and mlflow."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    allowed = {"__future__", "json", "math", "difflib", "pathlib"}
    assert imported <= allowed | {"mlflow", "numpy", "pandas", "sklearn", "skops"}


def test_evaluation_never_imports_demos() -> None:
    for path in (ROOT / "evaluation").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "import demos" not in text and "from demos" not in text, path


# --------------------------------------------------------------------- cantine


def test_cantine_metrics_by_hand() -> None:
    # Two days; canteen-days (served, expected, order): (10, 12, 13), (20, 18, 19) | (30, 27, 28).
    got = cantine.metrics(
        ["2024-01-08", "2024-01-08", "2024-01-09"], [10, 20, 30], [12, 18, 27], [13, 19, 28]
    )
    assert got == pytest.approx(
        {
            "mae": 7 / 3,  # |2| + |2| + |3|
            "wmape": 7 / 60,
            # daily totals: day 1 ordered 32 for 30 served, day 2 ordered 28 for 30
            "surproduction": 2 / 60,
            "jours_en_deficit": 1.0,
            "part_cantine_jours_en_deficit": 2 / 3,  # 19 < 20 and 28 < 30
            "n_jours_test": 2.0,
        }
    )


def test_cantine_score_uses_the_order_when_given_else_the_expected_meals() -> None:
    inputs, truth = frames(
        cantine.TASK,
        {
            "date": ["2024-01-08", "2024-01-08", "2024-01-09"],
            "cantine_nom": ["A", "B", "A"],
            "reel": [10, 20, 30],
        },
    )
    with_order = cantine.score(
        inputs,
        truth,
        pd.DataFrame({"repas_prevus": [12, 18, 27], "commande_recommandee": [13, 19, 28]}),
    )
    assert with_order["surproduction"] == pytest.approx(2 / 60)
    no_order = cantine.score(inputs, truth, pd.DataFrame({"repas_prevus": [12, 18, 27]}))
    # The order is the expected meals: day 1 ordered 30 for 30, day 2 ordered 27 for 30.
    assert no_order == pytest.approx(
        {
            "mae": 7 / 3,
            "wmape": 7 / 60,
            "surproduction": 0.0,
            "jours_en_deficit": 1.0,
            "part_cantine_jours_en_deficit": 2 / 3,
            "n_jours_test": 2.0,
        }
    )
    assert set(with_order) == {m.name for m in cantine.TASK.metrics}


def test_cantine_score_drops_a_ratio_over_zero_meals() -> None:
    inputs, truth = frames(
        cantine.TASK, {"date": ["2024-01-08"], "cantine_nom": ["A"], "reel": [0]}
    )
    got = cantine.score(inputs, truth, pd.DataFrame({"repas_prevus": [0]}))
    assert "wmape" not in got and "surproduction" not in got
    assert got["mae"] == 0.0
    assert all(np.isfinite(v) for v in got.values())


def test_cantine_score_refuses_frames_of_different_lengths() -> None:
    inputs, truth = frames(
        cantine.TASK, {"date": ["2024-01-08"], "cantine_nom": ["A"], "reel": [10]}
    )
    with pytest.raises(InvalidData, match="même nombre de lignes"):
        cantine.score(inputs, truth, pd.DataFrame({"repas_prevus": [1, 2]}))


CANTINE_ROWS = {
    # canteen A: Mondays and one Tuesday; canteen B: a Monday then a Thursday and a Friday.
    "date": [
        "2024-01-01",  # A Mon: no history at all -> 0
        "2024-01-02",  # A Tue: no earlier Tuesday, no day 7 days before -> the day before, 100
        "2024-01-08",  # A Mon: one earlier Monday -> 100
        "2024-01-15",  # A Mon: 100, 110 -> 105
        "2024-01-22",  # A Mon: 100, 110, 120 -> 110
        "2024-01-29",  # A Mon: 100, 110, 120, 130 -> 115
        "2024-02-05",  # A Mon: the 4 most recent, 110, 120, 130, 140 -> 125
        "2024-01-01",  # B Mon -> 0
        "2024-01-11",  # B Thu: no earlier Thursday; days 7+ days before: Mon 10 -> 10
        "2024-01-12",  # B Fri: days 7+ days before: Mon only (not Thu 20) -> 10
        "2024-01-15",  # B Mon: Monday 10 -> 10
    ],
    "cantine_nom": ["A"] * 7 + ["B"] * 4,
    "reel": [100, 50, 110, 120, 130, 140, 151, 10, 20, 31, 40],
}
CANTINE_BASELINE = [0, 100, 100, 105, 110, 115, 125, 0, 10, 10, 10]


def test_cantine_baseline_by_hand() -> None:
    inputs, truth = frames(cantine.TASK, CANTINE_ROWS)
    got = cantine.same_weekday_mean(inputs, truth)
    assert list(got.columns) == ["repas_prevus", "commande_recommandee"]
    assert got["repas_prevus"].tolist() == CANTINE_BASELINE
    assert got["commande_recommandee"].tolist() == CANTINE_BASELINE
    assert got["repas_prevus"].dtype == np.int64


def test_cantine_baseline_rounds_half_up_and_merges_rows_of_one_day() -> None:
    inputs, truth = frames(
        cantine.TASK,
        {
            "date": ["2024-01-01", "2024-01-01", "2024-01-08", "2024-01-15"],
            "cantine_nom": ["A", "A", "A", "A"],
            "reel": [100, 101, 102, 7],
        },
    )
    got = cantine.same_weekday_mean(inputs, truth)["repas_prevus"].tolist()
    # 01-01 counts once, as 100.5; 01-15: mean(100.5, 102) = 101.25.
    assert got == [0, 0, 101, 101]
    inputs2, truth2 = frames(
        cantine.TASK,
        {"date": ["2024-01-01", "2024-01-08"], "cantine_nom": ["A", "A"], "reel": [2.5, 0]},
    )
    assert cantine.same_weekday_mean(inputs2, truth2)["repas_prevus"].tolist() == [0, 3]


def test_cantine_baseline_never_reads_a_row_own_or_later_truth() -> None:
    inputs, truth = frames(cantine.TASK, CANTINE_ROWS)
    changed = truth.copy()
    changed.loc[3:6, "reel"] = [9999, 9999, 9999, 9999]
    got = cantine.same_weekday_mean(inputs, changed)["repas_prevus"].tolist()
    assert got[:4] == CANTINE_BASELINE[:4]


def test_cantine_baseline_does_not_depend_on_row_order() -> None:
    inputs, truth = frames(cantine.TASK, CANTINE_ROWS)
    order = np.random.default_rng(0).permutation(len(inputs))
    got = cantine.same_weekday_mean(inputs.iloc[order], truth.iloc[order])
    assert got["repas_prevus"].tolist() == [CANTINE_BASELINE[i] for i in order]
    assert got.index.tolist() == inputs.index[order].tolist()


def test_cantine_baseline_scored_by_the_task() -> None:
    inputs, truth = frames(cantine.TASK, CANTINE_ROWS)
    got = cantine.score(inputs, truth, cantine.same_weekday_mean(inputs, truth))
    errors = np.abs(np.array(CANTINE_BASELINE) - np.array(CANTINE_ROWS["reel"]))
    assert got["mae"] == pytest.approx(errors.mean())
    assert got["wmape"] == pytest.approx(errors.sum() / sum(CANTINE_ROWS["reel"]))


def test_cantine_baseline_names_an_unreadable_date() -> None:
    inputs, truth = frames(
        cantine.TASK, {"date": ["2024-01-01", "demain"], "cantine_nom": ["A", "A"], "reel": [1, 2]}
    )
    with pytest.raises(InvalidData, match="ligne 2"):
        cantine.same_weekday_mean(inputs, truth)


# --------------------------------------------------------------------- velo


def test_prf_by_hand() -> None:
    assert velo.prf([True, True, False, False], [True, False, True, False]) == {
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
    }
    assert velo.prf([True, True, True, False], [True, False, False, False]) == pytest.approx(
        {"precision": 1.0, "recall": 1 / 3, "f1": 0.5}
    )
    assert velo.prf([True, False], [False, False]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert velo.prf([False, False], [False, False]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert all(type(v) is float for v in velo.prf([True], [True]).values())


def test_velo_score_with_and_without_the_injection_type() -> None:
    inputs, truth = frames(
        velo.TASK,
        {
            "compteur": [1, 1, 1, 1, 1],
            "jour": ["2019-01-01", "2019-01-02", "2019-01-03", "2019-01-04", "2019-01-05"],
            "comptage": [0, 0, 900, 100, 100],
            "anomalie_injectee": [True, True, True, False, False],
            "type_injection": ["panne", "panne", "pic", "", ""],
        },
    )
    predictions = pd.DataFrame({"anomalie": [True, False, True, True, False]})
    got = velo.score(inputs, truth, predictions)
    assert got == pytest.approx(
        {
            "precision": 2 / 3,
            "recall": 2 / 3,
            "f1": 2 / 3,
            "n_anomalies_injectees": 3.0,
            "rappel_panne": 0.5,
            "rappel_pic": 1.0,  # no "derive" in the truth: no rappel_derive
        }
    )
    plain = velo.score(inputs, truth[["anomalie_injectee"]], predictions)
    assert set(plain) == {"precision", "recall", "f1", "n_anomalies_injectees"}


def test_velo_score_refuses_a_missing_flag() -> None:
    inputs, truth = frames(
        velo.TASK,
        {"compteur": [1], "jour": ["2019-01-01"], "comptage": [3], "anomalie_injectee": [None]},
    )
    with pytest.raises(InvalidData, match="anomalie_injectee"):
        velo.score(inputs, truth, pd.DataFrame({"anomalie": [True]}))


def flat_series(counter: int, days: int = 60, level: float = 100.0) -> pd.DataFrame:
    jours = pd.date_range("2019-01-01", periods=days, freq="D")
    return pd.DataFrame(
        {"compteur": counter, "jour": jours.strftime("%Y-%m-%d"), "comptage": level}
    )


def test_velo_baseline_by_hand() -> None:
    # A flat series at 100 a day: one spike (day 30), a run of 3 zeros (40-42). The
    # same-weekday medians stay at log1p(100) everywhere (one odd value among up to 16),
    # the MAD is 0 so the scale is its floor 0.05: exactly the spike and the zeros stand out.
    a = flat_series(881)
    a.loc[30, "comptage"] = 1000
    a.loc[[40, 41, 42], "comptage"] = 0
    b = flat_series(664, level=50.0)  # another counter, untouched: nothing flagged
    inputs = pd.concat([a, b], ignore_index=True)
    truth = pd.DataFrame({"anomalie_injectee": np.zeros(len(inputs), dtype=bool)})
    got = velo.rolling_median_mad(inputs, truth)
    assert list(got.columns) == ["anomalie"]
    assert np.flatnonzero(got["anomalie"].to_numpy()).tolist() == [30, 40, 41, 42]


def test_velo_baseline_flags_a_drift_against_the_same_weekday() -> None:
    # A level 10x lower during one week: each day differs from its weekday's median.
    a = flat_series(1)
    a.loc[20:26, "comptage"] = 10
    got = velo.baseline_flags(velo.series_frame(a), **velo.BASELINE_PARAMS)
    assert np.flatnonzero(got).tolist() == list(range(20, 27))


def test_velo_baseline_reads_no_truth_and_keeps_the_row_order() -> None:
    a = flat_series(7)
    a.loc[30, "comptage"] = 1000
    order = np.random.default_rng(1).permutation(len(a))
    shuffled = a.iloc[order]
    truth = pd.DataFrame({"anomalie_injectee": np.ones(len(a), dtype=bool)}, index=shuffled.index)
    got = velo.rolling_median_mad(shuffled, truth)
    assert got.index.tolist() == shuffled.index.tolist()
    assert got.loc[30, "anomalie"] and got["anomalie"].sum() == 1


def test_velo_baseline_refuses_a_day_twice() -> None:
    a = pd.concat([flat_series(3, days=5), flat_series(3, days=1)], ignore_index=True)
    truth = pd.DataFrame({"anomalie_injectee": np.zeros(len(a), dtype=bool)})
    with pytest.raises(InvalidData, match="en double : compteur 3, jour 2019-01-01"):
        velo.rolling_median_mad(a, truth)


def test_velo_zero_runs_agree_with_the_model_s_own_rule() -> None:
    from demos.velo.pyfunc_model import zero_runs

    rng = np.random.default_rng(3)
    for _ in range(20):
        days = pd.date_range("2019-01-01", periods=80, freq="D")
        keep = np.sort(rng.choice(80, size=60, replace=False))
        counts = pd.Series(rng.choice([0.0, 0.0, 5.0, 40.0], size=60), index=days[keep])
        assert velo.zero_runs(counts).tolist() == zero_runs(counts).tolist()


def test_velo_baseline_params_are_those_the_build_tunes() -> None:
    """The tuned values are pinned; the build test checks the protocol still picks them."""
    assert velo.BASELINE_PARAMS == {"semaines": 8, "seuil": 4.0, "espace": "brut"}


# --------------------------------------------------------------------- air


AIR_ROWS = {
    "date": ["2023-06-01", "2023-06-02", "2023-06-01", "2023-06-02"],
    "polluant": ["PM10", "PM10", "O3", "O3"],
    "concentration_jour": [60.0, 20.0, 190.0, 100.0],
    **{name: [1.0] * 4 for name, _ in air.WEATHER_COLUMNS},
    # thresholds 50 (PM10) and 180 (O3): events on rows 1 and 4 (and exactly 50 counts)
    "concentration_observee_lendemain": [55.0, 30.0, 170.0, 185.0],
}


def test_air_score_by_hand() -> None:
    inputs, truth = frames(air.TASK, AIR_ROWS)
    predictions = pd.DataFrame({"probabilite_depassement": [0.9, 0.6, 0.2, 0.0]})
    # alerts (p >= 0.5): rows 1, 2; events: rows 1, 4; one hit.
    assert air.score(inputs, truth, predictions) == {
        "taux_detection": 0.5,
        "taux_fausses_alertes": 0.5,
        "brier": 0.3525,  # (0.01 + 0.36 + 0.04 + 1) / 4
    }


def test_air_score_rounds_to_four_decimals_and_handles_no_event_no_alert() -> None:
    inputs, truth = frames(air.TASK, {k: v[:3] for k, v in AIR_ROWS.items()})
    truth = truth.assign(concentration_observee_lendemain=[10.0, 10.0, 10.0])
    got = air.score(inputs, truth, pd.DataFrame({"probabilite_depassement": [0.0, 0.0, 1 / 3]}))
    assert got == {"taux_detection": 0.0, "taux_fausses_alertes": 0.0, "brier": 0.037}
    # exactly at the threshold is an event
    truth = truth.assign(concentration_observee_lendemain=[50.0, 10.0, 10.0])
    got = air.score(inputs, truth, pd.DataFrame({"probabilite_depassement": [0.5, 0.0, 0.0]}))
    assert got["taux_detection"] == 1.0 and got["brier"] == round(0.25 / 3, 4)


def test_air_persistence_by_hand() -> None:
    inputs, truth = frames(air.TASK, AIR_ROWS)
    baseline = air.persistence(inputs, truth)
    assert baseline["probabilite_depassement"].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert baseline["concentration_prevue"].tolist() == [60.0, 20.0, 190.0, 100.0]
    assert baseline["seuil"].tolist() == [50.0, 50.0, 180.0, 180.0]
    # alerts: rows 1, 3; events: rows 1, 4.
    assert air.score(inputs, truth, baseline) == {
        "taux_detection": 0.5,
        "taux_fausses_alertes": 0.5,
        "brier": 0.5,
    }


def test_air_refuses_an_unknown_pollutant_and_a_probability_out_of_range() -> None:
    inputs, truth = frames(air.TASK, AIR_ROWS)
    with pytest.raises(InvalidData, match="Polluant inconnu : NO2"):
        air.persistence(inputs.assign(polluant=["PM10", "NO2", "O3", "O3"]), truth)
    lower = air.persistence(inputs.assign(polluant=[" pm10", "PM10", "o3", "O3"]), truth)
    assert lower["seuil"].tolist() == [50.0, 50.0, 180.0, 180.0]
    with pytest.raises(InvalidData, match="hors de \\[0, 1\\] à la ligne 2"):
        air.score(inputs, truth, pd.DataFrame({"probabilite_depassement": [0.1, 1.5, 0, 0]}))


def test_air_thresholds_agree_with_the_model_s() -> None:
    from demos.air import evaluate as ev
    from demos.air.pyfunc_model import POLLUTANTS

    assert air.THRESHOLDS == POLLUTANTS
    assert ev.ALERT_PROBABILITY == air.ALERT_PROBABILITY
    assert ev.scores is air.scores


def test_the_demos_use_the_task_definitions() -> None:
    from demos.cantine import train
    from demos.velo import evaluate as vev

    assert train.metrics is cantine.metrics
    assert vev.baseline_flags is velo.baseline_flags
    assert vev.prf is velo.prf and vev.by_type is velo.by_type
