"""What the demonstrator shows of the model card (``bibia/card.json``).

The card is written by the service, in the schema of ``registry/card.py``
(``identification``, ``purpose``, ``data``, ``model``...). This server does
not import that schema: it reads the few fields it shows, defensively, and
accepts a flat card (``title``, ``summary``, ``task``) or none at all.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field, replace
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
# A card's « inputs » / « outputs » entry: ``name : description`` or ``name (description)``,
# possibly several names (``borne_basse, borne_haute : ...``).
_ENTRY = re.compile(
    r"^\s*(?P<names>[A-Za-z_][\w.-]*(?:\s*,\s*[A-Za-z_][\w.-]*)*)\s*"
    r"(?::\s*(?P<after>.+)|\((?P<within>.+)\))\s*$",
    re.S,
)
# A description that starts with a type or a value list is no label (« texte AAAA-MM-JJ »).
_NOT_A_LABEL = re.compile(
    r"^(texte|booléen|boolean|date\s+[AJ]|nombre|entier|chaîne|string|oui ou non|vrai ou faux|['\"«])|\.csv\b",
    re.IGNORECASE,
)
LABEL_CHARS = 60
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
    columns: dict[str, str] = field(default_factory=dict)
    model_name: str | None = None

    def label(self, name: str) -> str:
        """A column's French label for a table header or a chart: the start of its card
        description (« repas attendus » for ``repas_prevus``), else its name made readable."""
        description = self.columns.get(name)
        if description:
            short = re.split(r"\s+\(|\s*;\s*|,\s+|\s+:\s+", description, maxsplit=1)[0].strip()
            if short and len(short) <= LABEL_CHARS and not _NOT_A_LABEL.search(short):
                return short[0].upper() + short[1:]
        readable = name.replace("_", " ").strip()
        return readable[:1].upper() + readable[1:] if readable else name

    @property
    def task_label(self) -> str | None:
        return TASK_LABELS.get(self.task or "", self.task)

    @property
    def automation_label(self) -> str | None:
        return AUTOMATION_LABELS.get(self.automation or "", self.automation)

    @classmethod
    def read(cls, path: Path, origin: Path | None = None) -> CardInfo:
        """Read the card at ``path``; a missing or unreadable card gives defaults.

        ``origin`` is the file bibia writes beside it (``bibia/demo.json``:
        ``{"model": name, "version": n}``): the registered model's name, for
        the link back to its page.
        """
        raw = _json(path)
        card = cls.from_dict(raw) if isinstance(raw, dict) else cls()
        where = _json(origin) if origin is not None else None
        name = where.get("model") if isinstance(where, dict) else None
        if isinstance(name, str) and name.strip():
            card = _with_model_name(card, name.strip())
        return card

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
            columns=_columns(card),
        )


def _with_model_name(card: CardInfo, name: str) -> CardInfo:
    return replace(card, model_name=name)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("Fichier illisible (%s) : %s", path, exc)
        return None


def _columns(card: dict[str, Any]) -> dict[str, str]:
    """The card's description of each input and output column, by column name."""
    described: dict[str, str] = {}
    for path in ("model.inputs", "model.outputs", "inputs", "outputs"):
        for entry in _texts(card, path):
            match = _ENTRY.match(" ".join(entry.split()))
            if match is None:
                continue
            description = (match.group("after") or match.group("within") or "").strip()
            for name in re.split(r"\s*,\s*", match.group("names")):
                if description and name not in described:
                    described[name] = description
    return described


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
