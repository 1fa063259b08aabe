"""The evaluation façade: what the routes, the web pages and the CLI call.

Tasks come from :mod:`evaluation.tasks`; benchmarks are registered and read
by :mod:`.benchmarks`; evaluations are durable jobs (:mod:`.jobs`) run by
workers (:mod:`.worker`) in sandboxes from the demonstrators' factory
(:mod:`.execute`), scored outside with the task's function; comparison and
leaderboards are :mod:`.results`; reuse reports and reuses :mod:`.reports`.
Every view it returns is already filtered for its caller by the predicates
of :mod:`bibia.policy`.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bibia import policy
from bibia.accounts import audit
from bibia.auth import Caller
from bibia.db.models import (
    Benchmark,
    DemoSession,
    Evaluation,
    ModelEvaluationSettings,
    utcnow,
)
from bibia.demos import DemoService
from bibia.evaluations.benchmarks import Benchmarks, Provenance, content_hash, split
from bibia.evaluations.compare import MAX_COMPARED, Results
from bibia.evaluations.execute import Executor
from bibia.evaluations.jobs import ACTIVE, Jobs, JobState
from bibia.evaluations.reports import Reports
from bibia.evaluations.uploads import UploadFiles
from bibia.evaluations.views import (
    BenchmarkView,
    ColumnView,
    Comparison,
    Cost,
    EvaluationView,
    Leaderboard,
    MetricView,
    ModelResults,
    ReportView,
    ReuseView,
    TaskView,
)
from bibia.evaluations.worker import Workers
from bibia.services import Services
from domain.errors import InvalidInput, NotFound, PromotionRefused
from evaluation import frames, tasks
from evaluation.energy import footprint
from evaluation.task import Task
from registry.entries import VersionInfo
from registry.refs import ModelRef
from registry.tiers import Tier

log = logging.getLogger("bibia.evaluations")

KINDS = ("benchmark", "donnees")
LIST_LIMIT = 500
SIGN_IN = "authentification requise : les évaluations sont réservées aux membres d'une collectivité"
MEMBERS_ONLY = "accès refusé : les évaluations sont réservées aux membres d'une collectivité"


def task_view(task: Task, benchmarks: list[str] | None = None) -> TaskView:
    def columns(cols: tuple[Any, ...]) -> list[ColumnView]:
        return [ColumnView(c.name, c.type, c.required, c.label) for c in cols]

    return TaskView(
        slug=task.slug,
        title=task.title,
        description=task.description,
        inputs=columns(task.inputs),
        truth=columns(task.truth),
        outputs=columns(task.outputs),
        metrics=[
            MetricView(m.name, m.label, m.higher_is_better, m.unit, m.description, m.kind)
            for m in task.metrics
        ],
        primary=task.primary,
        baseline_name=task.baseline_name,
        baseline_description=task.baseline_description,
        generic=task.generic,
        benchmarks=benchmarks or [],
    )


class EvaluationService:
    """Tasks, benchmarks, evaluation jobs, comparisons, leaderboards, reports and reuses."""

    def __init__(self, services: Services, demos: DemoService) -> None:
        self.services = services
        self.settings = settings = services.settings
        self.demos = demos
        self.benchmarks = Benchmarks(services.db, settings)
        self.jobs = Jobs(services.db, settings)
        self.uploads = UploadFiles(settings.evaluations_dir)
        self.executor = Executor(services, demos, self.benchmarks, self.jobs, self.uploads)
        self.results = Results(services, self.benchmarks)
        self.reports = Reports(services)
        self.workers = Workers(
            self.jobs,
            self.executor,
            count=settings.evaluation_workers if services.runner is not None else 0,
            poll_interval=settings.evaluation_poll_interval_s,
            on_recovered=self._recovered,
            instance=services.instance,
        )

    # ------------------------------------------------------------ tasks

    def tasks(self, caller: Caller) -> list[TaskView]:
        """Every task, with the benchmarks the caller may see."""
        by_task = self._benchmark_slugs(caller)
        return [task_view(t, by_task.get(t.slug)) for t in tasks.TASKS.values()]

    def task(self, caller: Caller, slug: str) -> TaskView:
        """Raises: NotFound."""
        task = tasks.get(slug)
        return task_view(task, self._benchmark_slugs(caller).get(task.slug))

    def _benchmark_slugs(self, caller: Caller) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for view in self.benchmarks.visible(caller):
            slugs = out.setdefault(view.task, [])
            if view.slug not in slugs:
                slugs.append(view.slug)
        return out

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
        truth_column: str | None = None,
    ) -> BenchmarkView:
        """Register a benchmark (or its next version) from one CSV holding the task's inputs and truth.

        Raises: Forbidden (not an expert), InvalidInput / InvalidData (French
        CSV read, columns checked against the task), Conflict (same content
        as the latest version), NotFound (unknown task), PayloadTooLarge.
        """
        if not policy.may_register_benchmark(caller):
            policy.refuse(
                caller,
                "accès refusé : seuls les experts d'une collectivité enregistrent des jeux d'évaluation",
                anonymous="authentification requise : un jeton d'expert est nécessaire",
            )
        frame = self._read(data)
        return self.register_benchmark_frame(
            caller,
            slug=slug,
            task=task,
            frame=frame,
            provenance=Provenance(
                title=title,
                licence=licence,
                visibility=visibility,
                producer=producer,
                description=description,
                period_start=period_start,
                period_end=period_end,
                source_url=source_url,
                reference=reference and policy.may_administer(caller),
            ),
            truth_column=truth_column,
        )

    def register_benchmark_frame(
        self,
        caller: Caller,
        *,
        slug: str,
        task: str,
        frame: Any,
        provenance: Provenance,
        truth_column: str | None = None,
    ) -> BenchmarkView:
        """Register from a DataFrame (``bibia seed``, tests); the same checks as a CSV."""
        return self.benchmarks.register(
            caller,
            slug=slug,
            task=task,
            frame=frame,
            provenance=provenance,
            truth_column=truth_column,
        )

    def benchmarks_visible(self, caller: Caller, *, task: str | None = None) -> list[BenchmarkView]:
        return self.benchmarks.visible(caller, task=task)

    def benchmark(self, caller: Caller, slug: str, version: int | None = None) -> BenchmarkView:
        """Raises: NotFound (unknown, or not visible to the caller)."""
        return self.benchmarks.get(caller, slug, version)

    def benchmark_csv(
        self, caller: Caller, slug: str, version: int | None, part: str
    ) -> tuple[str, bytes]:
        """``(filename, csv bytes)`` of ``part`` (``entrees`` or ``verite``).

        Raises: NotFound, Forbidden (the truth of a hidden-truth benchmark, to anyone).
        """
        return self.benchmarks.csv(caller, slug, version, part)

    def _read(self, data: bytes) -> Any:
        return frames.read_csv(
            data,
            max_bytes=self.settings.evaluation_max_upload_mb * 1024 * 1024,
            max_rows=self.settings.evaluation_max_rows,
        )

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
        QuotaExceeded (429), UntrustedModel, RunnerError (no runner),
        ArtifactStoreUnavailable (503: the model's files cannot be read).
        """
        if not policy.may_submit_evaluation(caller):
            policy.refuse(caller, MEMBERS_ONLY, anonymous=SIGN_IN)
        if (benchmark is None) == (data is None):
            raise InvalidInput(
                "indiquez soit un jeu d'évaluation (benchmark), soit un fichier CSV de vos données (fichier)"
            )
        version = self.services.registry.resolve(ref)
        if not version.signature or not isinstance(version.signature.get("inputs"), list):
            raise InvalidInput(
                f"le modèle {ref} n'a pas de signature par colonnes : la plateforme ne saurait pas quelles "
                "données lui donner"
            )
        self.demos.sandbox.require_runner()
        self.demos.sandbox.check_accepted(version)
        self.services.registry.check_artifacts_readable(version)  # a store that is down: 503 now
        job_id = secrets.token_hex(16)
        bench_row: Benchmark | None = None
        files: tuple[bytes, bytes] | None = None
        if benchmark is not None:
            with self.services.db.session() as session:
                bench_row = self.benchmarks.row_for(session, caller, benchmark, benchmark_version)
                session.expunge(bench_row)
            generic_truth = (bench_row.columns or {}).get("truth", [None])[0]
            the_task = self._bound(bench_row.task, version, generic_truth)
            n_rows, data_hash, name, truth_col = (
                bench_row.n_rows,
                bench_row.content_hash,
                None,
                generic_truth if the_task.generic else None,
            )
            data_columns = list((bench_row.columns or {}).get("inputs", []))
        else:
            assert data is not None
            slug = task or self.task_of(version)
            if slug is None:
                raise InvalidInput(
                    f"la tâche du modèle {version.name} n'est pas connue : indiquez-la (task), parmi "
                    + ", ".join(tasks.TASKS)
                )
            frame = self._read(data)
            the_task = self._bound(slug, version, truth_column)
            inputs, truth = split(the_task, frame)
            inputs_csv, truth_csv = frames.canonical_csv(inputs), frames.canonical_csv(truth)
            files = (inputs_csv, truth_csv)
            n_rows, data_hash = len(inputs), content_hash(inputs_csv, truth_csv)
            name = _file_name(filename)
            truth_col = truth_column if the_task.generic else None
            data_columns = list(inputs.columns)
        problems = tasks.check_signature(the_task, version.signature)
        missing = [c.name for c in the_task.inputs if c.required and c.name not in data_columns]
        if missing:
            problems.append("colonnes absentes des données : " + ", ".join(missing))
        if problems:
            raise InvalidInput(
                f"le modèle {version.name} version {version.version} ne convient pas à la tâche "
                f"{the_task.slug} : " + " ; ".join(problems),
                details=problems,
            )
        if files is not None:
            self.uploads.write(job_id, *files)
        try:
            with self.services.db.session() as session:
                assert caller.organisation_id is not None
                self.jobs.check_quota(session, caller.organisation_id)
                if bench_row is not None and bench_row.visibility == "verite-cachee":
                    self.jobs.check_hidden_truth_limit(
                        session, caller.organisation_id, bench_row.id
                    )
                row = Evaluation(
                    id=job_id,
                    kind="benchmark" if bench_row is not None else "donnees",
                    state=JobState.QUEUED.value,
                    progress=0.0,
                    stage="en attente d'un exécutant",
                    model_name=version.name,
                    model_version=version.version,
                    model_ref=str(ref)[:200],
                    task=the_task.slug,  # a bound generic task keeps its slug
                    truth_column=truth_col,
                    benchmark_id=bench_row.id if bench_row is not None else None,
                    data_hash=data_hash,
                    data_name=name,
                    n_rows=n_rows,
                    organisation_id=caller.organisation_id,
                    user_id=caller.user_id,
                    requested_by=f"{caller.user or 'anonyme'} ({caller.organisation or '-'})"[:300],
                    created_at=utcnow(),
                    attempts=0,
                )
                session.add(row)
                session.flush()
                audit(
                    session,
                    caller,
                    "evaluation.submit",
                    f"{version.name}/{version.version}",
                    evaluation=job_id,
                    benchmark=f"{bench_row.slug}/{bench_row.version}" if bench_row else None,
                    rows=n_rows,
                )
                view = self._view(session, row)
        except BaseException:
            self.uploads.remove(job_id)
            raise
        self.workers.wake()
        return view

    def _bound(self, slug: str, version: VersionInfo, truth_column: str | None) -> Task:
        task = tasks.get(slug)
        if task.generic:
            if not truth_column:
                raise InvalidInput(
                    f"la tâche {slug} est générique : indiquez la colonne des valeurs observées (truth_column)"
                )
            return tasks.bind(task, version.signature, truth_column)
        return task

    def task_of(self, version: VersionInfo) -> str | None:
        """The model's task: its owner's choice, else its only specific candidate."""
        with self.services.db.session() as session:
            chosen = session.get(ModelEvaluationSettings, version.name)
            if chosen is not None and chosen.task:
                return chosen.task
        card_task = version.tags.get("bibia.task")
        if card_task is None:
            try:
                card_task = self.services.registry.get(version.name).tags.get("bibia.task")
            except NotFound:
                card_task = None
        found = [t for t in tasks.candidates(version.signature, card_task) if not t.generic]
        return found[0].slug if found else None

    def get(self, caller: Caller, evaluation_id: str) -> EvaluationView:
        """Raises: NotFound (unknown, or not visible to the caller)."""
        with self.services.db.session() as session:
            return self._view(session, self._row_for(session, caller, evaluation_id))

    def _row_for(
        self, session: Session, caller: Caller, evaluation_id: str, *, cancel: bool = False
    ) -> Evaluation:
        row = (
            session.get(Evaluation, evaluation_id)
            if isinstance(evaluation_id, str)
            and len(evaluation_id) == 32
            and evaluation_id.isalnum()
            else None
        )
        if row is not None:
            visibility = row.benchmark.visibility if row.benchmark is not None else None
            allowed = (
                policy.may_cancel_evaluation(caller, row.organisation_id)
                if cancel
                else policy.may_see_evaluation(caller, row.kind, row.organisation_id, visibility)
            )
            if allowed:
                return row
        raise NotFound(f"évaluation introuvable : {evaluation_id}")

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
        limit = max(1, min(limit, LIST_LIMIT))
        with self.services.db.session() as session:
            query = select(Evaluation).order_by(Evaluation.created_at.desc())
            if model is not None:
                query = query.where(Evaluation.model_name == model)
            if benchmark is not None:
                query = query.join(Benchmark, Evaluation.benchmark_id == Benchmark.id).where(
                    Benchmark.slug == benchmark
                )
            if mine or not policy.may_read_tier(caller, Tier.RESTRICTED):
                if mine:
                    if caller.organisation_id is None:
                        return []
                    query = query.where(Evaluation.organisation_id == caller.organisation_id)
                else:
                    query = query.where(Evaluation.kind == "benchmark")
            elif not policy.may_administer(caller):
                query = query.where(
                    (Evaluation.kind == "benchmark")
                    | (Evaluation.organisation_id == caller.organisation_id)
                )
            out = []
            for row in session.scalars(query.limit(limit * 2)):
                visibility = row.benchmark.visibility if row.benchmark is not None else None
                if policy.may_see_evaluation(caller, row.kind, row.organisation_id, visibility):
                    out.append(self._view(session, row))
                if len(out) >= limit:
                    break
            return out

    def cancel(self, caller: Caller, evaluation_id: str) -> EvaluationView:
        """Cancel a queued or running evaluation of the caller's organisation (idempotent once finished)."""
        if not policy.may_submit_evaluation(caller) and not policy.may_administer(caller):
            policy.refuse(caller, MEMBERS_ONLY, anonymous=SIGN_IN)
        with self.services.db.session() as session:
            row = self._row_for(session, caller, evaluation_id, cancel=True)
            was = row.state
            if self.jobs.cancel(session, row):
                audit(session, caller, "evaluation.cancel", evaluation_id, state=was)
            session.expire(row)
            view = self._view(session, row)
        if was == JobState.QUEUED.value:
            self.uploads.remove(evaluation_id)
        return view

    def _view(self, session: Session, row: Evaluation) -> EvaluationView:
        bench = row.benchmark
        org = row.organisation
        try:
            primary = tasks.get(row.task).primary
        except NotFound:
            primary = ""
        return EvaluationView(
            id=row.id,
            kind=row.kind,
            state=row.state,
            progress=float(row.progress or 0.0),
            stage=row.stage,
            model=row.model_name,
            version=row.model_version,
            model_ref=row.model_ref,
            task=row.task,
            benchmark=f"{bench.slug}/{bench.version}" if bench is not None else None,
            benchmark_hash=bench.content_hash if bench is not None else None,
            data_name=row.data_name,
            n_rows=row.n_rows,
            organisation=org.slug if org is not None else "",
            requested_by=row.requested_by,
            created_at=row.created_at.isoformat(),
            started_at=row.started_at.isoformat() if row.started_at else None,
            finished_at=row.finished_at.isoformat() if row.finished_at else None,
            error=row.error,
            metrics=dict(row.metrics) if row.metrics is not None else None,
            baseline_metrics=dict(row.baseline_metrics)
            if row.baseline_metrics is not None
            else None,
            primary=primary,
            verified=row.kind == "benchmark" and row.state == JobState.DONE.value,
            bibia_version=row.bibia_version,
            runner=row.runner,
            cost=Cost(
                duration_s=row.duration_s,
                cpu_seconds=row.cpu_seconds,
                peak_memory_bytes=row.peak_memory_bytes,
                energy_wh=row.energy_wh,
                co2e_g=row.co2e_g,
            ),
            chart=_shown_chart(row.chart, bench.visibility if bench is not None else None),
            url=f"/evaluations/{row.id}",
        )

    # ------------------------------------------------------------ results

    def compare(
        self,
        caller: Caller,
        refs: list[ModelRef],
        *,
        metrics: list[str] | None = None,
        benchmark: str | None = None,
    ) -> Comparison:
        """``refs`` side by side (see :meth:`Results.compare`).

        Raises:
            InvalidInput: no model, or more than :data:`MAX_COMPARED`. NotFound: unknown model.
        """
        if not refs:
            raise InvalidInput(
                "indiquez au moins un modèle à comparer (modeles=nom@alias,nom/version)"
            )
        if len(refs) > MAX_COMPARED:
            raise InvalidInput(f"{MAX_COMPARED} modèles au plus dans une comparaison")
        versions = [self.services.registry.resolve(ref) for ref in refs]
        task_of: dict[str, str | None] = {}
        for version in versions:
            if version.name not in task_of:
                task_of[version.name] = self.task_of(version)
        return self.results.compare(
            caller, refs, versions, metrics=metrics, benchmark=benchmark, task_of=task_of
        )

    def leaderboard(
        self,
        caller: Caller,
        task: str,
        *,
        benchmark: str | None = None,
        sort: str | None = None,
        descending: bool | None = None,
    ) -> Leaderboard:
        the_task = tasks.get(task)
        return self.results.leaderboard(
            caller,
            task_view(the_task),
            the_task,
            benchmark=benchmark,
            sort=sort,
            descending=descending,
        )

    def model_results(self, caller: Caller, name: str) -> ModelResults:
        """The model's verified results (all versions), its reports, reuses and measured cost."""
        summary = self.services.registry.get(name)
        latest = (
            self.services.registry.version(name, summary.latest_version)
            if summary.latest_version
            else None
        )
        task = self.task_of(latest) if latest is not None else None
        with self.services.db.session() as session:
            chosen = session.get(ModelEvaluationSettings, name)
            gate = bool(chosen.promotion_gate) if chosen is not None else False
            rows = session.scalars(
                select(Evaluation)
                .where(
                    Evaluation.model_name == name,
                    Evaluation.kind == "benchmark",
                    Evaluation.state == JobState.DONE.value,
                )
                .order_by(Evaluation.finished_at.desc())
                .limit(LIST_LIMIT)
            ).all()
            verified = [
                self._view(session, r)
                for r in rows
                if policy.may_see_evaluation(
                    caller,
                    r.kind,
                    r.organisation_id,
                    r.benchmark.visibility if r.benchmark else None,
                )
            ]
            reference = self.benchmarks.reference_of(session, task) if task else None
            demos = session.execute(
                select(
                    DemoSession.cpu_seconds,
                    DemoSession.peak_memory_bytes,
                    DemoSession.created_at,
                    DemoSession.finished_at,
                ).where(DemoSession.model_name == name, DemoSession.cpu_seconds.is_not(None))
            ).all()
        by_version: dict[int, dict[str, float]] = {}
        wanted = f"{reference.slug}/{reference.version}" if reference is not None else None
        for view in sorted(verified, key=lambda v: v.finished_at or ""):
            if view.metrics is not None and (wanted is None or view.benchmark == wanted):
                by_version[view.version] = view.metrics
        reports, reuses = self.reports.for_model(caller, name)
        demo_cost = None
        if demos:
            cpu = sum(float(d.cpu_seconds or 0.0) for d in demos)
            peaks = [d.peak_memory_bytes for d in demos if d.peak_memory_bytes is not None]
            seconds = sum(
                (_aware(d.finished_at) - _aware(d.created_at)).total_seconds()
                for d in demos
                if d.finished_at is not None
            )
            peak = max(peaks) if peaks else None
            fp = footprint(cpu, peak, seconds, self.executor.factors())
            demo_cost = Cost(
                duration_s=seconds,
                cpu_seconds=cpu,
                peak_memory_bytes=peak,
                energy_wh=fp.energy_wh,
                co2e_g=fp.co2e_g,
            )
        return ModelResults(
            model=name,
            task=task,
            promotion_gate=gate,
            verified=verified,
            by_version=dict(sorted(by_version.items())),
            reports=reports,
            reuses=reuses,
            demo_cost=demo_cost,
        )

    # ------------------------------------------------------------ reports and reuses

    def publish(
        self, caller: Caller, evaluation_id: str, *, text: str, audience: str
    ) -> ReportView:
        return self.reports.publish(caller, evaluation_id, text=text, audience=audience)

    def unpublish(self, caller: Caller, report_id: int) -> None:
        self.reports.unpublish(caller, report_id)

    def declare_reuse(
        self, caller: Caller, model: str, *, text: str, url: str | None = None
    ) -> ReuseView:
        return self.reports.declare(caller, model, text=text, url=url)

    def withdraw_reuse(self, caller: Caller, model: str) -> None:
        self.reports.withdraw(caller, model)

    # ------------------------------------------------------------ model settings

    def set_model_settings(
        self, caller: Caller, model: str, *, task: str | None, promotion_gate: bool | None
    ) -> ModelResults:
        """The owner's experts choose the model's task and turn the promotion gate on or off.

        Raises: NotFound, Forbidden (not an expert of the owner), InvalidInput
        (a task the model's signature does not fit).
        """
        summary = self.services.registry.get(model)
        if not policy.may_configure_evaluation(caller, summary.owner_siren):
            policy.refuse(
                caller,
                "accès refusé : seuls les experts de la collectivité propriétaire règlent l'évaluation du modèle",
                anonymous="authentification requise : un jeton d'expert est nécessaire",
            )
        if task is not None:
            the_task = tasks.get(task)
            if summary.latest_version and not the_task.generic:
                latest = self.services.registry.version(model, summary.latest_version)
                problems = tasks.check_signature(the_task, latest.signature)
                if problems:
                    raise InvalidInput(
                        f"le modèle {model} ne convient pas à la tâche {task} : "
                        + " ; ".join(problems),
                        details=problems,
                    )
        with self.services.db.session() as session:
            row = session.get(ModelEvaluationSettings, model)
            if row is None:
                row = ModelEvaluationSettings(model_name=model, promotion_gate=False)
                session.add(row)
            if task is not None:
                row.task = task
            if promotion_gate is not None:
                row.promotion_gate = promotion_gate
            row.updated_by = caller.actor[:300]
            audit(
                session,
                caller,
                "model.evaluation_settings",
                model,
                task=row.task,
                promotion_gate=row.promotion_gate,
            )
        return self.model_results(caller, model)

    def check_promotion(self, model: str, version: int) -> None:
        """Raises: PromotionRefused when the gate is on and no verified evaluation beats the baseline."""
        with self.services.db.session() as session:
            chosen = session.get(ModelEvaluationSettings, model)
            if chosen is None or not chosen.promotion_gate:
                return
            if not chosen.task:
                raise PromotionRefused(
                    f"le contrôle de promotion de {model} est activé mais sa tâche n'est pas choisie : "
                    "choisissez-la (PUT /api/v1/models/{name}/evaluation-settings)"
                )
            task = tasks.get(chosen.task)
            reference = self.benchmarks.reference_of(session, task.slug)
            if reference is None:
                raise PromotionRefused(
                    f"le contrôle de promotion de {model} est activé mais la tâche {task.slug} n'a pas "
                    "de jeu d'évaluation de référence"
                )
            bench = f"{reference.slug} version {reference.version}"
            done = session.scalar(
                select(Evaluation)
                .where(
                    Evaluation.model_name == model,
                    Evaluation.model_version == version,
                    Evaluation.benchmark_id == reference.id,
                    Evaluation.state == JobState.DONE.value,
                )
                .order_by(Evaluation.finished_at.desc())
                .limit(1)
            )
            if done is None:
                raise PromotionRefused(
                    f"promotion refusée : {model} version {version} n'a pas d'évaluation vérifiée sur le "
                    f"jeu de référence {bench} ; lancez bibia evaluate {model}/{version} "
                    f"--benchmark {reference.slug}"
                )
            value = (done.metrics or {}).get(task.primary)
            base = (done.baseline_metrics or {}).get(task.primary)
        metric = task.metric(task.primary)
        if value is None or base is None or not task.better(value, base):
            direction = "plus haut" if metric.higher_is_better else "plus bas"
            raise PromotionRefused(
                f"promotion refusée : sur {bench}, {metric.label} ({task.primary}) de {model} version "
                f"{version} vaut {_fmt(value)} contre {_fmt(base)} pour la référence "
                f"« {task.baseline_name} » ({direction} est meilleur)",
                details={"metric": task.primary, "model": value, "baseline": base},
            )

    # ------------------------------------------------------------ background

    def start_background(self) -> None:
        """Recover what a previous start left, then start this replica's workers."""
        try:
            self.workers.recover()
            self._sweep_uploads()
        except Exception:
            log.exception("recovering evaluations failed")
        self.workers.start()

    def shutdown(self) -> None:
        """Stop the workers; a running evaluation goes back to the queue."""
        self.executor.stopping.set()
        self.workers.shutdown()

    def run_queued(self, *, limit: int | None = None) -> list[str]:
        """Run queued evaluations in this thread until none is left (tests, benchmarks)."""
        return self.workers.run_queued(limit=limit)

    def _recovered(self, result: dict[str, list[str]]) -> None:
        for sandbox_id in result.get("sandboxes", []):
            self.demos.close_sandbox(sandbox_id)
        for job_id in result.get("failed", []):
            self.uploads.remove(job_id)

    def _sweep_uploads(self) -> None:
        with self.services.db.session() as session:
            active = set(session.scalars(select(Evaluation.id).where(Evaluation.state.in_(ACTIVE))))
        self.uploads.sweep(active)


#: Chart series computed from the truth: never shown for a hidden-truth benchmark.
TRUTH_SERIES = ("observed", "baseline")


def _shown_chart(chart: dict[str, Any] | None, visibility: str | None) -> dict[str, Any] | None:
    """The chart as callers may see it: a hidden truth's series (observed, and the baseline
    that is computed from it) are left out; the model's own predictions stay."""
    if chart is None:
        return None
    shown = dict(chart)
    if visibility == "verite-cachee" and shown.get("kind") == "series":
        for key in TRUTH_SERIES:
            shown.pop(key, None)
        shown["truth_hidden"] = True
    return shown


def _file_name(filename: str | None) -> str | None:
    if not filename:
        return None
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(ch for ch in name if ch.isprintable())[:200] or None


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _fmt(value: float | None) -> str:
    if value is None:
        return "(aucune valeur)"
    return f"{value:.4g}".replace(".", ",")


__all__ = ["KINDS", "EvaluationService", "task_view"]
