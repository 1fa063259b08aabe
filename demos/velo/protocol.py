"""The evaluation protocol end to end: tune on 2018, train on 2014-2018, test on 2019."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from demos.velo import evaluate as ev
from demos.velo.pyfunc_model import decide, deviations, residuals, score_frame
from demos.velo.train import Fitted, fit

TUNE_YEAR = 2018
TEST_YEAR = 2019
SEED_TUNE = 2018
SEED_TEST = 2019

CONTEXT_PARAMS = {"min_jours_niveau": 10, "min_autres": 4}
GRID_MODEL = {
    "fenetre_niveau": (35, 49, 63),
    "seuil_jour": tuple(np.arange(3.0, 8.01, 0.5)),
    "seuil_serie": tuple(np.arange(2.0, 6.01, 0.5)),
}
GRID_BASELINE = {
    "semaines": (3, 4, 6, 8),
    "seuil": (2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0),
    "espace": ("brut", "log"),
}


@dataclass
class Outcome:
    """Everything the build reports.

    Attributes:
        fitted: the final detector (trained on 2014-2018).
        params: its tuned parameters.
        baseline_params: the baseline's tuned parameters.
        metrics / baseline_metrics: the metric keys of the issue.
        extra: secondary figures (tuning scores, recall per type, single-counter mode).
        test: the injected 2019 input with the model's and baseline's flags.
    """

    fitted: Fitted
    params: dict
    baseline_params: dict
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    extra: dict = field(default_factory=dict)
    test: pd.DataFrame | None = None


def tune_model(
    fitted: Fitted, injected: pd.DataFrame, calendrier: pd.DataFrame
) -> tuple[dict, float]:
    """Grid search of the detector's window and thresholds on injected data (best F1)."""
    truth = injected["anomalie_injectee"].to_numpy()
    best = (-1.0, None)
    for fen in GRID_MODEL["fenetre_niveau"]:
        p = dict(CONTEXT_PARAMS, fenetre_niveau=fen)
        dv = deviations(
            residuals(injected, fitted.profils, fitted.compteurs, calendrier, p), fitted.compteurs
        )
        for sj, ss in itertools.product(GRID_MODEL["seuil_jour"], GRID_MODEL["seuil_serie"]):
            flags = np.nan_to_num(decide(dv["z"], dv["z3"], dv["run0"], sj, ss)) >= 1
            f1 = ev.prf(truth, flags)["f1"]
            if f1 > best[0] + 1e-9:
                best = (f1, dict(p, seuil_jour=float(sj), seuil_serie=float(ss)))
    return best[1], best[0]


def tune_baseline(injected: pd.DataFrame) -> tuple[dict, float]:
    """Grid search of the baseline's window, threshold and scale (best F1)."""
    truth = injected["anomalie_injectee"].to_numpy()
    best = (-1.0, None)
    for sem, seuil, esp in itertools.product(*GRID_BASELINE.values()):
        f1 = ev.prf(truth, ev.baseline_flags(injected, sem, seuil, esp))["f1"]
        if f1 > best[0] + 1e-9:
            best = (f1, {"semaines": sem, "seuil": seuil, "espace": esp})
    return best[1], best[0]


def run(daily: pd.DataFrame, calendrier: pd.DataFrame, names: dict[str, str]) -> Outcome:
    """Run the whole protocol.

    1. Tuning: fit on 2014-2017, inject anomalies (seed 2018) into the clean
       2018 series, pick the detector's and the baseline's parameters by F1.
    2. Test: fit on 2014-2018 with those parameters, inject anomalies (seed
       2019) into the clean 2019 series, score both methods on it; compare
       both with Nantes' published flag on the raw 2019 days.

    Args:
        daily: output of :func:`demos.velo.data.load_daily`.
        calendrier: output of :func:`demos.velo.data.build_calendar`.
        names: counter id -> name.

    Returns:
        The :class:`Outcome`.
    """
    year = daily["jour"].dt.year
    base_params = dict(CONTEXT_PARAMS, fenetre_niveau=GRID_MODEL["fenetre_niveau"][0])
    tune_fit = fit(daily[year < TUNE_YEAR], calendrier, base_params, names)
    tune_inj = ev.inject(ev.clean_series(daily[year == TUNE_YEAR]), SEED_TUNE)
    tune_inj = tune_inj[tune_inj["compteur"].isin(tune_fit.compteurs)].reset_index(drop=True)
    params, f1_tune = tune_model(tune_fit, tune_inj, calendrier)
    bparams, bf1_tune = tune_baseline(tune_inj)

    fitted = fit(daily[year < TEST_YEAR], calendrier, params, names)
    raw = daily[year == TEST_YEAR].reset_index(drop=True)
    test = ev.inject(ev.clean_series(raw), SEED_TEST)
    test = test[test["compteur"].isin(fitted.compteurs)].reset_index(drop=True)
    truth = test["anomalie_injectee"].to_numpy()

    scored = score_frame(test, fitted.profils, fitted.compteurs, calendrier, params)
    test = pd.concat(
        [test, scored[["attendu", "borne_basse", "borne_haute", "anomalie", "score"]]], axis=1
    )
    test["baseline"] = ev.baseline_flags(test, **bparams)
    solo = pd.concat(
        [
            score_frame(part, fitted.profils, fitted.compteurs, calendrier, params)["anomalie"]
            for _, part in test[["compteur", "jour", "comptage"]].groupby("compteur")
        ]
    ).reindex(test.index)

    observed = raw[raw["comptage"].notna() & raw["compteur"].isin(fitted.compteurs)].reset_index(
        drop=True
    )
    comparable = ev.nantes_comparable(observed).to_numpy()
    on_raw = score_frame(observed, fitted.profils, fitted.compteurs, calendrier, params)[
        "anomalie"
    ].to_numpy()
    base_raw = ev.baseline_flags(observed, **bparams)
    nantes = observed["drapeau_nantes"].to_numpy()

    n_inj = float(truth.sum())
    metrics = dict(ev.prf(truth, test["anomalie"]))
    metrics["accord_drapeau_nantes"] = ev.dice(on_raw[comparable], nantes[comparable])
    metrics["n_anomalies_injectees"] = n_inj
    baseline_metrics = dict(ev.prf(truth, test["baseline"]))
    baseline_metrics["accord_drapeau_nantes"] = ev.dice(base_raw[comparable], nantes[comparable])
    baseline_metrics["n_anomalies_injectees"] = n_inj

    extra = {
        "f1_reglage_2018": f1_tune,
        "f1_reglage_2018_reference": bf1_tune,
        "modele_compteur_seul": ev.prf(truth, solo),
        "rappel_par_type": ev.by_type(test["type_injection"], test["anomalie"]),
        "rappel_par_type_reference": ev.by_type(test["type_injection"], test["baseline"]),
        "n_jours_test": len(test),
        "n_compteurs_test": int(test["compteur"].nunique()),
        "n_evenements_injectes": int(test.loc[test["anomalie_injectee"], "evenement"].nunique()),
        "part_jours_signales_nantes_2019": float(nantes[comparable].mean()),
        "part_jours_signales_modele_2019": float(on_raw[comparable].mean()),
        "part_jours_signales_reference_2019": float(base_raw[comparable].mean()),
    }
    return Outcome(fitted, params, bparams, metrics, baseline_metrics, extra, test)
