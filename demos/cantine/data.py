"""Load the shipped Nantes open data (``demos/cantine/data``) into model-ready frames."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from demos.cantine.model import Tables

DATA_DIR = Path(__file__).parent / "data"


def served(data_dir: Path = DATA_DIR) -> pd.DataFrame:
    """Meals served and ordered per canteen and day.

    The ``site_nom`` spellings of ``frequentation.csv`` are mapped to the
    canteens of ``cantines.csv`` with ``mapping_frequentation_cantines.csv``;
    sites mapped to no canteen (emergency foyers) are dropped, and the sites of
    one canteen are summed.

    Returns:
        One row per canteen and day: ``cantine_nom`` (stripped), ``date``
        (datetime), ``prevision`` (staff order) and ``reel`` (meals served),
        both NaN where every site of the canteen left it blank.
    """
    freq = pd.read_csv(data_dir / "frequentation.csv")
    mapping = pd.read_csv(data_dir / "mapping_frequentation_cantines.csv")
    rows = freq.merge(
        mapping[["site_nom", "site_type", "cantine_nom"]].dropna(),
        on=["site_nom", "site_type"],
        how="inner",
    )
    rows["cantine_nom"] = rows["cantine_nom"].str.strip()
    out = rows.groupby(["cantine_nom", "date"], as_index=False)[["prevision", "reel"]].sum(
        min_count=1
    )
    out["date"] = pd.to_datetime(out["date"], format="%Y-%m-%d")
    return out.sort_values(["date", "cantine_nom"]).reset_index(drop=True)


def tables(data_dir: Path = DATA_DIR, history: pd.DataFrame | None = None) -> Tables:
    """The reference tables of the model, built from the shipped files.

    Args:
        data_dir: folder with the shipped CSV files.
        history: the frame returned by :func:`served` (read again if None);
            its school days with meals served and no strike become the
            served-meals history the model takes the canteens' level from.
    """
    history = served(data_dir) if history is None else history
    cantines = pd.read_csv(data_dir / "cantines.csv")
    cantines["cantine_nom"] = cantines["cantine_nom"].str.strip()
    annees = pd.read_csv(data_dir / "annees_scolaires.csv", parse_dates=["date_debut", "date_fin"])
    vacances = pd.read_csv(data_dir / "vacances.csv", parse_dates=["date_debut", "date_fin"])
    vacances = vacances.drop_duplicates(["date_debut", "date_fin"])[
        ["annee_scolaire", "vacances_nom", "date_debut", "date_fin"]
    ]
    feries = pd.read_csv(data_dir / "jours_feries.csv", parse_dates=["date"])[
        ["date", "nom_jour_ferie"]
    ]
    greves = pd.read_csv(data_dir / "greves.csv", parse_dates=["date"]).drop_duplicates("date")[
        ["date"]
    ]
    effectifs = _pupils(data_dir)
    partial = Tables(
        cantines,
        annees,
        vacances,
        feries,
        greves,
        effectifs,
        history.iloc[:0][["cantine_nom", "date", "reel"]],
    )
    keep = (
        (history["reel"] > 0)
        & partial.is_school_day(history["date"])
        & ~history["date"].isin(greves["date"])
    )
    return Tables(
        cantines,
        annees,
        vacances,
        feries,
        greves,
        effectifs,
        history.loc[keep, ["cantine_nom", "date", "reel"]],
    )


def _pupils(data_dir: Path) -> pd.DataFrame:
    """Pupils per canteen and school year: the sum over the schools eating there."""
    eff = pd.read_csv(data_dir / "effectifs_ecoles.csv")
    eff.columns = ["ecole", "annee_scolaire", "effectif"]
    mapping = pd.read_csv(data_dir / "mapping_ecoles_cantines.csv")
    mapping["cantine_nom"] = mapping["cantine_nom"].str.strip()
    both = eff.merge(mapping[["ecole", "cantine_nom"]], on="ecole", how="inner")
    return both.groupby(["cantine_nom", "annee_scolaire"], as_index=False)["effectif"].sum()
