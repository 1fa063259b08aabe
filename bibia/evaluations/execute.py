"""Running one evaluation: the model in a sandbox on the inputs, the scoring outside.

The sandbox comes from the demonstrators' factory (:meth:`DemoService.open_sandbox`:
the same image, limits, warm pool, reaper and reconciliation). Only the
inputs enter it, in batches POSTed to the server's ``/predict`` over its
checked Unix socket (:class:`runners.sockets.SandboxTransport`); the truth
never leaves this process. Whatever comes back is hostile input: its size
is capped, it is parsed as JSON and checked by
:func:`evaluation.frames.predictions_frame` (length, columns, NaN, types)
before anything scores it. The sandbox's cost is measured by the runner's own
accounting (:meth:`runners.base.Runner.usage`) before it is removed.

Every way a run can end badly (the model does not load, crashes, runs out of
memory, hangs, answers garbage, the job is cancelled or times out) ends the
job failed or cancelled with a French reason and the sandbox removed.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pandas as pd

from bibia import __version__
from bibia.auth import Caller
from bibia.db.models import Benchmark, Evaluation, Organisation
from bibia.demos import DemoService
from bibia.demos.states import DemoState
from bibia.evaluations.benchmarks import Benchmarks, _read_canonical
from bibia.evaluations.jobs import Jobs, JobState
from bibia.evaluations.uploads import UploadFiles
from bibia.services import Services
from domain.errors import BibiaError, InvalidPredictions, RunnerError
from evaluation import frames, scoring, tasks
from evaluation.energy import EnergyFactors, footprint
from evaluation.task import Task
from registry.tiers import Tier
from runners.sockets import SandboxTransport

log = logging.getLogger("bibia.evaluations")

#: The largest answer one batch may get back: ~2 KiB a row, at least 1 MiB.
BYTES_PER_ROW = 2048
SERVER_MAX_ROWS = 10_000
#: How long a sandbox that stopped answering gets to be seen ended by its runner.
ENDING_GRACE_S = 5.0  # the demonstrator server's own limit per request (demos/server)


class Aborted(Exception):
    """The job is no longer this worker's to run (cancelled, or recovered by another)."""


class ShuttingDown(Aborted):
    """The service stops: the job goes back to the queue for the next start (or another replica)."""


class RunFailed(Exception):
    """The run ended badly; ``reason`` is what the job records (French)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Job:
    """What one run needs, read once from its row."""

    id: str
    kind: str
    model: str
    version: int
    task: str
    truth_column: str | None
    benchmark_id: int | None
    organisation_id: int
    organisation: str
    user_id: int | None


class Heartbeat:
    """Proves the worker alive while a run blocks (a slow batch); notices a cancellation."""

    def __init__(
        self, jobs: Jobs, job_id: str, worker: str, every: float, stopping: threading.Event
    ) -> None:
        self.jobs, self.job_id, self.worker, self.every = jobs, job_id, worker, every
        self.stopping = stopping
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"bibia-eval-hb-{job_id}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            if self.stopping.is_set():  # the service stops: let recovery see this run as lost
                return
            try:
                if not self.jobs.heartbeat(self.job_id, self.worker):
                    self.lost.set()
                    return
            except (
                Exception
            ):  # a database hiccup: the next beat retries; recovery covers a long one
                log.warning("heartbeat of evaluation %s failed", self.job_id, exc_info=True)

    def check(self) -> None:
        if self.lost.is_set():
            raise Aborted
        if self.stopping.is_set():
            raise ShuttingDown


class Executor:
    """Runs claimed jobs, one at a time per worker thread."""

    def __init__(
        self,
        services: Services,
        demos: DemoService,
        benchmarks: Benchmarks,
        jobs: Jobs,
        uploads: UploadFiles,
    ) -> None:
        self.services = services
        self.settings = services.settings
        self.demos = demos
        self.benchmarks = benchmarks
        self.jobs = jobs
        self.uploads = uploads
        self.stopping = threading.Event()

    def factors(self) -> EnergyFactors:
        s = self.settings
        return EnergyFactors(
            cpu_watts_per_core=s.energy_cpu_watts_per_core,
            memory_watts_per_gb=s.energy_memory_watts_per_gb,
            pue=s.energy_pue,
            carbon_intensity_g_per_kwh=s.carbon_intensity_g_per_kwh,
        )

    def run(self, job_id: str, worker: str) -> None:
        """Run a job this worker claimed, to done, failed or cancelled; never raises for the job's sake."""
        started = time.monotonic()
        opened: list[str] = []  # the sandbox _run starts, closed here whatever happens
        try:
            job = self._load(job_id)
            every = self.settings.evaluation_heartbeat_s
            with Heartbeat(self.jobs, job_id, worker, every, self.stopping) as beat:
                result = self._run(job, worker, beat, started, opened)
            if not self.jobs.finish(
                job_id, worker, duration_s=time.monotonic() - started, **result
            ):
                log.info("evaluation %s ended meanwhile (cancelled or recovered)", job_id)
        except ShuttingDown:
            self.jobs.release(job_id, worker)
            log.info("evaluation %s queued again: the service stops", job_id)
        except Aborted:
            log.info("evaluation %s is no longer this worker's: stopped", job_id)
        except RunFailed as exc:
            self.jobs.fail(job_id, worker, exc.reason, duration_s=time.monotonic() - started)
        except BibiaError as exc:
            self.jobs.fail(job_id, worker, exc.message, duration_s=time.monotonic() - started)
        except Exception:  # a bug: the job fails now, with a reason, not re-run into it
            log.exception("evaluation %s: unexpected error", job_id)
            self.jobs.fail(
                job_id,
                worker,
                "erreur interne du service pendant l'évaluation ; elle a été journalisée",
                duration_s=time.monotonic() - started,
            )
        finally:
            # After the result is recorded: a teardown takes about a second nobody waits for.
            for sandbox_id in opened:
                self.demos.close_sandbox(sandbox_id)
            state = self.jobs.state(job_id)
            if state is None or state.is_terminal:  # a recovered job runs again: keep its data
                self.uploads.remove(job_id)

    # ------------------------------------------------------------ the steps

    def _load(self, job_id: str) -> Job:
        with self.services.db.session() as session:
            row = session.get(Evaluation, job_id)
            if row is None:
                raise Aborted
            org = session.get(Organisation, row.organisation_id)
            return Job(
                id=row.id,
                kind=row.kind,
                model=row.model_name,
                version=row.model_version,
                task=row.task,
                truth_column=row.truth_column,
                benchmark_id=row.benchmark_id,
                organisation_id=row.organisation_id,
                organisation=org.slug if org is not None else "",
                user_id=row.user_id,
            )

    def _step(self, job: Job, worker: str, fraction: float, stage: str) -> None:
        if not self.jobs.progress(job.id, worker, fraction, stage):
            raise Aborted

    def _run(
        self, job: Job, worker: str, beat: Heartbeat, started: float, opened: list[str]
    ) -> dict[str, Any]:
        deadline = started + self.settings.evaluation_timeout_s
        self._step(job, worker, 0.02, "lecture du modèle et des données")
        version = self.services.registry.version(job.model, job.version)
        task = tasks.get(job.task)
        if task.generic:
            task = tasks.bind(task, version.signature, job.truth_column)
        inputs, truth = self._data(job, task)
        self._step(job, worker, 0.05, "démarrage du bac à sable")
        caller = Caller(
            tier=Tier.RESTRICTED,
            organisation=job.organisation,
            organisation_id=job.organisation_id,
            user="evaluation",
            user_id=job.user_id,
            token_prefix=job.id[:8],
        )
        minutes = math.ceil(self.settings.evaluation_timeout_s / 60) + 1
        started_sandbox = time.monotonic()
        sandbox_id = self.demos.open_sandbox(caller, version, ttl_minutes=minutes)
        opened.append(sandbox_id)
        if not self.jobs.set_fields(
            job.id, worker, sandbox_id=sandbox_id, runner=self.demos.sandbox.runner_name[:32]
        ):
            raise Aborted
        self._wait_ready(sandbox_id, beat, deadline)
        ready = time.monotonic()
        predictions = self._predict(job, worker, task, inputs, sandbox_id, beat, deadline)
        predict_s = time.monotonic() - ready
        usage = self.demos.sandbox.usage(sandbox_id)
        lifetime = time.monotonic() - started_sandbox
        self._step(job, worker, 0.95, "calcul des scores")
        outcome = scoring.evaluate(task, inputs, truth, predictions)
        cpu = usage.cpu_seconds if usage is not None else None
        peak = usage.peak_memory_bytes if usage is not None else None
        cost = footprint(cpu, peak, lifetime, self.factors()) if cpu is not None else None
        return {
            "metrics": _finite(outcome.metrics),
            "baseline_metrics": _finite(outcome.baseline_metrics),
            "chart": outcome.chart,
            "n_rows": len(inputs),
            "predict_s": predict_s,
            "cpu_seconds": cpu,
            "peak_memory_bytes": peak,
            "energy_wh": cost.energy_wh if cost is not None else None,
            "co2e_g": cost.co2e_g if cost is not None else None,
            "bibia_version": __version__,
            "error": None,
        }

    def _data(self, job: Job, task: Task) -> tuple[pd.DataFrame, pd.DataFrame]:
        if job.benchmark_id is not None:
            with self.services.db.session() as session:
                bench = session.get(Benchmark, job.benchmark_id)
                if bench is None:
                    raise RunFailed("le jeu d'évaluation a été supprimé")
                return self.benchmarks.frames_of(bench, task)
        inputs_csv, truth_csv = self.uploads.read(job.id)
        return (
            frames.conform(_read_canonical(inputs_csv), task.inputs, "entrées"),
            frames.conform(_read_canonical(truth_csv), task.truth, "vérité"),
        )

    def _wait_ready(self, sandbox_id: str, beat: Heartbeat, deadline: float) -> None:
        pause = 0.05
        while True:
            beat.check()
            state, error = self.demos.sandbox_state(sandbox_id)
            if state == DemoState.READY:
                return
            if state is None or state.is_terminal:
                raise RunFailed(
                    "le modèle n'a pas pu démarrer dans le bac à sable : "
                    + (error or "le bac à sable s'est arrêté")
                )
            if time.monotonic() > deadline:
                raise RunFailed(
                    f"le modèle n'a pas démarré avant la limite de l'évaluation "
                    f"({self.settings.evaluation_timeout_s:.0f} s)"
                )
            time.sleep(pause)
            pause = min(pause * 1.5, 0.5)

    def _predict(
        self,
        job: Job,
        worker: str,
        task: Task,
        inputs: pd.DataFrame,
        sandbox_id: str,
        beat: Heartbeat,
        deadline: float,
    ) -> pd.DataFrame:
        transport = SandboxTransport(self.demos.socket_dir(sandbox_id), self.demos.socket_owner)
        parts: list[pd.DataFrame] = []
        done, total = 0, len(inputs)
        with httpx.Client(transport=transport, base_url="http://sandbox") as client:
            size = SERVER_MAX_ROWS if task.single_batch else self.settings.evaluation_batch_rows
            if task.single_batch and len(inputs) > SERVER_MAX_ROWS:
                raise RunFailed(
                    f"la tâche {task.slug} envoie toutes les lignes au modèle en une fois : "
                    f"{SERVER_MAX_ROWS} au plus, pas {len(inputs)}"
                )
            for batch in batches(inputs, None if task.single_batch else task.batch_key, size):
                beat.check()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RunFailed(
                        f"l'évaluation a dépassé sa limite de {self.settings.evaluation_timeout_s:.0f} s"
                    )
                frame = inputs.loc[batch]
                answer = self._post(
                    client,
                    frame,
                    min(remaining, self.settings.evaluation_predict_timeout_s),
                    sandbox_id,
                )
                try:
                    predicted = frames.predictions_frame(answer, task, len(frame))
                except InvalidPredictions as exc:
                    raise RunFailed(f"réponse du modèle inutilisable : {exc.message}") from None
                predicted.index = frame.index
                parts.append(predicted)
                done += len(frame)
                self._step(
                    job,
                    worker,
                    0.1 + 0.85 * done / max(total, 1),
                    f"prédictions : {done} lignes sur {total}",
                )
        return pd.concat(parts).loc[inputs.index].reset_index(drop=True)

    def _post(
        self, client: httpx.Client, frame: pd.DataFrame, timeout: float, sandbox_id: str
    ) -> Any:
        body = {
            "dataframe_split": json.loads(
                frame.to_json(orient="split", index=False, date_format="iso")
            )
        }
        limit = max(1024 * 1024, BYTES_PER_ROW * len(frame))
        try:
            with client.stream("POST", "/predict", json=body, timeout=timeout) as response:
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise RunFailed(
                            f"réponse du modèle trop volumineuse (plus de {limit // 1024} Kio pour {len(frame)} lignes)"
                        )
                    chunks.append(chunk)
                status = response.status_code
        except httpx.TimeoutException:
            raise RunFailed(
                f"le modèle n'a pas répondu en {timeout:.0f} s sur {len(frame)} lignes"
            ) from None
        except (httpx.HTTPError, OSError, RunnerError):
            raise RunFailed(self._ended(sandbox_id)) from None
        if status >= 500 and self._gone(sandbox_id):
            raise RunFailed(self._ended(sandbox_id))
        raw = b"".join(chunks)
        try:
            payload = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            raise RunFailed("réponse du modèle inutilisable : ce n'est pas du JSON") from None
        if status != 200:
            message = payload.get("message") if isinstance(payload, dict) else None
            text = _clean(message) if isinstance(message, str) else f"statut HTTP {status}"
            raise RunFailed(f"le modèle a refusé ou échoué sur les données : {text}")
        if not isinstance(payload, dict) or "predictions" not in payload:
            raise RunFailed("réponse du modèle inutilisable : pas de champ « predictions »")
        return payload["predictions"]

    def _gone(self, sandbox_id: str) -> bool:
        runner = self.demos.runner
        return runner is not None and runner.status(sandbox_id).state.is_terminal

    def _ended(self, sandbox_id: str) -> str:
        """Why the sandbox stopped answering, as the runner tells it (memory, crash)."""
        runner = self.demos.runner
        deadline = time.monotonic() + ENDING_GRACE_S  # a dying server closes its socket first
        while runner is not None:
            status = runner.status(sandbox_id)
            if status.state.is_terminal:
                message, _ = self.demos.endings.ended_text(sandbox_id, status)
                return f"le bac à sable s'est arrêté pendant les prédictions : {message}"
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        return "le bac à sable a cessé de répondre pendant les prédictions"


def batches(inputs: pd.DataFrame, key: str | None, size: int) -> Iterator[list[Any]]:
    """Index labels of ``inputs`` in batches of at most ``size`` rows; rows sharing ``key`` stay together.

    Raises:
        RunFailed: one series alone is longer than the sandbox server accepts in one request.
    """
    if key is None or key not in inputs.columns:
        labels = list(inputs.index)
        for start in range(0, len(labels), size):
            yield labels[start : start + size]
        return
    batch: list[Any] = []
    for value, labels in inputs.groupby(key, sort=False, dropna=False).groups.items():
        group = list(labels)
        if len(group) > SERVER_MAX_ROWS:
            raise RunFailed(
                f"la série {key} = {value} a {len(group)} lignes : {SERVER_MAX_ROWS} au plus par série"
            )
        if batch and len(batch) + len(group) > size:
            yield batch
            batch = []
        batch.extend(group)
    if batch:
        yield batch


def _finite(scores: dict[str, float]) -> dict[str, float]:
    return {
        k: float(v) for k, v in scores.items() if isinstance(v, (int, float)) and math.isfinite(v)
    }


def _clean(text: str, limit: int = 300) -> str:
    """A sandbox's message, as text we may store: printable, short."""
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    return printable[:limit].strip() or "(message vide)"


__all__ = ["Executor", "JobState", "batches"]
