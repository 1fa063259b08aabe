"""Build the ``pics-pollution-lille`` reference model into an MLflow model directory."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
import skops.io
from mlflow.models import infer_signature

from demos.air import chart, protocol
from demos.air.card import NAME, PROJECT, card
from demos.air.data import TARGET, load_table
from demos.air.pyfunc_model import INPUT_COLUMNS, POLLUTANTS
from demos.reference import CHART_FILE, METRICS_FILE, SAMPLE_FILE, ReferenceBuild

MODEL_CODE = Path(__file__).resolve().parent / "pyfunc_model.py"
SAMPLE_HALF_WINDOW = 14  # days each side of the episode's peak
PIP_REQUIREMENTS = [
    "mlflow==3.17.2",
    "scikit-learn==1.9.1",
    "pandas==3.1.1",
    "numpy==2.4.6",
    "skops==0.16.0",
]


def sample(test: pd.DataFrame) -> pd.DataFrame:
    """Four weeks around the highest PM10 and the highest O3 day of the test years.

    Returns:
        Rows in the model's input schema plus ``concentration_observee_lendemain``.
    """
    frames = []
    for pollutant in POLLUTANTS:
        rows = test[test["polluant"] == pollutant].reset_index(drop=True)
        peak = pd.Timestamp(rows.loc[rows[TARGET].idxmax(), "date"])
        start = (peak - pd.Timedelta(days=SAMPLE_HALF_WINDOW)).strftime("%Y-%m-%d")
        end = (peak + pd.Timedelta(days=SAMPLE_HALF_WINDOW)).strftime("%Y-%m-%d")
        frames.append(rows[rows["date"].between(start, end)])
    return pd.concat(frames, ignore_index=True)[[*INPUT_COLUMNS, TARGET]]


def build(out_dir: Path) -> ReferenceBuild:
    """Train, evaluate and save the model (see :mod:`demos.reference`).

    Args:
        out_dir: where to write the MLflow model directory; must not exist
            yet, or be empty.

    Returns:
        The :class:`~demos.reference.ReferenceBuild` (metrics of the model
        and of persistence on the 2022–2024 test years, card, project slug).
    """
    out_dir = Path(out_dir)
    result = protocol.run(load_table())
    demo_sample = sample(result.test)
    example = (
        demo_sample.groupby("polluant", sort=False).head(3)[INPUT_COLUMNS].reset_index(drop=True)
    )
    signature = infer_signature(example, result.model.predict(example))

    with tempfile.TemporaryDirectory(prefix="bibia-air-") as tmp:
        tmp_dir = Path(tmp)
        artifacts = {}
        for pollutant, estimator in result.model.estimators.items():
            path = tmp_dir / f"modele_{pollutant.lower()}.skops"
            skops.io.dump(estimator, path)
            artifacts[f"modele_{pollutant.lower()}"] = str(path)
        params_path = tmp_dir / "parametres.json"
        params_path.write_text(json.dumps(result.model.params, indent=2), encoding="utf-8")
        artifacts["parametres"] = str(params_path)
        if out_dir.exists() and not any(out_dir.iterdir()):
            out_dir.rmdir()  # save_model refuses an existing directory
        mlflow.pyfunc.save_model(
            path=str(out_dir),
            python_model=str(MODEL_CODE),
            artifacts=artifacts,
            signature=signature,
            input_example=example,
            pip_requirements=PIP_REQUIREMENTS,
        )

    (out_dir / "bibia").mkdir(exist_ok=True)
    demo_sample.to_csv(out_dir / SAMPLE_FILE, index=False)
    chart.draw(result.test, out_dir / CHART_FILE)
    (out_dir / METRICS_FILE).write_text(
        json.dumps({"model": result.metrics, "baseline": result.baseline}, indent=2),
        encoding="utf-8",
    )
    return ReferenceBuild(
        name=NAME,
        model_dir=out_dir,
        card=card(result.metrics, result.baseline, result.extra),
        metrics=result.metrics,
        baseline_metrics=result.baseline,
        project=PROJECT,
        alias="production",
        extra=result.extra,
    )


__all__ = ["build", "sample"]
