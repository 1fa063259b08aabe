"""``build``: train, evaluate and write the MLflow model directory."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import pandas as pd
import skops.io as sio
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from demos.reference import CHART_FILE, METRICS_FILE, SAMPLE_FILE, ReferenceBuild
from demos.velo.card import make_card
from demos.velo.data import build_calendar, counter_names, load_daily
from demos.velo.protocol import TEST_YEAR, Outcome, run
from evaluation.benchmark_data import BenchmarkData
from evaluation.tasks import velo as task

NAME = "velo-anomalies-nantes"
PROJECT = "velo-anomalies-nantes"
MODEL_FILE = Path(__file__).parent / "pyfunc_model.py"
SAMPLE_COUNTERS = ("881", "664", "745")
SAMPLE_WEEKS = 6
CHART_COUNTER = "881"
PIP_REQUIREMENTS = [
    "mlflow==3.17.2",
    "pandas==3.1.1",
    "numpy==2.4.6",
    "scikit-learn==1.9.1",
    "skops==0.16.0",
]

SIGNATURE = ModelSignature(
    inputs=Schema(
        [ColSpec("long", "compteur"), ColSpec("string", "jour"), ColSpec("long", "comptage")]
    ),
    outputs=Schema(
        [
            ColSpec("double", "attendu"),
            ColSpec("double", "borne_basse"),
            ColSpec("double", "borne_haute"),
            ColSpec("boolean", "anomalie"),
            ColSpec("double", "score"),
        ]
    ),
)


def build(out_dir: Path) -> ReferenceBuild:
    """Choose the design on 2017-2018, train (profiles 2014-2018, classifier on injected 2016-2018),
    score 2019 once, write the MLflow model.

    Args:
        out_dir: where the MLflow model directory is written (must not exist
            or be empty).

    Returns:
        The :class:`~demos.reference.ReferenceBuild` for the catalogue.
    """
    out_dir = Path(out_dir)
    daily = load_daily()
    calendrier = build_calendar()
    outcome = run(daily, calendrier, counter_names(daily))
    sample = make_sample(outcome.test)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        profils = tmp / "profils.skops"
        sio.dump(outcome.fitted.profils, profils)
        etat = tmp / "etat.json"
        etat.write_text(
            json.dumps(
                {"compteurs": outcome.fitted.compteurs, "params": outcome.params},
                ensure_ascii=False,
                indent=1,
            ),
            encoding="utf-8",
        )
        classifieur = tmp / "classifieur.skops"
        sio.dump(outcome.classifier, classifieur)
        cal = tmp / "calendrier.csv"
        calendrier.reset_index().to_csv(cal, index=False, date_format="%Y-%m-%d")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        mlflow.pyfunc.save_model(
            path=str(out_dir),
            python_model=str(MODEL_FILE),
            artifacts={
                "profils": str(profils),
                "classifieur": str(classifieur),
                "etat": str(etat),
                "calendrier": str(cal),
            },
            signature=SIGNATURE,
            input_example=sample[["compteur", "jour", "comptage"]].head(5),
            pip_requirements=PIP_REQUIREMENTS,
        )

    extra_dir = out_dir / "bibia"
    extra_dir.mkdir(parents=True, exist_ok=True)
    sample.to_csv(out_dir / SAMPLE_FILE, index=False)
    plot(outcome, out_dir / CHART_FILE)
    metrics = {k: float(v) for k, v in outcome.metrics.items()}
    baseline = {k: float(v) for k, v in outcome.baseline_metrics.items()}
    (out_dir / METRICS_FILE).write_text(
        json.dumps({"model": metrics, "baseline": baseline}, indent=2), encoding="utf-8"
    )
    return ReferenceBuild(
        name=NAME,
        model_dir=out_dir,
        card=make_card(outcome),
        metrics=metrics,
        baseline_metrics=baseline,
        project=PROJECT,
        alias="production",
        extra={
            "parametres": outcome.params,
            "parametres_reference": outcome.baseline_params,
            **outcome.extra,
        },
        benchmark=benchmark(outcome.test),
    )


BENCHMARK_SLUG = "velo-nantes-2019-anomalies-injectees"


def benchmark(test: pd.DataFrame) -> BenchmarkData:
    """The injected 2019 series the model was scored on, as the task's reference benchmark.

    Args:
        test: :attr:`~demos.velo.protocol.Outcome.test`.

    Returns:
        ``compteur`` (int), ``jour`` (ISO), ``comptage`` (int) and the truth
        ``anomalie_injectee``, ``type_injection``, in the evaluation's row order.

    Raises:
        ValueError: a count is not a whole number (the benchmark would not
            hold the rows evaluated).
    """
    counts = test["comptage"].astype(float)
    if counts.isna().any() or (counts % 1 != 0).any():
        raise ValueError("comptages non entiers dans la série de test injectée")
    frame = pd.DataFrame(
        {
            "compteur": test["compteur"].astype(int).to_numpy(),
            "jour": test["jour"].dt.strftime("%Y-%m-%d").to_numpy(),
            "comptage": counts.astype("int64").to_numpy(),
            "anomalie_injectee": test["anomalie_injectee"].astype(bool).to_numpy(),
            "type_injection": test["type_injection"].astype(str).to_numpy(),
        }
    )
    columns = [c.name for c in (*task.TASK.inputs, *task.TASK.truth)]
    return BenchmarkData(
        frame=frame[columns],
        slug=BENCHMARK_SLUG,
        title=f"Compteurs vélo de Nantes, {TEST_YEAR}, avec anomalies injectées",
        task=task.SLUG,
        description=(
            f"Comptages journaliers des compteurs vélo de Nantes Métropole en {TEST_YEAR}, "
            "réduits aux jours « propres » (comptage présent et positif, voisins non nuls, non "
            "signalés par le détecteur publié de Nantes, à moins d'un facteur 3 de sa valeur "
            "modélisée), dans lesquels des anomalies connues ont été injectées (graine "
            f"{TEST_YEAR}) : par compteur, 3 pannes (2 à 10 jours à zéro), 3 dérives (3 à 10 "
            "jours multipliés ou divisés par 2 à 10) et 4 pics isolés (un jour multiplié par 3 à "
            "10). La vérité (anomalie_injectee, type_injection) est donc connue. C'est le tirage 0 "
            "de la famille de tirages sur laquelle le modèle de référence velo-anomalies-nantes "
            "est évalué (entraînement sur 2014-2018 ; les autres tirages changent graines, "
            "mélanges, durées et amplitudes) ; les comptages sont modifiés par l'injection et ne "
            "sont pas des données publiées telles quelles."
        ),
        producer="Nantes Métropole (anomalies injectées par bibia)",
        period_start=str(frame["jour"].min()),
        period_end=str(frame["jour"].max()),
        licence=(
            "Données ouvertes de Nantes Métropole (licence indiquée sur la fiche du jeu "
            "« Comptages vélo de Nantes Métropole »)"
        ),
        source_url="https://www.data.gouv.fr/fr/datasets/comptages-velo-de-nantes-metropole/",
    )


def make_sample(test: pd.DataFrame) -> pd.DataFrame:
    """A few weeks of the injected 2019 test data for three counters.

    The window is the ``SAMPLE_WEEKS``-week span (starting on a Monday) that
    holds the most injected anomaly events on those counters.

    Returns:
        Columns ``compteur`` (int), ``jour`` (ISO text), ``comptage`` (int),
        ``anomalie_injectee`` (the truth).
    """
    part = test[test["compteur"].isin(SAMPLE_COUNTERS)]
    span = pd.Timedelta(weeks=SAMPLE_WEEKS)
    best, best_n = None, -1
    for start in pd.date_range("2019-01-07", "2019-11-18", freq="W-MON"):
        win = part[(part["jour"] >= start) & (part["jour"] < start + span)]
        n = win.loc[win["anomalie_injectee"]].groupby("compteur")["evenement"].nunique()
        score = n.sum() + 10 * (n > 0).sum()
        if score > best_n:
            best, best_n = start, score
    win = part[(part["jour"] >= best) & (part["jour"] < best + span)].sort_values(
        ["compteur", "jour"]
    )
    return pd.DataFrame(
        {
            "compteur": win["compteur"].astype(int).to_numpy(),
            "jour": win["jour"].dt.strftime("%Y-%m-%d").to_numpy(),
            "comptage": win["comptage"].astype(int).to_numpy(),
            "anomalie_injectee": win["anomalie_injectee"].astype(bool).to_numpy(),
        }
    )


def plot(outcome: Outcome, path: Path) -> None:
    """One counter's 2019 test series: band, injected anomalies, detections."""
    s = outcome.test[outcome.test["compteur"] == CHART_COUNTER].sort_values("jour")
    name = outcome.fitted.compteurs[CHART_COUNTER]["nom"]
    grid = s.set_index("jour").reindex(pd.date_range(s["jour"].min(), s["jour"].max(), freq="D"))
    fig, ax = plt.subplots(figsize=(11, 4.5), dpi=110)
    ax.fill_between(
        grid.index,
        grid["borne_basse"],
        grid["borne_haute"],
        color="#9ecae1",
        alpha=0.5,
        label="intervalle attendu",
        step="mid",
    )
    ax.plot(grid.index, grid["attendu"], color="#3182bd", lw=1, label="comptage attendu")
    ax.plot(
        grid.index,
        grid["comptage"],
        color="black",
        lw=0.8,
        label="comptage observé (avec anomalies injectées)",
    )
    inj = s[s["anomalie_injectee"]]
    ax.scatter(
        inj["jour"],
        inj["comptage"],
        s=60,
        facecolors="none",
        edgecolors="#d62728",
        lw=1.5,
        label="anomalie injectée (vérité)",
        zorder=3,
    )
    det = s[s["anomalie"]]
    ax.scatter(
        det["jour"], det["comptage"], s=14, color="#ff7f0e", label="détection du modèle", zorder=4
    )
    ax.set_yscale("symlog", linthresh=100)
    m, b = outcome.metrics, outcome.baseline_metrics
    ax.set_title(
        f"Compteur {CHART_COUNTER} ({name}), test 2019, tirage 0 — F1 modèle {m['f1']:.2f}, "
        f"référence médiane ± MAD {b['f1']:.2f} (tous compteurs ; moyenne sur la famille : "
        f"{m['f1_moyenne']:.2f} contre {b['f1_moyenne']:.2f})"
    )
    ax.set_xlabel("jour")
    ax.set_ylabel("passages de vélos par jour (échelle log)")
    ax.grid(alpha=0.3)
    fig.legend(
        *ax.get_legend_handles_labels(), loc="lower center", ncol=5, fontsize=8, frameon=False
    )
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path)
    plt.close(fig)
