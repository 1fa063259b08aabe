"""cantine-nantes: shipped data, features, the pyfunc contract and the recorded metrics."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

import demos.cantine
from demos.cantine import data, train
from demos.cantine.model import FEATURES, features, prepare
from demos.reference import CHART_FILE, METRICS_FILE, SAMPLE_FILE
from registry.card import Card

METRIC_KEYS = {
    "mae",
    "wmape",
    "surproduction",
    "jours_en_deficit",
    "part_cantine_jours_en_deficit",
    "n_jours_test",
}


@pytest.fixture(scope="module")
def served():
    return data.served()


@pytest.fixture(scope="module")
def tables(served):
    return data.tables(history=served)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return demos.cantine.build(tmp_path_factory.mktemp("cantine") / "model")


@pytest.fixture(scope="module")
def loaded(built, monkeypatch_module):
    return mlflow.pyfunc.load_model(str(built.model_dir))


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
        yield mp


def test_served_sums_sites_into_the_87_canteens(served):
    assert served["cantine_nom"].nunique() == 87
    # ALAIN FOURNIER's maternelle and élémentaire sites are one canteen.
    day = served[(served["cantine_nom"] == "ALAIN FOURNIER E") & (served["date"] == "2017-11-06")]
    raw = pd.read_csv(data.DATA_DIR / "frequentation.csv")
    sites = raw[(raw["date"] == "2017-11-06") & raw["site_nom"].str.startswith("ALAIN FOURNIER")]
    assert len(sites) >= 2
    assert day["reel"].item() == sites["reel"].sum()


def test_staff_baseline_reproduces_the_published_figures(built):
    base = built.baseline_metrics
    assert base["n_jours_test"] == 131
    assert base["surproduction"] == pytest.approx(0.064, abs=0.0005)
    assert base["jours_en_deficit"] == 0
    assert base["part_cantine_jours_en_deficit"] == pytest.approx(0.182, abs=0.0005)
    assert base["wmape"] == pytest.approx(0.0884, abs=0.0001)


def test_calendar_knows_school_days(tables):
    dates = pd.Series(
        pd.to_datetime(["2017-11-06", "2017-11-08", "2017-11-11", "2017-12-27", "2018-05-01"])
    )
    # Monday; Wednesday; Saturday (and Armistice); Christmas holidays; bank holiday.
    assert tables.is_school_day(dates).tolist() == [True, False, False, False, False]
    assert tables.school_year(dates).tolist() == ["2017-2018"] * 5


def test_features_on_known_dates(tables):
    rows = pd.DataFrame(
        {
            "date": pd.to_datetime(["2017-11-06", "2017-11-16"]),
            "cantine_nom": ["LONGCHAMP", "LONGCHAMP"],
            "greve": [False, True],
        }
    )
    x = features(rows, tables)
    assert list(x.columns) == FEATURES
    assert x["jour_semaine"].tolist() == [0, 3]
    assert x["jours_depuis_vacances"].tolist() == [
        1,
        11,
    ]  # Toussaint holidays ended on Sunday 2017-11-05
    assert x["greve"].tolist() == [0, 1]
    # The level uses meals served at least 7 days before: for 2017-11-06 that is before the holidays.
    assert x["anciennete_niveau"].iloc[0] >= 7
    hist = tables.historique
    before = hist[(hist["cantine_nom"] == "LONGCHAMP") & (hist["date"] <= "2017-10-30")].tail(10)
    assert x["niveau_recent"].iloc[0] == pytest.approx(before["reel"].mean())


def test_build_returns_the_contract(built):
    assert built.name == "cantine-nantes"
    assert built.project == "cantine-nantes"
    assert built.alias == "production"
    assert set(built.metrics) == METRIC_KEYS == set(built.baseline_metrics)
    Card.model_validate(built.card)
    for name in ("MLmodel", SAMPLE_FILE, CHART_FILE, METRICS_FILE):
        assert (built.model_dir / name).is_file(), name


def test_metrics_file_holds_the_evaluation(built, loaded, served, tables):
    recorded = json.loads((built.model_dir / METRICS_FILE).read_text(encoding="utf-8"))
    assert recorded == {"model": built.metrics, "baseline": built.baseline_metrics}
    # Recompute the model's metrics from the saved directory's own predictions.
    rows = train.protocol_rows(served, tables, train.TEST_YEAR)
    pred = loaded.predict(
        rows.assign(date=rows["date"].dt.strftime("%Y-%m-%d"))[["date", "cantine_nom", "greve"]]
    )
    again = train.metrics(
        rows["date"], rows["reel"], pred["repas_prevus"], pred["commande_recommandee"]
    )
    assert again == pytest.approx(recorded["model"])
    card_metrics = {
        m["name"]: (m["value"], m.get("baseline"))
        for m in built.card["model"]["evaluation"]["metrics"]
    }
    kinds = {
        m["name"]: m.get("kind", "score") for m in built.card["model"]["evaluation"]["metrics"]
    }
    # A score is stated beside the staff's figure; a fact about the evaluation (days tested) stands alone.
    assert card_metrics == {
        k: (built.metrics[k], built.baseline_metrics[k] if kinds[k] == "score" else None)
        for k in METRIC_KEYS
    }
    assert "score" in kinds.values()


def test_model_beats_staff_on_error_and_over_production(built):
    m, b = built.metrics, built.baseline_metrics
    assert m["wmape"] < b["wmape"]
    assert m["surproduction"] < b["surproduction"]
    # The shortfall constraints are met on the calibration year (what the
    # code controls); on 2017-18 they are reported, not asserted (README).
    cal = built.extra["calage_2016_2017"]
    assert cal["jours_en_deficit"] <= 3
    assert cal["part_cantine_jours_en_deficit"] == pytest.approx(
        train.TARGET_SHORT_SHARE, abs=0.005
    )


def test_canteen_factors_reach_the_share_and_favour_small_steady_canteens():
    rng = np.random.default_rng(0)
    n = 120
    # A large volatile canteen and a small steady one, raw order = expected meals.
    big = pd.DataFrame(
        {"cantine_nom": "GRANDE", "raw": 400.0, "reel": 400 * rng.normal(1, 0.10, n)}
    )
    small = pd.DataFrame(
        {"cantine_nom": "PETITE", "raw": 40.0, "reel": 40 * rng.normal(1, 0.05, n)}
    )
    rows = pd.concat([big, small], ignore_index=True)
    factors = train.canteen_factors(rows["cantine_nom"], rows["reel"], rows["raw"], 0.17)
    order = np.ceil(rows["raw"] * rows["cantine_nom"].map(factors))
    short = (order < rows["reel"]).groupby(rows["cantine_nom"]).mean()
    assert (order < rows["reel"]).mean() <= 0.17
    assert short["PETITE"] < short["GRANDE"]


def test_pyfunc_predicts_on_the_sample(built, loaded):
    sample = pd.read_csv(built.model_dir / SAMPLE_FILE)
    assert list(sample.columns) == ["date", "cantine_nom", "greve", "reel"]
    assert 50 <= len(sample) <= 300
    out = loaded.predict(sample[["date", "cantine_nom", "greve"]])
    assert list(out.columns) == ["repas_prevus", "commande_recommandee"]
    assert len(out) == len(sample)
    wednesday = pd.to_datetime(sample["date"]).dt.day_of_week == 2
    assert (out.loc[wednesday] == 0).all().all()
    served_days = sample["reel"] > 0
    assert (
        out.loc[served_days, "commande_recommandee"] >= out.loc[served_days, "repas_prevus"]
    ).all()


def test_days_without_school_return_zero(loaded):
    rows = pd.DataFrame(
        {
            "date": ["2017-12-27", "2018-05-01", "2017-11-11", "2017-11-07"],
            "cantine_nom": ["LONGCHAMP"] * 4,
        }
    )
    out = loaded.predict(rows)
    assert out["commande_recommandee"].tolist()[:3] == [0, 0, 0]
    assert out["repas_prevus"].iloc[3] > 100


def test_strike_flag_defaults_to_the_known_strike_days(tables):
    given = pd.DataFrame(
        {
            "date": ["2017-09-21", "2017-09-21", "2017-09-22"],
            "cantine_nom": [" LONGCHAMP ", "LONGCHAMP", "LONGCHAMP"],
            "greve": [None, False, None],
        }
    )
    rows = prepare(given, tables)
    assert rows["greve"].tolist() == [True, False, False]
    assert rows["cantine_nom"].tolist() == ["LONGCHAMP"] * 3
    without = prepare(given.drop(columns="greve"), tables)
    assert without["greve"].tolist() == [True, True, False]


def test_unknown_canteen_gets_a_french_error_with_close_names(loaded):
    with pytest.raises((ValueError, MlflowException)) as err:
        loaded.predict(pd.DataFrame({"date": ["2017-11-06"], "cantine_nom": ["LONGCHAMPS"]}))
    message = str(err.value)
    assert "cantine inconnue : « LONGCHAMPS » (colonne cantine_nom)" in message
    assert "Noms proches : « LONGCHAMP »" in message
    # every known canteen is listed, and no file the member cannot open is named
    assert "Les 87 cantines connues du modèle : " in message and "AIME CESAIRE" in message
    assert ".csv" not in message


def test_missing_column_and_bad_date_are_refused(loaded):
    with pytest.raises((ValueError, MlflowException), match="cantine_nom"):
        loaded.predict(pd.DataFrame({"date": ["2017-11-06"]}))
    with pytest.raises((ValueError, MlflowException), match="date invalide"):
        loaded.predict(pd.DataFrame({"date": ["06/11/2017"], "cantine_nom": ["LONGCHAMP"]}))
    with pytest.raises((ValueError, MlflowException), match="hors du calendrier"):
        loaded.predict(pd.DataFrame({"date": ["2030-01-07"], "cantine_nom": ["LONGCHAMP"]}))
