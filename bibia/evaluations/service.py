"""The evaluation façade: what the routes, the web pages and the CLI call.

Tasks come from :mod:`evaluation.tasks`; benchmarks are registered and read
by :mod:`.benchmarks`; evaluations are durable jobs (:mod:`.jobs`) run by
workers (:mod:`.worker`) in sandboxes from the demonstrators' factory
(:mod:`.execute`), scored outside with the task's function; comparison and
leaderboards are :mod:`.compare`; reuse reports and reuses :mod:`.reports`.
"""

from __future__ import annotations

from bibia.auth import Caller
from bibia.demos import DemoService
from bibia.evaluations.views import (
    BenchmarkView,
    Comparison,
    EvaluationView,
    Leaderboard,
    ModelResults,
    ReportView,
    ReuseView,
    TaskView,
)
from bibia.services import Services
from registry.refs import ModelRef


class EvaluationService:
    """Tasks, benchmarks, evaluation jobs, comparisons, leaderboards, reports and reuses."""

    def __init__(self, services: Services, demos: DemoService) -> None:
        self.services = services
        self.demos = demos

    # ------------------------------------------------------------ tasks

    def tasks(self, caller: Caller) -> list[TaskView]:
        raise NotImplementedError

    def task(self, caller: Caller, slug: str) -> TaskView:
        """Raises: NotFound."""
        raise NotImplementedError

    # ------------------------------------------------------------ benchmarks

    def register_benchmark(
        self,
        caller: Caller,
        *,
        slug: str,
        task: str,
        title: str,
        data: bytes,
        filename: str,
        licence: str,
        visibility: str,
        producer: str | None = None,
        description: str | None = None,
        period_start: str | None = None,
        period_end: str | None = None,
        source_url: str | None = None,
        reference: bool = False,
    ) -> BenchmarkView:
        """Register a benchmark (or its next version) from one CSV holding the task's inputs and truth.

        Raises: Forbidden (not an expert), InvalidInput / InvalidData (French
        CSV read, columns checked against the task), Conflict (same content
        as the latest version), NotFound (unknown task), PayloadTooLarge.
        """
        raise NotImplementedError

    def benchmarks(self, caller: Caller, *, task: str | None = None) -> list[BenchmarkView]:
        raise NotImplementedError

    def benchmark(self, caller: Caller, slug: str, version: int | None = None) -> BenchmarkView:
        """Raises: NotFound (unknown, or not visible to the caller)."""
        raise NotImplementedError

    def benchmark_csv(
        self, caller: Caller, slug: str, version: int | None, part: str
    ) -> tuple[str, bytes]:
        """``(filename, csv bytes)`` of ``part`` (``entrees`` or ``verite``).

        Raises: NotFound, Forbidden (the truth of a hidden-truth benchmark, to anyone).
        """
        raise NotImplementedError

    # ------------------------------------------------------------ evaluations

    def submit(
        self,
        caller: Caller,
        ref: ModelRef,
        *,
        benchmark: str | None = None,
        benchmark_version: int | None = None,
        data: bytes | None = None,
        filename: str | None = None,
        truth_column: str | None = None,
        task: str | None = None,
    ) -> EvaluationView:
        """Queue an evaluation of ``ref`` on a benchmark, or on a member's labelled CSV (``data``).

        Raises: Unauthorized/Forbidden (members only), NotFound, InvalidInput /
        InvalidData (the model's signature does not fit the task, a bad CSV),
        QuotaExceeded (429), UntrustedModel, RunnerError (no runner).
        """
        raise NotImplementedError

    def get(self, caller: Caller, evaluation_id: str) -> EvaluationView:
        """Raises: NotFound (unknown, or not visible to the caller)."""
        raise NotImplementedError

    def visible(
        self,
        caller: Caller,
        *,
        model: str | None = None,
        benchmark: str | None = None,
        mine: bool = False,
        limit: int = 100,
    ) -> list[EvaluationView]:
        """Evaluations the caller may see, newest first: verified ones per the benchmark's
        visibility, and their organisation's private ones."""
        raise NotImplementedError

    def cancel(self, caller: Caller, evaluation_id: str) -> EvaluationView:
        """Cancel a queued or running evaluation of the caller's organisation (idempotent once finished)."""
        raise NotImplementedError

    # ------------------------------------------------------------ results

    def compare(
        self,
        caller: Caller,
        refs: list[ModelRef],
        *,
        metrics: list[str] | None = None,
        benchmark: str | None = None,
    ) -> Comparison:
        raise NotImplementedError

    def leaderboard(
        self,
        caller: Caller,
        task: str,
        *,
        benchmark: str | None = None,
        sort: str | None = None,
        descending: bool | None = None,
    ) -> Leaderboard:
        raise NotImplementedError

    def model_results(self, caller: Caller, name: str) -> ModelResults:
        raise NotImplementedError

    # ------------------------------------------------------------ reports and reuses

    def publish(self, caller: Caller, evaluation_id: str, *, text: str, audience: str) -> ReportView:
        raise NotImplementedError

    def unpublish(self, caller: Caller, report_id: int) -> None:
        raise NotImplementedError

    def declare_reuse(
        self, caller: Caller, model: str, *, text: str, url: str | None = None
    ) -> ReuseView:
        raise NotImplementedError

    def withdraw_reuse(self, caller: Caller, model: str) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------ model settings

    def set_model_settings(
        self, caller: Caller, model: str, *, task: str | None, promotion_gate: bool | None
    ) -> ModelResults:
        """The owner's experts choose the model's task and turn the promotion gate on or off."""
        raise NotImplementedError

    def check_promotion(self, model: str, version: int) -> None:
        """Raises: PromotionRefused when the gate is on and no verified evaluation beats the baseline."""
        raise NotImplementedError

    # ------------------------------------------------------------ background

    def start_background(self) -> None:
        raise NotImplementedError

    def shutdown(self) -> None:
        raise NotImplementedError

    def run_queued(self, *, limit: int | None = None) -> list[str]:
        """Run queued evaluations in this thread until none is left (tests, ``bibia evaluate --local``)."""
        raise NotImplementedError
