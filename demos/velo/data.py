"""Loading the shipped Nantes bike-counter data and the calendar."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

DATA_DIR = Path(__file__).parent / "data"
DAILY_FILE = DATA_DIR / "comptages_journaliers_2014_2019.csv"
HOLIDAYS_FILE = DATA_DIR / "vacances_zone_b.csv"
BANK_HOLIDAYS_FILE = DATA_DIR / "jours_feries.csv"

CALENDAR_START = "2013-01-01"
CALENDAR_END = "2021-08-31"  # last day covered by the school-holiday table


def load_daily(path: Path = DAILY_FILE) -> pd.DataFrame:
    """Read the daily counts 2014-2019.

    Rows without a counter id (the two manual counts "La Chapelle sur Erdre"
    and "Saint Léger les Vignes") are dropped: the model's input names a
    counter by its id.

    Args:
        path: the published CSV (separator ``;``).

    Returns:
        Columns ``compteur`` (str id), ``nom``, ``jour`` (datetime64),
        ``comptage`` (float, NaN when missing), ``drapeau_nantes`` (bool,
        Nantes' published ``Anomalie``), ``valeur_modelisee``; sorted by
        counter and day.
    """
    raw = pd.read_csv(path, sep=";", dtype={"Identifiant du compteur": str})
    raw = raw.dropna(subset=["Identifiant du compteur"])
    df = pd.DataFrame(
        {
            "compteur": raw["Identifiant du compteur"].astype(float).astype(int).astype(str),
            "nom": raw["Nom du compteur"].str.replace("_", " "),
            "jour": pd.to_datetime(raw["Jour"], format="%Y-%m-%d"),
            "comptage": pd.to_numeric(raw["Comptage relevé"], errors="coerce").astype(float),
            "drapeau_nantes": raw["Anomalie"].eq(1),
            "valeur_modelisee": raw["Valeur modélisée"].astype(float),
        }
    )
    df = df.drop_duplicates(["compteur", "jour"])
    return df.sort_values(["compteur", "jour"]).reset_index(drop=True)


def build_calendar(
    holidays_path: Path = HOLIDAYS_FILE, bank_path: Path = BANK_HOLIDAYS_FILE
) -> pd.DataFrame:
    """Day-by-day calendar: bank holidays and zone B school holidays.

    Args:
        holidays_path: zone B school holidays (``vacances_nom, date_debut, date_fin``).
        bank_path: bank holidays (``date, jour_ferie``).

    Returns:
        Indexed by day from ``CALENDAR_START`` to ``CALENDAR_END``, integer
        columns ``ferie`` (0/1) and ``vacances`` (0 none, 1 short holidays,
        2 Christmas, 3 summer).
    """
    days = pd.date_range(CALENDAR_START, CALENDAR_END, freq="D")
    cal = pd.DataFrame({"ferie": 0, "vacances": 0}, index=days)
    cal.index.name = "jour"
    bank = pd.read_csv(bank_path, parse_dates=["date"])
    cal.loc[cal.index.isin(bank.loc[bank["jour_ferie"] == 1, "date"]), "ferie"] = 1
    hol = pd.read_csv(holidays_path, parse_dates=["date_debut", "date_fin"])
    for row in hol.itertuples():
        name = row.vacances_nom.lower()
        kind = 3 if "d'ete" in name else 2 if "noel" in name else 1
        cal.loc[row.date_debut : row.date_fin, "vacances"] = kind
    return cal


def counter_names(df: pd.DataFrame) -> dict[str, str]:
    """Counter id -> its most recent published name."""
    return df.groupby("compteur")["nom"].last().to_dict()
