"""Values as French people read and write them: pages, CSV files, chart axes.

- on a page: ``1 234,5`` (narrow no-break space between thousands, decimal
  comma), dates ``06/11/2017`` (with ``14:30`` when not midnight), ``oui`` /
  ``non``;
- in a CSV download, two formats: French Excel (``;``, decimal comma, dates
  ``JJ/MM/AAAA``, ``oui``/``non``, UTF-8 with a BOM so that Excel reads the
  accents) and international (``,``, decimal point, ISO dates, ``true``/``false``,
  UTF-8). Both are read back by the upload.

No system locale is needed: everything is written here.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import numpy as np
import pandas as pd

MONTHS = (
    "janv.",
    "févr.",
    "mars",
    "avr.",
    "mai",
    "juin",
    "juil.",
    "août",
    "sept.",
    "oct.",
    "nov.",
    "déc.",
)
NARROW_NBSP = "\u202f"


def is_missing(value: Any) -> bool:
    """None, NaN, NaT, pd.NA."""
    if value is None or value is pd.NaT or value is pd.NA:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(float(value))
    return False


def number(value: Any, decimals: int = 3) -> str:
    """``value`` in French: ``1 234,5`` (at most ``decimals`` decimals, trailing zeros dropped)."""
    try:
        figure = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(figure):
        return ""
    if math.isinf(figure):
        return "∞" if figure > 0 else "-∞"
    if figure.is_integer() and abs(figure) < 1e15:
        return f"{int(figure):,}".replace(",", NARROW_NBSP)
    text = f"{figure:,.{decimals}f}".rstrip("0").rstrip(".")
    return text.replace(",", NARROW_NBSP).replace(".", ",")


def date(value: pd.Timestamp) -> str:
    """``06/11/2017``, or ``06/11/2017 14:30`` when the time is not midnight."""
    if value == value.normalize():
        return str(value.strftime("%d/%m/%Y"))
    return str(value.strftime("%d/%m/%Y %H:%M" if value.second == 0 else "%d/%m/%Y %H:%M:%S"))


def text(value: Any) -> tuple[str, bool]:
    """What a page shows for ``value``, and whether it is a number (aligned right)."""
    if is_missing(value):
        return "", False
    if isinstance(value, bool | np.bool_):
        return ("oui" if value else "non"), False
    if isinstance(value, int | float | np.integer | np.floating):
        return number(value), True
    if isinstance(value, pd.Timestamp):
        return date(value), False
    return str(value), False


def csv_bytes(frame: pd.DataFrame, *, french: bool = True) -> bytes:
    """``frame`` as a CSV file: French Excel (default) or international (see the module doc)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(
        buffer,
        delimiter=";" if french else ",",
        lineterminator="\r\n" if french else "\n",
        quoting=csv.QUOTE_MINIMAL,
    )
    writer.writerow([str(c) for c in frame.columns])
    for row in frame.itertuples(index=False, name=None):
        writer.writerow([_csv_cell(v, french) for v in row])
    content = buffer.getvalue()
    return ("\ufeff" + content).encode("utf-8") if french else content.encode("utf-8")


def _csv_cell(value: Any, french: bool) -> str:
    if is_missing(value):
        return ""
    if isinstance(value, bool | np.bool_):
        if french:
            return "oui" if value else "non"
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        figure = float(value)
        if figure.is_integer() and abs(figure) < 2**53:
            return str(int(figure))
        shown = f"{figure:.15g}"
        return shown.replace(".", ",") if french else shown
    if isinstance(value, pd.Timestamp):
        if french:
            return date(value)
        return str(
            value.strftime("%Y-%m-%d" if value == value.normalize() else "%Y-%m-%d %H:%M:%S")
        )
    return str(value)


def axis_number(value: float, _position: object = None) -> str:
    """A chart's tick label: ``1 200``, ``0,5``."""
    return number(value, decimals=2)


def axis_dates(stamps: list[pd.Timestamp]) -> list[str]:
    """French tick labels for dates on a chart's axis (``6 nov.``, ``déc. 2017``, ``2018``).

    The precision follows the ticks: years when they are all on the 1st of
    January, months when all on the 1st of a month, days otherwise, with
    the hour when a tick is not at midnight. The year is written on the
    first tick and where it changes.
    """
    if not stamps:
        return []
    timed = any(s != s.normalize() for s in stamps)
    monthly = not timed and all(s.day == 1 for s in stamps) and len(stamps) > 1
    yearly = monthly and all(s.month == 1 for s in stamps)
    labels, previous = [], None
    for stamp in stamps:
        month = MONTHS[stamp.month - 1]
        new_year = previous is None or stamp.year != previous.year
        if yearly:
            label = str(stamp.year)
        elif monthly:
            label = f"{month} {stamp.year}" if new_year else month
        elif timed:
            new_day = previous is None or stamp.normalize() != previous.normalize()
            hour = f"{stamp.hour} h {stamp.minute:02d}" if stamp.minute else f"{stamp.hour} h"
            label = f"{stamp.day} {month} {hour}" if new_day else hour
        else:
            label = f"{stamp.day} {month} {stamp.year}" if new_year else f"{stamp.day} {month}"
        labels.append(label)
        previous = stamp
    return labels
