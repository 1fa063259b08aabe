"""Turning a CSV upload or a JSON payload into the DataFrame a model expects.

Every problem becomes a :class:`~demos.server.errors.DemoError` whose French
message names the column, the line and what to fix. Values are converted to
the types of the model's signature here, so that MLflow's own schema
enforcement (which runs after) has nothing left to refuse.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from demos.server.errors import DemoError
from demos.server.model import Column

MISSING = {"", "na", "nan", "null", "none"}
TRUE = {"true", "vrai", "oui", "yes", "1", "1.0"}
FALSE = {"false", "faux", "non", "no", "0", "0.0"}
MAX_EXAMPLES = 3


@dataclass
class ParsedInput:
    """A validated input table.

    Attributes:
        frame: the model's columns, converted to the signature's types, plus
            the other columns of the file (kept for charts, e.g. the truth).
        model_columns: the columns to send to the model.
        ignored: file columns the model does not use.
    """

    frame: pd.DataFrame
    model_columns: list[str]
    ignored: list[str] = field(default_factory=list)

    @property
    def model_frame(self) -> pd.DataFrame:
        return self.frame[self.model_columns] if self.model_columns else self.frame


def parse_csv(
    data: bytes, columns: Sequence[Column], *, max_rows: int, max_bytes: int, truncate: bool = False
) -> ParsedInput:
    """Read an uploaded CSV file and validate it against ``columns``.

    Comma, semicolon and tab separators are recognised; with a semicolon,
    a decimal comma is accepted in numeric columns (French spreadsheets).
    With ``truncate``, rows past ``max_rows`` are dropped instead of refused.

    Raises:
        DemoError: empty, too large, not UTF-8 text, not a table, too many
            rows, missing columns or values of the wrong type.
    """
    if len(data) > max_bytes:
        raise DemoError(
            f"Le fichier est trop volumineux ({_size(len(data))}) : la limite est de {_size(max_bytes)}. "
            "Envoyez un extrait plus court.",
            status_code=413,
        )
    if not data.strip():
        raise DemoError(
            "Le fichier est vide : envoyez un CSV avec une ligne d'en-tête et au moins une ligne de données."
        )
    if b"\x00" in data:
        raise DemoError(
            "Ce fichier n'est pas un fichier texte CSV (il contient des octets binaires).",
            status_code=415,
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DemoError(
            f"Le fichier n'est pas encodé en UTF-8 (octet invalide à la position {exc.start}). "
            "Dans votre tableur, enregistrez-le en « CSV UTF-8 ».",
            status_code=415,
        ) from None
    separator = _separator(text)
    header = next(csv.reader(io.StringIO(text.lstrip()), delimiter=separator), [])
    duplicated = sorted(
        {c.strip() for c in header if [h.strip() for h in header].count(c.strip()) > 1}
    )
    if duplicated:
        raise DemoError(
            f"Colonnes en double : {', '.join(duplicated)}. Chaque colonne doit apparaître une seule fois."
        )
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=separator,
            dtype=str,
            keep_default_na=False,
            nrows=max_rows + 1,
            skipinitialspace=True,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, csv.Error) as exc:
        raise DemoError(
            f"Le fichier n'a pas pu être lu comme un CSV : {_first_line(exc)}"
        ) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(frame) == 0:
        raise DemoError(
            "Le fichier ne contient qu'une ligne d'en-tête : ajoutez au moins une ligne de données."
        )
    if truncate:
        frame = frame.head(max_rows)
    return _validate(
        frame, columns, max_rows=max_rows, decimal_comma=separator == ";", first_line=2
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
    return _validate(
        frame.reset_index(drop=True),
        columns,
        max_rows=max_rows,
        decimal_comma=False,
        first_line=None,
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
    decimal_comma: bool,
    first_line: int | None,
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
        return ParsedInput(frame.apply(_infer) if first_line else frame, [])
    missing = [c.name for c in columns if c.required and c.name not in frame.columns]
    if missing:
        expected = ", ".join(f"{c.name} ({c.label})" for c in columns)
        raise DemoError(
            f"Colonne(s) manquante(s) : {', '.join(missing)}. Le modèle attend les colonnes : {expected}."
        )
    errors = []
    converted = frame.copy()
    for column in columns:
        if column.name not in frame.columns:
            continue
        try:
            converted[column.name] = _convert(frame[column.name], column, decimal_comma, first_line)
        except DemoError as exc:
            errors.append(exc.message)
    if errors:
        raise DemoError(" ".join(errors))
    known = {c.name for c in columns}
    ignored = [c for c in frame.columns if c not in known]
    for name in ignored:  # kept for charts and the download (e.g. the observed truth)
        converted[name] = _infer(frame[name])
    model_columns = [c.name for c in columns if c.name in frame.columns]
    return ParsedInput(converted, model_columns, ignored)


def _convert(
    values: pd.Series, column: Column, decimal_comma: bool, first_line: int | None
) -> pd.Series:
    text = values.map(lambda v: "" if _is_missing(v) else str(v).strip())
    missing = text.str.lower().isin(MISSING)
    if column.required and missing.any():
        raise DemoError(
            f"La colonne « {column.name} » a des valeurs manquantes ({_where(missing, first_line)})."
        )
    kind = column.type
    if kind in ("double", "float", "integer", "long"):
        numbers = pd.to_numeric(
            text.str.replace(",", ".", regex=False) if decimal_comma else text, errors="coerce"
        )
        _check(numbers.isna() & ~missing, text, column, first_line)
        if kind in ("integer", "long"):
            _check(~missing & numbers.notna() & (numbers % 1 != 0), text, column, first_line)
            if missing.any():
                raise DemoError(
                    f"La colonne « {column.name} » ({column.label}) ne peut pas avoir de valeurs vides."
                )
            return numbers.astype("int32" if kind == "integer" else "int64")
        return numbers.astype("float32" if kind == "float" else "float64")
    if kind == "boolean":
        lowered = text.str.lower()
        _check(~missing & ~lowered.isin(TRUE | FALSE), text, column, first_line)
        if missing.any():
            raise DemoError(
                f"La colonne « {column.name} » ({column.label}) ne peut pas avoir de valeurs vides."
            )
        return lowered.isin(TRUE)
    if kind == "datetime":
        dates = pd.to_datetime(text.where(~missing), format="ISO8601", errors="coerce")
        for fmt in ("%d/%m/%Y", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S"):
            retry = dates.isna() & ~missing
            if not retry.any():
                break
            dates = dates.where(
                ~retry, pd.to_datetime(text.where(retry), format=fmt, errors="coerce")
            )
        _check(dates.isna() & ~missing, text, column, first_line)
        return dates.astype("datetime64[ns]")
    if kind == "string":
        return text.where(~missing, None) if missing.any() else text.astype(str)
    raise DemoError(
        f"La colonne « {column.name} » attend une valeur structurée, qu'un CSV ne peut pas porter : "
        "utilisez l'API JSON (predict)."
    )


def _check(bad: pd.Series, text: pd.Series, column: Column, first_line: int | None) -> None:
    if not bad.any():
        return
    shown = [
        f"{_line(i, first_line)} : « {text.iloc[i][:40]} »"
        for i in np.flatnonzero(bad.to_numpy())[:MAX_EXAMPLES]
    ]
    more = int(bad.sum()) - len(shown)
    tail = f" et {more} autre(s)" if more > 0 else ""
    raise DemoError(
        f"La colonne « {column.name} » doit contenir des valeurs de type {column.label} ; "
        f"valeurs invalides {', '.join(shown)}{tail}."
    )


def _where(mask: pd.Series, first_line: int | None) -> str:
    positions = np.flatnonzero(mask.to_numpy())
    shown = ", ".join(_line(i, first_line) for i in positions[:MAX_EXAMPLES])
    more = len(positions) - min(len(positions), MAX_EXAMPLES)
    return shown + (f" et {more} autre(s)" if more > 0 else "")


def _line(position: int, first_line: int | None) -> str:
    return (
        f"ligne {position + first_line}"
        if first_line is not None
        else f"enregistrement {position + 1}"
    )


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _infer(values: pd.Series) -> pd.Series:
    """Numbers stay numbers in columns the signature does not type."""
    numbers = pd.to_numeric(values, errors="coerce")
    blank = values.map(_is_missing) | (values.astype(str).str.strip() == "")
    return numbers if (numbers.notna() | blank).all() and not blank.all() else values


def _separator(text: str) -> str:
    header = text.lstrip().split("\n", 1)[0]
    counts = {sep: header.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] > 0 else ","


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _size(n: int) -> str:
    return (
        f"{n / (1024 * 1024):.1f} Mio".replace(".", ",")
        if n >= 1024 * 1024
        else f"{n / 1024:.0f} Kio"
    )
