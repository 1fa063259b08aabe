"""The card as an HTML form, generated from the card's schema (:class:`registry.card.Card`).

Nothing here knows a field of the card by hand: the fieldsets, inputs,
required marks, choices and hints come from walking the pydantic models, so
a field added to the schema shows up in the form. Only the short French
labels are a table (:data:`LABELS`), with the field's description, then its
name, when a field has none.

Three pure steps, each tested by the publication pages:

- :func:`flatten`: a card (as JSON data) → the form's values, one string per
  input, named by dotted path under ``fiche.`` (``fiche.data.sources.0.name``);
- :func:`unflatten`: the values a browser posted → card data for
  :func:`registry.card.parse_card`, and where each list item came from;
- :func:`build`: the widgets to render, with the values and the errors
  (placed by :func:`place_errors` next to the input they are about).

A list of scalars is one textarea, one item per line; a list of objects is a
set of repeated rows (those filled in, and blank ones to add more); a blank
row is ignored. An empty input is a field left out (the card's own
« champ obligatoire manquant » for a required one).
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from registry.card import Automation, Card, MetricKind, Status, Task, Theme
from registry.tiers import Tier, field_tier

PREFIX = "fiche."
EXTRA_ROWS = 2  # blank rows under the filled ones of a list of objects
MAX_ROWS = 100  # rows read back from a form (the card's own lists are shorter)
LONG_TEXT = 300  # a text longer than this gets a textarea

#: Short French labels: ``Model.field`` first, then ``field``; else the field's description.
LABELS: dict[str, str] = {
    "identification": "Identification",
    "purpose": "Finalité",
    "data": "Données",
    "model": "Modèle et évaluation",
    "accountability": "Responsabilité et contacts",
    "title": "Titre",
    "summary": "Résumé en langage courant",
    "owner": "Collectivité propriétaire",
    "Owner.name": "Nom de la collectivité",
    "siren": "SIREN",
    "territory": "Territoire",
    "theme": "Thème",
    "status": "Statut",
    "created": "Date de mise en service",
    "updated": "Date de mise à jour",
    "keywords": "Mots-clés",
    "project": "Projet du catalogue",
    "context": "Contexte et objectif",
    "affected_public": "Public concerné",
    "automation": "Niveau d'automatisation",
    "human_oversight": "Contrôle humain",
    "legal_basis": "Base légale",
    "out_of_scope": "Usages hors périmètre",
    "risks_and_limits": "Risques et limites",
    "sources": "Sources de données",
    "DataSource.name": "Nom de la source",
    "url": "Adresse web",
    "licence": "Licence",
    "Data.licence": "Licence des données",
    "ModelInfo.licence": "Licence du modèle",
    "description": "Description",
    "personal_data": "Données personnelles",
    "dpia": "Analyse d'impact (AIPD)",
    "done": "AIPD réalisée",
    "reason": "Raison",
    "task": "Tâche",
    "inputs": "Entrées",
    "outputs": "Sorties",
    "training_period": "Période d'entraînement",
    "start": "Début",
    "end": "Fin",
    "evaluation": "Évaluation",
    "protocol": "Protocole d'évaluation",
    "Evaluation.baseline": "Référence à battre",
    "metrics": "Métriques",
    "Metric.name": "Code de la métrique",
    "value": "Valeur du modèle",
    "Metric.baseline": "Valeur de la référence",
    "label": "Nom en français",
    "unit": "Unité",
    "higher_is_better": "Une valeur plus haute est meilleure",
    "kind": "Nature",
    "code_url": "Lien vers le code source",
    "documentation_url": "Documentation complète",
    "environmental_cost": "Coût environnemental",
    "public_contact": "Adresse de contact publique",
    "supplier": "Prestataire",
    "contacts": "Contacts nommés",
    "Contact.name": "Nom",
    "role": "Rôle",
    "email": "Adresse électronique",
    "team": "Équipe",
    "lessons_learned": "Retour d'expérience",
    "internal_documents": "Documents internes",
    "Document.title": "Titre du document",
}

#: What one item of a list of objects is called in its row's legend.
ROW_NAMES = {
    "sources": "Source",
    "metrics": "Métrique",
    "contacts": "Contact",
    "internal_documents": "Document",
}

CHOICES: dict[type[enum.Enum], dict[str, str]] = {
    Theme: {
        "transition-ecologique": "Transition écologique",
        "maintenance": "Maintenance",
        "mobilites": "Mobilités",
        "social": "Social",
        "sante": "Santé",
        "education": "Éducation",
        "urbanisme": "Urbanisme",
        "securite": "Sécurité",
        "relation-usager": "Relation aux usagers",
        "autre": "Autre",
    },
    Status: {
        "experimentation": "Expérimentation",
        "pilote": "Pilote",
        "production": "En production",
        "retire": "Retiré",
    },
    Task: {
        "prevision-serie-temporelle": "Prévision de série temporelle",
        "detection-anomalies": "Détection d'anomalies",
        "classification": "Classification",
        "regression": "Régression",
        "detection-objets": "Détection d'objets",
        "segmentation-image": "Segmentation d'images",
        "traitement-texte": "Traitement du texte",
        "autre": "Autre",
    },
    Automation: {
        "aide-a-la-decision": "Aide à la décision",
        "decision-automatisee": "Décision automatisée",
    },
    MetricKind: {
        "score": "Score (comparé à la référence)",
        "contexte": "Contexte (un fait sur l'évaluation)",
    },
}

TIER_NOTES = {
    Tier.RESTRICTED: "visible des membres des collectivités seulement",
    Tier.EXPERT: "visible des experts seulement",
}

YES, NO = "oui", "non"


# ------------------------------------------------------------------ the schema


@dataclass(frozen=True)
class Shape:
    """What a field holds, once ``Optional`` and ``Annotated`` are unwrapped."""

    kind: str  # text, textarea, date, number, choice, bool, lines, group, rows
    required: bool
    model: type[BaseModel] | None = None  # group, rows
    enum: type[enum.Enum] | None = None  # choice
    input_type: str = "text"  # text, url, email (text and textarea)
    max_length: int | None = None
    pattern: str | None = None


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """``annotation`` without ``Optional[...]`` and ``Annotated[...]``, and the metadata found."""
    metadata: list[Any] = []
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation, *extra = typing.get_args(annotation)
            metadata.extend(extra)
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation, metadata
            annotation = args[0]
        else:
            return annotation, metadata


def _constraint(metadata: list[Any], name: str) -> Any:
    for item in metadata:
        value = getattr(item, name, None)
        if value is not None:
            return value
    return None


def _text_shape(metadata: list[Any], required: bool) -> Shape:
    pattern = _constraint(metadata, "pattern")
    max_length = _constraint(metadata, "max_length")
    input_type = "text"
    if pattern and "https?" in pattern:
        input_type = "url"
    elif pattern and "@" in pattern:
        input_type = "email"
    long = max_length is None or max_length > LONG_TEXT
    kind = "textarea" if long and pattern is None else "text"
    return Shape(
        kind, required, input_type=input_type, max_length=max_length, pattern=str(pattern or "")
    )


def shape(info: FieldInfo) -> Shape:
    """The form's view of one pydantic field."""
    required = info.is_required()
    inner, metadata = _unwrap(info.annotation)
    metadata = [*metadata, *info.metadata]
    if typing.get_origin(inner) is list:
        (item,) = typing.get_args(inner) or (str,)
        item_type, item_meta = _unwrap(item)
        if isinstance(item_type, type) and issubclass(item_type, BaseModel):
            return Shape("rows", required, model=item_type)
        sub = _text_shape(item_meta, required)
        return Shape("lines", required, max_length=sub.max_length, pattern=sub.pattern)
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return Shape("group", required, model=inner)
    if isinstance(inner, type) and issubclass(inner, enum.Enum):
        return Shape("choice", required, enum=inner)
    if inner is bool:
        return Shape("bool", required)
    if inner in (float, int):
        return Shape("number", required)
    if inner is dt.date:
        return Shape("date", required)
    return _text_shape(metadata, required)


def label_of(model: type[BaseModel], name: str, info: FieldInfo) -> str:
    return LABELS.get(f"{model.__name__}.{name}") or LABELS.get(name) or info.description or name


# ------------------------------------------------------------------ values


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return YES if value else NO
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()[:10]
    if isinstance(value, float):
        return repr(value) if value != int(value) or abs(value) >= 1e15 else str(int(value))
    return str(value)


def flatten(
    data: Mapping[str, Any], model: type[BaseModel] = Card, prefix: str = PREFIX
) -> dict[str, str]:
    """Card data (a dict, as JSON or YAML gives it) as the form's values. Unknown keys are left out."""
    values: dict[str, str] = {}
    for name, info in model.model_fields.items():
        if name not in data:
            continue
        value, path, s = data[name], f"{prefix}{name}", shape(info)
        if s.kind == "group" and isinstance(value, Mapping) and s.model is not None:
            values.update(flatten(value, s.model, f"{path}."))
        elif s.kind == "rows" and isinstance(value, list) and s.model is not None:
            for i, item in enumerate(value[:MAX_ROWS]):
                if isinstance(item, Mapping):
                    values.update(flatten(item, s.model, f"{path}.{i}."))
        elif s.kind == "lines" and isinstance(value, list):
            values[path] = "\n".join(_text(v) for v in value)
        elif not isinstance(value, (Mapping, list)):
            values[path] = _text(value)
    return values


@dataclass
class Parsed:
    """Card data read from a form, and where each list item came from (its row in the form)."""

    data: dict[str, Any]
    rows: dict[str, list[int]] = field(default_factory=dict)  # "data.sources" -> [form row, ...]


def _clean(raw: str | None) -> str:
    return (raw or "").replace("\r\n", "\n").replace("\r", "\n").strip()


def _number(text: str) -> str:
    """A number as a person types it in French (« 1,8 », « 12 500 ») as pydantic reads it."""
    return re.sub(r"[\s\u00a0\u202f]", "", text).replace(",", ".")


def _blank(values: Mapping[str, str], path: str) -> bool:
    return not any(_clean(v) for k, v in values.items() if k.startswith(path))


def unflatten(
    values: Mapping[str, str], model: type[BaseModel] = Card, prefix: str = PREFIX
) -> Parsed:
    """The card data a form's ``values`` stand for (see the module docstring)."""
    parsed = Parsed({})
    parsed.data = _read(values, model, prefix, parsed, "")
    return parsed


def _read(
    values: Mapping[str, str], model: type[BaseModel], prefix: str, parsed: Parsed, at: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        path, s, where = f"{prefix}{name}", shape(info), f"{at}{name}"
        if s.kind == "group" and s.model is not None:
            if s.required or not _blank(values, f"{path}."):
                out[name] = _read(values, s.model, f"{path}.", parsed, f"{where}.")
        elif s.kind == "rows" and s.model is not None:
            items: list[dict[str, Any]] = []
            origins: list[int] = []
            for row in range(row_count(values, path, extra=0)):
                row_path = f"{path}.{row}."
                if _blank(values, row_path):
                    continue
                items.append(_read(values, s.model, row_path, parsed, f"{where}.{len(items)}."))
                origins.append(row)
            parsed.rows[where] = origins
            if items or s.required:
                out[name] = items
        elif s.kind == "lines":
            lines = [line.strip() for line in _clean(values.get(path)).split("\n")]
            lines = [line for line in lines if line]
            if lines or s.required:
                out[name] = lines
        else:
            text = _clean(values.get(path))
            if not text:
                continue
            if s.kind == "bool":
                out[name] = {YES: True, NO: False}.get(text, text)
            elif s.kind == "number":
                out[name] = _number(text)
            else:
                out[name] = text
    return out


def row_count(values: Mapping[str, str], path: str, *, extra: int = EXTRA_ROWS) -> int:
    """Rows of the list of objects at ``path``: up to the last one with a value, plus ``extra`` blank ones."""
    pattern = re.compile(rf"{re.escape(path)}\.([0-9]{{1,3}})\.")
    used = [int(m.group(1)) for k, v in values.items() if (m := pattern.match(k)) and _clean(v)]
    return min(MAX_ROWS, (max(used) + 1 if used else 0) + extra)


# ------------------------------------------------------------------ widgets and errors


@dataclass
class Widget:
    """One piece of the form: an input, a fieldset (``group``), or a list of rows (``rows``)."""

    path: str  # the input's name (``fiche.identification.title``); a group's dotted path
    label: str
    kind: str
    required: bool
    hint: str = ""
    tier_note: str = ""
    value: str = ""
    input_type: str = "text"
    max_length: int | None = None
    choices: list[tuple[str, str]] = field(default_factory=list)
    children: list[Widget] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    depth: int = 0

    @property
    def id(self) -> str:
        return "f-" + re.sub(r"[^A-Za-z0-9_-]", "-", self.path.removeprefix(PREFIX))

    @property
    def target(self) -> str:
        """The element an error summary links to: the input, or a group's first input."""
        if self.kind in ("group", "rows"):
            first = next(iter(self.children), None)
            return first.target if first is not None else self.id
        if self.kind == "bool":
            return f"{self.id}-oui"
        return self.id


def _hint(s: Shape, info: FieldInfo, label: str) -> str:
    parts = []
    if info.description and info.description != label:
        parts.append(info.description)
    if s.kind == "lines":
        parts.append("une valeur par ligne")
    elif s.kind == "date":
        parts.append("format AAAA-MM-JJ")
    elif s.kind == "number":
        parts.append("un nombre, par exemple 1,8")
    elif s.input_type == "url":
        parts.append("une adresse commençant par https://")
    elif s.input_type == "email":
        parts.append("une adresse électronique")
    elif s.pattern and "[0-9]{9}" in s.pattern and "chiffres" not in (info.description or ""):
        parts.append("9 chiffres, sans espace")
    elif s.pattern and "a-z0-9" in s.pattern:
        parts.append("minuscules, chiffres et tirets")
    if s.max_length and s.kind in ("text", "textarea") and s.max_length < LONG_TEXT:
        parts.append(f"{s.max_length} caractères au plus")
    hint = " ; ".join(parts)
    return hint[:1].upper() + hint[1:] if hint else ""


def build(
    values: Mapping[str, str],
    model: type[BaseModel] = Card,
    prefix: str = PREFIX,
    depth: int = 0,
) -> list[Widget]:
    """The widgets of ``model``'s form, filled with ``values``."""
    widgets = []
    for name, info in model.model_fields.items():
        s, path = shape(info), f"{prefix}{name}"
        label = label_of(model, name, info)
        tier = field_tier(model, name)
        w = Widget(
            path=path,
            label=label,
            kind=s.kind,
            required=s.required,
            hint=_hint(s, info, label),
            tier_note=TIER_NOTES.get(tier, ""),
            input_type=s.input_type,
            max_length=s.max_length if s.kind in ("text", "textarea") else None,
            depth=depth,
        )
        if s.kind == "group" and s.model is not None:
            w.children = build(values, s.model, f"{path}.", depth + 1)
        elif s.kind == "rows" and s.model is not None:
            item = ROW_NAMES.get(name, "Ligne")
            for row in range(row_count(values, path)):
                children = build(values, s.model, f"{path}.{row}.", depth + 2)
                w.children.append(
                    Widget(
                        path=f"{path}.{row}",
                        label=f"{item} n° {row + 1}",
                        kind="group",
                        required=False,
                        children=children,
                        depth=depth + 1,
                    )
                )
        else:
            w.value = values.get(path, "")
            if s.kind == "choice" and s.enum is not None:
                names = CHOICES.get(s.enum, {})
                w.choices = [(str(e.value), names.get(str(e.value), str(e.value))) for e in s.enum]
        widgets.append(w)
    return widgets


@dataclass(frozen=True)
class Problem:
    """An error to show: where (the widget's id to link to, None: the form as a whole) and what."""

    label: str  # the field's labels, from its section down (« Données › Sources de données n° 1 › Adresse web »)
    message: str
    target: str | None


def form_path(field_path: str, rows: Mapping[str, list[int]]) -> str:
    """A card error's dotted path (``data.sources.0.url``) as the form's (``fiche.data.sources.2.url``)."""
    parts = field_path.split(".")
    out: list[str] = []
    for i, part in enumerate(parts):
        origins = rows.get(".".join(parts[:i]))
        if origins is not None and part.isdigit() and int(part) < len(origins):
            part = str(origins[int(part)])
        out.append(part)
    return PREFIX + ".".join(out)


def _index(widgets: list[Widget], trail: tuple[str, ...] = ()) -> dict[str, tuple[Widget, str]]:
    found: dict[str, tuple[Widget, str]] = {}
    for w in widgets:
        labels = (*trail, w.label)
        found[w.path] = (w, " › ".join(labels))
        found.update(_index(w.children, labels))
    return found


def place_errors(
    widgets: list[Widget], details: list[dict[str, str]], rows: Mapping[str, list[int]]
) -> list[Problem]:
    """Attach each card error (``{"field", "message"}``, :func:`registry.card.problems`) to its widget.

    An error about a field the form has no input for (a group's rule, an
    unknown key of an uploaded card) goes to the nearest enclosing widget, or
    to the form as a whole. Returns the errors in the order of the form.
    """
    index = _index(widgets)
    order = {path: n for n, path in enumerate(index)}
    placed: list[tuple[int, Problem]] = []
    for problem in details:
        path = form_path(problem.get("field", ""), rows)
        message = problem.get("message", "valeur invalide")
        probe = path
        while probe and probe not in index:
            probe = probe.rsplit(".", 1)[0] if "." in probe else ""
        if not probe or probe == PREFIX.rstrip("."):
            shown = problem.get("field", "")
            placed.append((-1, Problem(f"Fiche ({shown})" if shown else "Fiche", message, None)))
            continue
        widget, label = index[probe]
        rest = path[len(probe) + 1 :]
        if rest.isdigit() and widget.kind == "lines":
            message = f"ligne {int(rest) + 1} : {message}"
        elif rest:
            message = f"{rest} : {message}"
        widget.errors.append(message)
        placed.append((order[probe], Problem(label, message, widget.target)))
    return [p for _, p in sorted(placed, key=lambda item: item[0])]
