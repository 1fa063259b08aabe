"""Une experte enregistre un modèle scikit-learn avec sa fiche, en un appel.

Le script entraîne un petit pipeline scikit-learn (normalisation puis
régression ridge) qui prévoit la consommation d'eau hebdomadaire d'un
bâtiment municipal à partir de sa surface, de son occupation et de la
température, sur des données synthétiques reproductibles. Il l'évalue contre
une référence nommée (la consommation moyenne de l'apprentissage), reporte
les métriques dans la fiche, puis l'enregistre dans bibia avec l'alias
« production ».

Usage ::

    export BIBIA_URL=http://127.0.0.1:8000
    export BIBIA_TOKEN=bibia_xxxxxxxx_...      # jeton d'une experte de la collectivité
    python examples/register_model.py [--name eau-batiments] [--card examples/fiche-exemple.yaml]

Le jeton se crée avec ``bibia token create --org <collectivité> --role expert``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

CARD = Path(__file__).with_name("fiche-exemple.yaml")


def training_data(rows: int = 400, seed: int = 44) -> Any:
    """Weekly water use of municipal buildings (m³): synthetic, but with a plausible shape."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "surface": rng.uniform(200, 5_000, rows).round(0),
            "occupation": rng.uniform(0.1, 1.0, rows).round(2),
            "temperature": rng.normal(14, 7, rows).round(1),
        }
    )
    frame["consommation"] = (
        0.004 * frame["surface"]
        + 9 * frame["occupation"]
        + 0.15 * frame["temperature"].clip(lower=0)
        + rng.normal(0, 1.2, rows)
    ).round(2)
    return frame


def train(frame: Any) -> tuple[Any, Any, dict[str, float]]:
    """Fit the pipeline on the first 75 % of rows; return it, a sample input and test metrics."""
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_absolute_error
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = ["surface", "occupation", "temperature"]
    cut = int(len(frame) * 0.75)
    train_rows, test_rows = frame.iloc[:cut], frame.iloc[cut:]
    pipeline = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(
        train_rows[features], train_rows["consommation"]
    )
    mae = mean_absolute_error(test_rows["consommation"], pipeline.predict(test_rows[features]))
    baseline = mean_absolute_error(
        test_rows["consommation"], [train_rows["consommation"].mean()] * len(test_rows)
    )
    return (
        pipeline,
        train_rows[features].head(5),
        {"mae": round(float(mae), 3), "baseline": round(float(baseline), 3)},
    )


def card_with_metrics(path: Path, scores: dict[str, float]) -> dict[str, Any]:
    """The card from ``path``, with this training's evaluation written into it."""
    import yaml

    card = yaml.safe_load(path.read_text(encoding="utf-8"))
    evaluation = card["model"]["evaluation"]
    evaluation["protocol"] = (
        "Données synthétiques : apprentissage sur les premiers 75 % des relevés, test sur les 25 % suivants."
    )
    evaluation["baseline"] = "La consommation moyenne observée pendant l'apprentissage."
    evaluation["metrics"] = [
        {
            "name": "mae",
            "value": scores["mae"],
            "baseline": scores["baseline"],
            "description": "erreur absolue moyenne (m³)",
        }
    ]
    return card


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Enregistrer un modèle scikit-learn et sa fiche dans bibia."
    )
    parser.add_argument("--name", default="eau-batiments", help="nom du modèle dans le catalogue")
    parser.add_argument("--card", type=Path, default=CARD, help="fiche du modèle (YAML)")
    parser.add_argument(
        "--alias", default="production", help="alias à faire pointer sur la nouvelle version"
    )
    args = parser.parse_args(argv)

    if not os.environ.get("BIBIA_TOKEN"):
        print(
            "erreur : BIBIA_TOKEN n'est pas défini (jeton d'une experte : bibia token create --role expert)",
            file=sys.stderr,
        )
        return 2
    if not args.card.is_file():
        print(f"erreur : fiche introuvable : {args.card}", file=sys.stderr)
        return 2

    from bibia.client import BibiaClient
    from bibia.errors import exit_code_for
    from domain.errors import BibiaError

    pipeline, sample, scores = train(training_data())
    print(
        f"modèle entraîné : erreur absolue moyenne {scores['mae']} m³ (référence : {scores['baseline']} m³)"
    )
    card = card_with_metrics(args.card, scores)
    try:
        with BibiaClient() as client:
            version = client.register(
                args.name, pipeline, card, input_example=sample, alias=args.alias
            )
            model = client.model(args.name)
    except BibiaError as exc:
        print(f"erreur : {exc.message}", file=sys.stderr)
        for problem in exc.details if isinstance(exc.details, list) else []:
            print(f"  - {problem.get('field')} : {problem.get('message')}", file=sys.stderr)
        return exit_code_for(exc)

    title = model["card"]["identification"]["title"]
    print(
        f"« {title} » enregistré : {args.name} version {version['version']}, alias {', '.join(version['aliases']) or 'aucun'}"
    )
    print(f"fiche publique : {client.url}/api/v1/models/{args.name}/card.md")
    print(
        f'pour le charger avec MLflow : mlflow.pyfunc.load_model("models:/{args.name}@{args.alias}")'
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
