"""Fit the per-pollutant regressors and their forecast-error spread.

One ridge regression per pollutant (standardised features): PM10 on the log
scale (its errors are multiplicative), O3 on the concentration scale (its
errors are roughly additive). The exceedance probability assumes a Gaussian
forecast error whose spread ``sigma`` is measured out of fold (leave one
year out on the training years), on the days whose out-of-fold forecast
reaches 70 % of the threshold: the spread that matters is the one near the
threshold, not the one of quiet days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from demos.air.data import TARGET
from demos.air.pyfunc_model import POLLUTANTS, features, predict_frame, validate

SCALES = {"PM10": "log", "O3": "lineaire"}
SIGMA_REGIME = 0.7  # sigma is measured where the forecast reaches 70 % of the threshold
RIDGE_ALPHA = 1.0


@dataclass(frozen=True)
class FittedModel:
    """Fitted estimators and the parameters the pyfunc model reads back."""

    estimators: dict[str, Pipeline]
    params: dict[str, dict]

    def predict(self, data: pd.DataFrame) -> pd.DataFrame:
        """Same output as the saved MLflow model (``predict_frame``)."""
        return predict_frame(self.estimators, self.params, data)


def _regressor() -> Pipeline:
    return make_pipeline(StandardScaler(), Ridge(alpha=RIDGE_ALPHA))


def _target(frame: pd.DataFrame, scale: str) -> np.ndarray:
    values = frame[TARGET].to_numpy(dtype=float)
    return np.log(np.maximum(values, 1.0)) if scale == "log" else values


def fit(train: pd.DataFrame) -> FittedModel:
    """Fit one regressor per pollutant on ``train`` (the modelling table).

    Args:
        train: rows of :func:`demos.air.data.build_table` (input columns and
            ``concentration_observee_lendemain``), several years.

    Returns:
        The fitted model.

    Raises:
        ValueError: fewer than two training years, or a pollutant absent.
    """
    years = pd.to_datetime(train["date"]).dt.year
    n_years = years.nunique()
    if n_years < 2:
        raise ValueError("il faut au moins deux années d'apprentissage")
    estimators, params = {}, {}
    for pollutant, threshold in POLLUTANTS.items():
        rows = (train["polluant"] == pollutant).to_numpy()
        if not rows.any():
            raise ValueError(f"aucune ligne pour le polluant {pollutant}")
        scale = SCALES[pollutant]
        subset = train[rows]
        X = features(validate(subset)).to_numpy()
        y = _target(subset, scale)
        oof = cross_val_predict(
            _regressor(), X, y, groups=years[rows], cv=GroupKFold(n_splits=n_years)
        )
        limit = SIGMA_REGIME * threshold
        near = oof >= (np.log(limit) if scale == "log" else limit)
        residuals = (y - oof)[near] if near.sum() >= 30 else y - oof
        estimators[pollutant] = _regressor().fit(X, y)
        params[pollutant] = {
            "seuil": threshold,
            "echelle": scale,
            "sigma": float(np.sqrt(np.mean(residuals**2))),
            "jours_pour_sigma": len(residuals),
        }
    return FittedModel(estimators, params)
