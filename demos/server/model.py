"""The model behind a demonstrator: loading, its columns, predicting.

Only this module imports mlflow. Loading a registered model runs its code (a
pickle or a "models from code" file): that is why it happens only here,
inside the sandbox.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from demos.server.errors import DemoError

logger = logging.getLogger("demos.server")

SAMPLE_FILE = "bibia/sample.csv"
CHART_FILE = "bibia/evaluation.png"
CARD_FILE = "bibia/card.json"

# French names of MLflow's column types, for messages and the upload form.
TYPE_LABELS = {
    "double": "nombre décimal",
    "float": "nombre décimal",
    "integer": "nombre entier",
    "long": "nombre entier",
    "boolean": "booléen (vrai/faux)",
    "string": "texte",
    "datetime": "date (JJ/MM/AAAA ou AAAA-MM-JJ)",
    "binary": "binaire",
}


@dataclass(frozen=True)
class Column:
    """One input column of the model's signature.

    Attributes:
        name: the column name.
        type: MLflow's type name (``double``, ``long``, ``string``,
            ``datetime``, ``boolean``...), or ``"any"`` without a signature;
            structured types (arrays, objects) are ``"structured"``.
        required: whether the column must be present.
        dates_as_text: a ``string`` column whose values are dates written
            ``AAAA-MM-JJ`` (seen in the sample data): a French date
            (``06/11/2017``) is accepted and rewritten so.
        example: a value of the column as a person would type it (from the
            sample data), for messages and the template CSV; None without one.
    """

    name: str
    type: str
    required: bool = True
    dates_as_text: bool = False
    example: str | None = None

    @property
    def label(self) -> str:
        """The type in French, for people."""
        if self.dates_as_text:
            return TYPE_LABELS["datetime"]
        return TYPE_LABELS.get(
            self.type, "valeur structurée (JSON)" if self.type == "structured" else "libre"
        )


class ModelLoadError(Exception):
    """The model directory could not be loaded (the server then exits)."""


class PredictionError(DemoError):
    """The model failed on valid input, or answered with the wrong shape."""

    status_code = 500


class ModelRefused(DemoError):
    """The model refused the input with its own message (a ``ValueError``: an unknown canteen...).

    Attributes:
        reason: the model's message, as it wrote it (for the app to find the
            lines it is about).
    """

    status_code = 400

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class SchemaMismatch(DemoError):
    """MLflow refused the input against the model's signature."""

    status_code = 400


class DemoModel:
    """A loaded pyfunc model with its column signature.

    Predictions are serialised by a lock: a demonstrator serves a handful of
    people, and one prediction at a time keeps its memory bounded.
    """

    def __init__(self, pyfunc_model: Any, model_dir: Path) -> None:
        self._model = pyfunc_model
        self.model_dir = model_dir
        self._lock = threading.Lock()
        self.columns, self.column_based = _input_columns(pyfunc_model)
        self.output_names = _output_names(pyfunc_model)

    @classmethod
    def load(cls, model_dir: Path) -> DemoModel:
        """Load the MLflow model in ``model_dir`` (this runs the model's code).

        Raises:
            ModelLoadError: anything that prevents loading, with the cause.
        """
        if not (model_dir / "MLmodel").is_file():
            raise ModelLoadError(
                f"aucun fichier MLmodel dans {model_dir} : ce n'est pas un modèle MLflow"
            )
        try:
            import mlflow.pyfunc

            pyfunc_model = mlflow.pyfunc.load_model(str(model_dir))
        except BaseException as exc:  # a model's code may raise anything, even SystemExit
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise ModelLoadError(f"{type(exc).__name__}: {exc}") from exc
        return cls(pyfunc_model, model_dir)

    @property
    def info(self) -> dict[str, Any]:
        """What /health says about the model."""
        meta = self._model.metadata
        return {
            "run_id": getattr(meta, "run_id", None),
            "flavors": sorted(getattr(meta, "flavors", {}) or {}),
            "inputs": [
                {"name": c.name, "type": c.type, "required": c.required} for c in self.columns
            ],
            "outputs": self.output_names,
        }

    def predict(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
        """Run the model on ``frame``.

        Returns:
            ``(table, raw)``: the predictions as a DataFrame with one row per
            input row, and the model's raw answer.

        Raises:
            SchemaMismatch: MLflow's schema enforcement refused the input.
            PredictionError: the model raised, or answered with another
                number of rows than it was given.
        """
        from mlflow.exceptions import MlflowException

        with self._lock:
            try:
                raw = self._model.predict(frame)
            except MlflowException as exc:
                message = str(exc.message if hasattr(exc, "message") else exc)
                raise SchemaMismatch(
                    "Les données ne correspondent pas à la signature du modèle : "
                    + _shorten(message)
                ) from exc
            except ValueError as exc:  # how a model says that its input is wrong
                reason = _shorten(str(exc), 2000)
                raise ModelRefused(
                    f"Le modèle a refusé ces données : {_sentence(reason)}", reason
                ) from exc
            except Exception as exc:
                logger.exception("Le modèle a échoué pendant la prédiction")
                detail = _shorten(str(exc))
                raise PredictionError(
                    "Le modèle a échoué sur ces données"
                    + (f" ({detail})" if detail else "")
                    + ". Vérifiez les valeurs du fichier ; si elles sont correctes, signalez-le "
                    "à l'équipe qui publie le modèle."
                ) from exc
        return normalize_output(raw, len(frame), self.output_names), raw


def normalize_output(raw: Any, n_rows: int, output_names: list[str]) -> pd.DataFrame:
    """Turn whatever a pyfunc model answers into one DataFrame row per input row.

    Raises:
        PredictionError: the answer is not tabular or has the wrong length.
    """
    if isinstance(raw, pd.DataFrame):
        table = raw.reset_index(drop=True)
    elif isinstance(raw, pd.Series):
        table = raw.reset_index(drop=True).to_frame(
            name=str(raw.name) if raw.name is not None else _name(output_names)
        )
    elif isinstance(raw, dict):
        try:
            table = pd.DataFrame(raw)
        except ValueError as exc:
            raise PredictionError(
                f"Le modèle a renvoyé un dictionnaire inutilisable : {exc}"
            ) from exc
    else:
        try:
            array = np.asarray(raw)
        except Exception as exc:
            raise PredictionError(
                f"Le modèle a renvoyé un résultat inutilisable ({type(raw).__name__})."
            ) from exc
        if array.ndim == 1:
            table = pd.DataFrame({_name(output_names): array})
        elif array.ndim == 2:
            names = (
                output_names
                if len(output_names) == array.shape[1]
                else [f"prediction_{i}" for i in range(array.shape[1])]
            )
            table = pd.DataFrame(array, columns=names)
        else:
            raise PredictionError(
                f"Le modèle a renvoyé un tableau à {array.ndim} dimensions ; le démonstrateur affiche des tableaux."
            )
    if len(table) != n_rows:
        raise PredictionError(
            f"Le modèle a renvoyé {len(table)} prédiction(s) pour {n_rows} ligne(s) : "
            "son résultat ne peut pas être associé aux données."
        )
    table.columns = [str(c) for c in table.columns]
    return table


def _name(output_names: list[str]) -> str:
    return output_names[0] if len(output_names) == 1 else "prediction"


def _sentence(text: str) -> str:
    """``text`` as a sentence: a capital first letter, a final full stop."""
    text = text.strip() or "sans autre précision"
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?…" else text + "."


def _shorten(text: str, limit: int = 600) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _input_columns(pyfunc_model: Any) -> tuple[list[Column], bool]:
    schema = pyfunc_model.metadata.get_input_schema()
    if schema is None or not schema.has_input_names() or schema.is_tensor_spec():
        return [], False
    columns = []
    for spec in schema.inputs:
        dtype = getattr(spec, "type", None)
        name = getattr(dtype, "name", None) if dtype is not None else None
        type_name = name if name in TYPE_LABELS else "structured"
        columns.append(Column(str(spec.name), type_name, bool(getattr(spec, "required", True))))
    return columns, True


def _output_names(pyfunc_model: Any) -> list[str]:
    schema = pyfunc_model.metadata.get_output_schema()
    if schema is None or not schema.has_input_names():
        return []
    return [str(name) for name in schema.input_names()]
