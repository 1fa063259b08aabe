"""One chart per page, as inline SVG, suited to the model's task.

- ``prevision-serie-temporelle``: the predictions over time, and the truth
  when the data has it (a numeric column the model does not take);
- ``detection-anomalies``: the observed series with the flagged points in red;
- any other task: the first numeric output against the first numeric input
  (or the row number), or the counts of each predicted class.

When the data holds several series (a text input with a few values, like a
counter or a canteen), the chart shows the most frequent one and says so.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_POINTS = 2000
MAX_GROUPS = 50
TIME_NAMES = re.compile(
    r"^(date|jour|day|time|timestamp|datetime|heure|horodatage|ds)$", re.IGNORECASE
)
FLAG_NAMES = re.compile(r"anomal|outlier|alerte|flag", re.IGNORECASE)


@dataclass(frozen=True)
class Chart:
    """An inline SVG chart and the sentence that explains it (French)."""

    svg: str
    caption: str


def build_chart(
    task: str | None, data: pd.DataFrame, predictions: pd.DataFrame, input_names: list[str]
) -> Chart | None:
    """Draw the chart for ``task``, or ``None`` when nothing can be drawn.

    Args:
        task: the card's task (``prevision-serie-temporelle``...), or None.
        data: the input rows, with any extra columns of the file.
        predictions: one row of model output per input row.
        input_names: the model's input columns (others in ``data`` are extras).
    """
    data = data.reset_index(drop=True).head(MAX_POINTS)
    predictions = predictions.reset_index(drop=True).head(MAX_POINTS)
    data, predictions, key, group_note = _one_series(data, predictions, input_names)
    if key is not None:  # the series' identifier is constant now: never plot it as a value
        data = data.drop(columns=[key])
        input_names = [n for n in input_names if n != key]
    time_column = _time_column(data)
    if task == "prevision-serie-temporelle":
        chart = _forecast(data, predictions, input_names, time_column)
    elif task == "detection-anomalies":
        chart = _anomalies(data, predictions, input_names, time_column)
    else:
        chart = None
    chart = chart or _generic(data, predictions, input_names, time_column)
    if chart and group_note:
        chart = Chart(chart.svg, f"{chart.caption} {group_note}")
    return chart


def _one_series(data: pd.DataFrame, predictions: pd.DataFrame, input_names: list[str]):
    """Keep the most frequent series when the rows hold several (e.g. one per counter or canteen).

    The series key is an input that is neither the time column nor a flag: a
    text column first, else an integer identifier, with 2 to ``MAX_GROUPS``
    values, each repeated (a key that differs on every row is not a key).
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
            value = counts.index[0]
            mask = (column == value).to_numpy()
            note = f"Série affichée : {name} = « {value} » ({len(counts)} séries dans les données)."
            return (
                data[mask].reset_index(drop=True),
                predictions[mask].reset_index(drop=True),
                name,
                note,
            )
    return data, predictions, None, ""


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


def _forecast(data, predictions, input_names, time_column) -> Chart | None:
    outputs = _numeric(predictions)
    if not outputs:
        return None
    x, xlabel = _x_axis(data, time_column)
    order = np.argsort(x.to_numpy(), kind="stable")
    fig, ax = _figure()
    ax.plot(
        x.iloc[order],
        predictions[outputs[0]].iloc[order],
        color="#1f5fa8",
        lw=1.8,
        label=f"prévision ({outputs[0]})",
    )
    truth = _numeric(data, set(input_names) | set(predictions.columns))
    caption = f"Prévision « {outputs[0]} » au fil du temps"
    if truth:
        ax.plot(
            x.iloc[order],
            data[truth[0]].iloc[order],
            color="#444444",
            lw=1.2,
            ls="--",
            label=f"observé ({truth[0]})",
        )
        caption += f", comparée aux valeurs observées « {truth[0]} »."
    else:
        caption += "."
    ax.set_xlabel(xlabel)
    ax.legend(loc="best", fontsize=8)
    _time_axis(ax, time_column)
    return Chart(_svg(fig, caption), caption)


def _anomalies(data, predictions, input_names, time_column) -> Chart | None:
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
    x, xlabel = _x_axis(data, time_column)
    order = np.argsort(x.to_numpy(), kind="stable")
    fig, ax = _figure()
    ax.plot(x.iloc[order], values.iloc[order], color="#1f5fa8", lw=1.2, label=value_name)
    expected = [c for c in _numeric(predictions) if c != value_name]
    if expected:
        ax.plot(
            x.iloc[order],
            predictions[expected[0]].iloc[order],
            color="#777777",
            lw=1,
            ls="--",
            label=f"attendu ({expected[0]})",
        )
    ax.scatter(x[flag], values[flag], color="#c0392b", s=28, zorder=3, label="anomalie")
    ax.set_xlabel(xlabel)
    ax.legend(loc="best", fontsize=8)
    _time_axis(ax, time_column)
    caption = f"Série « {value_name} » ; en rouge, les {int(flag.sum())} point(s) signalé(s) comme anomalies."
    return Chart(_svg(fig, caption), caption)


def _generic(data, predictions, input_names, time_column) -> Chart | None:
    outputs = _numeric(predictions)
    fig, ax = _figure()
    if outputs:
        name = outputs[0]
        numeric_inputs = [c for c in _numeric(data) if c in input_names]
        if time_column or not numeric_inputs:
            x, xlabel = _x_axis(data, time_column)
        else:
            x, xlabel = data[numeric_inputs[0]], numeric_inputs[0]
        order = np.argsort(x.to_numpy(), kind="stable")
        ax.plot(
            x.iloc[order], predictions[name].iloc[order], color="#1f5fa8", lw=1.5, marker="o", ms=3
        )
        ax.set_xlabel(xlabel)
        ax.set_ylabel(name)
        _time_axis(ax, time_column if xlabel == time_column else None)
        caption = f"Prédiction « {name} » selon « {xlabel} »."
    elif len(predictions.columns):
        name = predictions.columns[0]
        counts = predictions[name].astype(str).value_counts().head(15)
        ax.bar(counts.index.astype(str), counts.to_numpy(), color="#1f5fa8")
        ax.set_ylabel("nombre de lignes")
        ax.tick_params(axis="x", labelrotation=30)
        caption = f"Répartition des valeurs prédites « {name} »."
    else:
        _close(fig)
        return None
    return Chart(_svg(fig, caption), caption)


def _x_axis(data: pd.DataFrame, time_column: str | None) -> tuple[pd.Series, str]:
    if time_column:
        return data[time_column], time_column
    return pd.Series(np.arange(1, len(data) + 1)), "ligne"


def _time_axis(ax, time_column: str | None) -> None:
    if time_column:
        import matplotlib.dates as mdates

        locator = mdates.AutoDateLocator(maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


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
