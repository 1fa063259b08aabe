"""The evaluation protocol end to end: designs chosen on 2017-2018, 2019 scored once at the end.

1. **Validation** (:func:`validation_years`): for each validation year
   (2017, 2018), the detector is fitted on the years before it, and a family
   of injection draws (:func:`demos.velo.evaluate.family`) is injected into
   that year's clean series. The data loader refuses any row of the test year.
2. **Choice** (:func:`choose_design`, :func:`choose_baseline`): the level
   window, the long persistence window (off or 5 days) and the three
   thresholds of the detector, and the baseline's window, threshold and
   scale, are those with the best F1 *on average over the validation draws*.
   The choice code receives only validation data and checks it.
   Version 4 (the learned detector): a classifier on version 3's deviations
   (:func:`demos.velo.pyfunc_model.day_features`) is trained on anomalies
   injected into the *training* years (:func:`training_years`, seeds
   ``SEED_TRAIN`` + year); for each validation year, only on the years before
   it; its probability threshold (:func:`choose_threshold`) is the best on
   average over the same validation draws. The final classifier learns on the
   injected 2016-2018 draws.
3. **Test** (:func:`run`): the profiles are fitted on 2014-2018 with what was
   chosen, then scored once on a family of draws injected into the clean 2019
   series, beside the baseline with its chosen parameters: every figure is a
   mean and a spread over the family. Draw 0 is the original protocol (seed
   2019), the rows of the reference benchmark the platform evaluates.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from demos.velo import evaluate as ev
from demos.velo.binning import one_sort_binning
from demos.velo.pyfunc_model import day_features, decide, deviations, residuals, score_frame
from demos.velo.train import Fitted, fit, fit_variants
from evaluation.tasks.velo import baseline_deviation

VALIDATION_YEARS = (2017, 2018)
TEST_YEAR = 2019
SEED_TEST = 2019
#: Draws of the injection family per validation year (24 in all), and in the test year.
N_DRAWS_VALIDATION = 12
N_DRAWS_TEST = 24

CONTEXT_PARAMS = {"min_jours_niveau": 10, "min_autres": 4}
#: The structural choices (each needs its own residuals), then the thresholds. The level window
#: of 63 days and the detector without the long persistence rule lost on validation in version 2
#: (README, « Journal des choix ») and are no longer tried; the noise scale's growth on quieter
#: days (``exposant_echelle``, 0 = one scale per counter as in version 2) needs its own fit.
GRID_STRUCTURE = {
    "fenetre_niveau": (91,),
    "duree_longue": (5,),
    "exposant_echelle": (0.0, 0.5),
}
GRID_THRESHOLDS = {
    "seuil_jour": (5.0, 6.0, 7.0, 8.0),
    "seuil_hausse": (4.0, 4.5, 5.0, 5.5, 6.0),
    "seuil_serie": (3.0, 3.5, 4.0, 4.5),
    "seuil_long": (2.0, 2.5, 3.0),
}
GRID_BASELINE = {
    "semaines": (3, 4, 6, 8),
    "seuil": (2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0),
    "espace": ("brut", "log"),
}
#: Version 4, the learned detector: the years injected to train it (profiles fitted on the years
#: before each), the seed family of those draws (``SEED_TRAIN`` + year: never a validation or
#: test draw), the draws per year, the classifier's settings, the share of normal days kept (the
#: others weighted up to compensate) and the probability thresholds tried on validation.
TRAIN_YEARS = (2016, 2017, 2018)
SEED_TRAIN = 100_000
N_DRAWS_TRAIN = 32
CLASSIFIER = {
    "early_stopping": False,
    "max_iter": 150,
    "learning_rate": 0.05,
    "l2_regularization": 1.0,
    "min_samples_leaf": 50,
    "random_state": 0,
}
NORMAL_KEPT = 4
#: What :func:`labelled_features` adds to the features.
LABELS = ["jour", "anomalie_injectee", "type_injection"]
GRID_PROBA = tuple(round(0.80 + 0.02 * i, 2) for i in range(10))
#: Summary of a figure over the family: mean, standard deviation, 5th and 95th percentiles.
SPREAD = ("moyenne", "ecart_type", "p05", "p95")


class TestYearRead(ValueError):
    """The design-choice code was handed a row of the test year."""


def validation_only(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    """``frame`` itself, after checking that no row is of the test year or later.

    Raises:
        TestYearRead: a ``jour`` of :data:`TEST_YEAR` or later.
    """
    if len(frame) and int(frame["jour"].dt.year.max()) >= TEST_YEAR:
        raise TestYearRead(f"{what} : une ligne de {TEST_YEAR} ou après dans les données de choix")
    return frame


@dataclass
class ValidationYear:
    """One validation year: the detector fitted before it and the injected draws of it.

    Attributes:
        year: the validation year.
        fitted: the detector fitted on the years before it (first ``exposant_echelle``).
        draws: the family's draws injected into the year's clean series.
        fitted_by: the fits for each ``exposant_echelle`` of the grid (the noise
            scales depend on it).
    """

    year: int
    fitted: Fitted
    draws: list[tuple[ev.InjectionSpec, pd.DataFrame]]
    fitted_by: dict[float, Fitted] = field(default_factory=dict)

    def fit_for(self, exposant: float) -> Fitted:
        """The fit for one ``exposant_echelle`` (``fitted`` when there is no other)."""
        return self.fitted_by.get(exposant, self.fitted)


def validation_years(
    daily: pd.DataFrame,
    calendrier: pd.DataFrame,
    names: dict[str, str],
    n_draws: int = N_DRAWS_VALIDATION,
) -> list[ValidationYear]:
    """Fit before each validation year and inject its family of draws.

    Args:
        daily: the daily counts *before the test year* (checked).
        calendrier, names: see :func:`demos.velo.train.fit`.
        n_draws: draws of the family per year.

    Raises:
        TestYearRead: ``daily`` holds a day of the test year.
    """
    daily = validation_only(daily, "comptages de validation")
    year = daily["jour"].dt.year
    params = dict(CONTEXT_PARAMS, fenetre_niveau=GRID_STRUCTURE["fenetre_niveau"][0])
    out = []
    for vy in VALIDATION_YEARS:
        fits = fit_variants(
            daily[year < vy], calendrier, params, names, GRID_STRUCTURE["exposant_echelle"]
        )
        fitted = next(iter(fits.values()))
        clean = ev.clean_series(daily[year == vy])
        clean = clean[clean["compteur"].isin(fitted.compteurs)].reset_index(drop=True)
        draws = [(spec, ev.inject(clean, spec)) for spec in ev.family(vy, n_draws)]
        out.append(ValidationYear(vy, fitted, draws, fits))
    return out


def _check(validation: list[ValidationYear]) -> list[tuple[ValidationYear, pd.DataFrame]]:
    pairs = []
    for vy in validation:
        for _, frame in vy.draws:
            pairs.append((vy, validation_only(frame, f"tirage de validation {vy.year}")))
    return pairs


def choose_design(
    validation: list[ValidationYear], calendrier: pd.DataFrame
) -> tuple[dict, dict[str, float]]:
    """The detector's design with the best mean F1 over the validation draws.

    Args:
        validation: output of :func:`validation_years` (checked: no test-year row).
        calendrier: see :func:`demos.velo.data.build_calendar`.

    Returns:
        The chosen parameters and their validation figures (``f1``,
        ``precision``, ``recall`` means and ``f1_ecart_type``).

    Raises:
        TestYearRead: a draw holds a day of the test year.
    """
    pairs = _check(validation)
    truths = [frame["anomalie_injectee"].to_numpy() for _, frame in pairs]
    best: tuple[float, dict | None, dict[str, float]] = (-1.0, None, {})
    # The residuals depend on the window and the fit (its noise scales and sensitivities).
    resids: dict[tuple[int, float], list[pd.DataFrame]] = {}
    structures = itertools.product(*GRID_STRUCTURE.values())
    for fen, longue, expo in structures:
        p = dict(CONTEXT_PARAMS, fenetre_niveau=fen, duree_longue=longue, exposant_echelle=expo)
        if (fen, expo) not in resids:
            resids[fen, expo] = [
                residuals(
                    frame, vy.fit_for(expo).profils, vy.fit_for(expo).compteurs, calendrier, p
                )
                for vy, frame in pairs
            ]
        devs = [
            {k: d[k].to_numpy() for k in ("z", "z3", "run0", "zl")}
            for d in (
                deviations(r, vy.fit_for(expo).compteurs, longue, expo)
                for r, (vy, _) in zip(resids[fen, expo], pairs, strict=True)
            )
        ]
        longs = GRID_THRESHOLDS["seuil_long"] if longue else (0.0,)
        for sj, sh, ss, sl in itertools.product(
            GRID_THRESHOLDS["seuil_jour"],
            GRID_THRESHOLDS["seuil_hausse"],
            GRID_THRESHOLDS["seuil_serie"],
            longs,
        ):
            scores = [
                ev.prf(
                    t,
                    np.nan_to_num(decide(d["z"], d["z3"], d["run0"], sj, ss, d["zl"], sl, sh)) >= 1,
                )
                for t, d in zip(truths, devs, strict=True)
            ]
            f1 = float(np.mean([s["f1"] for s in scores]))
            if f1 > best[0] + 1e-9:
                chosen = dict(
                    p,
                    seuil_jour=float(sj),
                    seuil_hausse=float(sh),
                    seuil_serie=float(ss),
                    seuil_long=float(sl),
                )
                best = (f1, chosen, _mean_scores(scores))
    assert best[1] is not None
    return best[1], best[2]


def choose_baseline(validation: list[ValidationYear]) -> tuple[dict, dict[str, float]]:
    """The baseline's window, threshold and scale with the best mean F1 over the validation draws.

    Raises:
        TestYearRead: a draw holds a day of the test year.
    """
    pairs = _check(validation)
    truths = [frame["anomalie_injectee"].to_numpy() for _, frame in pairs]
    best: tuple[float, dict | None, dict[str, float]] = (-1.0, None, {})
    for sem, esp in itertools.product(GRID_BASELINE["semaines"], GRID_BASELINE["espace"]):
        devs = [baseline_deviation(frame, sem, esp) for _, frame in pairs]
        for seuil in GRID_BASELINE["seuil"]:
            scores = [
                ev.prf(t, (ecart > seuil) | zeros)
                for t, (ecart, zeros) in zip(truths, devs, strict=True)
            ]
            f1 = float(np.mean([s["f1"] for s in scores]))
            if f1 > best[0] + 1e-9:
                best = (f1, {"semaines": sem, "seuil": seuil, "espace": esp}, _mean_scores(scores))
    assert best[1] is not None
    return best[1], best[2]


def labelled_features(
    frame: pd.DataFrame, fitted: Fitted, calendrier: pd.DataFrame, params: dict
) -> pd.DataFrame:
    """The learned detector's features of one injected draw, with its truth and days.

    Returns:
        :func:`~demos.velo.pyfunc_model.day_features` plus ``jour``,
        ``anomalie_injectee`` and ``type_injection``.
    """
    d = deviations(
        residuals(frame, fitted.profils, fitted.compteurs, calendrier, params),
        fitted.compteurs,
        int(params["duree_longue"]),
        float(params["exposant_echelle"]),
    )
    out = day_features(d, fitted.compteurs, params)
    out["jour"] = frame["jour"].to_numpy()
    out["anomalie_injectee"] = frame["anomalie_injectee"].to_numpy()
    out["type_injection"] = frame["type_injection"].to_numpy()
    return out


def training_years(
    daily: pd.DataFrame,
    calendrier: pd.DataFrame,
    names: dict[str, str],
    params: dict,
    fits: dict[int, Fitted] | None = None,
    n_draws: int = N_DRAWS_TRAIN,
) -> dict[int, pd.DataFrame]:
    """Injected training data of the learned detector, one frame of features per year.

    For each of :data:`TRAIN_YEARS`: the profiles fitted on the years before it (``fits`` when
    given), ``n_draws`` draws of the family seeded ``SEED_TRAIN + year`` injected into its clean
    series, and their :func:`labelled_features`.

    Raises:
        TestYearRead: ``daily`` holds a day of the test year.
    """
    daily = validation_only(daily, "comptages d'apprentissage")
    year = daily["jour"].dt.year
    fits = dict(fits or {})
    out = {}
    for y in TRAIN_YEARS:
        fitted = fits.get(y) or fit(daily[year < y], calendrier, params, names)
        clean = ev.clean_series(daily[year == y])
        clean = clean[clean["compteur"].isin(fitted.compteurs)].reset_index(drop=True)
        out[y] = pd.concat(
            [
                labelled_features(ev.inject(clean, spec), fitted, calendrier, params)
                for spec in ev.family(SEED_TRAIN + y, n_draws)
            ],
            ignore_index=True,
        )
    return out


def fit_classifier(train: pd.DataFrame, variables: list[str]) -> HistGradientBoostingClassifier:
    """Fit the classifier on injected training days.

    One normal day in :data:`NORMAL_KEPT` is kept (a seeded draw), weighted
    :data:`NORMAL_KEPT`; every anomalous day is kept.
    """
    truth = train["anomalie_injectee"].to_numpy(dtype=bool)
    keep = truth | (np.random.default_rng(0).random(len(train)) < 1 / NORMAL_KEPT)
    weight = np.where(truth[keep], 1.0, float(NORMAL_KEPT))
    model = HistGradientBoostingClassifier(**CLASSIFIER)
    with one_sort_binning():  # the same bins, one sort per feature instead of 254
        return model.fit(train.loc[keep, variables], truth[keep], sample_weight=weight)


def choose_threshold(scored: list[pd.DataFrame]) -> tuple[float, dict[str, float]]:
    """The probability threshold with the best mean F1 over the validation draws.

    Args:
        scored: one frame per validation draw, with ``jour``, ``anomalie_injectee``
            and ``proba`` (the classifier's, trained before the draw's year).

    Returns:
        The threshold and its validation figures (as :func:`choose_design`).

    Raises:
        TestYearRead: a draw holds a day of the test year.
    """
    frames = [validation_only(f, "tirage de validation") for f in scored]
    best: tuple[float, float, dict[str, float]] = (-1.0, 0.0, {})
    for seuil in GRID_PROBA:
        scores = [ev.prf(f["anomalie_injectee"], f["proba"].to_numpy() >= seuil) for f in frames]
        f1 = float(np.mean([s["f1"] for s in scores]))
        if f1 > best[0] + 1e-9:
            best = (f1, float(seuil), _mean_scores(scores))
    return best[1], best[2]


def _mean_scores(scores: list[dict[str, float]]) -> dict[str, float]:
    out = {k: float(np.mean([s[k] for s in scores])) for k in ("precision", "recall", "f1")}
    out["f1_ecart_type"] = float(np.std([s["f1"] for s in scores]))
    return out


def spread(values: list[float]) -> dict[str, float]:
    """Mean, standard deviation, 5th and 95th percentiles of a figure over the family."""
    v = np.asarray(values, dtype=float)
    return {
        "moyenne": float(v.mean()),
        "ecart_type": float(v.std()),
        "p05": float(np.quantile(v, 0.05)),
        "p95": float(np.quantile(v, 0.95)),
    }


@dataclass
class Outcome:
    """Everything the build reports.

    Attributes:
        fitted: the final detector (trained on 2014-2018).
        params: its chosen parameters.
        baseline_params: the baseline's chosen parameters.
        metrics / baseline_metrics: the figures on draw 0 (the reference
            benchmark: ``precision``, ``recall``, ``f1``,
            ``n_anomalies_injectees``, ``accord_drapeau_nantes``), then the
            family's means and spreads (``f1_moyenne``, ``f1_ecart_type``,
            ``f1_p05``, ``f1_p95``, the same for precision and recall).
        extra: secondary figures (validation, recall per type, single-counter mode, per draw).
        test: draw 0 of 2019 with the model's and baseline's flags.
        classifier: version 4's classifier (trained on the injected 2016-2018 draws).
    """

    fitted: Fitted
    params: dict
    baseline_params: dict
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    extra: dict = field(default_factory=dict)
    test: pd.DataFrame | None = None
    classifier: HistGradientBoostingClassifier | None = None


def _score_draw(
    frame: pd.DataFrame,
    fitted: Fitted,
    calendrier: pd.DataFrame,
    params: dict,
    bparams: dict,
    classifier: HistGradientBoostingClassifier,
) -> tuple[pd.DataFrame, np.ndarray]:
    scored = score_frame(frame, fitted.profils, fitted.compteurs, calendrier, params, classifier)
    return scored, ev.baseline_flags(frame, **bparams)


def run(
    daily: pd.DataFrame,
    calendrier: pd.DataFrame,
    names: dict[str, str],
    n_draws_test: int = N_DRAWS_TEST,
) -> Outcome:
    """Run the whole protocol (see the module docstring).

    Args:
        daily: output of :func:`demos.velo.data.load_daily`.
        calendrier: output of :func:`demos.velo.data.build_calendar`.
        names: counter id -> name.
        n_draws_test: draws of the 2019 family.

    Returns:
        The :class:`Outcome`.
    """
    year = daily["jour"].dt.year
    validation = validation_years(daily[year < TEST_YEAR], calendrier, names)
    params, val_v3 = choose_design(validation, calendrier)
    bparams, val_base = choose_baseline(validation)

    # Version 4: a classifier on version 3's deviations, trained on injected training years; for
    # each validation year, only on the years before it; its threshold chosen on validation.
    expo = float(params["exposant_echelle"])
    train = training_years(
        daily[year < TEST_YEAR],
        calendrier,
        names,
        params,
        {vy.year: vy.fit_for(expo) for vy in validation},
    )
    variables = [c for c in train[TRAIN_YEARS[0]].columns if c not in LABELS]
    scored = []
    for vy in validation:
        clf = fit_classifier(
            pd.concat([train[y] for y in TRAIN_YEARS if y < vy.year], ignore_index=True), variables
        )
        for _, frame in vy.draws:
            feats = labelled_features(frame, vy.fit_for(expo), calendrier, params)
            feats["proba"] = clf.predict_proba(feats[variables])[:, 1]
            scored.append(feats[[*LABELS, "proba"]])
    seuil, val_model = choose_threshold(scored)
    val_all = pd.concat(scored, ignore_index=True)
    val_model["rappel_par_type"] = ev.by_type(
        val_all["type_injection"], val_all["proba"].to_numpy() >= seuil
    )
    params = dict(params, seuil_proba=seuil, variables=variables)
    classifier = fit_classifier(pd.concat(train.values(), ignore_index=True), variables)
    n_train = {str(y): len(t) for y, t in train.items()}
    del train, scored, val_all

    # The test year, scored once with what was chosen.
    fitted = fit(daily[year < TEST_YEAR], calendrier, params, names)
    raw = daily[year == TEST_YEAR].reset_index(drop=True)
    clean = ev.clean_series(raw)
    clean = clean[clean["compteur"].isin(fitted.compteurs)].reset_index(drop=True)
    per_draw: list[dict] = []
    test = None
    for i, spec in enumerate(ev.family(SEED_TEST, n_draws_test)):
        frame = ev.inject(clean, spec)
        scored, base = _score_draw(frame, fitted, calendrier, params, bparams, classifier)
        v3 = score_frame(frame, fitted.profils, fitted.compteurs, calendrier, params)["anomalie"]
        truth = frame["anomalie_injectee"].to_numpy()
        per_draw.append(
            {
                "tirage": i,
                "graine": spec.seed,
                "melange": spec.melange,
                "jours_anomaux": int(truth.sum()),
                "modele": ev.prf(truth, scored["anomalie"]),
                "reference": ev.prf(truth, base),
                "version_3": ev.prf(truth, v3),
                "rappel_par_type": ev.by_type(frame["type_injection"], scored["anomalie"]),
                "rappel_par_type_reference": ev.by_type(frame["type_injection"], base),
            }
        )
        if i == 0:
            cols = ["attendu", "borne_basse", "borne_haute", "anomalie", "score"]
            test = pd.concat([frame, scored[cols]], axis=1)
            test["baseline"] = base
    assert test is not None
    truth = test["anomalie_injectee"].to_numpy()
    solo = pd.concat(
        [
            score_frame(part, fitted.profils, fitted.compteurs, calendrier, params, classifier)[
                "anomalie"
            ]
            for _, part in test[["compteur", "jour", "comptage"]].groupby("compteur")
        ]
    ).reindex(test.index)

    observed = raw[raw["comptage"].notna() & raw["compteur"].isin(fitted.compteurs)].reset_index(
        drop=True
    )
    comparable = ev.nantes_comparable(observed).to_numpy()
    on_raw = score_frame(
        observed, fitted.profils, fitted.compteurs, calendrier, params, classifier
    )["anomalie"].to_numpy()
    base_raw = ev.baseline_flags(observed, **bparams)
    nantes = observed["drapeau_nantes"].to_numpy()

    n_inj = float(truth.sum())
    metrics = dict(ev.prf(truth, test["anomalie"]))
    metrics["accord_drapeau_nantes"] = ev.dice(on_raw[comparable], nantes[comparable])
    metrics["n_anomalies_injectees"] = n_inj
    baseline_metrics = dict(ev.prf(truth, test["baseline"]))
    baseline_metrics["accord_drapeau_nantes"] = ev.dice(base_raw[comparable], nantes[comparable])
    baseline_metrics["n_anomalies_injectees"] = n_inj
    for who, out in (("modele", metrics), ("reference", baseline_metrics)):
        for key in ("precision", "recall", "f1"):
            summary = spread([d[who][key] for d in per_draw])
            out.update({f"{key}_{stat}": summary[stat] for stat in SPREAD})

    def type_recall(who: str) -> dict[str, float]:
        keys = sorted({k for d in per_draw for k in d[who]})
        return {k: float(np.mean([d[who][k] for d in per_draw if k in d[who]])) for k in keys}

    extra = {
        "validation": {
            "annees": list(VALIDATION_YEARS),
            "tirages_par_annee": len(validation[0].draws),
            "annees_lues": sorted({int(y) for y in daily.loc[year < TEST_YEAR, "jour"].dt.year}),
            "modele": val_model,
            "version_3": val_v3,
            "reference": val_base,
            "seuil_proba": seuil,
            "grille_seuil_proba": list(GRID_PROBA),
        },
        "apprentissage": {
            "annees_injectees": list(TRAIN_YEARS),
            "tirages_par_annee": N_DRAWS_TRAIN,
            "graines": [SEED_TRAIN + y for y in TRAIN_YEARS],
            "jours_par_annee": n_train,
            "classifieur": dict(CLASSIFIER),
            "jours_normaux_gardes": f"1 sur {NORMAL_KEPT}",
            "n_variables": len(variables),
        },
        "version_3_famille": {
            key: spread([d["version_3"][key] for d in per_draw])
            for key in ("precision", "recall", "f1")
        },
        "n_tirages_test": len(per_draw),
        "tirages_test": per_draw,
        "modele_compteur_seul": ev.prf(truth, solo),
        "rappel_par_type": ev.by_type(test["type_injection"], test["anomalie"]),
        "rappel_par_type_reference": ev.by_type(test["type_injection"], test["baseline"]),
        "rappel_par_type_famille": type_recall("rappel_par_type"),
        "rappel_par_type_famille_reference": type_recall("rappel_par_type_reference"),
        "n_jours_test": len(test),
        "n_compteurs_test": int(test["compteur"].nunique()),
        "n_evenements_injectes": int(test.loc[test["anomalie_injectee"], "evenement"].nunique()),
        "part_jours_signales_nantes_2019": float(nantes[comparable].mean()),
        "part_jours_signales_modele_2019": float(on_raw[comparable].mean()),
        "part_jours_signales_reference_2019": float(base_raw[comparable].mean()),
    }
    return Outcome(fitted, params, bparams, metrics, baseline_metrics, extra, test, classifier)
