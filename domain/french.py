"""Numbers, units, plurals, dates and durations written the French way, for people.

One home for what every French text bibia shows needs — the web pages, the
charts the reference builds draw, the cards' figures, the CLI: a decimal
comma, a narrow no-break space between thousands and before « % », units
after a no-break space, « 1er mars 2026 », « 1 jour » / « 2 jours »,
« 2 min 30 s », times in Europe/Paris. Nothing here depends on a system
locale being installed. A missing or non-finite value reads « — », never
``None`` or ``nan``.

Units are written in the singular (« jour », « repas », « µg/m³ ») and take
the French plural from 2 on (:func:`plural_word`); ``"fraction"`` is the unit
of a share between 0 and 1, shown as a percentage.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

NNBSP = "\u202f"  # narrow no-break space: thousands, before « % »
NBSP = "\u00a0"  # no-break space: between a number and its unit
MISSING = "—"
FRACTION = "fraction"
PARIS = ZoneInfo("Europe/Paris")

MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
#: The abbreviations of the Imprimerie nationale (« déc. 2017 »); short months stay whole.
MONTHS_SHORT = (
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


def finite(value: Any) -> float | None:
    """``value`` as a finite float, or None (booleans, text, NaN and infinities are not numbers).

    numpy's scalars are numbers too (they register as :class:`numbers.Real`).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    x = float(value)
    return x if math.isfinite(x) else None


def _grouped(text: str) -> str:
    """``"-1234567.5"`` → ``"-1 234 567,5"`` (narrow no-break spaces, decimal comma)."""
    sign, text = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, _, decimals = text.partition(".")
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    whole = NNBSP.join([whole, *groups])
    return f"{sign}{whole},{decimals}" if decimals else f"{sign}{whole}"


def decimal(value: Any, digits: int) -> str:
    """``value`` with exactly ``digits`` decimals: ``decimal(1234.5, 1)`` is « 1 234,5 »."""
    x = finite(value)
    if x is None:
        return MISSING
    text = f"{x:.{max(digits, 0)}f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return _grouped(text)


def number(value: Any, significant: int = 4) -> str:
    """A measured figure: ``significant`` digits at most, never in scientific notation.

    ``0.12345`` → « 0,1235 », ``12.3456`` → « 12,35 », ``1234.56`` → « 1 235 »,
    ``3.0`` → « 3 »; trailing zeros dropped.
    """
    x = finite(value)
    if x is None:
        return MISSING
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    digits = min(max(significant - 1 - magnitude, 0), 8)
    text = f"{round(x, digits):.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if float(text) == 0:
        text = text.lstrip("-")
    return _grouped(text)


def integer(value: Any) -> str:
    """A count: « 11 000 », « 131 »."""
    x = finite(value)
    return MISSING if x is None else decimal(round(x), 0)


def percent(value: Any, digits: int = 1) -> str:
    """A share between 0 and 1 as a percentage: ``0.054`` → « 5,4 % »."""
    x = finite(value)
    return MISSING if x is None else f"{decimal(x * 100, digits)}{NNBSP}%"


#: Unit symbols, which never take a plural (« 2 h », « 3 g »).
SYMBOLS = frozenset(
    {"%", "s", "ms", "min", "h", "g", "kg", "t", "Wh", "kWh", "m", "km", "Mio", "Gio"}
)


def plural_word(count: Any, singular: str, plural: str | None = None) -> str:
    """The form of ``singular`` that goes after ``count``: French takes the singular below 2.

    The plural is ``plural`` when given, else the regular one: « s » added to
    the first word (« jour de test » → « jours de test »), except to words
    ending in s, x or z (« repas »), to symbols (« µg/m³ », « min ») and to
    ``fraction``.
    """
    x = finite(count)
    if x is not None and abs(x) < 2:
        return singular
    if plural is not None:
        return plural
    head, sep, tail = singular.partition(" ")
    if (
        not head.isalpha()
        or head in SYMBOLS
        or singular.split(" ")[0] in SYMBOLS
        or head[-1] in "sxzSXZ"
        or singular == FRACTION
    ):
        return singular
    return f"{head}s{sep}{tail}"


def plural(count: Any, singular: str, plural_form: str | None = None) -> str:
    """A count and its word: « 0 modèle », « 1 jour », « 2 jours », « 1 500 repas »."""
    x = finite(count)
    if x is None and not isinstance(count, str) and hasattr(count, "__len__"):
        x = float(len(count))  # a list: how many it holds
    if x is None:
        return MISSING
    shown = integer(x) if x == int(x) else number(x)
    return f"{shown} {plural_word(x, singular, plural_form)}"


def measure(value: Any, unit: str = "", with_unit: bool = False) -> str:
    """A score in its unit: a ``fraction`` as « 12,3 % », the others as :func:`number`
    (followed by the unit, in the right number, when ``with_unit``)."""
    x = finite(value)
    if x is None:
        return MISSING
    if unit == FRACTION:
        return percent(x)
    text = number(x)
    if with_unit and unit:
        text = f"{text}{NBSP}{plural_word(x, unit)}"
    return text


#: File sizes in the units of the International System (« ko », « Mo », « Go »: powers of 1 000).
SIZE_UNITS = ("ko", "Mo", "Go", "To")


def size(value: Any) -> str:
    """A file's size: « 0 octet », « 512 octets », « 1,2 ko », « 34,5 Mo », « 123 Mo », « 1,1 Go ».

    One decimal below 100 of a unit (« 2 Mo », not « 2,0 Mo »), none above; powers of 1 000.
    """
    x = finite(value)
    if x is None or x < 0:
        return MISSING
    count = round(x)
    if count < 1000:
        return f"{integer(count)}{NBSP}{plural_word(count, 'octet')}"
    amount, unit = count / 1000, SIZE_UNITS[0]
    for bigger in SIZE_UNITS[1:]:
        if round(amount, 1) < 1000:
            break
        amount, unit = amount / 1000, bigger
    text = decimal(amount, 1 if round(amount, 1) < 100 else 0)
    if text.endswith(",0"):
        text = text[:-2]
    return f"{text}{NBSP}{unit}"


def _moment(value: Any) -> dt.datetime | dt.date | None:
    if isinstance(value, dt.datetime | dt.date):
        return value
    if not value:
        return None
    text = str(value)
    try:
        if len(text) == 10:  # a day, « 2026-03-01 »: no time, no time zone
            return dt.date.fromisoformat(text)
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def paris(value: dt.datetime) -> dt.datetime:
    """A moment in Paris time (a naive one is taken as UTC, as bibia stores them)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(PARIS)


def date(value: Any) -> str:
    """A date as « 1er mars 2026 » (a moment: its day in Paris, naive ones being UTC); ``""``
    for nothing."""
    moment = _moment(value)
    if moment is None:
        return str(value)[:40] if value else ""
    if isinstance(moment, dt.datetime):
        moment = paris(moment)
    day = "1er" if moment.day == 1 else str(moment.day)
    return f"{day} {MONTHS[moment.month - 1]} {moment.year}"


def date_short(value: Any) -> str:
    """A date as « 6 nov. 2017 » (chart ticks and tight tables)."""
    moment = _moment(value)
    if moment is None:
        return str(value)[:40] if value else ""
    day = "1er" if moment.day == 1 else str(moment.day)
    return f"{day} {MONTHS_SHORT[moment.month - 1]} {moment.year}"


def month_short(value: Any) -> str:
    """A month as « déc. 2017 »."""
    moment = _moment(value)
    if moment is None:
        return str(value)[:40] if value else ""
    return f"{MONTHS_SHORT[moment.month - 1]} {moment.year}"


def _as_text(value: Any) -> str:
    return "" if value is None else str(value)[:40]


def date_ticks(values: Sequence[Any], *, by_span: bool = True) -> list[str]:
    """The labels of the dates along a chart's axis, as precise as the ticks are.

    « 2017 » when every tick is on the 1st of January, « déc. 2017 » when
    every tick is on the 1st of a month or (``by_span``) the ticks span more
    than a year, « 12 déc. 2017 » otherwise, with the hour
    (« 12 déc. 2017 14 h 30 ») when a tick is not at midnight. A value that
    is not a date is shown as it is. ``by_span=False`` labels the rows of a
    chart's data table, where each day is its own.
    """
    moments = [_moment(v) if isinstance(v, str | dt.date) else None for v in values]
    days = [m if not isinstance(m, dt.datetime) else m.replace(tzinfo=None) for m in moments]
    known = [m for m in days if m is not None]
    if not known:
        return [_as_text(v) for v in values]
    timed = any(isinstance(m, dt.datetime) and m.time() != dt.time() for m in known)
    first_days = not timed and len(known) > 1 and all(m.day == 1 for m in known)
    span = (max(known) - min(known)) if all(type(m) is type(known[0]) for m in known) else None
    long = by_span and span is not None and span > dt.timedelta(days=366)
    labels = []
    for value, when in zip(values, days, strict=True):
        if when is None:
            labels.append(_as_text(value))
        elif first_days and all(m.month == 1 for m in known):
            labels.append(str(when.year))
        elif first_days or (long and not timed):
            labels.append(month_short(when))
        elif isinstance(when, dt.datetime) and timed:
            hour = f"{when.hour}{NBSP}h" + (f"{NBSP}{when.minute:02d}" if when.minute else "")
            labels.append(f"{date_short(when)} {hour}")
        else:
            labels.append(date_short(when))
    return labels


def moment(value: Any) -> str:
    """A moment as « 3 mars 2026 à 15 h 05 », in Paris time (naive moments are UTC)."""
    when = _moment(value)
    if when is None:
        return str(value)[:40] if value else MISSING
    if not isinstance(when, dt.datetime):
        return date(when)
    local = paris(when)
    return f"{date(local)} à {local.hour}{NBSP}h{NBSP}{local.minute:02d}"


def duration(seconds: Any) -> str:
    """A duration: « 3,5 s », « 2 min 30 s », « 1 h 05 min », « 1 jour », « 4 jours 2 h »."""
    x = finite(seconds)
    if x is None or x < 0:
        return MISSING
    if x < 60:
        return f"{decimal(x, 1) if x < 10 and x != int(x) else integer(x)}{NBSP}s"
    total = round(x)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = plural(days, "jour").replace(" ", NBSP)
        return f"{text}{NBSP}{hours}{NBSP}h" if hours else text
    if hours:
        return f"{hours}{NBSP}h{NBSP}{minutes:02d}{NBSP}min"
    return f"{minutes}{NBSP}min{NBSP}{secs:02d}{NBSP}s"
