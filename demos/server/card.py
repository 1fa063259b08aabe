"""What the demonstrator shows of the model card (``bibia/card.json``).

The card is written by the service, in the schema of ``registry/card.py``
(``identification``, ``purpose``, ``data``, ``model``...). This server does
not import that schema: it reads the few fields it shows, defensively, and
accepts a flat card (``title``, ``summary``, ``task``) or none at all.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("demos.server")

TASK_LABELS = {
    "prevision-serie-temporelle": "Prévision de série temporelle",
    "detection-anomalies": "Détection d'anomalies",
    "classification": "Classification",
    "regression": "Régression",
    "detection-objets": "Détection d'objets",
    "segmentation-image": "Segmentation d'image",
    "traitement-texte": "Traitement de texte",
    "autre": "Autre",
}
AUTOMATION_LABELS = {
    "aide-a-la-decision": "Aide à la décision : une personne décide.",
    "decision-automatisee": "Décision automatisée.",
}


@dataclass(frozen=True)
class CardInfo:
    """The card fields a demonstrator page shows; every one may be missing."""

    title: str = "Démonstrateur"
    summary: str | None = None
    task: str | None = None
    owner: str | None = None
    territory: str | None = None
    context: str | None = None
    automation: str | None = None
    human_oversight: str | None = None
    risks: list[str] = field(default_factory=list)
    out_of_scope: list[str] = field(default_factory=list)
    baseline: str | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    licence: str | None = None

    @property
    def task_label(self) -> str | None:
        return TASK_LABELS.get(self.task or "", self.task)

    @property
    def automation_label(self) -> str | None:
        return AUTOMATION_LABELS.get(self.automation or "", self.automation)

    @classmethod
    def read(cls, path: Path) -> CardInfo:
        """Read the card at ``path``; a missing or unreadable card gives defaults."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            logger.warning("Fiche du modèle illisible (%s) : %s", path, exc)
            return cls()
        return cls.from_dict(raw) if isinstance(raw, dict) else cls()

    @classmethod
    def from_dict(cls, card: dict[str, Any]) -> CardInfo:
        """Pick the shown fields from a nested (registry) or flat card."""
        metrics = _get(card, "model.evaluation.metrics")
        return cls(
            title=_text(card, "identification.title", "title") or "Démonstrateur",
            summary=_text(card, "identification.summary", "summary"),
            task=_text(card, "model.task", "task"),
            owner=_text(card, "identification.owner.name", "owner.name", "owner"),
            territory=_text(card, "identification.territory", "territory"),
            context=_text(card, "purpose.context", "context", "purpose"),
            automation=_text(card, "purpose.automation", "automation"),
            human_oversight=_text(card, "purpose.human_oversight", "human_oversight"),
            risks=_texts(card, "purpose.risks_and_limits", "risks_and_limits"),
            out_of_scope=_texts(card, "purpose.out_of_scope", "out_of_scope"),
            baseline=_text(card, "model.evaluation.baseline"),
            metrics=[m for m in metrics if isinstance(m, dict) and "name" in m and "value" in m]
            if isinstance(metrics, list)
            else [],
            licence=_text(card, "model.licence", "licence"),
        )


def _get(card: dict[str, Any], dotted: str) -> Any:
    node: Any = card
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _text(card: dict[str, Any], *paths: str) -> str | None:
    for path in paths:
        value = _get(card, path)
        if (
            isinstance(value, (str, int, float))
            and not isinstance(value, bool)
            and str(value).strip()
        ):
            return str(value).strip()
    return None


def _texts(card: dict[str, Any], *paths: str) -> list[str]:
    for path in paths:
        value = _get(card, path)
        if isinstance(value, list):
            return [str(v) for v in value if isinstance(v, (str, int, float)) and str(v).strip()]
        if isinstance(value, str) and value.strip():
            return [value.strip()]
    return []
