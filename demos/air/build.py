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
from evaluation.benchmark_data import BenchmarkData
from evaluation.tasks import air as task

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
        benchmark=benchmark(result.test),
    )


BENCHMARK_SLUG = "air-lille-annees-test"


def benchmark(test: pd.DataFrame) -> BenchmarkData:
    """The test years the model was scored on, as the task's reference benchmark.

    Args:
        test: :attr:`~demos.air.protocol.Result.test`.

    Returns:
        The model's input columns and the truth ``concentration_observee_lendemain``,
        in the evaluation's row order.
    """
    columns = [c.name for c in (*task.TASK.inputs, *task.TASK.truth)]
    frame = test[columns].reset_index(drop=True)
    first, last = protocol.TEST_YEARS
    return BenchmarkData(
        frame=frame,
        slug=BENCHMARK_SLUG,
        title=f"Qualité de l'air, agglomération lilloise (synthétique), {first}-{last}",
        task=task.SLUG,
        description=(
            f"Données SYNTHÉTIQUES, aucune mesure réelle : les années de test {first} à {last} "
            "des séries générées par demos/air/synthetic.py (graine fixe, reproductible) pour "
            "l'agglomération lilloise, une ligne par jour J et par polluant (PM10, O3) : la "
            "concentration du jour, la météo prévue pour J+1 et, comme vérité, la concentration "
            "observée à J+1. Ce sont exactement les lignes sur lesquelles le modèle de référence "
            f"pics-pollution-lille a été évalué (entraînement sur {protocol.TRAIN_YEARS[0]}-"
            f"{protocol.TRAIN_YEARS[1]}). Pour un usage réel : les mesures d'Atmo Hauts-de-France "
            "et les prévisions de Météo-France."
        ),
        producer="bibia (données synthétiques, demos/air/synthetic.py)",
        period_start=str(frame["date"].min()),
        period_end=str(frame["date"].max()),
        licence="Licence Ouverte / Etalab 2.0",
        source_url="",
    )


__all__ = ["benchmark", "build", "sample"]
