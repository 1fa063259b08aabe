"""Read an MLflow model directory's ``MLmodel`` as data (YAML), never loading the model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from registry.errors import InvalidModel


def read_mlmodel(model_dir: Path) -> dict[str, Any]:
    """Parse ``MLmodel`` as YAML (never loading the model) and check it is usable.

    Raises:
        InvalidModel: no MLmodel, bad YAML, no flavour.
    """
    path = model_dir / "MLmodel"
    if not path.is_file():
        raise InvalidModel(
            "ce dossier n'est pas un modèle MLflow : le fichier MLmodel est absent "
            "(enregistrez le modèle avec mlflow.<saveur>.save_model ou log_model)"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidModel(f"fichier MLmodel illisible : {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("flavors"), dict) or not data["flavors"]:
        raise InvalidModel("fichier MLmodel sans saveur (« flavors ») : ce n'est pas un modèle MLflow utilisable")
    return data


def signature_of(mlmodel: dict[str, Any]) -> dict[str, Any] | None:
    """The model signature as plain data (``inputs``/``outputs`` column lists)."""
    raw = mlmodel.get("signature")
    if not isinstance(raw, dict):
        return None
    out: dict[str, Any] = {}
    for key in ("inputs", "outputs", "params"):
        value = raw.get(key)
        if isinstance(value, str):
            try:
                out[key] = json.loads(value)
            except json.JSONDecodeError:
                out[key] = None
        else:
            out[key] = value
    return out
