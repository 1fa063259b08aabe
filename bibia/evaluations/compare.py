"""Results: comparison of models and versions, leaderboards per task, a model's results.

Models are compared only on the same task and, for verified figures, the
same benchmark version; the answer says why when they are not. Declared
figures (the owner's, registered with the version) are shown beside, marked
as declared, with the card's protocol and baseline: they are never mixed
with verified ones in one column.

A leaderboard is built from a constant number of SQL statements, whatever
the number of evaluations (``benchmarks/evaluation.py`` measures it): the
task's benchmarks, then the done evaluations on the chosen one, reduced in
Python to each version's latest; the models' owners and aliases come from
one catalogue listing.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from bibia import policy
from bibia.auth import Caller
from bibia.db.models import Benchmark, Evaluation
from bibia.evaluations.benchmarks import Benchmarks
from bibia.evaluations.jobs import JobState
from bibia.evaluations.views import (
    ComparedMetric,
    ComparedModel,
    Comparison,
    Leaderboard,
    LeaderboardRow,
    TaskView,
)
from bibia.services import Services
from domain.errors import InvalidInput, NotFound
from evaluation import tasks
from evaluation.task import Task
from registry.entries import ModelSummary, VersionInfo
from registry.refs import ModelRef

MAX_COMPARED = 10


@dataclass(frozen=True)
class Done:
    """What results read of a done verified evaluation (never its chart)."""

    id: str
    model_name: str
    model_version: int
    benchmark_id: int | None
    metrics: dict[str, float] | None
    baseline_metrics: dict[str, float] | None
    finished_at: dt.datetime | None
    created_at: dt.datetime


DONE_COLUMNS = (
    Evaluation.id,
    Evaluation.model_name,
    Evaluation.model_version,
    Evaluation.benchmark_id,
    Evaluation.metrics,
    Evaluation.baseline_metrics,
    Evaluation.finished_at,
    Evaluation.created_at,
)


class Results:
    """Comparisons and leaderboards, over verified evaluations the caller may see."""

    def __init__(self, services: Services, benchmarks: Benchmarks) -> None:
        self.services = services
        self.benchmarks = benchmarks

    # ------------------------------------------------------------ leaderboards

    def leaderboard(
        self,
        caller: Caller,
        task_view: TaskView,
        task: Task,
        *,
        benchmark: str | None,
        sort: str | None,
        descending: bool | None,
    ) -> Leaderboard:
        """Every model version's latest verified scores on one benchmark, beside the baseline's.

        Raises:
            NotFound: the benchmark is not the task's, or not visible.
            InvalidInput: an unknown metric to sort on.
        """
        sort = sort or task.primary
        try:
            metric = task.metric(sort)
        except KeyError:
            names = ", ".join(m.name for m in task.metrics)
            raise InvalidInput(
                f"tri impossible : la tâche n'a pas de métrique « {sort} » ({names})"
            ) from None
        if descending is None:
            descending = metric.higher_is_better
        with self.services.db.session() as session:
            rows = session.scalars(
                select(Benchmark)
                .where(Benchmark.task == task.slug)
                .order_by(
                    Benchmark.reference.desc(),
                    Benchmark.created_at.desc(),
                    Benchmark.version.desc(),
                )
            ).all()
            seen = [r for r in rows if policy.may_see_benchmark(caller, r.visibility)]
            chosen = _choose(seen, benchmark, task.slug)
            views = [self.benchmarks.view(caller, r) for r in seen]
            chosen_view = next(
                (
                    v
                    for v in views
                    if chosen is not None and v.slug == chosen.slug and v.version == chosen.version
                ),
                None,
            )
            evaluations = (
                self._done_on(session, [chosen.id], latest=True) if chosen is not None else []
            )
        latest = _latest_per_version(evaluations)
        owners = self._owners()
        board = [
            LeaderboardRow(
                model=e.model_name,
                version=e.model_version,
                aliases=sorted(
                    a
                    for a, v in owners.get(e.model_name, (None, {}))[1].items()
                    if v == e.model_version
                ),
                organisation=owners.get(e.model_name, ("", {}))[0] or "",
                evaluation=e.id,
                metrics=dict(e.metrics or {}),
                is_baseline=False,
                finished_at=e.finished_at.isoformat() if e.finished_at else None,
            )
            for e in latest
        ]
        if latest:
            newest = max(latest, key=lambda e: e.finished_at or e.created_at)
            board.append(
                LeaderboardRow(
                    model=task.baseline_name,
                    version=0,
                    aliases=[],
                    organisation="",
                    evaluation=None,
                    metrics=dict(newest.baseline_metrics or {}),
                    is_baseline=True,
                    finished_at=None,
                )
            )
        board.sort(key=lambda r: _sort_key(r.metrics.get(sort), descending))
        return Leaderboard(
            task=task_view,
            benchmark=chosen_view,
            benchmarks=views,
            sort=sort,
            descending=descending,
            rows=board,
        )

    def _done_on(
        self,
        session: Session,
        benchmark_ids: Sequence[int],
        *,
        models: Collection[str] | None = None,
        latest: bool = False,
    ) -> list[Done]:
        """The done verified evaluations on ``benchmark_ids`` (of ``models``), without their charts.

        With ``latest``, only each version's latest per benchmark, chosen in SQL:
        one statement whatever the number of evaluations, and no row loaded
        that the answer drops.
        """
        where = [
            Evaluation.benchmark_id.in_(benchmark_ids),
            Evaluation.kind == "benchmark",
            Evaluation.state == JobState.DONE.value,
        ]
        if models is not None:
            where.append(Evaluation.model_name.in_(list(models)))
        query = select(*DONE_COLUMNS).where(*where)
        if latest:
            newest = (
                select(
                    Evaluation.benchmark_id.label("bench"),
                    Evaluation.model_name.label("name"),
                    Evaluation.model_version.label("version"),
                    func.max(Evaluation.finished_at).label("at"),
                )
                .where(*where)
                .group_by(Evaluation.benchmark_id, Evaluation.model_name, Evaluation.model_version)
                .subquery()
            )
            query = query.join(
                newest,
                and_(
                    Evaluation.benchmark_id == newest.c.bench,
                    Evaluation.model_name == newest.c.name,
                    Evaluation.model_version == newest.c.version,
                    Evaluation.finished_at == newest.c.at,
                ),
            )
        return [Done(*row) for row in session.execute(query).all()]

    def _owners(self) -> dict[str, tuple[str, dict[str, int]]]:
        """Model name → (its owner's name, its aliases), from one catalogue listing."""
        found: dict[str, tuple[str, dict[str, int]]] = {}
        for summary in self.services.registry.search():
            found[summary.name] = (_owner_name(summary), dict(summary.aliases))
        return found

    # ------------------------------------------------------------ comparison

    def compare(
        self,
        caller: Caller,
        refs: list[ModelRef],
        versions: list[VersionInfo],
        *,
        metrics: list[str] | None,
        benchmark: str | None,
        task_of: dict[str, str | None],
    ) -> Comparison:
        """``refs`` side by side: verified figures on a common benchmark, declared ones beside.

        ``versions`` are the refs as the façade resolved them, and ``task_of``
        maps each model name to its task (its settings, else its only candidate).
        """
        reasons: list[str] = []
        task_slugs = {task_of.get(v.name) for v in versions}
        task_slug = next(iter(task_slugs)) if len(task_slugs) == 1 else None
        if task_slug is None:
            described = ", ".join(
                f"{ref} : {task_of.get(v.name) or 'aucune tâche'}"
                for ref, v in zip(refs, versions, strict=True)
            )
            reasons.append(
                "ces modèles ne traitent pas la même tâche, leurs scores ne se comparent pas ("
                + described
                + ")"
            )
        task = tasks.get(task_slug) if task_slug is not None else None
        with self.services.db.session() as session:
            bench_rows = (
                [
                    r
                    for r in session.scalars(
                        select(Benchmark).where(Benchmark.task == task.slug)
                    ).all()
                    if policy.may_see_benchmark(caller, r.visibility)
                ]
                if task is not None
                else []
            )
            done = (
                self._done_on(
                    session, [r.id for r in bench_rows], models={v.name for v in versions}
                )
                if bench_rows
                else []
            )
        by_version: dict[tuple[str, int], dict[int, Done]] = {}
        for e in done:
            if e.benchmark_id is None:
                continue
            slot = by_version.setdefault((e.model_name, e.model_version), {})
            current = slot.get(e.benchmark_id)
            if current is None or (e.finished_at or e.created_at) > (
                current.finished_at or current.created_at
            ):
                slot[e.benchmark_id] = e
        common: Benchmark | None = None
        if task is not None:
            if benchmark is not None:
                common = next(
                    (
                        r
                        for r in sorted(bench_rows, key=lambda r: -r.version)
                        if r.slug == benchmark
                    ),
                    None,
                )
                if common is None:
                    raise NotFound(
                        f"jeu d'évaluation introuvable pour la tâche {task.slug} : {benchmark}"
                    )
            else:
                shared = (
                    set.intersection(
                        *[set(by_version.get((v.name, v.version), {})) for v in versions]
                    )
                    if versions
                    else set()
                )
                candidates = [r for r in bench_rows if r.id in shared]
                candidates.sort(key=lambda r: (not r.reference, -r.created_at.timestamp()))
                common = candidates[0] if candidates else None
            if common is None:
                reasons.append(
                    "aucun jeu d'évaluation sur lequel tous ces modèles ont une évaluation vérifiée : "
                    "lancez bibia evaluate <modèle> --benchmark <jeu> pour chacun"
                )
            else:
                for ref, v in zip(refs, versions, strict=True):
                    if common.id not in by_version.get((v.name, v.version), {}):
                        reasons.append(
                            f"{ref} (version {v.version}) n'a pas d'évaluation vérifiée sur "
                            f"{common.slug} version {common.version} : "
                            f"bibia evaluate {v.name}/{v.version} --benchmark {common.slug}"
                        )
        wanted = metrics or ([m.name for m in task.metrics] if task is not None else [])
        if task is not None:
            unknown = [m for m in wanted if m not in {x.name for x in task.metrics}]
            if unknown and not any(unknown[0] in v.metrics for v in versions):
                raise InvalidInput(
                    f"métrique inconnue pour la tâche {task.slug} : {', '.join(unknown)} "
                    f"({', '.join(m.name for m in task.metrics)})"
                )
        summaries = {v.name: self.services.registry.get(v.name) for v in versions}
        models = []
        for ref, v in zip(refs, versions, strict=True):
            verified = by_version.get((v.name, v.version), {}).get(common.id) if common else None
            models.append(
                ComparedModel(
                    ref=str(ref),
                    model=v.name,
                    version=v.version,
                    task=task_of.get(v.name),
                    metrics=_metrics_of(v, summaries[v.name], verified, common, task, wanted),
                )
            )
        return Comparison(
            models=models,
            task=task.slug if task is not None else None,
            benchmark=f"{common.slug}/{common.version}" if common is not None else None,
            metrics=wanted,
            comparable=not reasons,
            reasons=reasons,
        )


def _choose(rows: Sequence[Benchmark], wanted: str | None, task: str) -> Benchmark | None:
    if wanted is None:
        return rows[0] if rows else None
    slug, _, version = wanted.partition("/")
    for row in rows:
        if row.slug == slug and (not version or str(row.version) == version):
            return row
    raise NotFound(f"jeu d'évaluation introuvable pour la tâche {task} : {wanted}")


def _latest_per_version(evaluations: Sequence[Done]) -> list[Done]:
    latest: dict[tuple[str, int], Done] = {}
    for e in evaluations:
        key = (e.model_name, e.model_version)
        current = latest.get(key)
        if current is None or (e.finished_at or e.created_at) > (
            current.finished_at or current.created_at
        ):
            latest[key] = e
    return list(latest.values())


def _sort_key(value: float | None, descending: bool) -> tuple[int, float]:
    if value is None or not math.isfinite(value):
        return (1, 0.0)
    return (0, -value if descending else value)


def _owner_name(summary: ModelSummary) -> str:
    card = summary.card
    return card.identification.owner.name if card is not None else ""


def _metrics_of(
    version: VersionInfo,
    summary: ModelSummary,
    verified: Done | None,
    common: Benchmark | None,
    task: Task | None,
    wanted: list[str],
) -> list[ComparedMetric]:
    out: list[ComparedMetric] = []
    directions = {m.name: m.higher_is_better for m in task.metrics} if task is not None else {}
    card = summary.card
    declared_direction = (
        {m.name: m.higher_is_better for m in card.model.evaluation.metrics}
        if card is not None
        else {}
    )
    for name in wanted:
        if verified is not None and common is not None:
            out.append(
                ComparedMetric(
                    name=name,
                    value=(verified.metrics or {}).get(name),
                    baseline=(verified.baseline_metrics or {}).get(name),
                    higher_is_better=directions.get(name, False),
                    verified=True,
                    benchmark=f"{common.slug}/{common.version}",
                    protocol=None,
                    baseline_name=task.baseline_name if task is not None else None,
                    evaluation=verified.id,
                )
            )
        if name in version.metrics:
            out.append(
                ComparedMetric(
                    name=name,
                    value=version.metrics.get(name),
                    baseline=version.baseline_metrics.get(name),
                    higher_is_better=declared_direction.get(name, directions.get(name, False)),
                    verified=False,
                    benchmark=None,
                    protocol=card.model.evaluation.protocol if card is not None else None,
                    baseline_name=card.model.evaluation.baseline if card is not None else None,
                    evaluation=None,
                )
            )
    return out


__all__ = ["Results"]
