"""Turn what an expert has into an MLflow model directory, on the expert's machine.

Three sources: a scikit-learn estimator or pipeline (saved here, with a
signature inferred from a sample input), an MLflow model URI (``runs:/…``,
``models:/…``, any URI MLflow resolves, with the expert's own
``MLFLOW_TRACKING_URI``), or a local MLflow model directory.

Format of scikit-learn models: skops, not pickle. skops refuses to build at
load time any type not listed when the model was saved; the list is taken
from the estimator itself and written into ``MLmodel``. This narrows what a
model file can do, but the real containment is that only a sandbox ever
loads a registered model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from domain.errors import InvalidInput, InvalidModel
from registry.mlmodel import read_mlmodel

URI_SCHEMES = (
    "runs:/",
    "models:/",
    "mlflow-artifacts:/",
    "s3://",
    "gs://",
    "file://",
    "http://",
    "https://",
    "dbfs:/",
)


def package_model(model: Any, out_dir: Path, *, input_example: Any = None) -> Path:
    """Return an MLflow model directory for ``model`` (written under ``out_dir`` when needed).

    Raises:
        InvalidModel: the source is not a usable MLflow model.
        InvalidInput: an estimator without ``input_example``, or an unknown kind of source.
    """
    if isinstance(model, (str, os.PathLike)):
        text = os.fspath(model)
        if text.startswith(URI_SCHEMES):
            return _download(text, out_dir)
        path = Path(text)
        if path.is_dir():
            read_mlmodel(path)
            return path
        raise InvalidInput(
            f"modèle introuvable : {text!r} n'est ni un dossier de modèle MLflow ni une URI "
            "(runs:/…, models:/…)"
        )
    if _is_sklearn(model):
        return _save_sklearn(model, out_dir, input_example)
    raise InvalidInput(
        "source de modèle non reconnue : passez un estimateur scikit-learn, une URI MLflow "
        "(runs:/…, models:/…) ou le chemin d'un dossier de modèle MLflow"
    )


def _is_sklearn(model: Any) -> bool:
    try:
        from sklearn.base import BaseEstimator
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return False
    return isinstance(model, BaseEstimator)


def _download(uri: str, out_dir: Path) -> Path:
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(out_dir)))
    except (MlflowException, OSError) as exc:
        raise InvalidModel(
            f"impossible de télécharger {uri} avec votre MLFLOW_TRACKING_URI : {exc}"
        ) from exc
    if not (local / "MLmodel").is_file() and (local / "model" / "MLmodel").is_file():
        local = local / "model"
    read_mlmodel(local)
    return local


def _save_sklearn(model: Any, out_dir: Path, input_example: Any) -> Path:
    if input_example is None:
        raise InvalidInput(
            "un exemple d'entrée est nécessaire pour un estimateur scikit-learn (input_example=X.head(), "
            "ou --input-example fichier.csv) : il sert à déduire la signature du modèle"
        )
    import importlib.metadata as md

    import mlflow.sklearn
    import skops.io  # type: ignore[import-untyped]
    from mlflow.models import infer_signature
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except NotFittedError as exc:
        raise InvalidInput(
            "l'estimateur n'est pas entraîné : appelez fit() avant de l'enregistrer"
        ) from exc
    try:
        predictions = model.predict(input_example)
    except Exception as exc:  # the estimator's own code: any error means a bad example
        raise InvalidInput(f"l'estimateur refuse l'exemple d'entrée : {exc}") from exc
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    requirements = [
        f"{pkg}=={md.version(pkg)}" for pkg in ("scikit-learn", "skops", "numpy", "pandas", "scipy")
    ]
    mlflow.sklearn.save_model(
        model,
        out_dir,
        serialization_format="skops",
        skops_trusted_types=trusted,
        signature=infer_signature(input_example, predictions),
        input_example=input_example,
        pip_requirements=requirements,
    )
    return out_dir
