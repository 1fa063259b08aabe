"""Turning a CSV upload or a JSON payload into the DataFrame a model expects.

Every problem becomes a :class:`~demos.server.errors.DemoError` whose French
message names the column, the line and what to fix. Values are converted to
the types of the model's signature here, so that MLflow's own schema
enforcement (which runs after) has nothing left to refuse.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from demos.server.errors import DemoError
from demos.server.model import Column
from domain.errors import InvalidData, PayloadTooLarge
from evaluation.frames import (
    FALSE,
    MISSING,
    TRUE,
    iso_dates,
    parse_dates,
    parse_number,
    read_csv,
)

MAX_EXAMPLES = 3
#: Rows read from the sample data before it is cut to what is shown.
SAMPLE_ROW_LIMIT = 1_000_000
#: What a value of each type looks like, when the sample data shows none.
EXAMPLES = {
    "double": "12,5",
    "float": "12,5",
    "integer": "12",
    "long": "12",
    "boolean": "oui",
    "datetime": "06/11/2017",
    "date": "06/11/2017",
}
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_QUOTED = re.compile(r"«\s*([^»]{1,200}?)\s*»|'([^']{1,200})'|\"([^\"]{1,200})\"")


@dataclass
class ParsedInput:
    """A validated input table.

    Attributes:
        frame: the model's columns, converted to the signature's types, plus
            the other columns of the file (kept for charts, e.g. the truth).
        model_columns: the columns to send to the model.
        ignored: file columns the model does not use.
        positions: where each row comes from, for messages (« ligne 3 » of
            the file, « enregistrement 2 » of a JSON payload).
        defaulted: optional columns whose cells were all empty, left out so
            that the model uses its default.
    """

    frame: pd.DataFrame
    model_columns: list[str]
    ignored: list[str] = field(default_factory=list)
    positions: list[str] = field(default_factory=list)
    defaulted: list[str] = field(default_factory=list)

    @property
    def model_frame(self) -> pd.DataFrame:
        return self.frame[self.model_columns] if self.model_columns else self.frame


def with_sample_hints(columns: Sequence[Column], sample: pd.DataFrame | None) -> list[Column]:
    """The columns, told what the sample data shows of them.

    A ``string`` column whose sample values are all ``AAAA-MM-JJ`` dates
    holds dates written as text: French dates are then accepted there and
    rewritten so. Each column gets the first sample value as its example.

    Args:
        sample: the sample data as :func:`evaluation.frames.read_csv` reads
            it (text cells), or None without one.
    """
    if sample is None:
        return list(columns)
    out = []
    for column in columns:
        if column.name not in sample.columns:
            out.append(column)
            continue
        values = [str(v).strip() for v in sample[column.name] if str(v).strip()]
        dates = (
            column.type == "string"
            and bool(values)
            and all(_ISO_DAY.fullmatch(v) for v in values[:1000])
        )
        example = values[0] if values else None
        if example is not None and (dates or column.type == "datetime"):
            stamp = parse_dates(pd.Series([example])).iloc[0]
            example = example if pd.isna(stamp) else stamp.strftime("%d/%m/%Y")
        elif example is not None and column.type == "boolean":
            lowered = example.lower()
            example = "oui" if lowered in TRUE else "non" if lowered in FALSE else example
        elif example is not None and column.type in ("double", "float", "integer", "long"):
            figure = parse_number(example)
            example = example if np.isnan(figure) else f"{figure:.15g}".replace(".", ",")
        out.append(replace(column, dates_as_text=dates, example=example))
    return out


def locate(reason: str, parsed: ParsedInput) -> str:
    """Where the value a model's message quotes first (« LONGCHAMPS ») is in the input: its column
    and first lines, e.g. « colonne cantine_nom, ligne 3 » ; empty when no quoted value is found.

    The first quoted value that some cell holds is the one the message is about
    (a later one is a suggestion: « noms proches : « LONGCHAMP » »).
    """
    for match in _QUOTED.finditer(reason):
        quoted = next(g for g in match.groups() if g is not None).strip()
        if not quoted:
            continue
        places = []
        for name in parsed.model_columns:
            values = parsed.frame[name]
            if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
                continue
            mask = values.map(lambda v, q=quoted: isinstance(v, str) and v.strip() == q)
            if mask.any():
                places.append(f"colonne {name}, {_where(mask, parsed.positions)}")
        if places:
            return " ; ".join(places)
    return ""


def parse_csv(
    data: bytes, columns: Sequence[Column], *, max_rows: int, max_bytes: int, truncate: bool = False
) -> ParsedInput:
    """Read an uploaded CSV file and validate it against ``columns``.

    The file is read as French spreadsheets write it, and as others do
    (:func:`evaluation.frames.read_csv`): ``;``, ``,`` or tab separators,
    UTF-8 with or without BOM, else Windows-1252 / Latin-1 (Excel's « CSV
    (séparateur : point-virgule) »); numbers with a decimal comma or point,
    dates in JJ/MM/AAAA or AAAA-MM-JJ. With ``truncate``, rows past
    ``max_rows`` are dropped instead of refused.

    Raises:
        DemoError: empty, too large, binary, not a table, too many rows,
            missing columns or values of the wrong type (the message names
            the lines and columns, and what was expected).
    """
    limit = SAMPLE_ROW_LIMIT if truncate else max_rows
    try:
        frame = read_csv(data, max_bytes=max_bytes, max_rows=limit)
    except PayloadTooLarge as exc:
        raise DemoError(f"{exc.message} Envoyez un extrait plus court.", status_code=413) from None
    except InvalidData as exc:
        message = exc.message
        if "Trop de lignes" in message:
            raise DemoError(
                f"Trop de lignes : la limite est de {max_rows} lignes par envoi. Découpez le fichier.",
                status_code=413,
            ) from None
        status = 415 if "n'est pas un fichier texte" in message else 400
        raise DemoError(message, status_code=status) from None
    if truncate:
        frame = frame.head(max_rows)
    positions = [f"ligne {line}" for line in frame.index]
    return _validate(
        frame.reset_index(drop=True),
        columns,
        max_rows=max_rows,
        positions=positions,
        from_text=True,
    )


def parse_payload(payload: Any, columns: Sequence[Column], *, max_rows: int) -> ParsedInput:
    """Read an MLflow scoring-server payload (``dataframe_records`` or ``dataframe_split``).

    Raises:
        DemoError: an unknown format, a malformed table, too many rows,
            missing columns or values of the wrong type.
    """
    if not isinstance(payload, dict):
        raise DemoError(_FORMAT_HELP)
    keys = [k for k in ("dataframe_records", "dataframe_split") if k in payload]
    if len(keys) != 1:
        raise DemoError(_FORMAT_HELP)
    body = payload[keys[0]]
    try:
        if keys[0] == "dataframe_records":
            if not isinstance(body, list) or not all(isinstance(row, dict) for row in body):
                raise DemoError(
                    "« dataframe_records » doit être une liste d'objets {colonne: valeur}."
                )
            frame = pd.DataFrame.from_records(body)
        else:
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise DemoError(
                    "« dataframe_split » doit contenir « columns » et « data » (une liste de lignes)."
                )
            frame = pd.DataFrame(body["data"], columns=body.get("columns"), index=body.get("index"))
    except (ValueError, TypeError, AssertionError) as exc:
        raise DemoError(f"Le tableau envoyé est mal formé : {_first_line(exc)}") from None
    if len(frame) == 0:
        raise DemoError("Le tableau envoyé ne contient aucune ligne.")
    frame.columns = [str(c) for c in frame.columns]
    positions = [f"enregistrement {i + 1}" for i in range(len(frame))]
    return _validate(
        frame.reset_index(drop=True),
        columns,
        max_rows=max_rows,
        positions=positions,
        from_text=False,
    )


_FORMAT_HELP = (
    "Format non reconnu : envoyez un objet JSON avec « dataframe_records » "
    "(une liste d'objets {colonne: valeur}) ou « dataframe_split » "
    "(« columns » et « data »), comme pour le serveur de scoring MLflow."
)


def _validate(
    frame: pd.DataFrame,
    columns: Sequence[Column],
    *,
    max_rows: int,
    positions: list[str],
    from_text: bool,
) -> ParsedInput:
    if len(frame) > max_rows:
        raise DemoError(
            f"Trop de lignes : la limite est de {max_rows} lignes par envoi. Découpez le fichier.",
            status_code=413,
        )
    duplicated = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if duplicated:
        raise DemoError(
            f"Colonnes en double : {', '.join(duplicated)}. Chaque colonne doit apparaître une seule fois."
        )
    if not columns:  # no column signature: the model takes the table as it is
        return ParsedInput(frame.apply(_infer) if from_text else frame, [], positions=positions)
    missing = [c for c in columns if c.required and c.name not in frame.columns]
    if missing:
        expected = ", ".join(
            f"{c.name} ({c.label}{'' if c.required else ', facultative'})" for c in columns
        )
        hints = []
        for column in missing:
            near = [str(n) for n in frame.columns if str(n).strip().lower() == column.name.lower()]
            if near:
                hints.append(f"la colonne « {near[0]} » existe : nommez-la « {column.name} »")
        raise DemoError(
            f"Colonne(s) manquante(s) : {', '.join(c.name for c in missing)}. "
            f"Le modèle attend les colonnes : {expected}."
            + (f" ({' ; '.join(hints)})" if hints else "")
            + " Le modèle de fichier CSV à télécharger a la bonne ligne d'en-tête."
        )
    errors = []
    converted = frame.copy()
    defaulted = []
    for column in columns:
        if column.name not in frame.columns:
            continue
        try:
            values = _convert(frame[column.name], column, positions)
        except DemoError as exc:
            errors.append(exc.message)
            continue
        if values is None:  # an optional column left empty: the model's default
            defaulted.append(column.name)
            converted = converted.drop(columns=[column.name])
        else:
            converted[column.name] = values
    if errors:
        raise DemoError(" ".join(errors))
    known = {c.name for c in columns}
    ignored = [c for c in frame.columns if c not in known]
    for name in ignored:  # kept for charts and the download (e.g. the observed truth)
        converted[name] = _infer(frame[name])
    model_columns = [c.name for c in columns if c.name in converted.columns]
    return ParsedInput(converted, model_columns, ignored, positions=positions, defaulted=defaulted)


def _convert(values: pd.Series, column: Column, positions: list[str]) -> pd.Series | None:
    """``values`` in the column's type; None for an optional column whose cells are all empty."""
    text = values.map(lambda v: "" if _is_missing(v) else str(v).strip())
    missing = text.str.lower().isin(MISSING)
    if missing.all() and not column.required:
        return None
    if column.required and missing.any():
        raise DemoError(
            f"La colonne « {column.name} » a des valeurs manquantes ({_where(missing, positions)}) : "
            f"elle est obligatoire ({column.label}{_example(column)})."
        )
    kind = column.type
    if kind in ("double", "float", "integer", "long"):
        numbers = pd.Series([parse_number(v) for v in text], index=text.index, dtype="float64")
        _check(numbers.isna() & ~missing, text, column, positions)
        if kind in ("integer", "long"):
            _check(~missing & numbers.notna() & (numbers % 1 != 0), text, column, positions)
            if missing.any():
                raise DemoError(
                    f"La colonne « {column.name} » ({column.label}) a des cellules vides "
                    f"({_where(missing, positions)}) : remplissez-les, ou videz toute la colonne "
                    "pour laisser le modèle utiliser sa valeur par défaut."
                )
            return numbers.astype("int32" if kind == "integer" else "int64")
        return numbers.astype("float32" if kind == "float" else "float64")
    if kind == "boolean":
        lowered = text.str.lower()
        _check(~missing & ~lowered.isin(TRUE | FALSE), text, column, positions)
        flags = lowered.isin(TRUE)
        if missing.any():  # an optional column: empty means « the model's default »
            return pd.Series(
                [None if gap else bool(flag) for gap, flag in zip(missing, flags, strict=True)],
                index=text.index,
                dtype=object,
            )
        return flags.astype(bool)
    if kind == "datetime" or column.dates_as_text:
        dates = parse_dates(text.where(~missing, ""))
        _check(dates.isna() & ~missing, text, column, positions)
        if column.dates_as_text:
            iso = iso_dates(dates)
            return iso.where(~missing, None) if missing.any() else iso.astype(str)
        return dates.astype("datetime64[ns]")
    if kind == "string":
        return text.where(~missing, None) if missing.any() else text.astype(str)
    raise DemoError(
        f"La colonne « {column.name} » attend une valeur structurée, qu'un CSV ne peut pas porter : "
        "utilisez l'API JSON (predict)."
    )


def _check(bad: pd.Series, text: pd.Series, column: Column, positions: list[str]) -> None:
    if not bad.any():
        return
    shown = [
        f"{positions[i]} : « {_clip(text.iloc[i])} »"
        for i in np.flatnonzero(bad.to_numpy())[:MAX_EXAMPLES]
    ]
    more = int(bad.sum()) - len(shown)
    tail = f" et {more} autre(s)" if more > 0 else ""
    raise DemoError(
        f"La colonne « {column.name} » doit contenir des valeurs de type {column.label}"
        f"{_example(column)} ; valeurs invalides {', '.join(shown)}{tail}."
    )


def _example(column: Column) -> str:
    example = column.example or EXAMPLES.get("date" if column.dates_as_text else column.type)
    return f", par exemple « {example} »" if example else ""


def _where(mask: pd.Series, positions: list[str]) -> str:
    where = np.flatnonzero(mask.to_numpy())
    shown = ", ".join(positions[i] for i in where[:MAX_EXAMPLES])
    more = len(where) - min(len(where), MAX_EXAMPLES)
    return shown + (f" et {more} autre(s)" if more > 0 else "")


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _infer(values: pd.Series) -> pd.Series:
    """Numbers (decimal comma or point) stay numbers in columns the signature does not type."""
    if pd.api.types.is_numeric_dtype(values):
        return values
    text = values.map(lambda v: "" if _is_missing(v) else str(v).strip())
    blank = text == ""
    numbers = pd.Series([parse_number(v) for v in text], index=values.index, dtype="float64")
    if (numbers.notna() | blank).all() and not blank.all():
        whole = numbers.dropna()
        return numbers.astype("int64") if not blank.any() and (whole % 1 == 0).all() else numbers
    return values


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
