"""The evaluation protocol: train on 2015–2021, test on 2022–2024.

The model is compared with two references, on the same test days:

- persistence (the named baseline): tomorrow's concentration is today's;
  an alert is raised when today exceeds the threshold; the probability is
  the *calibrated* persistence, i.e. the frequency of an exceedance the day
  after an exceedance day (or after a calm day), counted on the training
  years, per pollutant;
- climatology: the monthly exceedance frequency of the training years.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from demos.air import evaluate as ev
from demos.air.data import TARGET
from demos.air.pyfunc_model import POLLUTANTS
from demos.air.train import FittedModel, fit
from evaluation.tasks import air as task

TRAIN_YEARS = (2015, 2021)
TEST_YEARS = (2022, 2024)
_REPORTED = task.REPORTED


@dataclass(frozen=True)
class Result:
    """Everything the protocol measured.

    Attributes:
        metrics: the model's pooled metrics (both pollutants).
        baseline: persistence's pooled metrics.
        extra: climatology, binary persistence, per-pollutant details, counts.
        test: the test rows with the model's and the baselines' forecasts.
        model: the model fitted on the training years.
    """

    metrics: dict[str, float]
    baseline: dict[str, float]
    extra: dict
    test: pd.DataFrame
    model: FittedModel


def split(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training and test rows of the modelling table, by calendar year of ``date``."""
    years = pd.to_datetime(table["date"]).dt.year
    train = table[years.between(*TRAIN_YEARS)].reset_index(drop=True)
    test = table[years.between(*TEST_YEARS)].reset_index(drop=True)
    return train, test


def _block(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    event = frame["evenement"].to_numpy()
    model = ev.scores(
        frame["probabilite_depassement"],
        frame["probabilite_depassement"] >= ev.ALERT_PROBABILITY,
        event,
    )
    persistence = ev.scores(frame["p_persistance"], frame["alerte_persistance"], event)
    binary = ev.scores(
        frame["alerte_persistance"].astype(float), frame["alerte_persistance"], event
    )
    climatology = ev.scores(
        frame["p_climatologie"], frame["p_climatologie"] >= ev.ALERT_PROBABILITY, event
    )
    model["brier_skill_score_persistance"] = ev.skill(model["brier"], persistence["brier"])
    model["brier_skill_score_climatologie"] = ev.skill(model["brier"], climatology["brier"])
    return {
        "modele": model,
        "persistance": persistence,
        "persistance_binaire": binary,
        "climatologie": climatology,
    }


def run(table: pd.DataFrame) -> Result:
    """Fit on the training years and score the test years.

    Args:
        table: the modelling table (:func:`demos.air.data.build_table`).

    Returns:
        The :class:`Result`.
    """
    train, test = split(table)
    model = fit(train)
    test = pd.concat([test, model.predict(test)], axis=1)
    threshold = test["polluant"].map(POLLUTANTS).to_numpy(dtype=float)
    test["evenement"] = test[TARGET].to_numpy() >= threshold
    test["alerte_persistance"] = test["concentration_jour"].to_numpy() >= threshold
    test["p_persistance"] = ev.persistence_probability(train, test, POLLUTANTS)
    test["p_climatologie"] = ev.climatology_probability(train, test, POLLUTANTS)

    pooled = _block(test)
    per_pollutant = {p: _block(test[test["polluant"] == p]) for p in POLLUTANTS}
    metrics = {
        k: round(float(pooled["modele"][k]), task.DECIMALS)
        for k in (*_REPORTED, "brier_skill_score_persistance", "brier_skill_score_climatologie")
    }
    baseline = {k: round(float(pooled["persistance"][k]), task.DECIMALS) for k in _REPORTED}
    extra = {
        "brier_climatologie": round(float(pooled["climatologie"]["brier"]), 5),
        "brier_persistance_binaire": round(float(pooled["persistance_binaire"]["brier"]), 5),
        "evenements_test": int(pooled["modele"]["evenements"]),
        "jours_test": int(len(test) // len(POLLUTANTS)),
        "periode_apprentissage": f"{TRAIN_YEARS[0]}-{TRAIN_YEARS[1]}",
        "periode_test": f"{TEST_YEARS[0]}-{TEST_YEARS[1]}",
        "seuil_alerte_probabilite": ev.ALERT_PROBABILITY,
        "par_polluant": {
            p: {
                name: {k: round(float(v), 4) for k, v in block.items()}
                for name, block in blocks.items()
            }
            for p, blocks in per_pollutant.items()
        },
        "parametres": model.params,
        "erreur_absolue_moyenne": {
            p: round(float(np.mean(np.abs(g["concentration_prevue"] - g[TARGET]))), 2)
            for p, g in test.groupby("polluant")
        },
        "erreur_absolue_moyenne_persistance": {
            p: round(float(np.mean(np.abs(g["concentration_jour"] - g[TARGET]))), 2)
            for p, g in test.groupby("polluant")
        },
    }
    return Result(metrics, baseline, extra, test, model)
