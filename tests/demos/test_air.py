"""The air reference model: synthetic data, features, protocol, pyfunc contract, card."""

from __future__ import annotations

import io
import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from demos.air import build
from demos.air import evaluate as ev
from demos.air.data import TARGET, build_table, load_forecasts, load_observations, load_table
from demos.air.protocol import run
from demos.air.pyfunc_model import INPUT_COLUMNS, OUTPUT_COLUMNS, POLLUTANTS, features, validate
from demos.air.synthetic import FORECASTS_FILE, OBSERVATIONS_FILE, generate
from demos.reference import CHART_FILE, METRICS_FILE, SAMPLE_FILE
from registry.card import Card
from tests import reference_builds

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def built(request, tmp_path_factory):
    made = build(tmp_path_factory.mktemp("air") / "model")
    return reference_builds.keep(request, "demos.air", made)


@pytest.fixture(scope="module")
def model(built):
    return mlflow.pyfunc.load_model(str(built.model_dir))


@pytest.fixture(scope="module")
def sample(built):
    return pd.read_csv(built.model_dir / SAMPLE_FILE)


# --- data -----------------------------------------------------------------


def test_shipped_files_are_the_seeded_generator_output():
    observations, forecasts = generate()
    for frame, path in [(observations, OBSERVATIONS_FILE), (forecasts, FORECASTS_FILE)]:
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        assert buffer.getvalue() == path.read_text(encoding="utf-8")


def test_shipped_series_have_the_expected_seasonality():
    obs = load_observations()
    assert len(obs) == 3653
    assert obs["date"].min() == pd.Timestamp("2015-01-01") and obs["date"].max() == pd.Timestamp(
        "2024-12-31"
    )
    month = obs["date"].dt.month
    winter, summer = month.isin([12, 1, 2]), month.isin([6, 7, 8])
    assert obs.loc[winter, "pm10"].mean() > 1.3 * obs.loc[summer, "pm10"].mean()
    assert obs.loc[summer, "o3_max"].mean() > 1.5 * obs.loc[winter, "o3_max"].mean()
    assert obs.loc[winter, "temperature"].mean() < 6 < 16 < obs.loc[summer, "temperature"].mean()
    # PM10 episodes happen in the cold season, ozone ones in the warm season
    assert set(month[obs["pm10"] >= 50]) <= {1, 2, 3, 4, 10, 11, 12}
    assert set(month[obs["o3_max"] >= 180]) <= {5, 6, 7, 8, 9}
    assert (obs["o3_max"] >= 180).sum() >= 10 and (obs["pm10"] >= 50).sum() >= 50


def test_table_joins_today_with_the_forecast_and_truth_of_tomorrow():
    obs, fc = load_observations(), load_forecasts()
    table = build_table(obs, fc)
    assert len(table) == 2 * (len(obs) - 1)
    row = table[(table["date"] == "2024-01-11") & (table["polluant"] == "PM10")].iloc[0]
    today = obs.set_index("date").loc["2024-01-11"]
    tomorrow = obs.set_index("date").loc["2024-01-12"]
    forecast = fc.set_index("date").loc["2024-01-12"]
    assert row["concentration_jour"] == today["pm10"]
    assert row[TARGET] == tomorrow["pm10"]
    assert row["temperature_prevue"] == forecast["temperature_prevue"]
    o3 = table[(table["date"] == "2024-01-11") & (table["polluant"] == "O3")].iloc[0]
    assert o3["concentration_jour"] == today["o3_max"] and o3[TARGET] == tomorrow["o3_max"]


def test_features_on_a_known_day():
    # 2024-01-12 is a Friday: the forecast is for Saturday 13th
    row = load_table().query("date == '2024-01-12' and polluant == 'PM10'")
    feats = features(validate(row)).iloc[0]
    assert feats["samedi"] == 1.0 and feats["dimanche"] == 0.0
    assert feats["froid"] == pytest.approx(max(8 - row["temperature_prevue"].iloc[0], 0))
    assert feats["log_concentration_jour"] == pytest.approx(
        np.log(row["concentration_jour"].iloc[0])
    )
    assert feats["saison_cos"] > 0.95  # mid-January


def test_scores_on_a_hand_example():
    s = ev.scores([0.9, 0.6, 0.2, 0.0], [True, True, False, False], [True, False, True, False])
    assert s["taux_detection"] == 0.5  # one of two events alerted
    assert s["taux_fausses_alertes"] == 0.5  # one of two alerts false
    assert s["brier"] == pytest.approx((0.01 + 0.36 + 0.64 + 0) / 4)
    assert ev.skill(0.5, 1.0) == 0.5


# --- build and protocol ---------------------------------------------------


def test_metrics_json_holds_what_the_protocol_computes(built):
    saved = json.loads((built.model_dir / METRICS_FILE).read_text(encoding="utf-8"))
    assert saved == {"model": built.metrics, "baseline": built.baseline_metrics}
    again = run(load_table())
    assert again.metrics == built.metrics and again.baseline == built.baseline_metrics
    assert set(built.baseline_metrics) == {"taux_detection", "taux_fausses_alertes", "brier"}


def test_model_beats_persistence_and_climatology(built):
    m, b = built.metrics, built.baseline_metrics
    assert m["brier_skill_score_persistance"] >= 0.2
    assert m["brier_skill_score_climatologie"] > 0
    assert m["brier"] < b["brier"] < built.extra["brier_climatologie"]
    assert m["taux_detection"] >= b["taux_detection"]
    assert m["taux_fausses_alertes"] <= b["taux_fausses_alertes"]


def test_reference_build_fields_and_card(built):
    assert built.name == "pics-pollution-lille"
    assert built.project == "pics-pollution-lille"
    assert built.alias == "production"
    card = Card.model_validate(built.card)
    assert card.identification.owner.siren == "200093201"
    named = {m.name: m for m in card.model.evaluation.metrics}
    assert named["brier"].value == built.metrics["brier"]
    assert named["brier"].baseline == built.baseline_metrics["brier"]
    assert "synthétique" in card.identification.summary


def test_chart_and_sample_files(built, sample):
    assert (built.model_dir / CHART_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(sample.columns) == [*INPUT_COLUMNS, TARGET]
    assert set(sample["polluant"]) == set(POLLUTANTS)
    assert len(sample) <= 100
    for pollutant, threshold in POLLUTANTS.items():
        assert (sample.loc[sample["polluant"] == pollutant, TARGET] >= threshold).any()


# --- pyfunc contract --------------------------------------------------------


def test_pyfunc_contract_on_the_sample(built, model, sample):
    inputs = [c.name for c in model.metadata.get_input_schema().inputs]
    assert inputs == INPUT_COLUMNS
    out = model.predict(sample[INPUT_COLUMNS])
    assert list(out.columns) == OUTPUT_COLUMNS and len(out) == len(sample)
    assert out["probabilite_depassement"].between(0, 1).all()
    assert (out["seuil"] == sample["polluant"].map(POLLUTANTS)).all()
    # the episode peaks are flagged with a high probability the day before
    peaks = sample[TARGET] >= 1.2 * sample["polluant"].map(POLLUTANTS)
    assert (out.loc[peaks, "probabilite_depassement"] > 0.5).mean() >= 0.5
    # input order is preserved whatever the pollutant mix
    shuffled = sample[INPUT_COLUMNS].sample(frac=1, random_state=0).reset_index(drop=True)
    again = model.predict(shuffled)
    reference = out.set_index(sample["date"] + sample["polluant"])
    keyed = again.set_index(shuffled["date"] + shuffled["polluant"])
    pd.testing.assert_frame_equal(keyed, reference.loc[keyed.index])


def test_unknown_pollutant_gets_a_french_error(model, sample):
    bad = sample[INPUT_COLUMNS].head(3).assign(polluant="NO2")
    with pytest.raises(ValueError, match="polluant inconnu : NO2"):
        model.predict(bad)


def test_implausible_unit_gets_a_french_error(model, sample):
    kelvin = sample[INPUT_COLUMNS].head(3).assign(temperature_prevue=280.0)
    with pytest.raises(
        ValueError, match="hors plage dans « temperature_prevue ».*vérifiez l'unité"
    ):
        model.predict(kelvin)


def test_missing_column(model, sample):
    incomplete = sample[INPUT_COLUMNS].drop(columns=["vent_prevu"]).head(3)
    # MLflow's schema enforcement answers first, naming the column...
    with pytest.raises(mlflow.exceptions.MlflowException, match="vent_prevu"):
        model.predict(incomplete)
    # ...and the model's own check answers in French for any caller that skips it
    with pytest.raises(ValueError, match="colonnes manquantes : vent_prevu"):
        model.unwrap_python_model().predict(None, incomplete)


def test_model_file_imports_only_what_the_sandbox_has(built):
    import ast

    allowed = {"__future__", "json", "math", "mlflow", "numpy", "pandas", "sklearn", "skops"}
    tree = ast.parse((built.model_dir / "pyfunc_model.py").read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    }
    assert imported <= allowed, imported - allowed
