"""Demonstrators: one model version run in a sandbox, with its lifecycle held in the database.

States: pending → starting → ready → stopped | failed | expired. Transitions
are checked in :func:`transition`, nowhere else. The service asks a runner
(``runners.base.Runner``) to start the demonstrator image with the version's
artifacts mounted read-only, waits for its health check over the Unix
socket, and proxies users to it. A reaper expires what outlived its time to
live; at start-up :meth:`DemoManager.reconcile` adopts what still runs and
marks what vanished as failed, so a restart loses and orphans nothing.

Warm pool (:mod:`bibia.pool`, Docker runner, ``demo_pool_size``): the reaper
keeps that many sandboxes started ahead, waiting for a model. A launch CLAIMS
a member by inserting the demonstrator row with the member's id, places the
model into its directory (``.bibia-ready`` last) and waits for health as
usual. No member free: the cold path. A member that vanishes before its
model arrives (idle limit, trimmed by a reaper) makes the launch fall back
to the cold path under the same id. Both paths place the model with
:meth:`DemoManager._place_model` and build the sandbox with
:meth:`DemoManager._sandbox_spec`.
"""

from __future__ import annotations

import datetime as dt
import enum
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

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bibia.accounts import audit
from bibia.auth import SYSTEM, Caller
from bibia.db.models import DemoSession, utcnow
from bibia.deps import caller_from_credentials
from bibia.pool import READY_MARKER, WARM_GONE_EXIT_CODES, WarmPool, stop_quietly
from bibia.services import Services
from domain.errors import (
    Conflict,
    DemoMissing,
    Forbidden,
    InvalidInput,
    NotFound,
    QuotaExceeded,
    RunnerError,
    SandboxTampered,
    UntrustedModel,
)
from registry.refs import ModelRef
from registry.tiers import Tier, visible
from runners import hostfs
from runners.base import SANDBOX_UID, DemoSpec, RunInfo, RunState
from runners.health import probe
from runners.sockets import check_socket

log = logging.getLogger("bibia.demos")

LABEL_MODEL = "bibia.model"
# What members read when a demonstrator failed: fixed French text, never what the sandbox printed
# (a model's output is hostile and may hold secrets); experts read the logs (``failure_logs``).
TAMPERED = (
    "démonstrateur arrêté : son bac à sable a tenté de rediriger les connexions du service (socket remplacé) ; "
    "signalez-le aux experts de la collectivité propriétaire du modèle"
)
LAUNCH_FAILED = "échec du lancement du bac à sable ; les experts en lisent le détail dans le journal du démonstrateur"
LABEL_INSTANCE = "bibia.instance"
REFERENCE_TAG = (
    "bibia.reference"  # version tag set by `bibia seed` on the reference models it built
)


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
        self.pool = WarmPool(
            services,
            sandbox_spec=self._sandbox_spec,
            mine=self._mine,
            demo_dir=self.demo_dir,
            stopping=self._stop,
        )

    # ------------------------------------------------------------ paths

    def demo_dir(self, demo_id: str) -> Path:
        return self.settings.demos_dir / demo_id

    def socket_dir(self, demo_id: str) -> Path:
        """The directory the sandbox's socket is in (a tiny tmpfs the sandbox writes; see runners.sockets)."""
        return self.demo_dir(demo_id) / "run"

    @property
    def socket_owner(self) -> int:
        """The host uid a genuine demonstrator socket belongs to (the sandbox user's)."""
        return self.runner.socket_owner if self.runner is not None else SANDBOX_UID

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
            raise Forbidden(
                "accès refusé : seuls les membres d'une collectivité peuvent lancer un démonstrateur"
            )
        self._require_runner()
        ttl = self._ttl(ttl_minutes)
        info = self.services.registry.resolve(ref)
        if not info.signature or not isinstance(info.signature.get("inputs"), list):
            raise InvalidInput(
                f"le modèle {ref} n'a pas de signature par colonnes : le démonstrateur ne saurait pas quelles données lui donner"
            )
        self._check_trusted(info)
        view = self.pool.claim(
            lambda demo_id, runner_id: self._insert(caller, info, ttl, demo_id, runner_id)
        )
        if view is not None:
            self._watch(view.id, self._start_and_wait, view.id, True)
            return view
        view = self._insert(caller, info, ttl, secrets.token_hex(8), None)
        self._watch(view.id, self._start_and_wait, view.id)
        return view

    def _insert(
        self, caller: Caller, info: Any, ttl: int, demo_id: str, runner_ref: str | None
    ) -> DemoView:
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
            audit(
                session,
                caller,
                "demo.launch",
                f"{info.name}/{info.version}",
                demo=demo_id,
                ttl_minutes=ttl,
                warm=runner_ref is not None,
            )
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
                raise Conflict(
                    f"le démonstrateur {demo_id} est terminé ({row.state}) : relancez-en un"
                )
            limit = _aware(row.created_at) + dt.timedelta(
                minutes=self.settings.demo_max_ttl_minutes
            )
            new_expiry = min(_aware(row.expires_at) + dt.timedelta(minutes=minutes), limit)
            row.expires_at = new_expiry
            audit(session, caller, "demo.extend", demo_id, minutes=minutes)
            return self._view(row)

    def logs(self, caller: Caller, demo_id: str, tail: int = 200) -> str:
        if caller.tier < Tier.EXPERT:
            raise Forbidden(
                "accès refusé : les journaux des démonstrateurs sont réservés aux experts"
            )
        with self.services.db.session() as session:
            row = self._row_for(session, caller, demo_id)
            error, failure_logs = row.error, row.failure_logs
        self._require_runner()
        try:
            text = self.runner.logs(demo_id, tail=tail)
        except DemoMissing:
            text = ""
        if not text:
            return failure_logs or error or ""
        return text

    def proxy_target(self, bearer: str | None, cookie: str | None, demo_id: str) -> Path:
        """Who calls (bearer token, else web session) and whether they may reach ``demo_id`` now; its socket directory.

        The proxy calls this on every request (one database session), and it
        re-checks the socket entry each time, so a socket the sandbox swapped
        is caught even when the proxy would reuse a pooled connection.

        Raises:
            SandboxTampered: the socket was replaced; the demonstrator is now failed.
        """
        with self.services.db.session() as session:
            caller = caller_from_credentials(session, bearer, cookie)
            state = DemoState(self._row_for(session, caller, demo_id).state)
        if state != DemoState.READY:
            raise Conflict(f"le démonstrateur {demo_id} n'est pas prêt (état : {state.value})")
        socket_dir = self.socket_dir(demo_id)
        try:
            check_socket(socket_dir, self.socket_owner)
        except SandboxTampered as exc:
            self.quarantine(demo_id, exc)
            raise
        return socket_dir

    def quarantine(self, demo_id: str, exc: SandboxTampered) -> None:
        """Fail and tear down a demonstrator whose sandbox tampered with its socket; audited."""
        log.warning("demonstrator %s tampered with its socket: %s", demo_id, exc.message)
        with self.services.db.session() as session:
            row = session.get(DemoSession, demo_id)
            if row is not None and transition(row, DemoState.FAILED, TAMPERED):
                row.failure_logs = exc.message
                audit(session, SYSTEM, "demo.tampered", demo_id, reason=exc.message)
        self._teardown(demo_id)

    # -------------------------------------------------------- lifecycle work

    def _start_and_wait(self, demo_id: str, warm: bool = False) -> None:
        with self.services.db.session() as session:
            row = session.get(DemoSession, demo_id)
            if row is None or not transition(row, DemoState.STARTING):
                return
            name, version = row.model_name, row.model_version
            # The sandbox stops by itself at the latest expiry an extension can reach;
            # the reaper enforces the actual one.
            deadline = _aware(row.created_at) + dt.timedelta(
                minutes=self.settings.demo_max_ttl_minutes
            )
        if warm:
            try:
                self._place_model(demo_id, name, version, warm=True)
            except Exception as exc:  # noqa: BLE001 - as on the cold path: the demonstrator's state, shown to the user
                self._fail(demo_id, *_launch_failure(exc))
                self._teardown(demo_id)
                return
            settled = self._wait_ready(demo_id, warm=True)
            self.pool.refill_later()
            if settled:
                return
            log.info("warm sandbox %s ended before its model arrived: starting it cold", demo_id)
            stop_quietly(self.runner, demo_id)
        try:
            spec = self._spec(demo_id, name, version, deadline)
            handle = self.runner.start(spec)
            with self.services.db.session() as session:
                row = session.get(DemoSession, demo_id)
                row.runner_ref = getattr(handle, "runner_id", None) or str(handle)[:128]
                ended = DemoState(row.state).is_terminal
        except Exception as exc:  # noqa: BLE001 - any failure to start is the demonstrator's state, shown to the user
            self._fail(demo_id, *_launch_failure(exc))
            self._teardown(demo_id)
            return
        if (
            ended
        ):  # stopped or expired while the runner was starting it: its teardown found nothing yet
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
        socket_dir = self.socket_dir(demo_id)
        while time.monotonic() < deadline and not self._stop.is_set():
            with self.services.db.session() as session:
                row = session.get(DemoSession, demo_id)
                if row is None or DemoState(row.state).is_terminal:
                    return True
            status = self._runner_status(demo_id)
            if status is not None and status.state != RunState.RUNNING:
                if warm and (
                    status.state == RunState.MISSING or status.exit_code in WARM_GONE_EXIT_CODES
                ):
                    return False
                self._fail(demo_id, *self._failure_text(demo_id, status))
                self._teardown(demo_id)
                return True
            try:
                healthy = probe(socket_dir, self.socket_owner, timeout=1.0)
            except SandboxTampered as exc:
                self.quarantine(demo_id, exc)
                return True
            if healthy:
                with self.services.db.session() as session:
                    row = session.get(DemoSession, demo_id)
                    if row is not None:
                        transition(row, DemoState.READY)
                return True
            # A warm sandbox answers within a second of its model: poll closely at first.
            time.sleep(0.05 if time.monotonic() - started < 3 else 0.2)
        if not self._stop.is_set():
            self._fail(
                demo_id,
                f"le démonstrateur n'a pas répondu en {self.settings.demo_start_timeout_s:.0f} s",
                self._logs_tail(demo_id),
            )
            self._teardown(demo_id)
        return True

    def _logs_tail(self, demo_id: str) -> str:
        try:
            return self.runner.logs(demo_id, tail=60)
        except Exception:  # noqa: BLE001 - logs are a best effort once the sandbox is gone
            return ""

    def _failure_text(self, demo_id: str, status: Any) -> tuple[str, str]:
        """``(message, logs)``: a fixed French message for members, the sandbox's last lines for experts."""
        logs = self._logs_tail(demo_id)
        code = getattr(status, "exit_code", None)
        head = "le démonstrateur s'est arrêté" + (
            f" (code {code})" if isinstance(code, int) else ""
        )
        if getattr(status, "oom_killed", False):
            head += f" : il a dépassé sa limite de mémoire ({self.settings.demo_memory_mb} Mio) et le bac à sable l'a interrompu"
        elif code == 3:
            head += " : le modèle n'a pas pu être chargé"
        head += " ; les experts en lisent le détail dans le journal du démonstrateur"
        return head, logs

    def _runner_status(self, demo_id: str) -> Any:
        try:
            return self.runner.status(demo_id)
        except Exception:
            log.warning("runner status failed for %s", demo_id, exc_info=True)
            return None

    def _fail(self, demo_id: str, error: str, logs: str | None = None) -> None:
        """Fail the demonstrator: ``error`` is what members read (fixed text), ``logs`` is for experts."""
        with self.services.db.session() as session:
            row = session.get(DemoSession, demo_id)
            if row is not None and transition(row, DemoState.FAILED, error) and logs:
                row.failure_logs = logs[-20_000:]

    def _teardown(self, demo_id: str) -> None:
        """Stop the sandbox and remove everything of the demonstrator on the host (tmpfs included)."""
        stop_quietly(self.runner, demo_id)
        hostfs.remove_tree(self.demo_dir(demo_id))

    def _place_model(self, demo_id: str, name: str, version: int, *, warm: bool) -> None:
        """Hard-link the cached model into the demonstrator's model directory, readable by the sandbox.

        The card beside it is filtered to what members may read. Cold, the
        directory is replaced; ``warm``, it is filled in place (the sandbox
        has it bind-mounted: replacing it would hide the model from the
        sandbox) and ``.bibia-ready`` is written last, once all is readable.
        """
        registry = self.services.registry
        model_dir = self.demo_dir(demo_id) / "model"
        source = registry.local_copy(name, version)
        if not warm:
            shutil.rmtree(model_dir, ignore_errors=True)
            shutil.copytree(source, model_dir, copy_function=_link_or_copy)
        else:  # entry by entry: copytree would give the mounted directory the cache's mode for a while
            for entry in Path(source).iterdir():
                if entry.is_dir():
                    shutil.copytree(
                        entry,
                        model_dir / entry.name,
                        copy_function=_link_or_copy,
                        dirs_exist_ok=True,
                    )
                else:
                    _link_or_copy(str(entry), str(model_dir / entry.name))
        card_path = model_dir / "bibia" / "card.json"
        card_path.parent.mkdir(exist_ok=True)
        summary = registry.get(name)
        card_path.unlink(missing_ok=True)
        card = visible(summary.card, Tier.RESTRICTED) if summary.card is not None else {}
        card_path.write_text(json.dumps(card, ensure_ascii=False, default=str), encoding="utf-8")
        _readable_by_sandbox(model_dir)
        if warm:
            marker = model_dir / READY_MARKER
            marker.write_bytes(b"")
            marker.chmod(0o644)

    def _spec(self, demo_id: str, name: str, version: int, deadline: dt.datetime) -> DemoSpec:
        """A cold demonstrator: its model placed, its sandbox alive until ``deadline`` (at least a minute)."""
        self._place_model(demo_id, name, version, warm=False)
        reference = self.services.registry.version(name, version).tags.get(REFERENCE_TAG) == "true"
        return self._sandbox_spec(
            demo_id,
            ttl_seconds=max(60, int((deadline - utcnow()).total_seconds())),
            labels={LABEL_MODEL: f"{name}/{version}"},
            trusted=reference,
        )

    def _sandbox_spec(
        self,
        demo_id: str,
        *,
        ttl_seconds: int,
        labels: dict[str, str],
        env: dict[str, str] | None = None,
        trusted: bool = False,
    ) -> DemoSpec:
        """The sandbox every demonstrator gets, cold or warm: image, limits, directories, this instance's label."""
        root = self.demo_dir(demo_id)
        (root / "run").mkdir(parents=True, exist_ok=True)
        return DemoSpec(
            demo_id=demo_id,
            image=self.settings.demo_image,
            model_dir=root / "model",
            socket_dir=root / "run",
            memory_bytes=self.settings.demo_memory_mb * 1024 * 1024,
            cpus=self.settings.demo_cpus,
            pids_limit=self.settings.demo_pids,
            ttl_seconds=ttl_seconds,
            labels={LABEL_INSTANCE: self.services.instance, **labels},
            env=env or {},
            trusted=trusted,
        )

    def _mine(self) -> list[RunInfo]:
        """The runner's sandboxes of this service instance (demonstrators and warm pool members)."""
        return [
            info
            for info in self.runner.list()
            if info.labels.get(LABEL_INSTANCE) == self.services.instance
        ]

    # ------------------------------------------------------------- warm pool

    @property
    def pool_enabled(self) -> bool:
        """Whether this manager keeps a warm pool: a pool size and a sandboxing runner (Docker)."""
        return self.pool.enabled

    def maintain_pool(self) -> dict[str, list[str]]:
        """Bring the warm pool to ``demo_pool_size`` (see :meth:`bibia.pool.WarmPool.maintain`)."""
        return self.pool.maintain()

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
                select(func.count())
                .select_from(DemoSession)
                .where(active, DemoSession.organisation_id == caller.organisation_id)
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
            raise InvalidInput(
                f"durée de vie invalide : entre 1 et {self.settings.demo_max_ttl_minutes} minutes"
            )
        return ttl

    # -------------------------------------------------- reaper & reconcile

    def reap(self) -> list[str]:
        """Expire demonstrators past their time to live, fail those whose sandbox died, keep the pool full."""
        now = utcnow()
        # A launch waits at most demo_start_timeout_s; twice that with no outcome means the
        # process that drove it is gone (a crashed replica): nobody else will finish it.
        abandoned = now - dt.timedelta(seconds=2 * self.settings.demo_start_timeout_s)
        expired, died, stuck, ready = [], [], [], []
        with self.services.db.session() as session:
            rows = session.scalars(
                select(DemoSession).where(DemoSession.state.not_in([s.value for s in TERMINAL]))
            ).all()
            for row in rows:
                if _aware(row.expires_at) <= now:
                    if transition(row, DemoState.EXPIRED):
                        expired.append(row.id)
                elif (
                    row.state in (DemoState.PENDING.value, DemoState.STARTING.value)
                    and _aware(row.created_at) <= abandoned
                ):
                    if transition(
                        row,
                        DemoState.FAILED,
                        "lancement abandonné : le service qui le menait s'est arrêté ; relancez le démonstrateur",
                    ):
                        stuck.append(row.id)
                elif row.state == DemoState.READY.value:
                    status = self._runner_status(row.id)
                    if status is not None and status.state != RunState.RUNNING:
                        died.append((row.id, status))
                    else:
                        ready.append(row.id)
        for demo_id in expired + stuck:
            self._teardown(demo_id)
        for demo_id, status in died:
            self._fail(demo_id, *self._failure_text(demo_id, status))
            self._teardown(demo_id)
        for demo_id in ready:  # a socket swapped while nobody used the demonstrator
            try:
                check_socket(self.socket_dir(demo_id), self.socket_owner)
            except SandboxTampered as exc:
                self.quarantine(demo_id, exc)
        self.maintain_pool()
        self.sweep_dirs()
        return expired

    def sweep_dirs(self) -> list[str]:
        """Remove the directories (and socket tmpfs) that nothing owns any more; returns their ids.

        A sandbox removed behind the service's back (``docker rm``, an engine
        restart), a warm one above all since no row names it, leaves its
        directory and its mounted tmpfs. A directory is swept when no
        container of any instance and no active row has its id, and it is older
        than twice the start timeout (a launch or a pool start under way,
        maybe another replica's, creates its directory just before its container).
        """
        if self.runner is None or not self.settings.demos_dir.is_dir():
            return []
        cutoff = time.time() - 2 * self.settings.demo_start_timeout_s
        old = [
            p
            for p in self.settings.demos_dir.iterdir()
            if _valid_id(p.name) and not p.is_symlink() and p.lstat().st_mtime <= cutoff
        ]
        if old:
            with self.services.db.session() as session:
                active = set(
                    session.scalars(
                        select(DemoSession.id).where(
                            DemoSession.state.not_in([s.value for s in TERMINAL])
                        )
                    )
                )
            old = [p for p in old if p.name not in active]
        if not old:  # the usual pass: nothing to ask the runner
            return []
        running = {info.demo_id for info in self.runner.list()}
        swept = []
        for path in old:
            if path.name not in running:
                hostfs.remove_tree(path)
                swept.append(path.name)
        if swept:
            log.info(
                "swept %d demonstrator directories nothing owned: %s", len(swept), ", ".join(swept)
            )
        return swept

    def reconcile(self) -> dict[str, list[str]]:
        """Match the database with what the runner runs: adopt, fail what vanished, stop orphans.

        Warm pool members (no row at all) are not orphans; a claimed member
        is an ordinary demonstrator.
        """
        result: dict[str, list[str]] = {"adopted": [], "failed": [], "orphans": []}
        if self.runner is None:
            return result
        running = {info.demo_id: info for info in self._mine()}
        with self.services.db.session() as session:
            rows = {
                r.id: r
                for r in session.scalars(
                    select(DemoSession).where(DemoSession.state.not_in([s.value for s in TERMINAL]))
                )
            }
            stale = utcnow() - dt.timedelta(seconds=self.settings.demo_start_timeout_s)
            for demo_id, row in rows.items():
                info = running.get(demo_id)
                if info is not None and info.status.state == RunState.RUNNING:
                    result["adopted"].append(demo_id)
                    continue
                logs = None
                if (
                    info is not None
                ):  # it ended while the service was down: say how, with its last logs
                    error, logs = self._failure_text(demo_id, info.status)
                elif row.state != DemoState.PENDING.value:
                    error = "démonstrateur disparu pendant l'arrêt du service"
                elif _aware(row.created_at) < stale:
                    error = (
                        "lancement interrompu par l'arrêt du service : relancez le démonstrateur"
                    )
                else:
                    continue  # not started yet: another replica's launch may still be on its way
                transition(row, DemoState.FAILED, error)
                row.failure_logs = logs[-20_000:] if logs else None
                result["failed"].append(demo_id)
            known = set(rows)
        members = {info.demo_id for info in self.pool.members()}
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
        except Exception:
            log.exception("reconciliation of demonstrators failed")

        def loop() -> None:
            try:
                self.maintain_pool()
            except Exception:
                log.exception("filling the warm pool failed")
            while not self._stop.wait(self.settings.demo_reap_interval_s):
                try:
                    self.reap()
                except Exception:
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
        thread = threading.Thread(
            target=target, args=args, name=f"bibia-demo-{demo_id}", daemon=True
        )
        self._watchers[demo_id] = thread
        thread.start()

    # ------------------------------------------------------------ helpers

    def _row_for(self, session: Session, caller: Caller, demo_id: str) -> DemoSession:
        if caller.tier < Tier.RESTRICTED:
            if not caller.is_authenticated:
                from domain.errors import Unauthorized

                raise Unauthorized(
                    "authentification requise : les démonstrateurs sont réservés aux membres d'une collectivité"
                )
            raise Forbidden("accès refusé : réservé aux membres d'une collectivité")
        row = session.get(DemoSession, demo_id) if _valid_id(demo_id) else None
        if row is None or (
            caller.tier < Tier.ADMIN and row.organisation_id != caller.organisation_id
        ):
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


def _launch_failure(exc: Exception) -> tuple[str, str]:
    """``(message, logs)`` for a launch that raised: our own French message when it is one of ours."""
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (UntrustedModel, NotFound)):
        return f"échec du lancement : {exc.message}", detail
    return LAUNCH_FAILED, detail
