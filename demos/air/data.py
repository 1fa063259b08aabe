"""Load the shipped (synthetic) Lille series and build the modelling table.

One row of the modelling table is one (day D, pollutant) pair: what is known
on day D (the day's observed concentration, the weather forecast for D+1)
and the truth to predict (the concentration observed on D+1).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from demos.air.pyfunc_model import POLLUTANTS
from demos.air.synthetic import DATA_DIR

# observed column of each pollutant in observations.csv
POLLUTANT_COLUMNS = {"PM10": "pm10", "O3": "o3_max"}
TARGET = "concentration_observee_lendemain"

_OBSERVED = [
    "date",
    "temperature",
    "temperature_max",
    "vent",
    "pression",
    "couche_limite",
    "ensoleillement",
    "pluie",
    "pm10",
    "o3_max",
]
_FORECAST = [
    "date",
    "temperature_prevue",
    "temperature_max_prevue",
    "vent_prevu",
    "pression_prevue",
    "couche_limite_prevue",
    "ensoleillement_prevu",
    "pluie_prevue",
]


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    frame = pd.read_csv(path, parse_dates=["date"])
    missing = sorted(set(columns) - set(frame.columns))
    if missing:
        raise ValueError(f"{path.name} : colonnes manquantes {missing}")
    frame = frame[columns].sort_values("date").reset_index(drop=True)
    if frame["date"].duplicated().any() or frame.isna().any().any():
        raise ValueError(f"{path.name} : dates en double ou valeurs manquantes")
    return frame


def load_observations(data_dir: Path = DATA_DIR) -> pd.DataFrame:
    """Daily observed weather and concentrations (``observations.csv``)."""
    return _read(data_dir / "observations.csv", _OBSERVED)


def load_forecasts(data_dir: Path = DATA_DIR) -> pd.DataFrame:
    """Day-ahead weather forecasts, one row per target day (``previsions_meteo.csv``)."""
    return _read(data_dir / "previsions_meteo.csv", _FORECAST)


def build_table(observations: pd.DataFrame, forecasts: pd.DataFrame) -> pd.DataFrame:
    """Join day D's observations with the forecast and the truth for D+1.

    Args:
        observations: as returned by :func:`load_observations`.
        forecasts: as returned by :func:`load_forecasts`.

    Returns:
        One row per (day, pollutant) in the model's input schema (``date`` as a
        ``YYYY-MM-DD`` string) plus ``concentration_observee_lendemain``.
        The last day, with no D+1, is dropped.
    """
    next_day = forecasts.copy()
    next_day["date"] = next_day["date"] - pd.Timedelta(days=1)  # forecast made on D for D+1
    frames = []
    for pollutant, column in POLLUTANT_COLUMNS.items():
        truth = observations[["date", column]].rename(columns={column: TARGET})
        truth["date"] = truth["date"] - pd.Timedelta(days=1)
        frame = (
            observations[["date", column]]
            .rename(columns={column: "concentration_jour"})
            .merge(next_day, on="date")
            .merge(truth, on="date")
        )
        frame.insert(1, "polluant", pollutant)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True).sort_values(["date", "polluant"], kind="stable")
    table["date"] = table["date"].dt.strftime("%Y-%m-%d")
    numeric = [c for c in table.columns if c not in ("date", "polluant")]
    table[numeric] = table[numeric].astype(float)
    return table.reset_index(drop=True)


def load_table(data_dir: Path = DATA_DIR) -> pd.DataFrame:
    """:func:`build_table` on the shipped files."""
    return build_table(load_observations(data_dir), load_forecasts(data_dir))


__all__ = [
    "POLLUTANTS",
    "POLLUTANT_COLUMNS",
    "TARGET",
    "build_table",
    "load_forecasts",
    "load_observations",
    "load_table",
]
