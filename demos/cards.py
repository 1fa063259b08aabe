"""A reference model's card: the prose of its ``card.yaml``, the figures of its evaluation.

Each reference model keeps its card, in French, in ``card.yaml`` beside its
code, in the shape :class:`registry.card.Card` reads, with two differences:

- a text may name a figure in braces, with Python's format specification:
  ``{surproduction:.1%}``, ``{n_jours_test:.0f}`` (a literal brace is
  doubled, ``{{``). Only plain names are allowed, no attribute or index.
  Figures are written the French way (:mod:`domain.french`): « 5,4 % »,
  « 0,523 », « 12 345 »; a word after a bar takes the figure's number:
  ``{jours_en_deficit:.0f|jour}`` is « 1 jour » or « 4 jours ». A « % » typed
  after a number in the prose gets the same narrow no-break space (« 4,5 % »);
- each entry of ``model.evaluation.metrics`` gives the metric's ``name``,
  French ``label``, one-line ``description``, ``unit``, direction and
  ``kind``; its ``value`` (and ``baseline``) come from the evaluation. A
  ``contexte`` figure (how many days were tested) keeps no baseline: the
  card states it, it does not judge it.

The model's ``card.py`` computes those figures and values at build time and
hands them to :func:`build_card`.
"""

from __future__ import annotations

import numbers
import re
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from domain import french


def build_card(
    path: Path,
    figures: Mapping[str, object],
    metrics: Mapping[str, Mapping[str, float]],
) -> dict[str, Any]:
    """The card of ``path`` with its figures filled in and its metrics' values merged.

    Args:
        path: the model's ``card.yaml``.
        figures: the values its texts name.
        metrics: for each metric of ``model.evaluation.metrics``, by name, its
            ``value`` and, when the card compares it, its ``baseline``.

    Raises:
        ValueError: the file is not a card mapping, a text names a figure that
            is not given, or the metrics of the file and of the evaluation differ.
    """
    with open(path, encoding="utf-8") as fh:
        prose = yaml.safe_load(fh)
    if not isinstance(prose, dict):
        raise ValueError(f"{path.name} : une fiche (clés et valeurs) est attendue")
    card: dict[str, Any] = _filled(prose, figures, path)
    entries = card["model"]["evaluation"]["metrics"]
    named = [entry["name"] for entry in entries]
    if sorted(named) != sorted(metrics):
        raise ValueError(
            f"{path.name} : métriques de la fiche {sorted(named)} différentes de celles "
            f"de l'évaluation {sorted(metrics)}"
        )
    card["model"]["evaluation"]["metrics"] = [
        _merged(entry, metrics[entry["name"]]) for entry in entries
    ]
    return card


def _merged(entry: Mapping[str, Any], measured: Mapping[str, float]) -> dict[str, Any]:
    merged = {**entry, **measured}
    if entry.get("kind") == "contexte":  # a fact about the evaluation: stated, never compared
        merged.pop("baseline", None)
    return merged


class _Figures(string.Formatter):
    """``str.format`` over named figures only (``{name:spec}``): no attribute, index or position."""

    def get_field(self, field_name: str, args: Any, kwargs: Mapping[str, Any]) -> tuple[Any, str]:
        if not field_name.isidentifier():
            raise ValueError(f"« {{{field_name}}} » : un nom de chiffre simple est attendu")
        if field_name not in kwargs:
            raise ValueError(f"« {{{field_name}}} » : chiffre inconnu")
        return kwargs[field_name], field_name

    def format_field(self, value: Any, format_spec: str) -> str:
        spec, bar, word = format_spec.partition("|")
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            if bar:
                raise ValueError(f"« |{word} » : seul un chiffre prend un mot au pluriel")
            return str(super().format_field(value, spec))
        text = _french(value, spec)
        return f"{text} {french.plural_word(value, word.strip())}" if bar else text


def _french(value: float, spec: str) -> str:
    """``value`` as ``format(value, spec)`` would write it, the French way."""
    if not spec:
        if isinstance(value, numbers.Integral):  # a year stays 2017; a count groups from 10 000
            return str(value) if abs(int(value)) < 10_000 else french.integer(value)
        return french.number(value)
    text = format(value, spec).replace(",", "")
    if text.endswith("%"):
        return f"{_french_digits(text[:-1])}{french.NNBSP}%"
    return _french_digits(text)


def _french_digits(text: str) -> str:
    try:
        float(text)
    except ValueError:  # not a plain number (an exponent, a padding): as Python wrote it
        return text
    whole = text.split(".")[0].lstrip("-")
    if len(whole) < 5:  # « 2017 », « 0,523 »: grouping from 10 000 on, never a year's
        return text.replace(".", ",")
    return french.decimal(float(text), len(text.split(".")[1]) if "." in text else 0)


_FIGURES = _Figures()
_PERCENT = re.compile(r"(\d)[ \u00a0]%")


def _filled(node: Any, figures: Mapping[str, object], path: Path) -> Any:
    if isinstance(node, str):
        try:
            return _PERCENT.sub("\\1\u202f%", _FIGURES.vformat(node, (), figures))
        except ValueError as exc:
            raise ValueError(f"{path.name} : {exc} dans « {node[:60]}… »") from exc
    if isinstance(node, dict):
        return {key: _filled(value, figures, path) for key, value in node.items()}
    if isinstance(node, list):
        return [_filled(value, figures, path) for value in node]
    return node
