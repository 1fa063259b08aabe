"""Untrusted YAML (an uploaded card, a model's ``MLmodel``) read as plain data, with limits.

YAML anchors and aliases let a few hundred bytes stand for gigabytes: each
alias of a list of aliases multiplies what anything walking the result sees
("billion laughs"). Nothing bibia reads needs them, and MLflow never writes
them for a model, so the loader refuses them outright, before any expansion,
with the line to fix. Size is bounded before parsing, nesting and the
number of values while parsing (before anything is built); every other
failure (a date that does not exist, an integer of thousands of digits) is
the same clear refusal, never a traceback.

Every caller that parses uploaded YAML goes through :func:`load_yaml`.
"""

from __future__ import annotations

from typing import Any, Protocol

import yaml

from domain.errors import InvalidInput, PayloadTooLarge

MAX_DEPTH = 64  # far deeper than a card or an MLmodel, far shallower than Python's recursion limit
MAX_NODES = (
    20_000  # a card has a few hundred values, an MLmodel fewer (its signature is one JSON string)
)

# libyaml's parser when PyYAML has it (tens of times faster than the pure-Python one on hostile input).
_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_NO_ALIAS = " ; écrivez chaque valeur en entier, sans ancres « & » ni alias « * »"


class _Mark(Protocol):
    """Where a YAML event starts (PyYAML's Mark, or libyaml's when the C parser runs)."""

    line: int
    column: int


class _Refused(yaml.YAMLError):
    """A construct bibia does not accept in untrusted YAML (an alias, an anchor, too deep, too many values)."""

    def __init__(self, problem: str, mark: _Mark | None, hint: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark
        self.hint = hint


def _check_events(text: str) -> None:
    """Walk the parser's events (nothing is built yet) and refuse what could make the result blow up.

    Raises:
        _Refused: at the first anchor or alias, past MAX_DEPTH levels or MAX_NODES values.
        yaml.YAMLError: the text is not YAML.
    """
    depth = nodes = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(f"alias YAML « *{event.anchor} » refusé", event.start_mark, _NO_ALIAS)
        if not isinstance(event, yaml.NodeEvent):
            if isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            continue
        if event.anchor is not None:
            raise _Refused(f"ancre YAML « &{event.anchor} » refusée", event.start_mark, _NO_ALIAS)
        nodes += 1
        if nodes > MAX_NODES:
            raise _Refused(f"trop de valeurs ({MAX_NODES} au plus)", event.start_mark)
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _Refused(
                    f"imbrication trop profonde ({MAX_DEPTH} niveaux au plus)", event.start_mark
                )


def load_yaml(
    text: str,
    *,
    what: str,
    max_chars: int,
    error: type[InvalidInput] = InvalidInput,
    syntax: str = "YAML invalide",
) -> Any:
    """Parse untrusted YAML ``text`` into plain data (dicts, lists, strings, numbers, dates).

    Args:
        what: what the text is, for messages (« fiche », « fichier MLmodel »).
        max_chars: refuse longer text before parsing it.
        error: the error raised for text that is not acceptable YAML (InvalidCard, InvalidModel...).
        syntax: what the message says of text that does not parse (« ni JSON ni YAML valide »).

    Raises:
        PayloadTooLarge: ``text`` is longer than ``max_chars``.
        error: not YAML, anchors or aliases, nesting deeper than :data:`MAX_DEPTH`, a value
            that does not exist (``2024-02-30``); the message says where and what to do.
    """
    if len(text) > max_chars:
        raise PayloadTooLarge(f"{what} : contenu trop volumineux ({max_chars} caractères au plus)")
    try:
        _check_events(text)
        # Same text, same parser: what the check walked is what gets built, with no alias to expand
        # (and _LOADER is a safe loader: plain data, no Python objects).
        return yaml.load(text, Loader=_LOADER)
    except _Refused as exc:
        raise error(f"{what} : {exc.problem}{_where(exc.problem_mark)}{exc.hint}") from exc
    except yaml.YAMLError as exc:
        # Where the construct that fails began (an unterminated list: its "["), else where parsing stopped.
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
        raise error(f"{what} illisible : {syntax}{_where(mark)}") from exc
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # PyYAML's constructors raise these for values that look right but do not exist.
        raise error(f"{what} illisible : valeur impossible ({_short(exc)})") from exc


def _where(mark: _Mark | None) -> str:
    return f" (ligne {mark.line + 1}, colonne {mark.column + 1})" if mark is not None else ""


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 120 else text[:117] + "..."
