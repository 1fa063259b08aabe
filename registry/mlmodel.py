"""Read an MLflow model directory's ``MLmodel`` as data (YAML), never loading the model."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from domain.errors import InvalidModel
from registry.untrusted import load_yaml

# MLflow writes a few kilobytes (the signature is one JSON string); checked before reading.
MAX_MLMODEL_BYTES = 1024 * 1024


def read_mlmodel(model_dir: Path) -> dict[str, Any]:
    """Parse ``MLmodel`` as YAML (never loading the model) and check it is usable.

    The file is untrusted: bounded in size before it is read, parsed without
    YAML anchors or aliases (see :mod:`registry.untrusted`).

    Raises:
        InvalidModel: no MLmodel, too large, bad YAML, no flavour.
    """
    path = model_dir / "MLmodel"
    if not path.is_file():
        raise InvalidModel(
            "ce dossier n'est pas un modèle MLflow : le fichier MLmodel est absent "
            "(enregistrez le modèle avec mlflow.<saveur>.save_model ou log_model)"
        )
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        raw = file.read(MAX_MLMODEL_BYTES + 1) if size <= MAX_MLMODEL_BYTES else b""
    if size > MAX_MLMODEL_BYTES or len(raw) > MAX_MLMODEL_BYTES:
        raise InvalidModel(
            f"fichier MLmodel trop volumineux : {MAX_MLMODEL_BYTES} octets au plus (MLflow en écrit quelques kilo-octets)"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidModel("fichier MLmodel illisible : il doit être encodé en UTF-8") from exc
    data = load_yaml(text, what="fichier MLmodel", max_chars=MAX_MLMODEL_BYTES, error=InvalidModel)
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("flavors"), dict)
        or not data["flavors"]
    ):
        raise InvalidModel(
            "fichier MLmodel sans saveur (« flavors ») : ce n'est pas un modèle MLflow utilisable"
        )
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
            except (
                ValueError,
                RecursionError,
            ):  # not JSON, an integer of thousands of digits, nested too deep
                out[key] = None
        else:
            out[key] = value
    return out
