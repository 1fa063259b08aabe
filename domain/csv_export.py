"""CSV files for spreadsheets, written the French Excel way and safe to open.

French Excel reads ``;`` between cells, CRLF line ends, UTF-8 when a BOM
starts the file. A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return would be read as a formula by a spreadsheet (CSV formula
injection: ``=HYPERLINK(...)`` in a name someone typed); such a cell is
prefixed with ``'`` so that it is shown as text (OWASP's advice).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """``value`` as the text of a cell, never read as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def french_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """A French Excel CSV file: ``;``, CRLF, UTF-8 with a BOM, every cell safe to open."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")
