"""What a task is: the contract between a benchmark, a model and a scoring function.

A :class:`Task` is a problem several collectivités share. It names the input
columns a model must accept, the ground-truth columns a benchmark holds (the
truth never enters a sandbox), the output columns the model must answer, its
metrics (one primary), its scoring function and its naive baseline, computed
on the same rows as the model.

Scores are plain ``dict[str, float]``, fractions rather than percents, the
same names a reference model records at registration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

#: Column types, as MLflow's column signatures name them (plus "date", which a
#: signature carries as a string holding an ISO date).
COLUMN_TYPES = frozenset({"string", "long", "integer", "double", "float", "boolean", "date"})


@dataclass(frozen=True)
class Column:
    """One column of a task's contract.

    Attributes:
        name: the column's name, as in the CSV and the model's signature.
        type: one of :data:`COLUMN_TYPES`.
        required: whether a model / a benchmark must have it.
        label: what the column holds, in French (shown on the task's page).
    """

    name: str
    type: str
    required: bool = True
    label: str = ""


@dataclass(frozen=True)
class Metric:
    """One score a task computes.

    Attributes:
        name: its key in the scores (``mae``, ``f1``...).
        label: its French name, for pages and tables.
        higher_is_better: direction, for leaderboards and the promotion gate.
        unit: ``"fraction"`` (shown as a percentage), or a unit in the singular that takes the
            French plural from 2 on (``"repas"``, ``"jour"``), or ``""``.
        description: how it is computed, in French.
        kind: ``"score"`` (compared with the baseline, ranked) or ``"contexte"`` (a fact about
            the evaluation, such as the number of days scored: shown, never judged) — the
            same rule as a card's metrics (:class:`registry.card.MetricKind`).
    """

    name: str
    label: str
    higher_is_better: bool
    unit: str = ""
    description: str = ""
    kind: str = "score"

    def __post_init__(self) -> None:
        if self.kind not in {"score", "contexte"}:
            raise ValueError(f"{self.name} : kind « {self.kind} » inconnu (score ou contexte)")


#: ``score(inputs, truth, predictions) -> scores``: the three frames are aligned row by row.
ScoreFn = Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame], dict[str, float]]
#: ``baseline(inputs, truth) -> predictions``: the naive method's answer, in the
#: task's output columns, for the same rows. It may read the truth of rows
#: *before* a row (history), never the row's own truth.
BaselineFn = Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]


@dataclass(frozen=True)
class Task:
    """A shared problem: its contract, its scoring function and its naive baseline.

    Attributes:
        slug: its identifier (``cantine-frequentation``...).
        title: its French title.
        description: what is predicted, for whom, in French.
        inputs: the columns a model gets (the benchmark's inputs).
        truth: the ground-truth columns a benchmark holds (never sent to a model).
        outputs: the columns a model must answer (optional ones scored when present).
        metrics: the scores :attr:`score` returns, :attr:`primary` among them.
        primary: the metric leaderboards sort on and the promotion gate compares.
        baseline_name: the naive baseline, in French.
        baseline_description: how it is computed, in French.
        score: the scoring function.
        baseline: the naive baseline.
        batch_key: rows sharing this input column's value are sent to the model
            together (a series model needs the whole series); None: any split.
        single_batch: every row goes to the model in one request (a model that
            reads across series, like the bike counters' city-wide effect).
        generic: a generic task (regression, classification, forecasting) whose
            columns are bound to a model's signature by :func:`evaluation.tasks.bind`.
    """

    slug: str
    title: str
    description: str
    inputs: tuple[Column, ...]
    truth: tuple[Column, ...]
    outputs: tuple[Column, ...]
    metrics: tuple[Metric, ...]
    primary: str
    baseline_name: str
    baseline_description: str
    score: ScoreFn
    baseline: BaselineFn
    batch_key: str | None = None
    single_batch: bool = False
    generic: bool = False
    card_tasks: tuple[str, ...] = field(default_factory=tuple)

    def metric(self, name: str) -> Metric:
        """The metric called ``name``.

        Raises:
            KeyError: the task has no such metric.
        """
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise KeyError(name)

    def better(self, a: float, b: float, metric: str | None = None) -> bool:
        """Whether score ``a`` is at least as good as ``b`` on ``metric`` (the primary one by default)."""
        m = self.metric(metric or self.primary)
        return a >= b if m.higher_is_better else a <= b
