"""Build the cantine-nantes reference model: train, evaluate, save the MLflow directory."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import pandas as pd
import skops.io
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from demos.cantine import data, train
from demos.cantine.card import card
from demos.reference import CHART_FILE, METRICS_FILE, SAMPLE_FILE, ReferenceBuild
from evaluation.benchmark_data import BenchmarkData
from evaluation.tasks import cantine as task

NAME = "cantine-nantes"
PROJECT = "cantine-nantes"
ALIAS = "production"
#: The alias of the staff-order variant (``demos.cantine.commande``).
STAFF_ALIAS = "correction-commande"
MODEL_FILE = Path(__file__).parent / "model.py"
PIP_REQUIREMENTS = [
    "mlflow==3.17.2",
    "scikit-learn==1.9.1",
    "pandas==3.1.1",
    "numpy==2.4.6",
    "skops==0.16.0",
]
SAMPLE_CANTEENS = [
    "LONGCHAMP",
    "CHAUVINIERE E",
    "JEAN ZAY M",
    "AIME CESAIRE",
    "FRANCOIS DALLET/DOCTEUR TEILLAIS",
]
SAMPLE_PERIOD = ("2017-11-06", "2017-12-01")

SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec("string", "date"),
            ColSpec("string", "cantine_nom"),
            ColSpec("boolean", "greve", required=False),
        ]
    ),
    outputs=Schema([ColSpec("long", "repas_prevus"), ColSpec("long", "commande_recommandee")]),
)
#: The staff-order variant's signature: the staff's order of the day is required too.
STAFF_SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec("string", "date"),
            ColSpec("string", "cantine_nom"),
            ColSpec("boolean", "greve", required=False),
            ColSpec("long", "prevision"),
        ]
    ),
    outputs=SIGNATURE.outputs,
)


def build(out_dir: Path, staff_order: bool = False) -> ReferenceBuild:
    """Train on 2010-11..2016-17, evaluate on 2017-18 and save the model to ``out_dir``.

    Args:
        out_dir: where to write the MLflow model directory (must not exist
            or be empty).
        staff_order: build the variant that takes the staff's order of the
            day (``prevision``) as an input and corrects it, instead of the
            calendar-only model.

    Returns:
        The :class:`~demos.reference.ReferenceBuild` with the card, the
        model's metrics and the staff orders' metrics on the same protocol.
    """
    out_dir = Path(out_dir)
    served = data.served()
    tables = data.tables(history=served)
    fitted = train.train(served, tables, staff_order)
    rows, metrics, baseline = train.evaluate(served, tables, fitted)
    inputs = ["date", "cantine_nom", "greve", *(["prevision"] if staff_order else [])]
    validation = validation_figures(fitted.choice)

    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        skops.io.dump(fitted.central, staging / "central.skops")
        skops.io.dump(fitted.upper, staging / "upper.skops")
        params = {
            "facteur_commande": fitted.factor,
            "facteurs_par_cantine": fitted.factors,
            "quantile_commande": train.UPPER_QUANTILE,
            "entree_commande_equipes": staff_order,
            "part_deficit_visee": fitted.choice.share,
            "garde_commande_equipes": fitted.guard,
            "calage_2016_2017": fitted.calibration,
            "validation_2016_2017": validation,
        }
        (staging / "params.json").write_text(json.dumps(params, indent=2), encoding="utf-8")
        artifacts = {
            "central": str(staging / "central.skops"),
            "upper": str(staging / "upper.skops"),
            "params": str(staging / "params.json"),
            "tables": str(tables.write(staging / "tables")),
        }
        sample = sample_frame(served, tables, staff_order)
        mlflow.pyfunc.save_model(
            path=str(out_dir),
            python_model=str(MODEL_FILE),
            artifacts=artifacts,
            signature=STAFF_SIGNATURE if staff_order else SIGNATURE,
            input_example=sample[inputs].head(5),
            pip_requirements=PIP_REQUIREMENTS,
        )

    (out_dir / "bibia").mkdir(exist_ok=True)
    sample.to_csv(out_dir / SAMPLE_FILE, index=False)
    chart(rows, out_dir / CHART_FILE)
    (out_dir / METRICS_FILE).write_text(
        json.dumps({"model": metrics, "baseline": baseline}, indent=2), encoding="utf-8"
    )
    return ReferenceBuild(
        name=NAME,
        model_dir=out_dir,
        card=card(metrics, baseline, staff_order, validation),
        metrics=metrics,
        baseline_metrics=baseline,
        project=PROJECT,
        alias=STAFF_ALIAS if staff_order else ALIAS,
        extra={
            "facteur_commande": fitted.factor,
            "calage_2016_2017": fitted.calibration,
            "validation_2016_2017": validation,
            "entree_commande_equipes": staff_order,
        },
        benchmark=benchmark(rows),
    )


def validation_figures(choice: train.Choice) -> dict:
    """The design choice as plain data: each candidate design's validation metrics per year
    (keyed ``"share"``, or ``"share/guard"`` for the staff-order variant), the staff's, the pick."""

    def key(share: float, guard: float) -> str:
        return f"{share:.2f}/{guard:.2f}" if choice.staff_order else f"{share:.2f}"

    return {
        "part_deficit_visee": choice.share,
        "garde_commande_equipes": choice.guard,
        "candidats": {key(*design): years for design, years in choice.candidates.items()},
        "equipes": choice.staff,
    }


BENCHMARK_SLUG = "cantine-nantes-2017-2018"


def benchmark(rows: pd.DataFrame) -> BenchmarkData:
    """The rows the test year was scored on, as the task's reference benchmark.

    Args:
        rows: the evaluated rows of :func:`demos.cantine.train.evaluate`.

    Returns:
        ``date`` (ISO), ``cantine_nom``, ``greve``, the staff's order
        ``prevision`` (an input: known when the order is placed) and the
        truth ``reel``, in the evaluation's row order.
    """
    frame = pd.DataFrame(
        {
            "date": rows["date"].dt.strftime("%Y-%m-%d"),
            "cantine_nom": rows["cantine_nom"].astype(str),
            "greve": rows["greve"].astype(bool),
            "prevision": rows["prevision"].fillna(0).round().astype("int64"),
            "reel": rows["reel"].astype("int64"),
        }
    )
    columns = [c.name for c in (*task.TASK.inputs, *task.TASK.truth)]
    return BenchmarkData(
        frame=frame[columns].reset_index(drop=True),
        slug=BENCHMARK_SLUG,
        title="Cantines de Nantes, année scolaire 2017-2018",
        task=task.SLUG,
        description=(
            "Repas servis par les 87 cantines scolaires de Nantes pendant l'année scolaire "
            "2017-2018, un couple cantine-jour par ligne : les jours où des repas ont été servis, "
            "hors mercredis, avec les jours de grève connus et la commande passée par les équipes "
            "(prevision, une entrée : elle est connue quand la commande est recommandée). Ce sont exactement les lignes sur "
            "lesquelles le modèle de référence cantine-nantes a été évalué (entraînement sur les "
            "années 2011-2012 à 2016-2017). Extrait publié par Nantes Métropole dans le dépôt "
            "nantesmetropole/school_meal_forecast_xgboost (jeu ouvert « Nombre de convives par "
            "jour, cantines de Nantes »), sites regroupés par cantine."
        ),
        producer="Nantes Métropole",
        period_start=str(frame["date"].min()),
        period_end=str(frame["date"].max()),
        licence="MIT (Copyright (c) 2020 Nantes Métropole), extrait du dépôt "
        "nantesmetropole/school_meal_forecast_xgboost",
        source_url=(
            "https://data.nantesmetropole.fr/explore/dataset/"
            "244400404_nombre-convives-jour-cantine-nantes-2011/"
        ),
    )


def sample_frame(served: pd.DataFrame, tables, staff_order: bool = False) -> pd.DataFrame:
    """Four weeks of 2017-18 (with strike days) for five canteens, weekdays, with the truth ``reel``
    (and the staff's order ``prevision`` for the staff-order variant)."""
    days = pd.bdate_range(*SAMPLE_PERIOD)
    grid = pd.MultiIndex.from_product(
        [days, SAMPLE_CANTEENS], names=["date", "cantine_nom"]
    ).to_frame(index=False)
    grid = grid.merge(
        served[["date", "cantine_nom", "prevision", "reel"]],
        on=["date", "cantine_nom"],
        how="left",
    )
    grid["greve"] = grid["date"].isin(tables.greves["date"])
    grid["prevision"] = grid["prevision"].fillna(0).round().astype("int64")
    grid["reel"] = grid["reel"].fillna(0).astype("int64")
    grid["date"] = grid["date"].dt.strftime("%Y-%m-%d")
    staff = ["prevision"] if staff_order else []
    return grid[["date", "cantine_nom", "greve", *staff, "reel"]]


def chart(rows: pd.DataFrame, path: Path) -> None:
    """Daily totals over the test year: meals served, model order, staff order."""
    daily = rows.groupby("date")[["reel", "commande_recommandee", "prevision"]].sum()
    fig, ax = plt.subplots(figsize=(11, 4.5), dpi=100)
    ax.plot(
        daily.index, daily["reel"], color="black", lw=1.6, marker=".", ms=3, label="Repas servis"
    )
    ax.plot(
        daily.index,
        daily["commande_recommandee"],
        color="tab:blue",
        lw=1.1,
        label="Commande recommandée (modèle)",
    )
    ax.plot(
        daily.index,
        daily["prevision"],
        color="tab:orange",
        lw=1.1,
        ls="--",
        label="Commande des équipes (prévision)",
    )
    ax.set_title(
        "Cantines de Nantes, année scolaire 2017-2018 : totaux journaliers (hors mercredis)"
    )
    ax.set_ylabel("Repas par jour (87 cantines)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
