"""Une développeuse récupère un modèle de bibia avec le client MLflow qu'elle utilise déjà.

bibia sert une passerelle compatible MLflow, en lecture seule et réservée
aux experts : il suffit de pointer le client MLflow sur le service et de lui
donner un jeton expert. Rien d'autre à installer que MLflow et les
bibliothèques du modèle.

Usage ::

    export BIBIA_URL=http://127.0.0.1:8000        # ou MLFLOW_TRACKING_URI
    export BIBIA_TOKEN=bibia_xxxxxxxx_...          # ou MLFLOW_TRACKING_TOKEN (jeton expert)
    python examples/pull_model.py cantine-nantes@production

Le script charge ``models:/NOM@ALIAS`` (ou ``models:/NOM/VERSION``), prend
les données d'exemple publiées avec le modèle (``bibia/sample.csv``, sinon
l'exemple d'entrée MLflow), calcule les prédictions et les affiche.

Attention : charger un modèle exécute son code (un pickle exécute du code).
Ne chargez que des modèles dont vous avez lu la fiche et dont vous
connaissez l'auteur ; pour un simple essai, préférez le démonstrateur
isolé de bibia.
"""

from __future__ import annotations

import os
import sys
import tempfile

DEFAULT_REF = "cantine-nantes@production"


def configure() -> None:
    """Point the MLflow client at bibia: BIBIA_* win over MLFLOW_* when both are set."""
    url = (
        os.environ.get("BIBIA_URL")
        or os.environ.get("MLFLOW_TRACKING_URI")
        or "http://127.0.0.1:8000"
    )
    os.environ["MLFLOW_TRACKING_URI"] = url
    token = os.environ.get("BIBIA_TOKEN") or os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        os.environ["MLFLOW_TRACKING_TOKEN"] = token
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no traffic anywhere but the service


def sample_inputs(uri: str, model):
    """The sample data registered with the model, restricted to (and typed as) its inputs."""
    import mlflow
    import pandas as pd
    from mlflow.exceptions import MlflowException

    try:
        frame = pd.read_csv(mlflow.artifacts.download_artifacts(f"{uri}/bibia/sample.csv"))
        origin = "bibia/sample.csv"
    except (MlflowException, OSError):
        if model.metadata.saved_input_example_info is None:
            raise SystemExit(
                "Ce modèle n'a publié ni données d'exemple (bibia/sample.csv) ni exemple d'entrée."
            ) from None
        where = tempfile.mkdtemp(prefix="bibia-exemple-")
        name = model.metadata.saved_input_example_info["artifact_path"]
        mlflow.artifacts.download_artifacts(f"{uri}/{name}", dst_path=where)
        frame = pd.DataFrame(model.metadata.load_input_example(where))
        origin = f"exemple d'entrée MLflow ({name})"
    schema = model.metadata.get_input_schema()
    if schema is not None and schema.has_input_names():
        frame = frame[[c for c in schema.input_names() if c in frame.columns]]
        for spec in schema.inputs:
            if str(spec.type) == "datetime" and spec.name in frame.columns:
                frame[spec.name] = pd.to_datetime(frame[spec.name])
    return frame, origin


def main(argv: list[str]) -> int:
    ref = argv[1] if len(argv) > 1 else DEFAULT_REF
    configure()
    import mlflow
    import pandas as pd
    from mlflow.exceptions import MlflowException

    uri = ref if ref.startswith("models:/") else f"models:/{ref}"
    print(f"Service : {os.environ['MLFLOW_TRACKING_URI']}")
    try:
        model = mlflow.pyfunc.load_model(uri)
        inputs, origin = sample_inputs(uri, model)
        predictions = model.predict(inputs)
    except MlflowException as exc:
        print(f"Erreur : impossible de récupérer {uri} : {exc.message}", file=sys.stderr)
        return 1
    if not isinstance(predictions, pd.DataFrame):
        predictions = pd.DataFrame({"prediction": list(predictions)})
    shown = pd.concat(
        [inputs.reset_index(drop=True), predictions.reset_index(drop=True)], axis=1
    ).head(10)
    print(f"Modèle chargé : {uri}")
    print(f"Données : {origin}, {len(inputs)} lignes")
    print(f"Prédictions (10 premières lignes sur {len(predictions)}) :")
    print(shown.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
