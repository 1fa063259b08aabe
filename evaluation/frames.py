"""Tables in and out of an evaluation: French CSV files, typed columns, a model's answer, content hashes.

- :func:`read_csv` reads an uploaded CSV the way French spreadsheets write
  them (``;`` or ``,`` or tab, sniffed; UTF-8 with or without BOM, else
  cp1252 / latin-1) into a table of text, every cell as written. Its index is
  the line number in the file (the header is line 1), so that messages name
  lines.
- :func:`conform` checks and types the columns a task needs (numbers with a
  decimal comma, dates in dd/mm/yyyy, booleans in vrai/faux/oui/non/1/0).
- :func:`predictions_frame` is the guard against a hostile sandbox: whatever
  the model answered becomes the task's output columns, or
  :class:`~domain.errors.InvalidPredictions` with a readable reason.
- :func:`canonical_csv` writes a table the same way whatever its dtypes, for
  content hashes.

Every problem is an :class:`~domain.errors.InvalidData` (or
``InvalidPredictions``) with a French message; no pandas or csv exception
leaves this module.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from domain.errors import InvalidData, InvalidPredictions, PayloadTooLarge
from evaluation.task import Column, Task

#: At most this many columns in an uploaded file.
MAX_COLUMNS = 200
#: At most this many characters in one cell (a canteen's name, a date, a number).
MAX_CELL_CHARS = 10_000
#: At most this many characters in one label a model answers.
MAX_LABEL_CHARS = 200
#: Cell values read as missing in typed (number, boolean, date) columns.
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none"})
TRUE = frozenset({"vrai", "oui", "true", "yes", "1", "1.0"})
FALSE = frozenset({"faux", "non", "false", "no", "0", "0.0"})
NUMERIC = frozenset({"double", "float", "long", "integer"})
INTEGRAL = frozenset({"long", "integer"})
#: The largest integer a float holds exactly: integer columns stay below it.
MAX_EXACT_INT = 2**53
MAX_EXAMPLES = 3
INDEX_NAME = "ligne"
TYPE_LABELS = {
    "string": "texte",
    "long": "entier",
    "integer": "entier",
    "double": "nombre",
    "float": "nombre",
    "boolean": "booléen (vrai/faux, oui/non, 1/0)",
    "date": "date (AAAA-MM-JJ ou JJ/MM/AAAA)",
}
_ISO_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?")
_FR_DATE = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?: (\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_SEPARATORS = (";", ",", "\t")


# ---------------------------------------------------------------- reading


def read_csv(data: bytes, *, max_bytes: int, max_rows: int) -> pd.DataFrame:
    """Read an uploaded CSV file into a table of text (every cell a ``str``, as written).

    The separator (``;``, ``,`` or tab) is the one that splits the first
    lines into the same number of fields; the encoding is UTF-8 (a BOM is
    dropped), else cp1252, else latin-1. Column names are stripped; a
    nameless column whose cells are all empty (a trailing separator) is
    dropped; blank lines are skipped. The index is the line number in the
    file (header: line 1).

    Raises:
        PayloadTooLarge: more than ``max_bytes`` bytes.
        InvalidData: empty, binary, a header only, more than ``max_rows``
            data lines or :data:`MAX_COLUMNS` columns, duplicated or nameless
            column names, a line with the wrong number of values, a cell over
            :data:`MAX_CELL_CHARS` characters, a broken quote.
    """
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"Le fichier est trop volumineux ({_size(len(data))}) : la limite est de "
            f"{_size(max_bytes)}."
        )
    text = _decode(data)
    if not text.strip():
        raise InvalidData(
            "Le fichier est vide : envoyez un CSV avec une ligne d'en-tête et au moins une "
            "ligne de données."
        )
    separator = _sniff(text)
    header, rows, lines = _parse(text, separator, max_rows)
    header, rows = _named_columns(header, rows)
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    frame.index = pd.Index(lines, name=INDEX_NAME)
    return frame


def _decode(data: bytes) -> str:
    if b"\x00" in data:
        raise InvalidData(
            "Ce fichier n'est pas un fichier texte CSV (il contient des octets binaires)."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    controls = sum(1 for ch in text[:100_000] if ord(ch) < 32 and ch not in "\t\r\n\f\v")
    if controls > max(10, len(text[:100_000]) // 100):
        raise InvalidData(
            "Ce fichier n'est pas un fichier texte CSV (il contient des caractères de contrôle)."
        )
    return text


def _sniff(text: str) -> str:
    """The separator that splits the first lines into the same number (> 1) of fields; else the
    one the header uses most; a header without any: the one the lines use least (one column)."""
    head = [line for line in text[:65_536].splitlines()[:21] if line.strip()]
    if len(head) > 1:
        head = head[:-1]  # the last one may be cut in the middle
    best, best_width = "", 1
    for separator in _SEPARATORS:
        try:
            widths = {len(row) for row in csv.reader(head, delimiter=separator)}
        except csv.Error:
            continue
        if len(widths) == 1 and (width := widths.pop()) > best_width:
            best, best_width = separator, width
    if best:
        return best
    first = head[0] if head else ""
    counts = {separator: first.count(separator) for separator in _SEPARATORS}
    if max(counts.values()):
        return max(_SEPARATORS, key=lambda s: counts[s])
    # one column: the separator the data lines use least (``12,5`` keeps its comma)
    used = {separator: sum(line.count(separator) for line in head) for separator in _SEPARATORS}
    return min(_SEPARATORS, key=lambda s: used[s])


def _parse(
    text: str, separator: str, max_rows: int
) -> tuple[list[str], list[list[str]], list[int]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    start = 1
    try:
        for row in reader:
            line = start
            start = reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                if len(row) > MAX_COLUMNS:
                    raise InvalidData(
                        f"Trop de colonnes ({len(row)}) : la limite est de {MAX_COLUMNS}."
                    )
                header = [cell.strip() for cell in row]
                continue
            if len(rows) >= max_rows:
                raise InvalidData(
                    f"Trop de lignes : la limite est de {max_rows} lignes de données. "
                    "Découpez le fichier."
                )
            if len(row) != len(header):
                raise InvalidData(
                    f"Ligne {line} : {len(row)} valeur(s) pour {len(header)} colonne(s) "
                    f"(séparateur « {_shown(separator)} »). Vérifiez les séparateurs et les "
                    "guillemets de cette ligne.",
                    details={"line": line},
                )
            long = next((i for i, cell in enumerate(row) if len(cell) > MAX_CELL_CHARS), None)
            if long is not None:
                raise _long_cell(line, header[long])
            rows.append(row)
            lines.append(line)
    except csv.Error as exc:
        message = str(exc)
        if "field larger than field limit" in message:
            raise _long_cell(start, None) from None
        raise InvalidData(
            f"Ligne {start} : le fichier n'a pas pu être lu comme un CSV ({_first_line(message)}).",
            details={"line": start},
        ) from None
    if header is None:
        raise InvalidData("Le fichier est vide : ajoutez une ligne d'en-tête et des données.")
    if not rows:
        raise InvalidData(
            "Le fichier ne contient qu'une ligne d'en-tête : ajoutez au moins une ligne de données."
        )
    return header, rows, lines


def _named_columns(header: list[str], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    nameless = [i for i, name in enumerate(header) if not name]
    kept = [i for i in range(len(header)) if i not in set(nameless)]
    for i in nameless:
        if any(row[i].strip() for row in rows):
            raise InvalidData(
                f"La colonne n° {i + 1} n'a pas de nom alors qu'elle contient des valeurs : "
                "nommez-la dans la ligne d'en-tête."
            )
    header = [header[i] for i in kept]
    if not header:
        raise InvalidData("La ligne d'en-tête ne nomme aucune colonne.")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise InvalidData(
            f"Colonne(s) en double : {', '.join(duplicated)}. Chaque colonne doit apparaître "
            "une seule fois."
        )
    if nameless:
        rows = [[row[i] for i in kept] for row in rows]
    return header, rows


def _long_cell(line: int, column: str | None) -> InvalidData:
    where = f", colonne « {column} »" if column else ""
    return InvalidData(
        f"Ligne {line}{where} : une valeur dépasse {MAX_CELL_CHARS} caractères "
        "(un guillemet non refermé ?).",
        details={"line": line, "column": column},
    )


# ---------------------------------------------------------------- typing


def conform(frame: pd.DataFrame, columns: tuple[Column, ...], role: str) -> pd.DataFrame:
    """The table of ``columns`` taken from ``frame``, each value of its column's type.

    Types: numbers (``double``/``float``: float64; ``long``/``integer``:
    int64, float64 when an optional column has gaps) accept a decimal comma,
    spaces between thousands, and ``1.234,5`` / ``1,234.5`` (the last mark
    is the decimal one); ``boolean``: vrai/faux, oui/non, true/false, 1/0
    (bool; object with None when an optional column has gaps); ``date``:
    AAAA-MM-JJ, JJ/MM/AAAA, JJ-MM-AAAA, JJ.MM.AAAA, with an optional time,
    written back as ISO ``"YYYY-MM-DD"`` strings (``"YYYY-MM-DDTHH:MM:SS"``
    for the whole column when one value has a time of day); ``string``: text,
    stripped. A required column may have no missing value; an optional one
    may be absent (it is then absent from the result) or have gaps (None /
    NaN). Other columns of ``frame`` are left out; the result has a fresh
    ``RangeIndex`` and the columns in the order of ``columns``.

    Args:
        frame: typically :func:`read_csv`'s table (its index names lines in
            messages), or any frame (records are then counted from 1).
        columns: the task's columns for this role.
        role: what they are, in French, for messages (``"entrées"``, ``"vérité"``).

    Raises:
        InvalidData: every problem at once (missing columns, values of the
            wrong type with up to three examples per column, each with its
            line), ``details`` listing them.
    """
    names = [str(c) for c in frame.columns]
    problems: list[str] = []
    missing = [c for c in columns if c.required and c.name not in names]
    if missing:
        hints = []
        for column in missing:
            near = [n for n in names if n.strip().lower() == column.name.lower()]
            if near:
                hints.append(f"« {near[0]} » existe : écrivez « {column.name} »")
        expected = ", ".join(_describe(c) for c in columns)
        problems.append(
            f"Colonne(s) manquante(s) dans les {role} : {', '.join(c.name for c in missing)}"
            + (f" ({' ; '.join(hints)})" if hints else "")
            + f". Colonnes attendues : {expected}."
        )
    out: dict[str, pd.Series] = {}
    positions = _positions(frame)
    for column in columns:
        if column.name not in names:
            continue
        values = frame[column.name]
        if isinstance(values, pd.DataFrame):  # duplicated names in a frame not read here
            problems.append(f"La colonne « {column.name} » apparaît plusieurs fois.")
            continue
        try:
            out[column.name] = _convert(values.reset_index(drop=True), column, positions)
        except InvalidData as exc:
            problems.append(exc.message)
    if problems:
        raise InvalidData(" ".join(problems), details={"role": role, "problems": problems})
    result = pd.DataFrame(out, index=pd.RangeIndex(len(frame)))
    return result[[c.name for c in columns if c.name in out]]


def _positions(frame: pd.DataFrame) -> list[str]:
    if frame.index.name == INDEX_NAME:
        return [f"ligne {label}" for label in frame.index]
    return [f"enregistrement {i + 1}" for i in range(len(frame))]


def _convert(values: pd.Series, column: Column, positions: list[str]) -> pd.Series:
    kind = column.type
    if kind in NUMERIC:
        return _numbers(values, column, positions)
    if kind == "boolean":
        return _booleans(values, column, positions)
    if kind == "date":
        return _dates(values, column, positions)
    return _strings(values, column, positions)


def _text(values: pd.Series) -> pd.Series:
    return pd.Series(
        ["" if _is_missing(v) else str(v).strip() for v in values], index=values.index, dtype=object
    )


def _gaps(text: pd.Series, column: Column, positions: list[str]) -> pd.Series:
    missing = text.map(lambda v: v.lower() in MISSING).astype(bool)
    if column.required and missing.any():
        raise InvalidData(
            f"La colonne « {column.name} » a des valeurs manquantes ({_where(missing, positions)})."
        )
    return missing


def _numbers(values: pd.Series, column: Column, positions: list[str]) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.astype(np.float64)
        text = values.astype(str)
        missing = numbers.isna()
        if column.required and missing.any():
            raise InvalidData(
                f"La colonne « {column.name} » a des valeurs manquantes "
                f"({_where(missing, positions)})."
            )
    else:
        text = _text(values)
        missing = _gaps(text, column, positions)
        numbers = pd.Series([_number(v) for v in text], index=values.index, dtype=np.float64)
    bad = ~missing & ~np.isfinite(numbers.fillna(0.0))
    bad |= ~missing & numbers.isna()
    _refuse(bad, text, column, positions)
    if column.type in INTEGRAL:
        filled = numbers.fillna(0.0)
        _refuse(
            ~missing & ((filled % 1 != 0) | (filled.abs() >= MAX_EXACT_INT)),
            text,
            column,
            positions,
            "un entier",
        )
        if not missing.any():
            return numbers.astype(np.int64)
    return numbers


def parse_number(text: str) -> float:
    """A number as a French (or English) spreadsheet writes it (``12,5``, ``1 234,5``,
    ``1.234,5``, ``1,234.5``, ``-3e2``), NaN when the text is none or a missing-value word."""
    return _number(text.strip())


def _number(text: str) -> float:
    """A number as a French (or English) spreadsheet writes it, NaN when it is none."""
    if text.lower() in MISSING:
        return math.nan
    compact = re.sub(r"[\s\u00a0\u202f']", "", text)
    if "," in compact and "." in compact:
        if compact.rfind(",") > compact.rfind("."):
            compact = compact.replace(".", "").replace(",", ".")
        else:
            compact = compact.replace(",", "")
    else:
        compact = compact.replace(",", ".")
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", compact):
        return math.nan
    try:
        return float(compact)
    except (ValueError, OverflowError):
        return math.nan


def _booleans(values: pd.Series, column: Column, positions: list[str]) -> pd.Series:
    if pd.api.types.is_bool_dtype(values) and not values.isna().any():
        return values.astype(bool)
    text = _text(values)
    missing = _gaps(text, column, positions)
    lowered = text.str.lower()
    _refuse(~missing & ~lowered.isin(TRUE | FALSE), text, column, positions)
    flags = lowered.isin(TRUE)
    if missing.any():
        return pd.Series(
            [None if gap else bool(flag) for gap, flag in zip(missing, flags, strict=True)],
            index=values.index,
            dtype=object,
        )
    return flags.astype(bool)


def _dates(values: pd.Series, column: Column, positions: list[str]) -> pd.Series:
    text = _text(values)
    missing = _gaps(text, column, positions)
    dates = parse_dates(values)
    _refuse(~missing & dates.isna(), text, column, positions)
    return iso_dates(dates)


def _strings(values: pd.Series, column: Column, positions: list[str]) -> pd.Series:
    text = pd.Series([_label_text(v) for v in values], index=values.index, dtype=object)
    missing = text.map(lambda v: v == "").astype(bool)
    if column.required and missing.any():
        raise InvalidData(
            f"La colonne « {column.name} » a des valeurs manquantes ({_where(missing, positions)})."
        )
    return text.where(~missing, None)


def _label_text(value: Any) -> str:
    if _is_missing(value):
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, pd.Timestamp):
        return _iso(value, value.time() != pd.Timestamp(0).time())
    return str(value).strip()


def parse_dates(values: pd.Series) -> pd.Series:
    """``values`` as timestamps (``datetime64``), NaT where a value is no date.

    Accepted: timestamps and dates as they are; text as ISO
    (``AAAA-MM-JJ``, with an optional ``HH:MM[:SS]``) or French
    (``JJ/MM/AAAA``, ``-`` or ``.`` between, optional time); years from 1800
    to 2300. Numbers are never dates.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = pd.to_datetime(values, errors="coerce")
        if getattr(stamps.dt, "tz", None) is not None:
            stamps = stamps.dt.tz_localize(None)
        return _plausible(stamps.astype("datetime64[ns]"))
    out: list[Any] = []
    for value in values:
        out.append(_date(value))
    return _plausible(pd.Series(pd.to_datetime(out, errors="coerce"), index=values.index))


def _date(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.tz_localize(None) if value.tzinfo else value
    if hasattr(value, "isoformat") and hasattr(value, "year") and not isinstance(value, str):
        try:
            return pd.Timestamp(value)
        except (ValueError, TypeError, OverflowError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if _ISO_DATE.fullmatch(text):
            return pd.Timestamp(text.replace(" ", "T"))
        match = _FR_DATE.fullmatch(text)
        if match:
            day, month, year, hour, minute, second = match.groups()
            return pd.Timestamp(
                int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
            )
    except (ValueError, TypeError, OverflowError):
        return None
    return None


def _plausible(stamps: pd.Series) -> pd.Series:
    years = stamps.dt.year
    return stamps.where((years >= 1800) & (years <= 2300))


def iso_dates(dates: pd.Series) -> pd.Series:
    """Timestamps as ISO strings: ``"YYYY-MM-DD"``, or ``"YYYY-MM-DDTHH:MM:SS"`` for the whole
    column when one has a time of day; None where a value is NaT."""
    valid = dates.dropna()
    timed = bool((valid != valid.dt.normalize()).any()) if len(valid) else False
    return pd.Series(
        [None if pd.isna(d) else _iso(d, timed) for d in dates], index=dates.index, dtype=object
    )


def _iso(stamp: pd.Timestamp, timed: bool) -> str:
    return str(stamp.strftime("%Y-%m-%dT%H:%M:%S" if timed else "%Y-%m-%d"))


def find_date_column(frame: pd.DataFrame, columns: Sequence[Column] = ()) -> str | None:
    """The first column of ``frame`` that holds dates: typed ``date`` in ``columns``, else the
    first text column (in ``columns``' order, or ``frame``'s without them) whose values all
    parse as dates (:func:`parse_dates`). None without one."""
    typed = [c.name for c in columns if c.type == "date" and c.name in frame.columns]
    if typed:
        return typed[0]
    names = [c.name for c in columns if c.name in frame.columns] or [str(c) for c in frame.columns]
    for name in names:
        values = frame[name]
        if isinstance(values, pd.DataFrame) or len(values) == 0:
            continue
        if pd.api.types.is_datetime64_any_dtype(values):
            return name
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        present = values[values.map(lambda v: not _is_missing(v))]
        if len(present) and parse_dates(present).notna().all():
            return name
    return None


# ---------------------------------------------------------------- a model's answer


def predictions_frame(raw: object, task: Task, n_rows: int) -> pd.DataFrame:
    """A model's answer as the task's output columns, one row per input row.

    ``raw`` is the sandbox's JSON answer, already parsed: ``{"predictions":
    ...}`` (or what it holds), where ``...`` is a list of ``n_rows`` scalars
    (the task's first required output), a list of ``n_rows`` records
    ``{column: value}``, or a mapping ``{column: [n_rows values]}``. Columns
    the task does not name are ignored; an optional output is kept when the
    answer has it (then in every row). Numbers must be finite (JSON numbers,
    or text holding one); booleans are true/false, 0/1 or their French
    words; labels are text of at most :data:`MAX_LABEL_CHARS` characters;
    dates ISO or French.

    Returns:
        The output columns the answer has, in the task's order: numbers as
        float64, booleans as bool, labels and ISO dates as text; a
        ``RangeIndex``.

    Raises:
        InvalidPredictions: not a list or mapping, the wrong number of rows, a
            required column missing, a missing, non-finite or mistyped value
            (the message names up to three predictions), nested values.
    """
    body = raw.get("predictions", raw) if isinstance(raw, dict) else raw
    outputs = task.outputs
    required = [c for c in outputs if c.required]
    if isinstance(body, dict):
        columns = _from_mapping(body, outputs, n_rows)
    elif isinstance(body, list):
        _length(len(body), n_rows)
        if body and all(isinstance(row, dict) for row in body):
            columns = _from_records(body, outputs)
        elif any(isinstance(row, dict) for row in body):
            raise InvalidPredictions(
                "Le modèle a renvoyé une liste mêlant des enregistrements et d'autres valeurs."
            )
        else:
            first = (required or list(outputs))[:1]
            if not first:
                raise InvalidPredictions("La tâche ne définit aucune colonne de sortie.")
            columns = {first[0].name: body}
    else:
        raise InvalidPredictions(
            "Le modèle n'a pas renvoyé de prédictions utilisables : une liste de valeurs ou "
            f"d'enregistrements était attendue, pas {_kind(body)}."
        )
    absent = [c.name for c in required if c.name not in columns]
    if absent:
        raise InvalidPredictions(
            f"Colonne(s) de sortie manquante(s) dans la réponse du modèle : {', '.join(absent)}."
        )
    out: dict[str, pd.Series] = {}
    problems = []
    for column in outputs:
        if column.name in columns:
            try:
                out[column.name] = _output(columns[column.name], column)
            except InvalidPredictions as exc:
                problems.append(exc.message)
    if problems:
        raise InvalidPredictions(" ".join(problems), details={"problems": problems})
    return pd.DataFrame(out, index=pd.RangeIndex(n_rows))


def _length(got: int, n_rows: int) -> None:
    if got != n_rows:
        raise InvalidPredictions(
            f"Le modèle a renvoyé {got} prédiction(s) pour {n_rows} ligne(s) : son résultat ne "
            "peut pas être associé aux données."
        )


def _from_mapping(body: dict[Any, Any], outputs: Iterable[Column], n_rows: int) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for column in outputs:
        if column.name not in body:
            continue
        values = body[column.name]
        if not isinstance(values, list):
            raise InvalidPredictions(
                f"La sortie « {column.name} » n'est pas une liste de valeurs ({_kind(values)})."
            )
        _length(len(values), n_rows)
        columns[column.name] = values
    return columns


def _from_records(body: list[dict[Any, Any]], outputs: Iterable[Column]) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for column in outputs:
        holders = [column.name in row for row in body]
        if not any(holders):
            continue
        if not all(holders):
            first = holders.index(False)
            raise InvalidPredictions(
                f"La sortie « {column.name} » manque à la prédiction {first + 1} (et présente "
                "dans d'autres)."
            )
        columns[column.name] = [row[column.name] for row in body]
    return columns


def _output(values: list[Any], column: Column) -> pd.Series:
    bad: list[tuple[int, Any]] = []
    parsed: list[Any] = []
    for i, value in enumerate(values):
        result = _answer(value, column.type)
        if result is _BAD:
            bad.append((i, value))
        parsed.append(result)
    if bad:
        shown = ", ".join(f"prédiction {i + 1} : {_shown_value(v)}" for i, v in bad[:MAX_EXAMPLES])
        more = f" et {len(bad) - MAX_EXAMPLES} autre(s)" if len(bad) > MAX_EXAMPLES else ""
        raise InvalidPredictions(
            f"La sortie « {column.name} » doit contenir des valeurs de type "
            f"{TYPE_LABELS.get(column.type, column.type)} ; valeurs invalides {shown}{more}."
        )
    if column.type in NUMERIC:
        return pd.Series(parsed, dtype=np.float64)
    if column.type == "boolean":
        return pd.Series(parsed, dtype=bool)
    if column.type == "date":
        return iso_dates(pd.Series(pd.to_datetime(parsed)))
    return pd.Series(parsed, dtype=object)


class _Bad:
    pass


_BAD = _Bad()


def _answer(value: Any, kind: str) -> Any:
    if value is None or isinstance(value, dict | list):
        return _BAD
    if kind in NUMERIC:
        if isinstance(value, bool):
            return _BAD
        if isinstance(value, int | float):
            try:
                number = float(value)
            except OverflowError:
                return _BAD
        elif isinstance(value, str) and len(value) <= 64:
            number = _number(value.strip())
        else:
            return _BAD
        return number if math.isfinite(number) else _BAD
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in TRUE | FALSE:
            return value.strip().lower() in TRUE
        return _BAD
    if kind == "date":
        stamp = _date(value) if isinstance(value, str) and len(value) <= 64 else None
        return stamp if stamp is not None and 1800 <= stamp.year <= 2300 else _BAD
    if isinstance(value, float) and not math.isfinite(value):
        return _BAD
    text = _label_text(value)
    return text if 0 < len(text) <= MAX_LABEL_CHARS else _BAD


# ---------------------------------------------------------------- hashing


def canonical_csv(frame: pd.DataFrame) -> bytes:
    """``frame`` as a deterministic CSV, for content hashes.

    Separator ``,``, decimal point, UTF-8 without BOM, LF line ends, the
    header then the rows in ``frame``'s column and row order (the index is
    not written), minimal quoting. Values are written by what they are, not
    by their dtype: a missing value (None, NaN, NaT) is empty; booleans are
    ``true``/``false``; a number equal to an integer (below 2⁵³) is written
    as that integer (``3``, whether it was ``3`` or ``3.0``), other numbers in
    Python's shortest round-trip form; timestamps as ISO dates (with a time
    when not midnight); text as it is. Two frames holding the same values in
    different dtypes (int64 / float64 / object / str) give the same bytes.
    """
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=",", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([str(c) for c in frame.columns])
    for row in frame.itertuples(index=False, name=None):
        writer.writerow([_cell(v) for v in row])
    return buffer.getvalue().encode("utf-8")


def _cell(value: Any) -> str:
    if _is_missing(value):
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        if number.is_integer() and abs(number) < MAX_EXACT_INT:
            return str(int(number))
        return repr(number)
    if isinstance(value, pd.Timestamp):
        return _iso(value, value != value.normalize())
    return str(value)


# ---------------------------------------------------------------- helpers


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NaT or value is pd.NA:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(float(value))
    if isinstance(value, np.datetime64):
        return bool(np.isnat(value))
    return False


def _refuse(
    bad: pd.Series,
    text: pd.Series,
    column: Column,
    positions: list[str],
    expected: str | None = None,
) -> None:
    if not bad.any():
        return
    where = np.flatnonzero(bad.to_numpy(dtype=bool))
    shown = ", ".join(
        f"{positions[i]} : « {_clip(str(text.iloc[i]))} »" for i in where[:MAX_EXAMPLES]
    )
    more = f" et {len(where) - MAX_EXAMPLES} autre(s)" if len(where) > MAX_EXAMPLES else ""
    raise InvalidData(
        f"La colonne « {column.name} » doit contenir des valeurs de type "
        f"{expected or TYPE_LABELS.get(column.type, column.type)} ; valeurs invalides "
        f"{shown}{more}."
    )


def _where(mask: pd.Series, positions: list[str]) -> str:
    where = np.flatnonzero(mask.to_numpy(dtype=bool))
    shown = ", ".join(positions[i] for i in where[:MAX_EXAMPLES])
    return shown + (
        f" et {len(where) - MAX_EXAMPLES} autre(s)" if len(where) > MAX_EXAMPLES else ""
    )


def _describe(column: Column) -> str:
    kind = TYPE_LABELS.get(column.type, column.type).split(" (")[0]
    return f"{column.name} ({kind}{'' if column.required else ', facultative'})"


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shown_value(value: Any) -> str:
    if isinstance(value, dict | list):
        return "une valeur structurée"
    if value is None:
        return "vide (null)"
    return f"« {_clip(str(value))} »"


def _kind(value: Any) -> str:
    return {
        dict: "un objet",
        list: "une liste",
        str: "un texte",
        int: "un nombre",
        float: "un nombre",
        bool: "un booléen",
        type(None): "rien (null)",
    }.get(type(value), type(value).__name__)


def _shown(separator: str) -> str:
    return "tabulation" if separator == "\t" else separator


def _first_line(message: str) -> str:
    lines = message.strip().splitlines()
    return lines[0][:200] if lines else "erreur de lecture"


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} Mio".replace(".", ",")
    return f"{n / 1024:.0f} Kio"
