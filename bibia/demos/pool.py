"""The warm pool: sandboxes started ahead, waiting for a model (an isolating runner, ``demo_pool_size``).

A member is an ordinary sandbox (:meth:`SandboxFactory.spec`) started with an
empty model directory and ``BIBIA_WAIT_FOR_MODEL=1``: its server has done its
heavy imports and waits for ``.bibia-ready``. Membership lives in the
runner's labels (``bibia.pool``), never in the database: a sandbox of this
instance and this replica (``bibia.replica``) with the warm label is a member
while no demonstrator row holds its id; a replica never touches another live
replica's members. A launch claims one by inserting that row (the primary key makes a
double claim impossible; see :mod:`bibia.demos.launch`); from then on it is
an ordinary demonstrator. The pool never calls back into a launch: it lists
what may be claimed, and starts, trims and retires members.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping

from bibia.demos.sandbox import LABEL_REPLICA, SandboxFactory
from bibia.demos.sessions import Sessions
from bibia.settings import Settings
from domain.errors import RunnerError
from runners import hostfs
from runners.base import DemoSpec, RunInfo, RunState

log = logging.getLogger("bibia.demos")

LABEL_POOL = "bibia.pool"  # "warm": a pool member while no database row holds its id
LABEL_POOL_KEY = "bibia.pool_key"  # the sandbox settings it was started with (see WarmPool.key)
LABEL_POOL_SINCE = "bibia.pool_since"  # Unix time it was started
POOL_WARM = "warm"
POOL_IDLE_SECONDS = 900  # a warm sandbox with no model stops by itself after this long
# Exit codes of a warm sandbox that ended before its model arrived: idle limit
# (demos/server: 5), stopped (143) or ended cleanly (0). A launch that claimed
# it starts cold instead; any other code is the model's failure.
WARM_GONE_EXIT_CODES = frozenset({0, 5, 143})


class WarmPool:
    """Keeps ``demo_pool_size`` warm sandboxes of this replica for its launches to claim.

    Args:
        settings: the pool size and the sandbox settings its key is made of.
        sessions: the rows that tell claimed members from free ones.
        sandbox: builds and removes the members' sandboxes.
        stopping: set when the service shuts down; no member starts after.
    """

    def __init__(
        self,
        settings: Settings,
        sessions: Sessions,
        sandbox: SandboxFactory,
        stopping: threading.Event,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.sandbox = sandbox
        self._stopping = stopping
        self._lock = threading.Lock()

    @property
    def isolating(self) -> bool:
        """Whether the runner isolates what it runs (a warm sandbox gets its model, untrusted or not, later)."""
        runner = self.sandbox.runner
        return runner is not None and runner.isolates

    @property
    def enabled(self) -> bool:
        """Whether there is a pool: a pool size and an isolating runner."""
        return self.settings.demo_pool_size > 0 and self.isolating

    def key(self) -> str:
        """What a warm sandbox must match to be claimed: the image and the sandbox limits."""
        s = self.settings
        raw = f"{s.demo_image}|{s.demo_memory_mb}|{s.demo_cpus}|{s.demo_pids}|{s.demo_max_ttl_minutes}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    # ------------------------------------------------------------ members

    @staticmethod
    def is_warm(info: RunInfo) -> bool:
        """Whether the sandbox was started warm (a member, unless a row claims its id)."""
        return WarmPool.is_warm_labels(info.labels)

    @staticmethod
    def is_warm_labels(labels: Mapping[str, str]) -> bool:
        return labels.get(LABEL_POOL) == POOL_WARM

    def members(self) -> list[RunInfo]:
        """This replica's warm sandboxes that no database row claims (any state), oldest first.

        Another replica's members are never listed: each replica claims, trims
        and refills its own pool (:meth:`remove_dead` removes a dead one's).

        Raises:
            RunnerError: the runner could not list its sandboxes.
        """
        me = self.settings.replica_id
        return self._unclaimed(lambda info: info.labels.get(LABEL_REPLICA) == me)

    def remove_dead(self, live: set[str]) -> list[str]:
        """Remove the unclaimed warm sandboxes of replicas not in ``live`` (dead ones); their ids.

        Raises:
            RunnerError: the runner could not list its sandboxes.
        """
        dead = self._unclaimed(lambda info: info.labels.get(LABEL_REPLICA) not in live)
        removed = [m.demo_id for m in dead if self._retire(m.demo_id)]
        if removed:
            log.info("removed %d warm sandboxes of dead replicas: %s", len(removed), removed)
        return removed

    def _unclaimed(self, whose: Callable[[RunInfo], bool]) -> list[RunInfo]:
        if not self.isolating:
            return []
        warm = [info for info in self.sandbox.mine() if self.is_warm(info) and whose(info)]
        if not warm:
            return []
        claimed = self.sessions.claimed([i.demo_id for i in warm])
        return sorted((info for info in warm if info.demo_id not in claimed), key=_since)

    def claimable(self) -> list[RunInfo]:
        """Members a launch may claim now (running, started with today's settings); empty without a pool."""
        if not self.enabled:
            return []
        try:
            members = self.members()
        except RunnerError:
            log.warning("listing the warm pool failed", exc_info=True)
            return []
        key = self.key()
        return [
            m
            for m in members
            if m.status.state == RunState.RUNNING and m.labels.get(LABEL_POOL_KEY) == key
        ]

    # ------------------------------------------------------------ upkeep

    def maintain(self) -> dict[str, list[str]]:
        """Bring the pool to ``demo_pool_size``: remove dead, stale or surplus members, start the missing ones.

        Starts at most the missing count per call (members still starting
        count as present). Returns ``{"started": [...], "removed": [...]}``.

        Raises:
            RunnerError: the runner could not list its sandboxes.
        """
        result: dict[str, list[str]] = {"started": [], "removed": []}
        runner = self.sandbox.runner
        if runner is None or not runner.isolates:
            return result
        with self._lock:
            size = self.settings.demo_pool_size
            key, now = self.key(), time.time()
            keep, drop = [], []
            for member in self.members():
                stale = (
                    member.labels.get(LABEL_POOL_KEY) != key
                    or now - _since(member) > POOL_IDLE_SECONDS + 60
                )
                if member.status.state != RunState.RUNNING or stale:
                    drop.append(member)
                else:
                    keep.append(member)
            drop.extend(keep[size:])  # the newest go first: the oldest have finished warming up
            for member in drop:
                if self._retire(member.demo_id):
                    result["removed"].append(member.demo_id)
            for _ in range(max(0, size - len(keep))):
                if self._stopping.is_set():
                    break
                demo_id = secrets.token_hex(8)
                try:
                    runner.start(self._warm_spec(demo_id))
                except RunnerError:
                    log.warning("starting a warm sandbox failed", exc_info=True)
                    hostfs.remove_tree(self.sandbox.demo_dir(demo_id))
                    break
                result["started"].append(demo_id)
        return result

    def refill_later(self) -> None:
        """Refill the pool in the background (after a claimed sandbox is ready: not competing with its load)."""
        if not self.enabled or self._stopping.is_set():
            return
        threading.Thread(target=self._refill, name="bibia-demo-pool", daemon=True).start()

    def _refill(self) -> None:
        try:
            self.maintain()
        except RunnerError:
            log.warning("refilling the warm pool failed", exc_info=True)

    def _warm_spec(self, demo_id: str) -> DemoSpec:
        """An ordinary demonstrator sandbox with an empty model directory, waiting for its model.

        Its time to live is the idle limit plus ``demo_max_ttl_minutes`` (what
        the cold path gives a new demonstrator): claimed before its idle limit,
        it never stops before its demonstrator's latest possible expiry, and
        its ``bibia.expires_at`` label says when it stops by itself.
        """
        spec = self.sandbox.spec(
            demo_id,
            ttl_seconds=POOL_IDLE_SECONDS + self.settings.demo_max_ttl_minutes * 60,
            labels={
                LABEL_POOL: POOL_WARM,
                LABEL_POOL_KEY: self.key(),
                LABEL_POOL_SINCE: str(int(time.time())),
            },
            env={"BIBIA_WAIT_FOR_MODEL": "1", "BIBIA_POOL_IDLE_SECONDS": str(POOL_IDLE_SECONDS)},
        )
        spec.model_dir.mkdir(parents=True, exist_ok=True)
        spec.model_dir.chmod(0o755)
        return spec

    def _retire(self, demo_id: str) -> bool:
        """Remove a member, unless a launch claimed it since it was listed."""
        if self.sessions.claimed([demo_id]):
            return False
        self.sandbox.teardown(demo_id)
        return True


def _since(info: RunInfo) -> int:
    try:
        return int(info.labels.get(LABEL_POOL_SINCE, "0"))
    except ValueError:
        return 0
