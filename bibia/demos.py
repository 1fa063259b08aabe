"""Demonstrators: one model version run in a sandbox, with its lifecycle held in the database.

States: pending → starting → ready → stopped | failed | expired. Transitions
are checked in :func:`transition`, nowhere else. The service asks a runner
(``runners.base.Runner``) to start the demonstrator image with the version's
artifacts mounted read-only, waits for its health check over the Unix
socket, and proxies users to it. A reaper expires what outlived its time to
live; at start-up :meth:`DemoManager.reconcile` adopts what still runs and
marks what vanished as failed, so a restart loses and orphans nothing.

Warm pool (Docker runner, ``demo_pool_size``): the reaper keeps that many
ordinary sandboxes started ahead, with an empty model directory and
``BIBIA_WAIT_FOR_MODEL=1``; their server has done its heavy imports and
waits for a model. Membership lives in the runner's labels (``bibia.pool``),
never in the database: a launch CLAIMS a member by inserting the demonstrator
row with the member's id (the primary key makes a double claim impossible),
writes the model into its directory, ``.bibia-ready`` last, and waits for
health as usual. No member free: the cold path, unchanged. A member that
vanishes before its model arrives (idle limit, trimmed by a reaper) makes
the launch fall back to the cold path under the same id.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import logging
import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bibia.accounts import audit
from bibia.auth import ANONYMOUS, Caller, authenticate
from bibia.db.models import DemoSession, utcnow
from bibia.services import Services
from registry.errors import Conflict, Forbidden, InvalidInput, NotFound, QuotaExceeded, RunnerError
from registry.refs import ModelRef
from registry.tiers import Tier, visible
from runners.base import SOCKET_NAME, DemoMissing, DemoSpec, RunInfo, RunState, UntrustedModel

log = logging.getLogger("bibia.demos")

LABEL_MODEL = "bibia.model"
LABEL_INSTANCE = "bibia.instance"
REFERENCE_TAG = "bibia.reference"  # version tag set by `bibia seed` on the reference models it built
LABEL_POOL = "bibia.pool"  # "warm": a pool member while no database row holds its id
LABEL_POOL_KEY = "bibia.pool_key"  # the sandbox settings it was started with (see _pool_key)
LABEL_POOL_SINCE = "bibia.pool_since"  # Unix time it was started
POOL_WARM = "warm"
POOL_IDLE_SECONDS = 900  # a warm sandbox with no model stops by itself after this long
READY_MARKER = ".bibia-ready"  # written last into a warm sandbox's model directory (demos/server/settings.py)
# Exit codes of a warm sandbox that ended before its model arrived: idle limit
# (demos/server: 5), stopped (143) or ended cleanly (0). A launch that claimed
# it starts cold instead; any other code is the model's failure.
WARM_GONE_EXIT_CODES = frozenset({0, 5, 143})


class DemoState(str, enum.Enum):
    PENDING = "pending"
    STARTING = "starting"
    READY = "ready"
    STOPPED = "stopped"
    FAILED = "failed"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({DemoState.STOPPED, DemoState.FAILED, DemoState.EXPIRED})
ALLOWED = {
    DemoState.PENDING: {DemoState.STARTING, DemoState.FAILED, DemoState.STOPPED, DemoState.EXPIRED},
    DemoState.STARTING: {DemoState.READY, DemoState.FAILED, DemoState.STOPPED, DemoState.EXPIRED},
    DemoState.READY: {DemoState.FAILED, DemoState.STOPPED, DemoState.EXPIRED},
}


def transition(row: DemoSession, new: DemoState, error: str | None = None) -> bool:
    """Move ``row`` to ``new`` if the lifecycle allows it; returns whether it moved."""
    current = DemoState(row.state)
    if new == current:
        return False
    if new not in ALLOWED.get(current, set()):
        return False
    row.state = new.value
    row.updated_at = utcnow()
    if error is not None:
        row.error = error[-4000:]
    return True


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class DemoView:
    """A demonstrator as the API shows it."""

    id: str
    state: str
    url: str | None
    model: str
    version: int
    organisation_id: int
    created_at: dt.datetime
    expires_at: dt.datetime
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "url": self.url,
            "model": self.model,
            "version": self.version,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "error": self.error,
        }


class DemoManager:
    """Launches, tracks, proxies and reaps demonstrators."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.runner = services.runner
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None
        self._watchers: dict[str, threading.Thread] = {}
        self._pool_lock = threading.Lock()

    # ------------------------------------------------------------ paths

    def demo_dir(self, demo_id: str) -> Path:
        return self.settings.demos_dir / demo_id

    def socket_path(self, demo_id: str) -> Path:
        return self.demo_dir(demo_id) / "run" / SOCKET_NAME

    @property
    def runner_name(self) -> str:
        return type(self.runner).__name__ if self.runner is not None else "none"

    def _require_runner(self) -> None:
        if self.runner is None:
            raise RunnerError(
                "les démonstrateurs sont désactivés sur ce service (aucun moteur d'exécution : "
                "démarrez Docker ou réglez BIBIA_RUNNER)"
            )

    # ------------------------------------------------------------ API verbs

    def launch(self, caller: Caller, ref: ModelRef, ttl_minutes: int | None = None) -> DemoView:
        """Create a demonstrator of ``ref`` for the caller's organisation and start it in the background.

        Raises:
            Forbidden: public callers.
            QuotaExceeded: the organisation's or the platform's quota is reached.
            NotFound: unknown model, version or alias.
        """
        if caller.tier < Tier.RESTRICTED or caller.organisation_id is None:
            raise Forbidden("accès refusé : seuls les membres d'une collectivité peuvent lancer un démonstrateur")
        self._require_runner()
        ttl = self._ttl(ttl_minutes)
        info = self.services.registry.resolve(ref)
        if not info.signature or not isinstance(info.signature.get("inputs"), list):
            raise InvalidInput(
                f"le modèle {ref} n'a pas de signature par colonnes : le démonstrateur ne saurait pas quelles données lui donner"
            )
        self._check_trusted(info)
        for member in self._free_members():
            try:
                view = self._insert(caller, info, ttl, member.demo_id, member.runner_id)
            except IntegrityError:  # another launch (maybe another replica) claimed it first
                continue
            self._watch(view.id, self._start_and_wait, view.id, True)
            return view
        view = self._insert(caller, info, ttl, secrets.token_hex(8), None)
        self._watch(view.id, self._start_and_wait, view.id)
        return view

    def _insert(self, caller: Caller, info: Any, ttl: int, demo_id: str, runner_ref: str | None) -> DemoView:
        """Check the quotas and insert the pending row (for a warm member, this is the claim)."""
        with self.services.db.session() as session:
            self._check_quotas(session, caller)
            row = DemoSession(
                id=demo_id,
                organisation_id=caller.organisation_id,
                user_id=caller.user_id,
                model_name=info.name,
                model_version=info.version,
                state=DemoState.PENDING.value,
                runner=self.runner_name,
                runner_ref=runner_ref,
                expires_at=utcnow() + dt.timedelta(minutes=ttl),
            )
            session.add(row)
            session.flush()
            audit(session, caller, "demo.launch", f"{info.name}/{info.version}", demo=demo_id, ttl_minutes=ttl, warm=runner_ref is not None)
            return self._view(row)

    def get(self, caller: Caller, demo_id: str) -> DemoView:
        with self.services.db.session() as session:
            return self._view(self._row_for(session, caller, demo_id))

    def list(self, caller: Caller, include_finished: bool = False) -> list[DemoView]:
        if caller.tier < Tier.RESTRICTED:
            raise Forbidden("accès refusé : réservé aux membres d'une collectivité")
        with self.services.db.session() as session:
            query = select(DemoSession).order_by(DemoSession.created_at.desc())
            if caller.tier < Tier.ADMIN:
                query = query.where(DemoSession.organisation_id == caller.organisation_id)
            if not include_finished:
                query = query.where(DemoSession.state.not_in([s.value for s in TERMINAL]))
            return [self._view(r) for r in session.scalars(query.limit(500))]

    def stop(self, caller: Caller, demo_id: str) -> DemoView:
        with self.services.db.session() as session:
            row = self._row_for(session, caller, demo_id)
            if DemoState(row.state).is_terminal:
                return self._view(row)
            transition(row, DemoState.STOPPED)
            audit(session, caller, "demo.stop", demo_id)
            view = self._view(row)
        self._teardown(demo_id)
        return view

    def extend(self, caller: Caller, demo_id: str, minutes: int) -> DemoView:
        """Push the expiry back by ``minutes`` (owner's organisation), within the maximum time to live."""
        if minutes < 1:
            raise InvalidInput("la prolongation doit être d'au moins une minute")
        with self.services.db.session() as session:
            row = self._row_for(session, caller, demo_id)
            if DemoState(row.state).is_terminal:
                raise Conflict(f"le démonstrateur {demo_id} est terminé ({row.state}) : relancez-en un")
            limit = _aware(row.created_at) + dt.timedelta(minutes=self.settings.demo_max_ttl_minutes)
            new_expiry = min(_aware(row.expires_at) + dt.timedelta(minutes=minutes), limit)
            row.expires_at = new_expiry
            audit(session, caller, "demo.extend", demo_id, minutes=minutes)
            return self._view(row)

    def logs(self, caller: Caller, demo_id: str, tail: int = 200) -> str:
        if caller.tier < Tier.EXPERT:
            raise Forbidden("accès refusé : les journaux des démonstrateurs sont réservés aux experts")
        with self.services.db.session() as session:
            row = self._row_for(session, caller, demo_id)
            error = row.error
        self._require_runner()
        try:
            text = self.runner.logs(demo_id, tail=tail)
        except DemoMissing:
            text = ""
        if not text and error:
            return error
        return text

    def socket_for(self, caller: Caller, demo_id: str) -> Path:
        """The socket to proxy to, after checking the caller may use this demonstrator now."""
        with self.services.db.session() as session:
            return self._ready_socket(session, caller, demo_id)

    def proxy_target(self, token: str | None, demo_id: str) -> Path:
        """Who calls (from their token) and whether they may reach ``demo_id``, in one unit of work.

        The proxy calls this on every request: one database session instead of two.
        """
        with self.services.db.session() as session:
            caller = ANONYMOUS if not token else authenticate(session, token)
            return self._ready_socket(session, caller, demo_id)

    def _ready_socket(self, session: Session, caller: Caller, demo_id: str) -> Path:
        state = DemoState(self._row_for(session, caller, demo_id).state)
        if state != DemoState.READY:
            raise Conflict(f"le démonstrateur {demo_id} n'est pas prêt (état : {state.value})")
        return self.socket_path(demo_id)

    # -------------------------------------------------------- lifecycle work

    def _start_and_wait(self, demo_id: str, warm: bool = False) -> None:
        with self.services.db.session() as session:
            row = session.get(DemoSession, demo_id)
            if row is None or not transition(row, DemoState.STARTING):
                return
            name, version = row.model_name, row.model_version
            # The sandbox stops by itself at the latest expiry an extension can reach;
            # the reaper enforces the actual one.
            deadline = _aware(row.created_at) + dt.timedelta(minutes=self.settings.demo_max_ttl_minutes)
        if warm:
            try:
                self._write_model(self.demo_dir(demo_id) / "model", name, version, fresh=False)
            except Exception as exc:  # as on the cold path: the demonstrator's state, shown to the user
                self._fail(demo_id, f"échec du lancement : {exc}")
                self._teardown(demo_id)
                return
            settled = self._wait_ready(demo_id, warm=True)
            self._refill_later()
            if settled:
                return
            log.info("warm sandbox %s ended before its model arrived: starting it cold", demo_id)
            self._stop_runner(demo_id)
        try:
            spec = self._spec(demo_id, name, version, deadline)
            handle = self.runner.start(spec)
            with self.services.db.session() as session:
                row = session.get(DemoSession, demo_id)
                row.runner_ref = getattr(handle, "runner_id", None) or str(handle)[:128]
                ended = DemoState(row.state).is_terminal
        except Exception as exc:  # any failure to start is the demonstrator's state, shown to the user
            self._fail(demo_id, f"échec du lancement : {exc}")
            self._teardown(demo_id)
            return
        if ended:  # stopped or expired while the runner was starting it: its teardown found nothing yet
            self._teardown(demo_id)
            return
        self._wait_ready(demo_id)

    def _wait_ready(self, demo_id: str, warm: bool = False) -> bool:
        """Wait for health; ready, failed or stopped meanwhile: True.

        With ``warm``, returns False (and changes nothing) when the claimed
        warm sandbox ended before its model arrived: the caller starts it cold.
        """
        started = time.monotonic()
        deadline = started + self.settings.demo_start_timeout_s
        socket = self.socket_path(demo_id)
        while time.monotonic() < deadline and not self._stop.is_set():
            with self.services.db.session() as session:
                row = session.get(DemoSession, demo_id)
                if row is None or DemoState(row.state).is_terminal:
                    return True
            status = self._runner_status(demo_id)
            if status is not None and status.state != RunState.RUNNING:
                if warm and (status.state == RunState.MISSING or status.exit_code in WARM_GONE_EXIT_CODES):
                    return False
                self._fail(demo_id, self._failure_text(demo_id, status))
                self._teardown(demo_id)
                return True
            if health(socket):
                with self.services.db.session() as session:
                    row = session.get(DemoSession, demo_id)
                    if row is not None:
                        transition(row, DemoState.READY)
                return True
            # A warm sandbox answers within a second of its model: poll closely at first.
            time.sleep(0.05 if time.monotonic() - started < 3 else 0.2)
        if not self._stop.is_set():
            self._fail(demo_id, f"le démonstrateur n'a pas répondu en {self.settings.demo_start_timeout_s:.0f} s")
            self._teardown(demo_id)
        return True

    def _failure_text(self, demo_id: str, status: Any) -> str:
        try:
            logs = self.runner.logs(demo_id, tail=60)
        except Exception:  # logs are a best effort once the sandbox is gone
            logs = ""
        code = getattr(status, "exit_code", None)
        head = "le démonstrateur s'est arrêté" + (f" (code {code})" if code is not None else "")
        if getattr(status, "oom_killed", False):
            head += f" : il a dépassé sa limite de mémoire ({self.settings.demo_memory_mb} Mio) et le bac à sable l'a interrompu"
        return f"{head} :\n{logs}".strip()

    def _runner_status(self, demo_id: str) -> Any:
        try:
            return self.runner.status(demo_id)
        except Exception:  # noqa: BLE001 - a runner hiccup is retried by the next poll
            log.warning("runner status failed for %s", demo_id, exc_info=True)
            return None

    def _fail(self, demo_id: str, error: str) -> None:
        with self.services.db.session() as session:
            row = session.get(DemoSession, demo_id)
            if row is not None:
                transition(row, DemoState.FAILED, error)

    def _teardown(self, demo_id: str) -> None:
        self._stop_runner(demo_id)
        shutil.rmtree(self.demo_dir(demo_id) / "model", ignore_errors=True)

    def _stop_runner(self, demo_id: str) -> None:
        if self.runner is not None:
            try:
                self.runner.stop(demo_id)
            except Exception:  # noqa: BLE001 - stopping is idempotent; the reaper retries
                log.warning("runner stop failed for %s", demo_id, exc_info=True)

    def _write_model(self, model_dir: Path, name: str, version: int, *, fresh: bool) -> None:
        """Hard-link the cached model into ``model_dir`` with its tier-filtered card, readable by the sandbox.

        ``fresh`` replaces the directory; otherwise it is filled in place
        (a warm sandbox has it bind-mounted: replacing it would hide the
        model from the sandbox), and ``.bibia-ready`` is written last.
        """
        registry = self.services.registry
        source = registry.local_copy(name, version)
        if fresh:
            shutil.rmtree(model_dir, ignore_errors=True)
            shutil.copytree(source, model_dir, copy_function=_link_or_copy)
        else:  # entry by entry: copytree would give the mounted directory the cache's mode for a while
            for entry in Path(source).iterdir():
                if entry.is_dir():
                    shutil.copytree(entry, model_dir / entry.name, copy_function=_link_or_copy, dirs_exist_ok=True)
                else:
                    _link_or_copy(str(entry), str(model_dir / entry.name))
        card_path = model_dir / "bibia" / "card.json"
        card_path.parent.mkdir(exist_ok=True)
        summary = registry.get(name)
        card_path.unlink(missing_ok=True)
        card = visible(summary.card, Tier.RESTRICTED) if summary.card is not None else {}
        card_path.write_text(json.dumps(card, ensure_ascii=False, default=str), encoding="utf-8")
        _readable_by_sandbox(model_dir)
        if not fresh:
            marker = model_dir / READY_MARKER
            marker.write_bytes(b"")
            marker.chmod(0o644)

    def _spec(self, demo_id: str, name: str, version: int, deadline: dt.datetime) -> DemoSpec:
        root = self.demo_dir(demo_id)
        model_dir = root / "model"
        run_dir = root / "run"
        self._write_model(model_dir, name, version, fresh=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        ttl = max(60, int((deadline - utcnow()).total_seconds()))
        reference = self.services.registry.version(name, version).tags.get(REFERENCE_TAG) == "true"
        return DemoSpec(
            demo_id=demo_id,
            image=self.settings.demo_image,
            model_dir=model_dir,
            socket_dir=run_dir,
            memory_bytes=self.settings.demo_memory_mb * 1024 * 1024,
            cpus=self.settings.demo_cpus,
            pids_limit=self.settings.demo_pids,
            ttl_seconds=ttl,
            labels={LABEL_MODEL: f"{name}/{version}", LABEL_INSTANCE: self.services.instance},
            trusted=reference,
        )

    # ------------------------------------------------------------- warm pool

    @property
    def pool_enabled(self) -> bool:
        """Whether this manager keeps a warm pool: a pool size and a sandboxing runner (Docker)."""
        return self.settings.demo_pool_size > 0 and _sandboxes(self.runner)

    def _pool_key(self) -> str:
        """What a warm sandbox must match to be claimed: the image and the sandbox limits."""
        s = self.settings
        raw = f"{s.demo_image}|{s.demo_memory_mb}|{s.demo_cpus}|{s.demo_pids}|{s.demo_max_ttl_minutes}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def _warm_spec(self, demo_id: str) -> DemoSpec:
        """An ordinary demonstrator spec with an empty model directory, waiting for its model.

        Its time to live is the idle limit plus ``demo_max_ttl_minutes`` (what
        the cold path gives a new demonstrator): claimed before its idle limit,
        it never stops before its demonstrator's latest possible expiry, and
        its ``bibia.expires_at`` label says when it stops by itself.
        """
        root = self.demo_dir(demo_id)
        model_dir = root / "model"
        model_dir.mkdir(parents=True, exist_ok=True)
        model_dir.chmod(0o755)
        (root / "run").mkdir(exist_ok=True)
        return DemoSpec(
            demo_id=demo_id,
            image=self.settings.demo_image,
            model_dir=model_dir,
            socket_dir=root / "run",
            memory_bytes=self.settings.demo_memory_mb * 1024 * 1024,
            cpus=self.settings.demo_cpus,
            pids_limit=self.settings.demo_pids,
            ttl_seconds=POOL_IDLE_SECONDS + self.settings.demo_max_ttl_minutes * 60,
            labels={
                LABEL_INSTANCE: self.services.instance,
                LABEL_POOL: POOL_WARM,
                LABEL_POOL_KEY: self._pool_key(),
                LABEL_POOL_SINCE: str(int(time.time())),
            },
            env={"BIBIA_WAIT_FOR_MODEL": "1", "BIBIA_POOL_IDLE_SECONDS": str(POOL_IDLE_SECONDS)},
        )

    def _pool_members(self) -> list[RunInfo]:
        """This instance's warm containers that no database row claims (any state), oldest first."""
        if not _sandboxes(self.runner):
            return []
        mine = self.services.instance
        warm = [
            info for info in self.runner.list()
            if info.labels.get(LABEL_INSTANCE) == mine and info.labels.get(LABEL_POOL) == POOL_WARM
        ]
        if not warm:
            return []
        with self.services.db.session() as session:
            claimed = set(session.scalars(select(DemoSession.id).where(DemoSession.id.in_([i.demo_id for i in warm]))))
        members = [info for info in warm if info.demo_id not in claimed]
        return sorted(members, key=lambda info: _since(info))

    def _free_members(self) -> list[RunInfo]:
        """Members a launch may claim now (running, started with today's settings); empty without a pool."""
        if not self.pool_enabled:
            return []
        try:
            members = self._pool_members()
        except Exception:  # noqa: BLE001 - no pool this time: the cold path works without it
            log.warning("listing the warm pool failed", exc_info=True)
            return []
        key = self._pool_key()
        return [m for m in members if m.status.state == RunState.RUNNING and m.labels.get(LABEL_POOL_KEY) == key]

    def maintain_pool(self) -> dict[str, list[str]]:
        """Bring the warm pool to ``demo_pool_size``: remove dead, stale or surplus members, start the missing ones.

        Starts at most the missing count per call (members still starting
        count as present). Returns ``{"started": [...], "removed": [...]}``.
        """
        result: dict[str, list[str]] = {"started": [], "removed": []}
        if not _sandboxes(self.runner):
            return result
        with self._pool_lock:
            size = self.settings.demo_pool_size
            key, now = self._pool_key(), time.time()
            keep, drop = [], []
            for member in self._pool_members():
                stale = member.labels.get(LABEL_POOL_KEY) != key or now - _since(member) > POOL_IDLE_SECONDS + 60
                if member.status.state != RunState.RUNNING or stale:
                    drop.append(member)
                else:
                    keep.append(member)
            drop.extend(keep[size:])  # the newest go first: the oldest have finished warming up
            for member in drop:
                if self._retire(member.demo_id):
                    result["removed"].append(member.demo_id)
            for _ in range(max(0, size - len(keep))):
                if self._stop.is_set():
                    break
                demo_id = secrets.token_hex(8)
                try:
                    self.runner.start(self._warm_spec(demo_id))
                except Exception:  # noqa: BLE001 - the next pass retries; launches go cold meanwhile
                    log.warning("starting a warm sandbox failed", exc_info=True)
                    shutil.rmtree(self.demo_dir(demo_id), ignore_errors=True)
                    break
                result["started"].append(demo_id)
        return result

    def _retire(self, demo_id: str) -> bool:
        """Remove a pool member, unless a launch claimed it since it was listed."""
        with self.services.db.session() as session:
            if session.get(DemoSession, demo_id) is not None:
                return False
        self._stop_runner(demo_id)
        shutil.rmtree(self.demo_dir(demo_id), ignore_errors=True)
        return True

    def _refill_later(self) -> None:
        """Refill the pool in the background (after a claimed sandbox is ready: not competing with its load)."""
        if not self.pool_enabled or self._stop.is_set():
            return

        def refill() -> None:
            try:
                self.maintain_pool()
            except Exception:  # noqa: BLE001 - the reaper retries
                log.warning("refilling the warm pool failed", exc_info=True)

        threading.Thread(target=refill, name="bibia-demo-pool", daemon=True).start()

    def _check_trusted(self, info: Any) -> None:
        """Refuse at once what a runner without sandbox would refuse in the background."""
        if getattr(self.runner, "allow_untrusted", True) or info.tags.get(REFERENCE_TAG) == "true":
            return
        raise UntrustedModel(
            f"ce service lance les démonstrateurs sans bac à sable (mode développement) : seuls les modèles de "
            f"référence y sont lancés, pas « {info.name} » version {info.version}. Pour les modèles déposés, "
            "l'administrateur doit activer Docker (BIBIA_RUNNER=docker)"
        )

    # ------------------------------------------------------------- quotas

    def _check_quotas(self, session: Session, caller: Caller) -> None:
        active = DemoSession.state.not_in([s.value for s in TERMINAL])
        total = session.scalar(select(func.count()).select_from(DemoSession).where(active)) or 0
        if total >= self.settings.demo_quota_global:
            raise QuotaExceeded(
                f"trop de démonstrateurs actifs sur la plateforme ({total} sur {self.settings.demo_quota_global}) : "
                "réessayez dans quelques minutes"
            )
        mine = (
            session.scalar(
                select(func.count()).select_from(DemoSession).where(active, DemoSession.organisation_id == caller.organisation_id)
            )
            or 0
        )
        if mine >= self.settings.demo_quota_per_org:
            raise QuotaExceeded(
                f"votre collectivité a déjà {mine} démonstrateur(s) actif(s) (quota : {self.settings.demo_quota_per_org}) : "
                "arrêtez-en un (DELETE /api/v1/demos/{id} ou bibia demo stop) puis réessayez"
            )

    def _ttl(self, minutes: int | None) -> int:
        ttl = self.settings.demo_ttl_minutes if minutes is None else minutes
        if ttl < 1 or ttl > self.settings.demo_max_ttl_minutes:
            raise InvalidInput(f"durée de vie invalide : entre 1 et {self.settings.demo_max_ttl_minutes} minutes")
        return ttl

    # -------------------------------------------------- reaper & reconcile

    def reap(self) -> list[str]:
        """Expire demonstrators past their time to live, fail those whose sandbox died, keep the pool full."""
        now = utcnow()
        expired, died = [], []
        with self.services.db.session() as session:
            rows = session.scalars(select(DemoSession).where(DemoSession.state.not_in([s.value for s in TERMINAL]))).all()
            for row in rows:
                if _aware(row.expires_at) <= now:
                    if transition(row, DemoState.EXPIRED):
                        expired.append(row.id)
                elif row.state == DemoState.READY.value:
                    status = self._runner_status(row.id)
                    if status is not None and status.state != RunState.RUNNING:
                        died.append((row.id, status))
        for demo_id in expired:
            self._teardown(demo_id)
        for demo_id, status in died:
            self._fail(demo_id, self._failure_text(demo_id, status))
            self._teardown(demo_id)
        self.maintain_pool()
        return expired

    def reconcile(self) -> dict[str, list[str]]:
        """Match the database with what the runner runs: adopt, fail what vanished, stop orphans.

        Warm pool members (no row at all) are not orphans; a claimed member
        is an ordinary demonstrator.
        """
        result: dict[str, list[str]] = {"adopted": [], "failed": [], "orphans": []}
        if self.runner is None:
            return result
        mine = self.services.instance
        running = {info.demo_id: info for info in self.runner.list() if info.labels.get(LABEL_INSTANCE) == mine}
        with self.services.db.session() as session:
            rows = {r.id: r for r in session.scalars(select(DemoSession).where(DemoSession.state.not_in([s.value for s in TERMINAL])))}
            stale = utcnow() - dt.timedelta(seconds=self.settings.demo_start_timeout_s)
            for demo_id, row in rows.items():
                info = running.get(demo_id)
                if info is not None and info.status.state == RunState.RUNNING:
                    result["adopted"].append(demo_id)
                    continue
                if info is not None:  # it ended while the service was down: say how, with its last logs
                    error = self._failure_text(demo_id, info.status)
                elif row.state != DemoState.PENDING.value:
                    error = "démonstrateur disparu pendant l'arrêt du service"
                elif _aware(row.created_at) < stale:
                    error = "lancement interrompu par l'arrêt du service : relancez le démonstrateur"
                else:
                    continue  # not started yet: another replica's launch may still be on its way
                transition(row, DemoState.FAILED, error)
                result["failed"].append(demo_id)
            known = set(rows)
        members = {info.demo_id for info in self._pool_members()} if _sandboxes(self.runner) else set()
        for demo_id in running:
            if demo_id not in known and demo_id not in members:  # pool members wait for a launch
                result["orphans"].append(demo_id)
                self._teardown(demo_id)
        for demo_id in result["failed"]:
            self._teardown(demo_id)
        for demo_id in result["adopted"]:
            self._watch(demo_id, self._adopt, demo_id)
        return result

    def _adopt(self, demo_id: str) -> None:
        with self.services.db.session() as session:
            row = session.get(DemoSession, demo_id)
            state = DemoState(row.state) if row else None
        if state == DemoState.PENDING:
            with self.services.db.session() as session:
                transition(session.get(DemoSession, demo_id), DemoState.STARTING)
            state = DemoState.STARTING
        if state == DemoState.STARTING:
            self._wait_ready(demo_id)

    def start_background(self) -> None:
        """Reconcile, then reap periodically until :meth:`shutdown`."""
        if self.runner is None:
            return
        try:
            self.reconcile()
        except Exception:  # noqa: BLE001 - the service still starts; the reaper retries
            log.exception("reconciliation of demonstrators failed")

        def loop() -> None:
            try:
                self.maintain_pool()
            except Exception:  # noqa: BLE001 - the next pass retries
                log.exception("filling the warm pool failed")
            while not self._stop.wait(self.settings.demo_reap_interval_s):
                try:
                    self.reap()
                except Exception:  # noqa: BLE001 - keep reaping
                    log.exception("reaping demonstrators failed")

        self._reaper = threading.Thread(target=loop, name="bibia-demo-reaper", daemon=True)
        self._reaper.start()

    def shutdown(self) -> None:
        """Stop background work. Running demonstrators keep running: the next start adopts them."""
        self._stop.set()
        for thread in list(self._watchers.values()):
            thread.join(timeout=5)
        if self._reaper is not None:
            self._reaper.join(timeout=5)

    def _watch(self, demo_id: str, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=f"bibia-demo-{demo_id}", daemon=True)
        self._watchers[demo_id] = thread
        thread.start()

    # ------------------------------------------------------------ helpers

    def _row_for(self, session: Session, caller: Caller, demo_id: str) -> DemoSession:
        if caller.tier < Tier.RESTRICTED:
            if not caller.is_authenticated:
                from registry.errors import Unauthorized

                raise Unauthorized("authentification requise : les démonstrateurs sont réservés aux membres d'une collectivité")
            raise Forbidden("accès refusé : réservé aux membres d'une collectivité")
        row = session.get(DemoSession, demo_id) if _valid_id(demo_id) else None
        if row is None or (caller.tier < Tier.ADMIN and row.organisation_id != caller.organisation_id):
            raise NotFound(f"démonstrateur introuvable : {demo_id} (bibia demo ls pour la liste)")
        return row

    def _view(self, row: DemoSession) -> DemoView:
        state = DemoState(row.state)
        return DemoView(
            id=row.id,
            state=state.value,
            url=f"/demos/{row.id}/" if not state.is_terminal else None,
            model=row.model_name,
            version=row.model_version,
            organisation_id=row.organisation_id,
            created_at=_aware(row.created_at),
            expires_at=_aware(row.expires_at),
            error=row.error,
        )


def _sandboxes(runner: Any) -> bool:
    """Whether ``runner`` isolates what it runs (a warm sandbox gets its model, untrusted or not, later)."""
    try:
        from runners.docker import DockerRunner
    except ImportError:
        return False
    return isinstance(runner, DockerRunner)


def _since(info: RunInfo) -> int:
    try:
        return int(info.labels.get(LABEL_POOL_SINCE, "0"))
    except ValueError:
        return 0


def _valid_id(demo_id: str) -> bool:
    return len(demo_id) == 16 and all(c in "0123456789abcdef" for c in demo_id)


def _readable_by_sandbox(root: Path) -> None:
    """The sandbox runs as an unprivileged user: it must read (never write) the model."""
    root.chmod(0o755)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def _link_or_copy(src: str, dst: str) -> str:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def health(socket: Path, timeout: float = 1.0) -> bool:
    """Whether the demonstrator behind ``socket`` answers its health check."""
    if not socket.exists():
        return False
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(socket)), timeout=timeout) as client:
            return client.get("http://demo/health").status_code == 200
    except httpx.HTTPError:
        return False

