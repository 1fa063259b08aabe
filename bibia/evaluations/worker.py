"""The evaluation workers of one replica: threads that recover lost jobs, claim queued ones and run them.

``evaluation_workers`` threads per replica (0: this replica runs none).
Each loop: recover the jobs whose worker went silent (any replica's: the
heartbeat says who is alive), claim the oldest queued job under a row lock
(:meth:`Jobs.claim`), run it (:class:`Executor`). Several replicas share the
queue through the database alone.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from bibia.evaluations.execute import Executor
from bibia.evaluations.jobs import Jobs
from domain.errors import BibiaError

log = logging.getLogger("bibia.evaluations")

# What the loop survives: the database, the registry, the runner, the host's disk.
LOOP_ERRORS = (BibiaError, SQLAlchemyError, OSError)


class Workers:
    """Starts and stops the worker threads; ``run_queued`` runs the queue in the caller's thread."""

    def __init__(
        self,
        jobs: Jobs,
        executor: Executor,
        *,
        count: int,
        poll_interval: float,
        on_recovered: Callable[[dict[str, list[str]]], None],
        instance: str,
    ) -> None:
        self.jobs = jobs
        self.executor = executor
        self.count = count
        self.poll_interval = poll_interval
        self.on_recovered = on_recovered
        # Unique per process and thread: a restarted replica is a new worker.
        self.prefix = f"{instance[:12]}-{secrets.token_hex(4)}"
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []

    def name(self, index: int) -> str:
        return f"{self.prefix}-{index}"

    def start(self) -> None:
        for index in range(self.count):
            thread = threading.Thread(
                target=self._loop, args=(self.name(index),), name=f"bibia-eval-{index}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def wake(self) -> None:
        """A job was queued: look now instead of at the next poll."""
        self._wake.set()

    def recover(self) -> None:
        self.on_recovered(self.jobs.recover())

    def _loop(self, worker: str) -> None:
        while not self._stopping.is_set():
            ran = False
            try:
                self.recover()
                job_id = self.jobs.claim(worker)
                if job_id is not None:
                    ran = True
                    self.executor.run(job_id, worker)
            except LOOP_ERRORS:
                log.exception("evaluation worker %s: a pass failed", worker)
            except Exception:  # a bug must not kill the worker: the job is recovered as stale
                log.exception("evaluation worker %s: unexpected error", worker)
            if not ran:
                self._wake.wait(self.poll_interval)
                self._wake.clear()

    def run_queued(self, *, limit: int | None = None) -> list[str]:
        """Claim and run queued jobs in this thread until none is left (or ``limit``); their ids."""
        worker = self.name(999)
        ran: list[str] = []
        while limit is None or len(ran) < limit:
            self.recover()
            job_id = self.jobs.claim(worker)
            if job_id is None:
                break
            self.executor.run(job_id, worker)
            ran.append(job_id)
        return ran

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop claiming; a running job is left to recovery if it does not end in ``timeout``."""
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=timeout)
