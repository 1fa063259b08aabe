"""The catalogue's project records, shipped as package data (``projects.yaml``).

Each record has the public fields of :class:`registry.card.Project` plus
``models``: the registered model names attached to the project.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PROJECTS_FILE = Path(__file__).resolve().parent / "projects.yaml"


def load_projects(path: Path = PROJECTS_FILE) -> list[dict[str, Any]]:
    """Read the project records.

    Args:
        path: the YAML file; defaults to the one shipped with ``demos``.

    Returns:
        One dict per project, in file order; ``models`` is always a list.

    Raises:
        ValueError: the file is not a list of mappings, or a slug repeats.
    """
    with open(path, encoding="utf-8") as fh:
        records = yaml.safe_load(fh)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ValueError(f"{path.name} : une liste de projets (clés et valeurs) est attendue")
    seen: set[str] = set()
    for record in records:
        slug = record.get("slug")
        if slug in seen:
            raise ValueError(f"{path.name} : identifiant de projet en double « {slug} »")
        seen.add(slug)
        record["models"] = list(record.get("models") or [])
    return records
