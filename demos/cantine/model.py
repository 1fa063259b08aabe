"""The cantine-nantes pyfunc model (MLflow "models from code") and its features.

This file is copied into the model directory and loaded inside a sandbox that
has only numpy, pandas, scikit-learn, skops and mlflow: it must never import
``bibia``, ``registry`` or the rest of ``demos``. The training code in
``demos/cantine`` imports its feature functions, so training and prediction
share one definition of every feature.

Every table the model needs at prediction time (calendar, strikes, pupils,
served-meals history) is an artifact read back in ``load_context``. One file
serves both versions: ``entree_commande_equipes`` in ``params.json`` says
whether the staff's order of the day (``prevision``) is an input.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

#: Days between the last served meals the model may use and the day forecast
#: (an order is placed about a week ahead).
LEAD_DAYS = 7
WEDNESDAY = 2
FEATURES = [
    "jour_semaine",
    "mois",
    "jours_depuis_vacances",
    "jours_avant_vacances",
    "jours_ferie_proche",
    "greve",
    "type",
    "secteur",
    "cantine",
    "effectif",
    "ratio_effectif",
    "anciennete_niveau",
    "niveau_recent",
    "rapport_meme_jour",
    "rapport_niveau_30j",
    "rapport_annee_prec",
    "volatilite",
    "rapport_dernier",
    "jour_annee_scolaire",
    "jours_avant_noel",
    "jours_avant_ete",
    "rapport_semaine_annee_prec",
]
#: The staff-order variant's extra feature: the staff's order for the day over the canteen's
#: recent level (the order is known when the recommendation is made).
STAFF_FEATURE = "rapport_commande_equipes"
CATEGORICAL = ["jour_semaine", "type", "secteur", "cantine"]
TYPES = {"M": 0, "E": 1, "M/E": 2}
SECTEURS = {"Est": 0, "Nord": 1, "Ouest": 2, "Sud": 3}
# The exact types skops reports as untrusted in the fitted estimators: the
# tree predictors, and the partial(check_array) scikit-learn stores as the
# estimator's input validator. Nothing else is accepted.
SKOPS_TRUSTED = [
    "functools.partial",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
]


class Tables:
    """The reference tables the features are computed from.

    Attributes are pandas DataFrames with parsed dates: ``cantines``
    (cantine_nom, cantine_type, secteur), ``annees`` (annee_scolaire,
    date_debut, date_fin), ``vacances`` (date_debut, date_fin), ``feries``
    (date), ``greves`` (date), ``effectifs`` (cantine_nom, annee_scolaire,
    effectif) and ``historique`` (cantine_nom, date, reel: served meals on
    school days without strike).
    """

    def __init__(self, cantines, annees, vacances, feries, greves, effectifs, historique):
        self.cantines = cantines.assign(
            cantine_nom=cantines["cantine_nom"].str.strip()
        ).reset_index(drop=True)
        self.annees = annees.sort_values("date_debut").reset_index(drop=True)
        self.vacances = vacances
        self.feries = feries
        self.greves = greves
        self.effectifs = effectifs
        self.historique = _history_stats(historique)
        self.names = list(self.cantines["cantine_nom"])
        self.index = {name: i for i, name in enumerate(sorted(self.names))}

    @classmethod
    def read(cls, folder: Path) -> Tables:
        """Read the tables written by :meth:`write` from ``folder``."""
        folder = Path(folder)
        dates = {
            "annees": ["date_debut", "date_fin"],
            "vacances": ["date_debut", "date_fin"],
            "feries": ["date"],
            "greves": ["date"],
            "historique": ["date"],
        }
        frames = {}
        for name in [
            "cantines",
            "annees",
            "vacances",
            "feries",
            "greves",
            "effectifs",
            "historique",
        ]:
            frames[name] = pd.read_csv(folder / f"{name}.csv", parse_dates=dates.get(name, []))
        return cls(**frames)

    def write(self, folder: Path) -> Path:
        """Write every table as CSV into ``folder`` (an MLflow directory artifact) and return it."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name in ["cantines", "annees", "vacances", "feries", "greves", "effectifs"]:
            getattr(self, name).to_csv(folder / f"{name}.csv", index=False)
        self.historique[["cantine_nom", "date", "reel"]].to_csv(
            folder / "historique.csv", index=False
        )
        return folder

    def school_year(self, dates: pd.Series) -> pd.Series:
        """The school year ("2017-2018") a date belongs to, summer attached to the year that ends."""
        starts = self.annees["date_debut"].to_numpy()
        pos = np.searchsorted(starts, dates.to_numpy(), side="right") - 1
        years = self.annees["annee_scolaire"].to_numpy()
        return pd.Series(years[np.clip(pos, 0, len(years) - 1)], index=dates.index)

    def is_school_day(self, dates: pd.Series) -> pd.Series:
        """True on days the canteens serve: no weekend, Wednesday, holiday or bank holiday."""
        dow = dates.dt.day_of_week
        off = (dow >= 5) | (dow == WEDNESDAY) | dates.isin(self.feries["date"])
        for start, end in zip(self.vacances["date_debut"], self.vacances["date_fin"]):
            off |= (dates >= start) & (dates <= end)
        return ~off


def _history_stats(hist: pd.DataFrame) -> pd.DataFrame:
    """Rolling levels of served meals per canteen, known at the end of each history day."""
    h = hist.sort_values(["cantine_nom", "date"]).reset_index(drop=True)
    h["jour_semaine"] = h["date"].dt.day_of_week
    by = h.groupby("cantine_nom")["reel"]

    def rolling(group, window: int, least: int):
        return group.rolling(window, min_periods=least)

    h["r10"] = rolling(by, 10, 3).mean().reset_index(level=0, drop=True)
    h["r30"] = rolling(by, 30, 5).mean().reset_index(level=0, drop=True)
    h["vol"] = (rolling(by, 20, 5).std() / rolling(by, 20, 5).mean()).reset_index(
        level=0, drop=True
    )
    by_day = h.groupby(["cantine_nom", "jour_semaine"])["reel"]
    h["rdow"] = rolling(by_day, 4, 1).mean().reset_index(level=[0, 1], drop=True)
    # Centred 9-day mean: the canteen's level around a day, looked up a year later.
    h["r9c"] = by.transform(lambda s: s.rolling(9, center=True, min_periods=3).mean())
    return h.sort_values("date").reset_index(drop=True)


def _days(delta) -> np.ndarray:
    return np.asarray(delta, dtype="timedelta64[ns]").astype("timedelta64[D]").astype(float)


def feature_names(staff_order: bool = False) -> list[str]:
    """The model's features, with the staff's order last for the staff-order variant."""
    return [*FEATURES, STAFF_FEATURE] if staff_order else list(FEATURES)


def features(df: pd.DataFrame, tables: Tables, staff_order: bool = False) -> pd.DataFrame:
    """Model features for rows with a parsed ``date``, a known ``cantine_nom`` and a bool ``greve``.

    The canteen's level comes from served meals at least ``LEAD_DAYS`` days
    before the date; the previous school year's mean, scaled by the change in
    pupils, gives its yearly reference. With ``staff_order``, the rows' staff
    order ``prevision`` (meals, NaN or 0 when unknown) over that level is a
    feature too.
    """
    d = df[["date", "cantine_nom", "greve"]].reset_index(drop=True).copy()
    d["_row"] = np.arange(len(d))
    dates = d["date"]
    out = pd.DataFrame(index=d.index)
    out["jour_semaine"] = dates.dt.day_of_week
    out["mois"] = dates.dt.month
    ends, starts = (
        np.sort(tables.vacances["date_fin"].to_numpy()),
        np.sort(tables.vacances["date_debut"].to_numpy()),
    )
    values = dates.to_numpy()
    last_end = ends[np.clip(np.searchsorted(ends, values) - 1, 0, None)]
    next_start = starts[np.clip(np.searchsorted(starts, values), None, len(starts) - 1)]
    out["jours_depuis_vacances"] = np.clip(_days(values - last_end), 0, 60)
    out["jours_avant_vacances"] = np.clip(_days(next_start - values), 0, 60)
    fer = np.sort(tables.feries["date"].to_numpy())
    k = np.searchsorted(fer, values)
    after = _days(fer[np.clip(k, None, len(fer) - 1)] - values)
    before = _days(values - fer[np.clip(k - 1, 0, None)])
    out["jours_ferie_proche"] = np.clip(np.minimum(np.abs(after), np.abs(before)), 0, 10)
    names = tables.vacances["vacances_nom"].astype(str)
    for column, key in (("jours_avant_noel", "Noel"), ("jours_avant_ete", "Ete")):
        starts_k = np.sort(tables.vacances.loc[names.str.contains(key), "date_debut"].to_numpy())
        nxt = starts_k[np.clip(np.searchsorted(starts_k, values), None, len(starts_k) - 1)]
        out[column] = np.clip(_days(nxt - values), 0, 30)
    out["greve"] = d["greve"].astype(int)
    info = tables.cantines.set_index("cantine_nom")
    out["type"] = d["cantine_nom"].map(info["cantine_type"]).map(TYPES).fillna(-1).astype(int)
    out["secteur"] = d["cantine_nom"].map(info["secteur"]).map(SECTEURS).fillna(-1).astype(int)
    out["cantine"] = d["cantine_nom"].map(tables.index).astype(int)

    year = tables.school_year(dates)
    years = list(tables.annees["annee_scolaire"])
    previous = year.map({b: a for a, b in zip(years, years[1:])})
    eff = tables.effectifs.set_index(["cantine_nom", "annee_scolaire"])["effectif"]
    out["effectif"] = pd.MultiIndex.from_arrays([d["cantine_nom"], year]).map(eff).astype(float)
    eff_prev = pd.MultiIndex.from_arrays([d["cantine_nom"], previous]).map(eff).astype(float)
    out["ratio_effectif"] = out["effectif"].to_numpy() / eff_prev.to_numpy()
    first_day = tables.annees.set_index("annee_scolaire")["date_debut"]
    out["jour_annee_scolaire"] = _days(values - year.map(first_day).to_numpy())

    h = tables.historique
    d["cle"] = dates - pd.Timedelta(days=LEAD_DAYS)
    d["jour_semaine"] = out["jour_semaine"]
    left = d.sort_values("cle")
    a = pd.merge_asof(
        left,
        h[["cantine_nom", "date", "reel", "r10", "r30", "vol"]].rename(columns={"date": "hdate"}),
        left_on="cle",
        right_on="hdate",
        by="cantine_nom",
    )
    a = pd.merge_asof(
        a.sort_values("cle"),
        h[["cantine_nom", "jour_semaine", "date", "rdow"]].rename(columns={"date": "hdate2"}),
        left_on="cle",
        right_on="hdate2",
        by=["cantine_nom", "jour_semaine"],
    )
    a = a.set_index("_row").reindex(d["_row"])
    level = a["r10"].to_numpy()
    out["niveau_recent"] = level
    out["anciennete_niveau"] = np.clip(_days(values - a["hdate"].to_numpy()), 0, 120)
    out["rapport_meme_jour"] = a["rdow"].to_numpy() / level
    out["rapport_niveau_30j"] = a["r30"].to_numpy() / level
    out["volatilite"] = a["vol"].to_numpy()
    out["rapport_dernier"] = a["reel"].to_numpy() / level
    year_mean = (
        h.assign(annee=tables.school_year(h["date"]))
        .groupby(["cantine_nom", "annee"])["reel"]
        .mean()
    )
    prev_mean = pd.MultiIndex.from_arrays([d["cantine_nom"], previous]).map(year_mean).astype(float)
    out["rapport_annee_prec"] = (
        prev_mean.to_numpy() * np.nan_to_num(out["ratio_effectif"].to_numpy(), nan=1.0) / level
    )
    # Same week one year earlier (52 weeks, so the same weekday), relative to that year's mean.
    d["cle_an"] = dates - pd.Timedelta(days=364)
    b = pd.merge_asof(
        d.sort_values("cle_an"),
        h[["cantine_nom", "date", "r9c"]].rename(columns={"date": "hdate3"}),
        left_on="cle_an",
        right_on="hdate3",
        by="cantine_nom",
        tolerance=pd.Timedelta(days=7),
    )
    b = b.set_index("_row").reindex(d["_row"])
    out["rapport_semaine_annee_prec"] = b["r9c"].to_numpy() / prev_mean.to_numpy()
    if staff_order:
        staff = pd.to_numeric(df["prevision"], errors="coerce").to_numpy(float)
        out[STAFF_FEATURE] = np.where(staff > 0, staff, np.nan) / level
    return out[feature_names(staff_order)]


def unknown_canteen_message(name: str, valid: list[str]) -> str:
    """The French error for an unknown canteen, with the closest valid names."""
    close = difflib.get_close_matches(str(name).strip().upper(), valid, n=3, cutoff=0.5)
    hint = f" Noms proches : {', '.join(f'« {c} »' for c in close)}." if close else ""
    return (
        f"cantine inconnue : « {name} » (colonne cantine_nom).{hint} "
        f"Les {len(valid)} cantines connues du modèle : {', '.join(valid)}."
    )


def prepare(model_input: pd.DataFrame, tables: Tables, staff_order: bool = False) -> pd.DataFrame:
    """Validate the input rows and return ``date`` (parsed), ``cantine_nom`` (stripped), ``greve`` (bool).

    With ``staff_order`` the staff's order ``prevision`` is required too
    (meals, a number at least 0) and returned as a float column.

    Raises:
        ValueError: with a French message for a missing column, a bad date,
            a date outside the calendar or an unknown canteen.
    """
    if not isinstance(model_input, pd.DataFrame):
        raise ValueError("l'entrée doit être un tableau avec les colonnes date et cantine_nom")
    needed = ("date", "cantine_nom", "prevision") if staff_order else ("date", "cantine_nom")
    missing = [c for c in needed if c not in model_input.columns]
    if missing:
        expected = ", ".join(needed)
        raise ValueError(
            f"colonne(s) manquante(s) : {', '.join(missing)} (attendu : {expected}, greve facultatif)"
        )
    dates = pd.to_datetime(
        model_input["date"].astype(str).str.strip(), format="%Y-%m-%d", errors="coerce"
    )
    bad = model_input["date"][dates.isna()]
    if len(bad):
        raise ValueError(
            f"date invalide : {bad.iloc[0]!r} (format attendu AAAA-MM-JJ, par exemple 2017-11-06)"
        )
    first, last = tables.annees["date_debut"].min(), tables.annees["date_fin"].max()
    outside = dates[(dates < first) | (dates > last)]
    if len(outside):
        raise ValueError(
            f"date hors du calendrier connu : {outside.iloc[0].date()} "
            f"(le modèle couvre du {first.date()} au {last.date()})"
        )
    names = model_input["cantine_nom"].astype(str).str.strip()
    unknown = names[~names.isin(tables.index)]
    if len(unknown):
        raise ValueError(unknown_canteen_message(unknown.iloc[0], tables.names))
    known_strike = dates.isin(tables.greves["date"])
    if "greve" in model_input.columns:
        given = model_input["greve"]
        greve = given.where(given.notna(), known_strike).map(_as_bool)
    else:
        greve = known_strike
    rows = pd.DataFrame(
        {"date": dates.to_numpy(), "cantine_nom": names.to_numpy(), "greve": greve.to_numpy(bool)}
    )
    if staff_order:
        given = model_input["prevision"]
        staff = pd.to_numeric(given, errors="coerce")
        bad = given[(staff.isna() & given.notna()) | (staff < 0)]
        if len(bad):
            raise ValueError(
                f"commande des équipes invalide : {bad.iloc[0]!r} (colonne prevision : un nombre "
                "de repas, 0 ou plus)"
            )
        rows["prevision"] = staff.to_numpy(float)
    return rows


def _as_bool(value) -> bool:
    if isinstance(value, str):
        text = value.strip().lower()
        if text in {"1", "true", "vrai", "oui", "yes"}:
            return True
        if text in {"0", "false", "faux", "non", "no", ""}:
            return False
        raise ValueError(f"valeur de greve invalide : {value!r} (attendu : vrai/faux, 1/0)")
    return bool(value)


def day_guard(dates, staff, order, guard: float) -> np.ndarray:
    """``order`` raised so that each day's total is at least ``guard`` times the staff's total.

    Only rows with a known staff order (``staff`` > 0) take part: per day, if
    their orders sum to less than ``guard`` times the staff's orders, each
    of them is scaled up by the same factor (rounded up), the extra going
    where the orders are largest; rows without a staff order are left as
    they are. ``guard`` 0 leaves every order unchanged. The totals are those
    of the rows given together: a day is guarded as a whole only when all
    its canteens are sent in one request.
    """
    order = np.asarray(order, float)
    if guard <= 0 or len(order) == 0:
        return order
    staff = np.nan_to_num(np.asarray(staff, float))
    known = staff > 0
    frame = pd.DataFrame(
        {
            "date": np.asarray(dates),
            "order": np.where(known, order, 0.0),
            "staff": np.where(known, staff, 0.0),
        }
    )
    by_day = frame.groupby("date")
    total = by_day["order"].transform("sum").to_numpy()
    floor = guard * by_day["staff"].transform("sum").to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(total > 0, floor / total, 1.0)
    raised = np.where(total > 0, np.ceil(order * scale - 1e-9), np.ceil(guard * staff - 1e-9))
    return np.where(known & (total < floor), np.maximum(raised, order), order)


def predict_frame(
    rows: pd.DataFrame,
    tables: Tables,
    central,
    upper,
    factor: float,
    factors: dict[str, float] | None = None,
    staff_order: bool = False,
    guard: float = 0.0,
) -> pd.DataFrame:
    """Expected meals and recommended order for prepared rows (see :func:`prepare`).

    The order is the quantile forecast times the canteen's factor in
    ``factors``, or times ``factor`` for a canteen it does not list, and
    never below the expected meals. With a ``guard`` (staff-order variant),
    each day's total order over the rows given is then kept at least
    ``guard`` times the staff's total order (see :func:`day_guard`).
    """
    school = tables.is_school_day(rows["date"]).to_numpy()
    expected = np.zeros(len(rows))
    order = np.zeros(len(rows))
    if school.any():
        x = features(rows[school], tables, staff_order)
        level = x["niveau_recent"].to_numpy()
        expected[school] = np.clip(central.predict(x), 0, None) * level
        scale = rows.loc[school, "cantine_nom"].map(factors or {}).fillna(factor).to_numpy(float)
        order[school] = np.ceil(np.clip(upper.predict(x), 0, None) * level * scale)
    expected = np.nan_to_num(expected)
    # A recommended order is an upper bound: never below the meals expected.
    order = np.maximum(np.nan_to_num(order), np.round(expected))
    if staff_order and guard > 0 and school.any():
        order[school] = day_guard(
            rows.loc[school, "date"].to_numpy(),
            rows.loc[school, "prevision"].to_numpy(float),
            order[school],
            guard,
        )
    return pd.DataFrame(
        {
            "repas_prevus": np.round(expected).astype("int64"),
            "commande_recommandee": order.astype("int64"),
        }
    )


class CantineModel(mlflow.pyfunc.PythonModel):
    """Meals expected and order recommended per canteen and day, Nantes."""

    def load_context(self, context):
        import skops.io

        self.tables = Tables.read(Path(context.artifacts["tables"]))
        self.central = skops.io.load(context.artifacts["central"], trusted=SKOPS_TRUSTED)
        self.upper = skops.io.load(context.artifacts["upper"], trusted=SKOPS_TRUSTED)
        params = json.loads(Path(context.artifacts["params"]).read_text(encoding="utf-8"))
        self.factor = float(params["facteur_commande"])
        self.factors = {k: float(v) for k, v in params.get("facteurs_par_cantine", {}).items()}
        self.staff_order = bool(params.get("entree_commande_equipes", False))
        self.guard = float(params.get("garde_commande_equipes", 0.0))

    def predict(self, context, model_input, params=None):
        rows = prepare(model_input, self.tables, self.staff_order)
        return predict_frame(
            rows,
            self.tables,
            self.central,
            self.upper,
            self.factor,
            self.factors,
            self.staff_order,
            self.guard,
        )


mlflow.models.set_model(CantineModel())
