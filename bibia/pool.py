"""The warm pool: sandboxes started ahead, waiting for a model (Docker runner, ``demo_pool_size``).

A member is an ordinary sandbox started with an empty model directory and
``BIBIA_WAIT_FOR_MODEL=1``: its server has done its heavy imports and waits
for ``.bibia-ready``. Membership lives in the runner's labels
(``bibia.pool``), never in the database: a container of this instance with
the warm label is a member while no demonstrator row holds its id. A launch
claims one by inserting that row (the primary key makes a double claim
impossible); from then on it is an ordinary demonstrator, driven by
:class:`bibia.demos.DemoManager`.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bibia.db.models import DemoSession
from bibia.services import Services
from runners import hostfs
from runners.base import DemoSpec, RunInfo, RunState

log = logging.getLogger("bibia.demos")

LABEL_POOL = "bibia.pool"  # "warm": a pool member while no database row holds its id
LABEL_POOL_KEY = "bibia.pool_key"  # the sandbox settings it was started with (see WarmPool.key)
LABEL_POOL_SINCE = "bibia.pool_since"  # Unix time it was started
POOL_WARM = "warm"
POOL_IDLE_SECONDS = 900  # a warm sandbox with no model stops by itself after this long
READY_MARKER = (
    ".bibia-ready"  # written last into a warm sandbox's model directory (demos/server/settings.py)
)
# Exit codes of a warm sandbox that ended before its model arrived: idle limit
# (demos/server: 5), stopped (143) or ended cleanly (0). A launch that claimed
# it starts cold instead; any other code is the model's failure.
WARM_GONE_EXIT_CODES = frozenset({0, 5, 143})

T = TypeVar("T")

# sandbox_spec(demo_id, ttl_seconds=..., labels=..., env=...): the sandbox every demonstrator gets.
SpecBuilder = Callable[..., DemoSpec]


class WarmPool:
    """Keeps ``demo_pool_size`` warm sandboxes of this service instance and hands them to launches.

    Args:
        services: the service's settings, runner and database.
        sandbox_spec: builds the spec of a demonstrator's sandbox (image,
            limits, directories, this instance's label), cold or warm, from
            ``demo_id`` and the keywords ``ttl_seconds``, ``labels``, ``env``.
        mine: lists the runner's sandboxes of this service instance.
        demo_dir: a demonstrator's directory on the host.
        stopping: set when the service shuts down; no member starts after.
    """

    def __init__(
        self,
        services: Services,
        *,
        sandbox_spec: SpecBuilder,
        mine: Callable[[], list[RunInfo]],
        demo_dir: Callable[[str], Path],
        stopping: threading.Event,
    ) -> None:
        self.services = services
        self.settings = services.settings
        self.runner = services.runner
        self._sandbox_spec = sandbox_spec
        self._mine = mine
        self._demo_dir = demo_dir
        self._stopping = stopping
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Whether there is a pool: a pool size and a sandboxing runner (Docker)."""
        return self.settings.demo_pool_size > 0 and sandboxes(self.runner)

    def key(self) -> str:
        """What a warm sandbox must match to be claimed: the image and the sandbox limits."""
        s = self.settings
        raw = f"{s.demo_image}|{s.demo_memory_mb}|{s.demo_cpus}|{s.demo_pids}|{s.demo_max_ttl_minutes}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    # ------------------------------------------------------------ members

    @staticmethod
    def is_warm(info: RunInfo) -> bool:
        """Whether the sandbox was started warm (a member, unless a row claims its id)."""
        return info.labels.get(LABEL_POOL) == POOL_WARM

    def members(self) -> list[RunInfo]:
        """This instance's warm sandboxes that no database row claims (any state), oldest first."""
        if not sandboxes(self.runner):
            return []
        warm = [info for info in self._mine() if self.is_warm(info)]
        if not warm:
            return []
        with self.services.db.session() as session:
            claimed = set(
                session.scalars(
                    select(DemoSession.id).where(DemoSession.id.in_([i.demo_id for i in warm]))
                )
            )
        return sorted((info for info in warm if info.demo_id not in claimed), key=_since)

    def _free(self) -> list[RunInfo]:
        """Members a launch may claim now (running, started with today's settings); empty without a pool."""
        if not self.enabled:
            return []
        try:
            members = self.members()
        except Exception:
            log.warning("listing the warm pool failed", exc_info=True)
            return []
        key = self.key()
        return [
            m
            for m in members
            if m.status.state == RunState.RUNNING and m.labels.get(LABEL_POOL_KEY) == key
        ]

    def claim(self, insert: Callable[[str, str], T]) -> T | None:
        """Claim a free member for a launch.

        Args:
            insert: inserts the demonstrator row under the member's id, given
                ``(demo_id, runner_id)``; that insert is the claim.

        Returns:
            What ``insert`` returned, or None when no member could be
            claimed (the launch starts cold).

        Raises:
            Whatever ``insert`` raises (a quota), except the primary key's
            IntegrityError: another launch, maybe another replica's, claimed
            that member first, and the next one is tried.
        """
        for member in self._free():
            try:
                return insert(member.demo_id, member.runner_id)
            except IntegrityError:
                continue
        return None

    # ------------------------------------------------------------ upkeep

    def maintain(self) -> dict[str, list[str]]:
        """Bring the pool to ``demo_pool_size``: remove dead, stale or surplus members, start the missing ones.

        Starts at most the missing count per call (members still starting
        count as present). Returns ``{"started": [...], "removed": [...]}``.
        """
        result: dict[str, list[str]] = {"started": [], "removed": []}
        if not sandboxes(self.runner):
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
                    self.runner.start(self._warm_spec(demo_id))
                except Exception:
                    log.warning("starting a warm sandbox failed", exc_info=True)
                    hostfs.remove_tree(self._demo_dir(demo_id))
                    break
                result["started"].append(demo_id)
        return result

    def refill_later(self) -> None:
        """Refill the pool in the background (after a claimed sandbox is ready: not competing with its load)."""
        if not self.enabled or self._stopping.is_set():
            return

        def refill() -> None:
            try:
                self.maintain()
            except Exception:
                log.warning("refilling the warm pool failed", exc_info=True)

        threading.Thread(target=refill, name="bibia-demo-pool", daemon=True).start()

    def _warm_spec(self, demo_id: str) -> DemoSpec:
        """An ordinary demonstrator sandbox with an empty model directory, waiting for its model.

        Its time to live is the idle limit plus ``demo_max_ttl_minutes`` (what
        the cold path gives a new demonstrator): claimed before its idle limit,
        it never stops before its demonstrator's latest possible expiry, and
        its ``bibia.expires_at`` label says when it stops by itself.
        """
        spec = self._sandbox_spec(
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
        with self.services.db.session() as session:
            if session.get(DemoSession, demo_id) is not None:
                return False
        stop_quietly(self.runner, demo_id)
        hostfs.remove_tree(self._demo_dir(demo_id))
        return True


def sandboxes(runner: Any) -> bool:
    """Whether ``runner`` isolates what it runs (a warm sandbox gets its model, untrusted or not, later)."""
    try:
        from runners.docker import DockerRunner
    except ImportError:
        return False
    return isinstance(runner, DockerRunner)


def stop_quietly(runner: Any, demo_id: str) -> None:
    """Stop a sandbox if there is a runner; a failure is logged (stopping is idempotent; the reaper retries)."""
    if runner is not None:
        try:
            runner.stop(demo_id)
        except Exception:
            log.warning("runner stop failed for %s", demo_id, exc_info=True)


def _since(info: RunInfo) -> int:
    try:
        return int(info.labels.get(LABEL_POOL_SINCE, "0"))
    except ValueError:
        return 0
