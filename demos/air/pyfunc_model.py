"""The ``pics-pollution-lille`` MLflow model ("models from code").

This file is copied into the MLflow model directory and loaded inside the
demonstrator sandbox: it imports only numpy, pandas, scikit-learn (through
skops) and mlflow. Training code imports its feature and validation
functions so that training and prediction cannot drift apart.

Input, one row per day D and pollutant: today's observed concentration and
the weather forecast for D+1. Output: the forecast concentration for D+1
(PM10 daily mean, O3 maximum hourly mean), the probability of exceeding the
information threshold, and that threshold.
"""

from __future__ import annotations

import json
import math

import mlflow
import numpy as np
import pandas as pd

# Information-and-recommendation thresholds (µg/m³): PM10 daily mean,
# O3 hourly maximum.
POLLUTANTS = {"PM10": 50.0, "O3": 180.0}

WEATHER_COLUMNS = [
    "temperature_prevue",  # °C, daily mean forecast for D+1
    "temperature_max_prevue",  # °C, daily maximum forecast for D+1
    "vent_prevu",  # m/s, daily mean wind speed
    "pression_prevue",  # hPa, mean sea-level pressure
    "couche_limite_prevue",  # m, maximum boundary-layer (mixing) height
    "ensoleillement_prevu",  # hours of sunshine
    "pluie_prevue",  # mm of rain
]
INPUT_COLUMNS = ["date", "polluant", "concentration_jour", *WEATHER_COLUMNS]
OUTPUT_COLUMNS = ["concentration_prevue", "probabilite_depassement", "seuil"]
FEATURES = [
    "concentration_jour",
    "log_concentration_jour",
    "froid",
    "chaleur",
    "temperature_max_prevue",
    "chaleur_soleil",
    "log_vent",
    "pression_anomalie",
    "log_couche_limite",
    "ensoleillement_prevu",
    "log_pluie",
    "pluie",
    "saison_cos",
    "saison_sin",
    "samedi",
    "dimanche",
]
# Plausible physical ranges, to catch unit mistakes (Kelvin, km/h, Pa...).
_RANGES = {
    "concentration_jour": (0, 1000),
    "temperature_prevue": (-30, 45),
    "temperature_max_prevue": (-25, 50),
    "vent_prevu": (0, 60),
    "pression_prevue": (940, 1070),
    "couche_limite_prevue": (0, 5000),
    "ensoleillement_prevu": (0, 17),
    "pluie_prevue": (0, 300),
}


class EntreeInvalide(ValueError):
    """The input table cannot be used; the message says why, in French."""


def validate(data: pd.DataFrame) -> pd.DataFrame:
    """Check the input table and return a clean copy.

    Args:
        data: the model input (see ``INPUT_COLUMNS``).

    Returns:
        A copy with ``date`` as timestamps and numeric columns as floats.

    Raises:
        EntreeInvalide: missing columns, unknown pollutant, unreadable date,
            missing or implausible values.
    """
    if not isinstance(data, pd.DataFrame):
        raise EntreeInvalide("l'entrée doit être un tableau (une ligne par jour et par polluant)")
    missing = [c for c in INPUT_COLUMNS if c not in data.columns]
    if missing:
        raise EntreeInvalide(
            "colonnes manquantes : "
            + ", ".join(missing)
            + ". Colonnes attendues : "
            + ", ".join(INPUT_COLUMNS)
        )
    if data.empty:
        raise EntreeInvalide("le tableau d'entrée est vide")
    frame = data[INPUT_COLUMNS].copy()
    frame["polluant"] = frame["polluant"].astype(str).str.strip().str.upper()
    unknown = sorted(set(frame["polluant"]) - set(POLLUTANTS))
    if unknown:
        raise EntreeInvalide(
            f"polluant inconnu : {', '.join(unknown)} (valeurs possibles : {', '.join(POLLUTANTS)})"
        )
    dates = pd.to_datetime(frame["date"].astype(str), format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        bad = frame.loc[dates.isna(), "date"].astype(str).iloc[0]
        raise EntreeInvalide(f"date illisible : « {bad} » (format attendu AAAA-MM-JJ)")
    frame["date"] = dates
    for column, (low, high) in _RANGES.items():
        values = pd.to_numeric(frame[column], errors="coerce").astype(float)
        if values.isna().any():
            row = int(np.flatnonzero(values.isna().to_numpy())[0]) + 1
            raise EntreeInvalide(
                f"valeur manquante ou non numérique dans « {column} » (ligne {row})"
            )
        outside = (values < low) | (values > high)
        if outside.any():
            row = int(np.flatnonzero(outside.to_numpy())[0]) + 1
            raise EntreeInvalide(
                f"valeur hors plage dans « {column} » (ligne {row}) : {values[outside].iloc[0]} "
                f"(attendu entre {low} et {high} ; vérifiez l'unité)"
            )
        frame[column] = values
    return frame


def features(frame: pd.DataFrame) -> pd.DataFrame:
    """Model features of a validated input table (see :func:`validate`)."""
    target_day = frame["date"] + pd.Timedelta(days=1)
    angle = 2 * np.pi * (target_day.dt.day_of_year.to_numpy() - 1) / 365.25
    heat = np.maximum(frame["temperature_max_prevue"] - 12, 0)
    return pd.DataFrame(
        {
            "concentration_jour": frame["concentration_jour"],
            "log_concentration_jour": np.log(np.maximum(frame["concentration_jour"], 1.0)),
            "froid": np.maximum(8 - frame["temperature_prevue"], 0),
            "chaleur": heat,
            "temperature_max_prevue": frame["temperature_max_prevue"],
            "chaleur_soleil": frame["ensoleillement_prevu"] * heat**2 / 100,
            "log_vent": np.log(np.maximum(frame["vent_prevu"], 0.3)),
            "pression_anomalie": frame["pression_prevue"] - 1016,
            "log_couche_limite": np.log(np.maximum(frame["couche_limite_prevue"], 50)),
            "ensoleillement_prevu": frame["ensoleillement_prevu"],
            "log_pluie": np.log1p(frame["pluie_prevue"]),
            "pluie": (frame["pluie_prevue"] >= 1).astype(float),
            "saison_cos": np.cos(angle),
            "saison_sin": np.sin(angle),
            "samedi": (target_day.dt.day_of_week == 5).astype(float).to_numpy(),
            "dimanche": (target_day.dt.day_of_week == 6).astype(float).to_numpy(),
        },
        index=frame.index,
    )[FEATURES]


def to_concentration(raw: np.ndarray, scale: str) -> np.ndarray:
    """Back-transform a regressor's output (``scale`` is ``"log"`` or ``"lineaire"``)."""
    raw = np.asarray(raw, dtype=float)
    return np.exp(raw) if scale == "log" else np.maximum(raw, 0.0)


def exceedance_probability(
    raw: np.ndarray, sigma: float, threshold: float, scale: str
) -> np.ndarray:
    """P(concentration ≥ threshold) under a Gaussian error on the regressor's scale.

    Args:
        raw: the regressor's output (log concentration, or concentration).
        sigma: standard deviation of the forecast error on that scale.
        threshold: the regulatory threshold, µg/m³.
        scale: ``"log"`` or ``"lineaire"``.
    """
    limit = math.log(threshold) if scale == "log" else threshold
    z = (limit - np.asarray(raw, dtype=float)) / sigma
    return np.array([0.5 * math.erfc(v / math.sqrt(2)) for v in z], dtype=float)


def predict_frame(estimators: dict, params: dict, data: pd.DataFrame) -> pd.DataFrame:
    """Forecast every row of ``data`` with fitted per-pollutant estimators.

    Args:
        estimators: pollutant → fitted regressor.
        params: pollutant → ``{"sigma": ..., "seuil": ..., "echelle": "log" | "lineaire"}``.
        data: the model input.

    Returns:
        ``OUTPUT_COLUMNS``, one row per input row, in the input order.

    Raises:
        EntreeInvalide: see :func:`validate`.
    """
    frame = validate(data).reset_index(drop=True)
    out = pd.DataFrame(index=frame.index, columns=OUTPUT_COLUMNS, dtype=float)
    for pollutant, rows in frame.groupby("polluant").groups.items():
        raw = estimators[pollutant].predict(features(frame.loc[rows]).to_numpy())
        p = params[pollutant]
        out.loc[rows, "concentration_prevue"] = np.round(to_concentration(raw, p["echelle"]), 1)
        out.loc[rows, "probabilite_depassement"] = np.round(
            exceedance_probability(raw, p["sigma"], p["seuil"], p["echelle"]), 4
        )
        out.loc[rows, "seuil"] = p["seuil"]
    return out


# Type names skops must trust when loading the fitted estimators.
SKOPS_TRUSTED = [
    "sklearn.linear_model._ridge.Ridge",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
]


class PicsPollutionModel(mlflow.pyfunc.PythonModel):
    """Next-day PM10 / O3 forecast with the probability of a threshold exceedance."""

    def load_context(self, context):
        import skops.io

        with open(context.artifacts["parametres"], encoding="utf-8") as fh:
            self.params = json.load(fh)
        self.estimators = {
            pollutant: skops.io.load(
                context.artifacts[f"modele_{pollutant.lower()}"], trusted=SKOPS_TRUSTED
            )
            for pollutant in POLLUTANTS
        }

    def predict(self, context, model_input, params=None):
        return predict_frame(self.estimators, self.params, model_input)


mlflow.models.set_model(PicsPollutionModel())
