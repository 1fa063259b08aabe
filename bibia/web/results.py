"""What the evaluation pages share: French figures and the geometry of their inline SVG charts.

Charts are drawn by the server as plain SVG (no script): this module turns
the small JSON an evaluation records (``{"kind": "series", ...}`` or
``{"kind": "bars", ...}``, see :mod:`evaluation.scoring`) or a model's
versions side by side into coordinates the template only has to print.
Everything in a chart comes from a model's predictions, so nothing is
trusted: non-numbers and non-finite values are dropped, labels are cut
short and escaped by the template, and the number of points is bounded.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request

from bibia import policy
from bibia.auth import Caller
from bibia.evaluations.views import EvaluationView, MetricView, TaskView
from bibia.web.render import compare, number, templates
from domain import french
from domain.errors import NotFound

if TYPE_CHECKING:
    from bibia.evaluations.service import EvaluationService

MAX_POINTS = 400  # what the scoring keeps; more is cut (a chart is never a data dump)
MAX_LABEL = 40
MAX_MAGNITUDE = 1e15  # a chart leaves out what lies beyond (no axis spans it; it is junk anyway)
WIDTH, HEIGHT = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 56

STATES = {
    "queued": "en attente",
    "running": "en cours",
    "done": "terminée",
    "failed": "en échec",
    "cancelled": "annulée",
}
VISIBILITIES = {
    "public": "publique",
    "membres": "réservée aux membres",
    "verite-cachee": "vérité cachée (seule la plateforme la lit)",
}
AUDIENCES = {"membres": "les membres des collectivités", "public": "tout le monde"}
VERDICTS = {
    "meilleur": "meilleur que la référence",
    "moins-bon": "moins bon que la référence",
    "egal": "égal à la référence",
}


# ------------------------------------------------------------------ figures


_finite = french.finite


def measure(value: Any, unit: str = "", with_unit: bool = False) -> str:
    """A score in French: ``0.123`` of unit ``fraction`` is « 12,3 % »; others as :func:`number`."""
    return french.measure(value, unit, with_unit)


def seconds(value: Any) -> str:
    """A duration: « 3,5 s », « 3 min 05 s »."""
    return french.duration(value)


def memory(value: Any) -> str:
    x = _finite(value)
    if x is None:
        return "—"
    mib = x / (1024 * 1024)
    if mib >= 1024:
        return f"{french.decimal(mib / 1024, 2)}\u00a0Gio"
    return f"{french.decimal(mib, 0 if mib >= 10 else 1)}\u00a0Mio"


def energy(value: Any) -> str:
    x = _finite(value)
    return "—" if x is None else f"{number(x)}\u00a0Wh"


def carbon(value: Any) -> str:
    x = _finite(value)
    return "—" if x is None else f"{number(x)}\u00a0g\u00a0CO₂e"


def when(value: Any) -> str:
    """An ISO datetime (UTC when naive) as « 3 mars 2026 à 15 h 05 », in Paris time."""
    return french.moment(value)


def metric_info(task: TaskView | None, name: str) -> MetricView:
    """The task's description of metric ``name`` (a bare one when the task does not know it)."""
    if task is not None:
        for metric in task.metrics:
            if metric.name == name:
                return metric
    return MetricView(name=name, label=name, higher_is_better=False, unit="", description="")


def metric_infos(task: TaskView | None, names: Iterable[str]) -> dict[str, MetricView]:
    """Each metric name's label, unit and direction (a bare description when the task lacks it)."""
    return {name: metric_info(task, name) for name in names}


def task_or_none(service: EvaluationService, caller: Caller, slug: str | None) -> TaskView | None:
    """The task called ``slug``, or None (no task, or one the service no longer knows)."""
    if not slug:
        return None
    try:
        return service.task(caller, slug)
    except NotFound:
        return None


def verdict(value: float | None, baseline: float | None, higher_is_better: bool) -> str | None:
    return compare(_finite(value), _finite(baseline), higher_is_better)


# ------------------------------------------------------------------ charts


@dataclass(frozen=True)
class Tick:
    at: float  # the coordinate in the SVG
    text: str


@dataclass(frozen=True)
class Line:
    key: str  # observed, model, baseline: the CSS class
    name: str  # French
    points: str  # "x,y x,y ..." for a polyline
    values: list[float | None]


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    key: str
    name: str
    value: str  # French, for the bar's tooltip and the table


@dataclass(frozen=True)
class Chart:
    """A chart ready to print: ``kind`` is ``series`` (lines) or ``bars``."""

    kind: str
    title: str
    width: int = WIDTH
    height: int = HEIGHT
    plot: tuple[float, float, float, float] = (LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM)
    y_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    groups: list[Tick] = field(default_factory=list)  # one label under each group of bars
    x_label: str = ""
    y_label: str = ""
    labels: list[str] = field(default_factory=list)  # the table fallback's first column
    legend: list[tuple[str, str]] = field(default_factory=list)  # (key, French name)
    reference: float | None = None  # y of a horizontal reference line (bars)
    reference_name: str = ""

    @property
    def table(self) -> list[tuple[str, list[str]]]:
        """The chart as rows for its table fallback: (label, one French value per legend entry)."""
        if self.kind == "series":
            return [
                (label, [number(line.values[i]) for line in self.lines])
                for i, label in enumerate(self.labels)
            ]
        per_group = len(self.legend)
        return [
            (label, [bar.value for bar in self.bars[i * per_group : (i + 1) * per_group]])
            for i, label in enumerate(self.labels)
        ]


def _label(value: Any) -> str:
    text = str(value) if value is not None else ""
    return text[:MAX_LABEL]


def _plottable(value: Any) -> float | None:
    x = _finite(value)
    return x if x is not None and abs(x) <= MAX_MAGNITUDE else None


def _numbers(raw: Any, n: int) -> list[float | None]:
    values = list(raw)[:n] if isinstance(raw, list | tuple) else []
    return [_plottable(v) for v in values] + [None] * (n - len(values))


def _nice_step(span: float, target: int = 5) -> float:
    raw = span / target
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def _y_axis(low: float, high: float) -> tuple[float, float, list[float]]:
    if low == high:
        low, high = (low - 1, high + 1) if low else (0.0, 1.0)
    step = _nice_step(high - low)
    start = math.floor(low / step) * step
    stop = math.ceil(high / step) * step
    count = round((stop - start) / step)
    return start, stop, [start + i * step for i in range(count + 1)]


def _scale(value: float, low: float, high: float, a: float, b: float) -> float:
    return a + (value - low) / (high - low) * (b - a) if high != low else (a + b) / 2


def series_chart(raw: Mapping[str, Any], title: str, unit: str = "") -> Chart | None:
    """Observed values, the model and the baseline over ``x`` (dates, days...).

    ISO dates are written in French: the ticks as precise as their spacing
    (« 12 déc. 2017 », or « déc. 2017 » over more than a year), the rows of
    the data table each to its day (or month, or year, for such totals)."""
    x = raw.get("x")
    if not isinstance(x, list | tuple) or not x:
        return None
    stamps = list(x)[:MAX_POINTS]
    labels = [_label(v) for v in french.date_ticks(stamps, by_span=False)]
    n = len(labels)
    names = {"observed": "Valeurs observées", "model": "Modèle", "baseline": "Référence"}
    series = {key: _numbers(raw.get(key), n) for key in names if isinstance(raw.get(key), list)}
    present = [v for values in series.values() for v in values if v is not None]
    if not present:
        return None
    low, high, ticks = _y_axis(min(min(present), 0.0), max(present))
    x0, y0, x1, y1 = LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM
    xs = [_scale(i, 0, max(n - 1, 1), x0, x1) if n > 1 else (x0 + x1) / 2 for i in range(n)]
    lines = []
    for key, values in series.items():
        points = " ".join(
            f"{xs[i]:.1f},{_scale(v, low, high, y1, y0):.1f}"
            for i, v in enumerate(values)
            if v is not None
        )
        lines.append(Line(key=key, name=names[key], points=points, values=values))
    every = max(1, math.ceil(n / 6))
    shown = range(0, n, every)
    texts = french.date_ticks([stamps[i] for i in shown])  # « 12 déc. 2017 », « déc. 2017 »
    x_ticks = [Tick(at=xs[i], text=_label(text)) for i, text in zip(shown, texts, strict=True)]
    y_ticks = [Tick(at=_scale(t, low, high, y1, y0), text=measure(t, unit)) for t in ticks]
    return Chart(
        kind="series",
        title=title,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        lines=lines,
        x_label=_label(raw.get("x_label")),
        y_label=_label(raw.get("y_label")),
        labels=labels,
        legend=[(line.key, line.name) for line in lines],
    )


def bars_chart(
    labels: Sequence[Any],
    series: Sequence[tuple[str, str, Sequence[Any]]],
    title: str,
    unit: str = "",
    *,
    reference: float | None = None,
    reference_name: str = "",
    y_label: str = "",
) -> Chart | None:
    """Groups of bars: one group per label, one bar per ``(key, French name, values)`` series."""
    names = [_label(v) for v in list(labels)[:MAX_POINTS]]
    n = len(names)
    if not n or not series:
        return None
    columns = [(key, name, _numbers(list(values), n)) for key, name, values in series]
    present = [v for _, _, values in columns for v in values if v is not None]
    ref = _plottable(reference)
    if ref is not None:
        present.append(ref)
    if not present:
        return None
    low, high, ticks = _y_axis(min(min(present), 0.0), max(max(present), 0.0))
    x0, y0, x1, y1 = LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM
    slot = (x1 - x0) / n
    width = slot * 0.8 / len(columns)
    zero = _scale(0.0, low, high, y1, y0)
    bars, groups = [], []
    for i, name in enumerate(names):
        start = x0 + i * slot + slot * 0.1
        groups.append(Tick(at=x0 + (i + 0.5) * slot, text=name))
        for j, (key, title_j, values) in enumerate(columns):
            v = values[i]
            top = _scale(v, low, high, y1, y0) if v is not None else zero
            bars.append(
                Bar(
                    x=round(start + j * width, 1),
                    y=round(min(top, zero), 1),
                    width=round(width * 0.92, 1),
                    height=round(abs(zero - top), 1),
                    key=key,
                    name=title_j,
                    value=measure(v, unit),
                )
            )
    return Chart(
        kind="bars",
        title=title,
        y_ticks=[Tick(at=_scale(t, low, high, y1, y0), text=measure(t, unit)) for t in ticks],
        bars=bars,
        groups=groups,
        labels=names,
        legend=[(key, name) for key, name, _ in columns],
        reference=_scale(ref, low, high, y1, y0) if ref is not None else None,
        reference_name=reference_name,
        y_label=y_label,
    )


def evaluation_chart(raw: Any, title: str) -> Chart | None:
    """The chart an evaluation recorded, or None when it holds nothing drawable."""
    if not isinstance(raw, Mapping):
        return None
    if raw.get("kind") == "series":
        return series_chart(raw, title)
    if raw.get("kind") == "bars":
        labels = raw.get("labels")
        if not isinstance(labels, list | tuple):
            return None
        series = [
            (key, name, raw[key])
            for key, name in (("model", "Modèle"), ("baseline", "Référence"))
            if isinstance(raw.get(key), list | tuple)
        ]
        return bars_chart(labels, series, title, str(raw.get("unit") or ""))
    return None


def versions_chart(
    by_version: Mapping[int, Mapping[str, float]],
    metric: MetricView,
    *,
    baseline: float | None = None,
    baseline_name: str = "",
) -> Chart | None:
    """A model's versions side by side on one metric (their latest verified figure)."""
    versions = sorted(v for v, scores in by_version.items() if metric.name in scores)
    if not versions:
        return None
    values = [by_version[v][metric.name] for v in versions]
    sens = "plus haut = mieux" if metric.higher_is_better else "plus bas = mieux"
    return bars_chart(
        [f"version {v}" for v in versions],
        [("model", metric.label, values)],
        f"{metric.label} par version ({sens})",
        metric.unit,
        reference=baseline,
        reference_name=baseline_name,
        y_label=metric.label,
    )


# ------------------------------------------------------------------ the model page


def model_sections(request: Request, caller: Caller, name: str) -> dict[str, Any]:
    """What the model page shows of evaluation: verified results beside the declared ones, the
    versions side by side, the form « Évaluer sur mes données », reports and reuses."""
    service: EvaluationService = request.app.state.evaluations
    found = service.model_results(caller, name)
    task = task_or_none(service, caller, found.task)
    names: list[str] = []
    scored: list[dict[str, float] | None] = [e.metrics for e in found.verified]
    scored += [r.metrics for r in found.reports]
    for metrics in scored:
        names += [n for n in (metrics or {}) if n not in names]
    primary = metric_info(task, task.primary) if task is not None else None
    latest: dict[tuple[int, str | None], EvaluationView] = {}
    for evaluation in found.verified:  # newest first: the latest per version and benchmark
        latest.setdefault((evaluation.version, evaluation.benchmark), evaluation)
    chart = None
    if primary is not None and task is not None:
        baseline = next(
            (
                e.baseline_metrics[primary.name]
                for e in found.verified
                if e.baseline_metrics and primary.name in e.baseline_metrics
            ),
            None,
        )
        chart = versions_chart(
            found.by_version,
            primary,
            baseline=baseline,
            baseline_name=f"Référence : {task.baseline_name}",
        )
    may_evaluate = policy.may_submit_evaluation(caller)
    return {
        "results": found,
        "eval_task": task,
        "eval_infos": metric_infos(task, names + ([primary.name] if primary else [])),
        "eval_primary": primary,
        "verified_latest": sorted(latest.values(), key=lambda e: -e.version),
        "versions_chart": chart,
        "may_evaluate": may_evaluate,
        "eval_tasks": service.tasks(caller) if may_evaluate else [],
        "may_declare_reuse": policy.may_declare_reuse(caller),
        "compare_versions": ",".join(f"{name}/{v}" for v in sorted(found.by_version)),
    }


templates.filters.update(secondes=seconds, memoire=memory, energie=energy, carbone=carbon)
templates.globals.update(
    EVAL_STATES=STATES, VISIBILITIES=VISIBILITIES, AUDIENCES=AUDIENCES, VERDICTS=VERDICTS
)
