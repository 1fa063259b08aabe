"""Synthetic daily weather and air-quality series for the Lille agglomeration.

No real measurement is shipped with the ``air`` reference model: the series
are generated here, seeded, so anyone can regenerate the exact shipped files
with ``python -m demos.air.synthetic``. The generator aims at the physics an
air-quality forecaster relies on, not at reproducing real days:

- PM10 (daily mean) rises in cold, stagnant, anticyclonic weather (low wind,
  shallow boundary layer, no rain), with spring episodes of secondary
  particles (ammonium nitrate from manure spreading) under anticyclones in
  March–April, a weekly traffic cycle and a slow downward trend.
- O3 (daily maximum of hourly means) builds up under heat and sunshine,
  accumulates over multi-day heat waves, and stays low in winter.
- A few cold anticyclonic spells and heat waves are injected at plausible
  dates; they are not copies of the real episodes.
- Weather forecasts issued the day before are the next day's "observed"
  weather plus realistic forecast errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 59350  # INSEE code of Lille, as good a seed as any
START, END = "2015-01-01", "2024-12-31"
DATA_DIR = Path(__file__).resolve().parent / "data"
OBSERVATIONS_FILE = DATA_DIR / "observations.csv"
FORECASTS_FILE = DATA_DIR / "previsions_meteo.csv"

# (start, end, temperature anomaly °C, pressure anomaly hPa)
_HEAT_WAVES = [
    ("2015-06-30", "2015-07-04", 7.0, 7.0),
    ("2016-08-23", "2016-08-27", 6.0, 6.0),
    ("2018-07-24", "2018-07-28", 7.5, 7.0),
    ("2019-06-25", "2019-06-29", 7.0, 8.0),
    ("2019-07-22", "2019-07-26", 9.0, 7.0),
    ("2020-08-06", "2020-08-13", 7.5, 6.0),
    ("2022-06-16", "2022-06-18", 7.0, 6.0),
    ("2022-07-17", "2022-07-19", 9.0, 6.0),
    ("2022-08-09", "2022-08-14", 6.5, 7.0),
    ("2023-06-10", "2023-06-14", 5.5, 6.0),
    ("2023-09-04", "2023-09-10", 7.5, 8.0),
    ("2024-07-29", "2024-08-01", 4.5, 6.0),
    ("2024-08-10", "2024-08-12", 5.0, 6.0),
]
_COLD_SPELLS = [
    ("2015-03-10", "2015-03-20", -2.0, 14.0),
    ("2016-12-01", "2016-12-09", -4.0, 16.0),
    ("2017-01-17", "2017-01-26", -6.0, 18.0),
    ("2018-02-24", "2018-03-02", -8.0, 14.0),
    ("2019-02-20", "2019-02-26", -1.0, 16.0),
    ("2020-03-24", "2020-03-30", -1.5, 14.0),
    ("2021-02-08", "2021-02-13", -7.0, 12.0),
    ("2022-03-21", "2022-03-28", -1.0, 15.0),
    ("2023-01-16", "2023-01-21", -5.0, 14.0),
    ("2023-03-05", "2023-03-10", -2.0, 12.0),
    ("2024-01-08", "2024-01-14", -5.0, 15.0),
    ("2024-03-26", "2024-03-31", -1.0, 13.0),
    ("2024-12-02", "2024-12-07", -4.0, 15.0),
]


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: np.ndarray) -> np.ndarray:
    """AR(1) series whose stationary standard deviation is ``sd`` (per day)."""
    shocks = rng.normal(size=n) * sd * np.sqrt(1 - phi**2)
    out = np.empty(n)
    out[0] = shocks[0] / np.sqrt(1 - phi**2)
    for i in range(1, n):
        out[i] = phi * out[i - 1] + shocks[i]
    return out


def _spells(dates: pd.DatetimeIndex, spells: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """Temperature and pressure anomalies of injected spells (smooth edges)."""
    temp = np.zeros(len(dates))
    pres = np.zeros(len(dates))
    for start, end, dt, dp in spells:
        inside = (dates >= pd.Timestamp(start) - pd.Timedelta(days=1)) & (
            dates <= pd.Timestamp(end) + pd.Timedelta(days=1)
        )
        core = (dates >= pd.Timestamp(start)) & (dates <= pd.Timestamp(end))
        weight = np.where(core, 1.0, np.where(inside, 0.5, 0.0))
        temp += weight * dt
        pres += weight * dp
    return temp, pres


def _day_length(doy: np.ndarray, latitude: float = 50.63) -> np.ndarray:
    """Astronomical day length in hours."""
    decl = np.radians(23.44) * np.sin(2 * np.pi * (doy - 81) / 365.25)
    cos_h = -np.tan(np.radians(latitude)) * np.tan(decl)
    return 24 / np.pi * np.arccos(np.clip(cos_h, -1, 1))


def generate(seed: int = SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate the observed daily series and the day-ahead weather forecasts.

    Args:
        seed: seed of the numpy random generator; the shipped files use ``SEED``.

    Returns:
        ``(observations, forecasts)``. ``observations`` has one row per day
        (``date``, observed weather, ``pm10`` daily mean and ``o3_max``
        hourly maximum in µg/m³); ``forecasts`` has one row per target day
        with the weather forecast issued the day before.
    """
    rng = np.random.default_rng(seed)
    dates = pd.date_range(START, END, freq="D")
    n = len(dates)
    doy = dates.day_of_year.to_numpy()
    years = (dates.year - 2015).to_numpy() + doy / 365.25
    summer = np.cos(2 * np.pi * (doy - 200) / 365.25)  # +1 mid-July, -1 mid-January
    heat_t, heat_p = _spells(dates, _HEAT_WAVES)
    cold_t, cold_p = _spells(dates, _COLD_SPELLS)

    # Pressure: synoptic AR(1), more variable in winter.
    p_anom = _ar1(rng, n, 0.85, 9.0 - 2.5 * summer) + heat_p + cold_p
    pression = 1016.5 + p_anom
    # Temperature: seasonal cycle, warming trend, anomalies; anticyclones are
    # cold in winter and hot in summer.
    t_anom = _ar1(rng, n, 0.8, 2.8 - 0.4 * summer) + 0.14 * summer * p_anom
    temperature = 10.6 + 7.0 * summer + 0.03 * years + t_anom + heat_t + cold_t
    # Wind: stronger in winter, weak under anticyclones.
    wind_noise = _ar1(rng, n, 0.5, np.full(n, 0.3))
    vent = (4.4 - 0.8 * summer) * np.exp(-0.035 * p_anom + wind_noise)
    vent = np.clip(vent, 0.5, 18)
    # Rain: less likely under high pressure.
    p_rain = 1 / (1 + np.exp(-(0.2 - 0.16 * p_anom)))
    raining = rng.random(n) < p_rain
    pluie = np.where(raining, rng.exponential(4.0, n), 0.0)
    pluie = np.where(pluie < 0.2, 0.0, pluie)
    # Sunshine: day length times a clear-sky fraction.
    day_len = _day_length(doy)
    clear = 1 / (1 + np.exp(-(-0.5 + 0.13 * p_anom - 1.1 * raining + rng.normal(0, 0.8, n))))
    ensoleillement = day_len * clear
    temperature_max = temperature + 2.5 + 0.55 * ensoleillement + rng.normal(0, 0.7, n)
    # Boundary-layer height proxy (daily maximum mixing height, m).
    couche_limite = (
        80
        + 110 * vent
        + 35 * ensoleillement
        + 20 * np.maximum(temperature, 0)
        - 6 * np.maximum(p_anom, 0)
    ) * np.exp(rng.normal(0, 0.15, n))
    couche_limite = np.clip(couche_limite, 100, 3000)

    # PM10 daily mean: log-linear in the stagnation drivers.
    weekday = dates.day_of_week.to_numpy()
    spring = np.exp(-0.5 * ((doy - 85) / 22) ** 2)
    anticyclone = 1 / (1 + np.exp(-(p_anom - 6) / 2.5))
    stagnation = (
        0.07 * np.maximum(8 - temperature, 0)
        - 0.45 * np.log(vent / 4)
        - 0.35 * np.log(couche_limite / 800)
        - 0.22 * raining
        - 0.02 * np.minimum(pluie, 10)
        + 0.7 * spring * anticyclone
    )
    build_up = np.zeros(n)
    for i in range(1, n):  # particles accumulate over consecutive stagnant days
        build_up[i] = 0.5 * build_up[i - 1] + 0.3 * max(stagnation[i - 1], 0) * (stagnation[i] > 0)
    log_pm = (
        np.log(18.0)
        - 0.035 * years
        + stagnation
        + build_up
        - np.where(weekday == 6, 0.10, np.where(weekday == 5, 0.05, 0.0))
        + _ar1(rng, n, 0.7, np.full(n, 0.16))
    )
    pm10 = np.exp(log_pm)

    # O3 daily maximum of hourly means: photochemistry plus accumulation.
    h = np.maximum(temperature_max - 12, 0)
    photo = 2.4 * h + 0.011 * ensoleillement * h**2 - 1.5 * (vent - 4) * (summer > 0)
    accumulation = np.zeros(n)
    for i in range(1, n):  # regional background builds up over hot spells
        accumulation[i] = 0.5 * accumulation[i - 1] + 0.12 * max(photo[i - 1] - 40, 0)
    o3 = 48 + photo + accumulation + _ar1(rng, n, 0.6, np.full(n, 8.0))
    o3 = np.clip(o3, 5, None)

    observations = pd.DataFrame(
        {
            "date": dates.strftime("%Y-%m-%d"),
            "temperature": temperature.round(1),
            "temperature_max": temperature_max.round(1),
            "vent": vent.round(1),
            "pression": pression.round(1),
            "couche_limite": couche_limite.round(0).astype(int),
            "ensoleillement": ensoleillement.round(1),
            "pluie": pluie.round(1),
            "pm10": pm10.round(1),
            "o3_max": o3.round(1),
        }
    )
    # Day-ahead forecasts: observed weather plus forecast errors.
    forecasts = pd.DataFrame(
        {
            "date": dates.strftime("%Y-%m-%d"),
            "temperature_prevue": (temperature + rng.normal(0, 1.2, n)).round(1),
            "temperature_max_prevue": (temperature_max + rng.normal(0, 1.5, n)).round(1),
            "vent_prevu": np.clip(vent * np.exp(rng.normal(0, 0.2, n)), 0.3, None).round(1),
            "pression_prevue": (pression + rng.normal(0, 2.0, n)).round(1),
            "couche_limite_prevue": (couche_limite * np.exp(rng.normal(0, 0.2, n)))
            .round(0)
            .astype(int),
            "ensoleillement_prevu": np.clip(
                ensoleillement + rng.normal(0, 1.8, n), 0, day_len
            ).round(1),
            "pluie_prevue": np.where(
                rng.random(n) < 0.15,  # rain/no-rain forecast error
                np.where(raining, 0.0, rng.exponential(2.0, n)),
                pluie * np.exp(rng.normal(0, 0.5, n)),
            ).round(1),
        }
    )
    return observations, forecasts


def write(data_dir: Path = DATA_DIR) -> None:
    """Regenerate the shipped CSV files in ``data_dir``."""
    observations, forecasts = generate()
    data_dir.mkdir(parents=True, exist_ok=True)
    observations.to_csv(data_dir / OBSERVATIONS_FILE.name, index=False)
    forecasts.to_csv(data_dir / FORECASTS_FILE.name, index=False)


if __name__ == "__main__":
    write()
