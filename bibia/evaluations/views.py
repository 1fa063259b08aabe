"""What the evaluation façade hands to the routes, the web pages and the CLI: plain frozen values.

Every view is already filtered for its caller (:mod:`bibia.policy`): a
route or a page renders what it gets and never re-checks.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class ColumnView:
    name: str
    type: str
    required: bool
    label: str


@dataclass(frozen=True)
class MetricView:
    name: str
    label: str
    higher_is_better: bool
    unit: str
    description: str
    kind: str = "score"  # or "contexte": a fact about the evaluation, never judged


@dataclass(frozen=True)
class TaskView:
    """A task, as ``GET /api/v1/tasks`` lists it."""

    slug: str
    title: str
    description: str
    inputs: list[ColumnView]
    truth: list[ColumnView]
    outputs: list[ColumnView]
    metrics: list[MetricView]
    primary: str
    baseline_name: str
    baseline_description: str
    generic: bool
    benchmarks: list[str] = field(default_factory=list)  # slugs the caller may see

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BenchmarkView:
    """One version of a benchmark (its provenance); never its data."""

    slug: str
    version: int
    task: str
    title: str
    description: str | None
    organisation: str  # slug of the organisation that registered it
    organisation_name: str
    producer: str
    period_start: str | None
    period_end: str | None
    licence: str
    source_url: str | None
    visibility: str  # public, membres, verite-cachee
    reference: bool
    content_hash: str
    n_rows: int
    input_columns: list[str]
    truth_columns: list[str]
    created_at: str
    data_readable: bool  # the caller may download the inputs
    truth_readable: bool  # the caller may download the truth (never for verite-cachee)

    @property
    def label(self) -> str:
        return f"{self.slug}/{self.version}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Cost:
    """Measured by the sandbox's own accounting, converted with documented factors."""

    duration_s: float | None
    cpu_seconds: float | None
    peak_memory_bytes: int | None
    energy_wh: float | None
    co2e_g: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EvaluationView:
    """An evaluation job and, once done, its result."""

    id: str
    kind: str  # benchmark (verified) or donnees (a member's labelled CSV, private)
    state: str  # queued, running, done, failed, cancelled
    progress: float  # 0..1
    stage: str | None
    model: str
    version: int
    model_ref: str
    task: str
    benchmark: str | None  # slug/version
    benchmark_hash: str | None
    data_name: str | None
    n_rows: int | None
    organisation: str
    requested_by: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    error: str | None
    metrics: dict[str, float] | None
    baseline_metrics: dict[str, float] | None
    primary: str
    verified: bool  # a platform-run evaluation on a registered benchmark
    bibia_version: str | None
    runner: str | None
    cost: Cost
    chart: dict[str, Any] | None
    url: str  # its page

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ComparedMetric:
    """One metric of one model on one benchmark, with where it comes from."""

    name: str
    value: float | None
    baseline: float | None
    higher_is_better: bool
    verified: bool  # measured by the platform (True) or declared by the owner (False)
    benchmark: str | None  # slug/version; None for a declared metric
    protocol: str | None  # the card's protocol for a declared metric
    baseline_name: str | None
    evaluation: str | None  # the evaluation id, for a verified metric


@dataclass(frozen=True)
class ComparedModel:
    ref: str  # as asked
    model: str
    version: int
    task: str | None
    metrics: list[ComparedMetric]


@dataclass(frozen=True)
class Comparison:
    """``GET /api/v1/compare``: metrics side by side, only on the same task and benchmark."""

    models: list[ComparedModel]
    task: str | None
    benchmark: str | None  # the common benchmark the verified figures come from
    metrics: list[str]
    comparable: bool
    reasons: list[str]  # why not (French), when some are not comparable

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LeaderboardRow:
    model: str
    version: int
    aliases: list[str]
    organisation: str  # the model's owner, as the catalogue shows it
    evaluation: str | None  # None for the baseline's row
    metrics: dict[str, float]
    is_baseline: bool
    finished_at: str | None


@dataclass(frozen=True)
class Leaderboard:
    """Per task and benchmark: every model's best verified scores beside the baseline's."""

    task: TaskView
    benchmark: BenchmarkView | None
    benchmarks: list[BenchmarkView]  # the task's benchmarks the caller may see
    sort: str
    descending: bool
    rows: list[LeaderboardRow]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ReportView:
    """A "retour d'expérience chiffré" an organisation published from one of its evaluations."""

    id: int
    model: str
    version: int
    organisation: str
    organisation_name: str
    text: str
    audience: str  # membres or public
    evaluation: str
    metrics: dict[str, float] | None
    baseline_metrics: dict[str, float] | None
    n_rows: int | None
    created_at: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ReuseView:
    """An organisation's declaration « nous réutilisons ce modèle »."""

    id: int
    model: str
    organisation: str
    organisation_name: str
    text: str
    url: str | None
    created_at: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelResults:
    """What the model page and ``GET /api/v1/models/{name}/evaluations`` show."""

    model: str
    task: str | None
    promotion_gate: bool
    verified: list[EvaluationView]  # done benchmark evaluations, newest first (all versions)
    by_version: dict[int, dict[str, float]]  # latest verified primary-benchmark metrics per version
    reports: list[ReportView]
    reuses: list[ReuseView]
    demo_cost: Cost | None  # demonstrators' measured cost, summed

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


__all__ = [
    "BenchmarkView",
    "ColumnView",
    "ComparedMetric",
    "ComparedModel",
    "Comparison",
    "Cost",
    "EvaluationView",
    "Leaderboard",
    "LeaderboardRow",
    "MetricView",
    "ModelResults",
    "ReportView",
    "ReuseView",
    "TaskView",
    "_iso",
]
