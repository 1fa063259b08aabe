"""One chart per page, as inline SVG, suited to the model's task.

- ``prevision-serie-temporelle``: the predictions over time, and the truth
  when the data has it (a numeric column the model does not take);
- ``detection-anomalies``: the observed series with the flagged points in red;
- any other task: the first numeric output against the first numeric input
  (or the row number), or the counts of each predicted class.

When the data holds several series (a text input with a few values, like a
counter or a canteen), the chart shows one (the one asked for, else the first
in the data) and says so; :class:`Chart` lists them all for a picker.

Axes are in French (``6 nov.``, ``déc. 2017``, ``1 200``, ``0,5``) without a
system locale, and columns are named by their French labels when given.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from demos.server.formats import axis_dates, axis_number

MAX_POINTS = 2000
MAX_GROUPS = 50
TIME_NAMES = re.compile(
    r"^(date|jour|day|time|timestamp|datetime|heure|horodatage|ds)$", re.IGNORECASE
)
FLAG_NAMES = re.compile(r"anomal|outlier|alerte|flag", re.IGNORECASE)


@dataclass(frozen=True)
class Chart:
    """An inline SVG chart and the sentence that explains it (French).

    Attributes:
        series_column: the column that tells the series apart (a canteen's
            name...), when the data holds several; None otherwise.
        series_values: its values, in the order they appear in the data.
        series: the one drawn.
    """

    svg: str
    caption: str
    series_column: str | None = None
    series_values: tuple[str, ...] = ()
    series: str | None = None


class _Names:
    """A column's French label for a chart (its name when it has none)."""

    def __init__(self, labels: Mapping[str, str] | None) -> None:
        self.labels = dict(labels or {})

    def __call__(self, name: Any) -> str:
        return self.labels.get(str(name), str(name))


def build_chart(
    task: str | None,
    data: pd.DataFrame,
    predictions: pd.DataFrame,
    input_names: list[str],
    *,
    series: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> Chart | None:
    """Draw the chart for ``task``, or ``None`` when nothing can be drawn.

    Args:
        task: the card's task (``prevision-serie-temporelle``...), or None.
        data: the input rows, with any extra columns of the file.
        predictions: one row of model output per input row.
        input_names: the model's input columns (others in ``data`` are extras).
        series: which series to draw when the data holds several (a value
            of the series column); the first one when None or unknown.
        labels: French labels of the columns, for axes, legend and caption.
    """
    name = _Names(labels)
    data = data.reset_index(drop=True)
    predictions = predictions.reset_index(drop=True)
    data, predictions, key, values, chosen = _one_series(data, predictions, input_names, series)
    data = data.head(MAX_POINTS)
    predictions = predictions.head(MAX_POINTS)
    if key is not None:  # the series' identifier is constant now: never plot it as a value
        data = data.drop(columns=[key])
        input_names = [n for n in input_names if n != key]
    time_column = _time_column(data)
    if task == "prevision-serie-temporelle":
        chart = _forecast(data, predictions, input_names, time_column, name)
    elif task == "detection-anomalies":
        chart = _anomalies(data, predictions, input_names, time_column, name)
    else:
        chart = None
    chart = chart or _generic(data, predictions, input_names, time_column, name)
    if chart and key is not None:
        note = (
            f"Série affichée : {name(key)} = « {chosen} » ({len(values)} séries dans les données)."
        )
        chart = Chart(chart.svg, f"{chart.caption} {note}", key, tuple(values), chosen)
    return chart


def _one_series(
    data: pd.DataFrame,
    predictions: pd.DataFrame,
    input_names: list[str],
    wanted: str | None,
) -> tuple[pd.DataFrame, pd.DataFrame, str | None, Sequence[str], str | None]:
    """Keep one series when the rows hold several (e.g. one per counter or canteen).

    The series key is an input that is neither the time column nor a flag: a
    text column first, else an integer identifier, with 2 to ``MAX_GROUPS``
    values, each repeated (a key that differs on every row is not a key).
    The series kept is ``wanted`` when the data has it, else the first one.

    Returns:
        ``(data, predictions, key, values, chosen)``: the rows of the series
        kept, the key column (None: one series), its values in order of
        appearance, the value kept.
    """
    time_column = _time_column(data)
    candidates = [
        n for n in (input_names or list(data.columns)) if n in data.columns and n != time_column
    ]
    text = [
        n
        for n in candidates
        if not pd.api.types.is_numeric_dtype(data[n])
        and not pd.api.types.is_datetime64_any_dtype(data[n])
    ]
    integers = [
        n
        for n in candidates
        if pd.api.types.is_integer_dtype(data[n]) and not pd.api.types.is_bool_dtype(data[n])
    ]
    for name in text + integers:
        column = data[name].astype(str)
        counts = column.value_counts()
        few = (
            len(counts) * 3 <= len(column) if name in integers else True
        )  # an id repeats; a count does not
        if 1 < len(counts) <= MAX_GROUPS and counts.iloc[0] > 1 and few:
            values = [str(v) for v in column.drop_duplicates()]
            value = wanted if wanted in values else values[0]
            mask = (column == value).to_numpy()
            return (
                data[mask].reset_index(drop=True),
                predictions[mask].reset_index(drop=True),
                name,
                values,
                value,
            )
    return data, predictions, None, (), None


def _time_column(data: pd.DataFrame) -> str | None:
    for name in data.columns:
        if pd.api.types.is_datetime64_any_dtype(data[name]):
            return name
    for name in data.columns:
        if TIME_NAMES.match(str(name)):
            parsed = pd.to_datetime(data[name], errors="coerce", format="ISO8601")
            if parsed.notna().all():
                data[name] = parsed
                return name
    return None


def _numeric(frame: pd.DataFrame, exclude: set[str] = frozenset()) -> list[str]:
    return [
        c
        for c in frame.columns
        if c not in exclude
        and pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
    ]


def _forecast(data, predictions, input_names, time_column, name: _Names) -> Chart | None:
    outputs = _numeric(predictions)
    if not outputs:
        return None
    x, xlabel = _x_axis(data, time_column, name)
    order = np.argsort(x.to_numpy(), kind="stable")
    fig, ax = _figure()
    ax.plot(
        x.iloc[order],
        predictions[outputs[0]].iloc[order],
        color="#1f5fa8",
        lw=1.8,
        label=f"prévision ({name(outputs[0])})",
    )
    truth = _numeric(data, set(input_names) | set(predictions.columns))
    caption = f"Prévision « {name(outputs[0])} » au fil du temps"
    if truth:
        ax.plot(
            x.iloc[order],
            data[truth[0]].iloc[order],
            color="#444444",
            lw=1.2,
            ls="--",
            label=f"observé ({name(truth[0])})",
        )
        caption += f", comparée aux valeurs observées « {name(truth[0])} »."
    else:
        caption += "."
    ax.set_xlabel(xlabel)
    ax.legend(loc="best", fontsize=8)
    _axes(ax, time_column)
    return Chart(_svg(fig, caption), caption)


def _anomalies(data, predictions, input_names, time_column, name: _Names) -> Chart | None:
    flags = [c for c in predictions.columns if pd.api.types.is_bool_dtype(predictions[c])]
    flags = [c for c in predictions.columns if FLAG_NAMES.search(c)] or flags
    if not flags:
        return None
    flag = predictions[flags[0]].fillna(False).astype(bool).to_numpy()
    numeric_inputs = [c for c in _numeric(data) if c in input_names and c != time_column]
    value_name, values = (
        (numeric_inputs[0], data[numeric_inputs[0]])
        if numeric_inputs
        else next(((c, predictions[c]) for c in _numeric(predictions)), (None, None))
    )
    if value_name is None:
        return None
    x, xlabel = _x_axis(data, time_column, name)
    order = np.argsort(x.to_numpy(), kind="stable")
    fig, ax = _figure()
    ax.plot(x.iloc[order], values.iloc[order], color="#1f5fa8", lw=1.2, label=name(value_name))
    expected = [c for c in _numeric(predictions) if c != value_name]
    if expected:
        ax.plot(
            x.iloc[order],
            predictions[expected[0]].iloc[order],
            color="#777777",
            lw=1,
            ls="--",
            label=f"attendu ({name(expected[0])})",
        )
    ax.scatter(x[flag], values[flag], color="#c0392b", s=28, zorder=3, label="anomalie")
    ax.set_xlabel(xlabel)
    ax.legend(loc="best", fontsize=8)
    _axes(ax, time_column)
    count = int(flag.sum())
    flagged = (
        "aucun point n'est signalé comme anomalie"
        if count == 0
        else f"en rouge, les {count} point(s) signalé(s) comme anomalies"
    )
    caption = f"Série « {name(value_name)} » ; {flagged}."
    return Chart(_svg(fig, caption), caption)


def _generic(data, predictions, input_names, time_column, name: _Names) -> Chart | None:
    outputs = _numeric(predictions)
    fig, ax = _figure()
    if outputs:
        output = outputs[0]
        numeric_inputs = [c for c in _numeric(data) if c in input_names]
        if time_column or not numeric_inputs:
            x, xlabel = _x_axis(data, time_column, name)
            shown_time = time_column
        else:
            x, xlabel = data[numeric_inputs[0]], name(numeric_inputs[0])
            shown_time = None
        order = np.argsort(x.to_numpy(), kind="stable")
        ax.plot(
            x.iloc[order],
            predictions[output].iloc[order],
            color="#1f5fa8",
            lw=1.5,
            marker="o",
            ms=3,
        )
        ax.set_xlabel(xlabel)
        ax.set_ylabel(name(output))
        _axes(ax, shown_time, numeric_x=shown_time is None)
        caption = f"Prédiction « {name(output)} » selon « {xlabel} »."
    elif len(predictions.columns):
        output = predictions.columns[0]
        shown = predictions[output].map(_category)
        counts = shown.value_counts().head(15)
        ax.bar(counts.index.astype(str), counts.to_numpy(), color="#1f5fa8")
        ax.set_ylabel("nombre de lignes")
        ax.tick_params(axis="x", labelrotation=30)
        _axes(ax, None)
        caption = f"Répartition des valeurs prédites « {name(output)} »."
    else:
        _close(fig)
        return None
    return Chart(_svg(fig, caption), caption)


def _category(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "oui" if value else "non"
    return str(value)


def _x_axis(data: pd.DataFrame, time_column: str | None, name: _Names) -> tuple[pd.Series, str]:
    if time_column:
        return data[time_column], name(time_column)
    return pd.Series(np.arange(1, len(data) + 1)), "ligne"


def _axes(ax, time_column: str | None, *, numeric_x: bool = True) -> None:
    """French tick labels: dates on a time axis, decimal commas on number axes.

    Dates without a time of day and a span of a week or less get one tick a
    day (matplotlib would otherwise tick every few hours of a day)."""
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(axis_number))
    if time_column:
        import matplotlib.dates as mdates

        low, high = ax.dataLim.intervalx
        span_days = high - low  # matplotlib's date unit is the day
        locator = (
            mdates.DayLocator()
            if span_days <= 7 and float(low).is_integer() and float(high).is_integer()
            else mdates.AutoDateLocator(minticks=3, maxticks=8)
        )
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(_french_dates())
    elif numeric_x:
        ax.xaxis.set_major_formatter(FuncFormatter(axis_number))


def _french_dates():
    """A matplotlib formatter writing date ticks in French (:func:`~demos.server.formats.axis_dates`)."""
    import matplotlib.dates as mdates
    from matplotlib.ticker import Formatter

    def stamp(value: float) -> pd.Timestamp:
        return pd.Timestamp(mdates.num2date(value)).tz_localize(None)

    class FrenchDates(Formatter):
        def __call__(self, x: float, pos: int | None = None) -> str:
            return axis_dates([stamp(x)])[0]

        def format_ticks(self, values: Sequence[float]) -> list[str]:
            return axis_dates([stamp(v) for v in values])

    return FrenchDates()


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.4), layout="constrained")
    ax = fig.add_subplot()
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _svg(fig, title: str) -> str:
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "bibia"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Title": title})
    _close(fig)
    svg = buffer.getvalue()
    start = svg.find("<svg")
    svg = svg[start:] if start >= 0 else svg
    return svg.replace("<svg ", '<svg role="img" class="chart" ', 1)


def _close(fig) -> None:
    fig.clf()
