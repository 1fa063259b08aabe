"""A reference model's card: the prose of its ``card.yaml``, the figures of its evaluation.

Each reference model keeps its card, in French, in ``card.yaml`` beside its
code, in the shape :class:`registry.card.Card` reads, with two differences:

- a text may name a figure in braces, with Python's format specification:
  ``{surproduction:.1%}``, ``{n_jours_test:.0f}`` (a literal brace is
  doubled, ``{{``). Only plain names are allowed, no attribute or index;
- each entry of ``model.evaluation.metrics`` gives the metric's ``name``,
  ``description`` and direction; its ``value`` (and ``baseline``) come
  from the evaluation.

The model's ``card.py`` computes those figures and values at build time and
hands them to :func:`build_card`.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


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
        {**entry, **metrics[entry["name"]]} for entry in entries
    ]
    return card


class _Figures(string.Formatter):
    """``str.format`` over named figures only (``{name:spec}``): no attribute, index or position."""

    def get_field(self, field_name: str, args: Any, kwargs: Mapping[str, Any]) -> tuple[Any, str]:
        if not field_name.isidentifier():
            raise ValueError(f"« {{{field_name}}} » : un nom de chiffre simple est attendu")
        if field_name not in kwargs:
            raise ValueError(f"« {{{field_name}}} » : chiffre inconnu")
        return kwargs[field_name], field_name


_FIGURES = _Figures()


def _filled(node: Any, figures: Mapping[str, object], path: Path) -> Any:
    if isinstance(node, str):
        try:
            return _FIGURES.vformat(node, (), figures)
        except ValueError as exc:
            raise ValueError(f"{path.name} : {exc} dans « {node[:60]}… »") from exc
    if isinstance(node, dict):
        return {key: _filled(value, figures, path) for key, value in node.items()}
    if isinstance(node, list):
        return [_filled(value, figures, path) for value in node]
    return node
