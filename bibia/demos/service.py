"""The demonstrators' façade: what the routes, the web pages, the proxy and the CLI call.

It checks who may do what (:mod:`bibia.policy`), validates, and hands the
work to the lifecycle's modules: rows and quotas (:mod:`.sessions`), the
sandbox factory (:mod:`.sandbox`), the warm pool (:mod:`.pool`), launches
(:mod:`.launch`), the reaper (:mod:`.reaper`) and reconciliation
(:mod:`.reconcile`). A restart loses and orphans nothing: at start-up
:meth:`DemoService.start_background` reconciles, then reaps periodically.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import secrets
import threading
from pathlib import Path

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bibia import policy
from bibia.accounts import audit
from bibia.auth import Caller
from bibia.db.models import DemoSession
from bibia.demos import messages
from bibia.demos.endings import Endings
from bibia.demos.launch import Launch, Launcher, Watchers
from bibia.demos.pool import WarmPool
from bibia.demos.reaper import Reaper
from bibia.demos.reconcile import reconcile
from bibia.demos.replicas import Replicas, Upkeep
from bibia.demos.sandbox import SandboxFactory
from bibia.demos.sessions import PURPOSE_DEMO, PURPOSE_EVALUATION, Sessions
from bibia.demos.states import DemoState, DemoView, aware, transition
from bibia.deps import caller_from_credentials
from bibia.services import Services
from domain.errors import (
    BibiaError,
    Conflict,
    DemoMissing,
    Forbidden,
    InvalidInput,
    SandboxTampered,
)
from registry.entries import VersionInfo
from registry.refs import ModelRef
from runners.base import Runner
from runners.sockets import check_socket

log = logging.getLogger("bibia.demos")

# What the background loop survives: the runner, the registry, the database, the host's disk.
BACKGROUND_ERRORS = (BibiaError, SQLAlchemyError, OSError)


class DemoService:
    """Launches, tracks, proxies and reaps demonstrators."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = settings = services.settings
        self._stopping = threading.Event()
        self._loop: threading.Thread | None = None
        self.sessions = Sessions(services.db, settings)
        self.sandbox = SandboxFactory(
            settings, services.registry, services.runner, services.instance
        )
        self.pool = WarmPool(settings, self.sessions, self.sandbox, self._stopping)
        self.endings = Endings(self.sessions, self.sandbox, settings.demo_memory_mb)
        self.launcher = Launcher(
            settings, self.sessions, self.sandbox, self.pool, self.endings, self._stopping
        )
        self.reaper = Reaper(settings, self.sessions, self.sandbox, self.pool, self.endings)
        self.replicas = Replicas(services.db, settings)
        self.upkeep = Upkeep(services.db, settings.replica_id)
        self.upkeep_passes = 0  # the passes this replica did as the one leading the upkeep
        self.watchers = Watchers(
            on_crash=lambda demo_id, exc: self.endings.fail(demo_id, *messages.launch_failed(exc))
        )

    @property
    def runner(self) -> Runner | None:
        return self.sandbox.runner

    @property
    def socket_owner(self) -> int:
        """The host uid a genuine demonstrator socket belongs to (see :class:`SandboxFactory`)."""
        return self.sandbox.socket_owner

    def demo_dir(self, demo_id: str) -> Path:
        return self.sandbox.demo_dir(demo_id)

    def socket_dir(self, demo_id: str) -> Path:
        return self.sandbox.socket_dir(demo_id)

    # ------------------------------------------------------------ API verbs

    def launch(self, caller: Caller, ref: ModelRef, ttl_minutes: int | None = None) -> DemoView:
        """Create a demonstrator of ``ref`` for the caller's organisation and start it in the background.

        Raises: see :meth:`launch_or_reuse`.
        """
        view, _ = self.launch_or_reuse(caller, ref, ttl_minutes, reuse=False)
        return view

    def launch_or_reuse(
        self, caller: Caller, ref: ModelRef, ttl_minutes: int | None = None, *, reuse: bool = True
    ) -> tuple[DemoView, bool]:
        """The demonstrator of ``ref`` the organisation already runs (``reuse``), else a new one; ``(view, reused)``.

        The check and the insert are one transaction under the
        organisation's lock (:meth:`Sessions.insert`): two launches at once
        start one demonstrator, and the second is handed the first.

        Raises:
            Forbidden: public callers.
            RunnerError: demonstrators are off (no runner).
            InvalidInput: a bad time to live, or a model without a column signature.
            UntrustedModel: the runner does not isolate and the model is not a reference one.
            QuotaExceeded: the organisation's or the platform's quota is reached.
            NotFound: unknown model, version or alias.
            ArtifactStoreUnavailable: the model's files cannot be read (their store is down).
        """
        if not policy.may_launch_demo(caller):
            raise Forbidden(
                "accès refusé : seuls les membres d'une collectivité peuvent lancer un démonstrateur"
            )
        self.sandbox.require_runner()
        ttl = self._ttl(ttl_minutes)
        version = self.services.registry.resolve(ref)
        if not version.signature or not isinstance(version.signature.get("inputs"), list):
            raise InvalidInput(
                f"le modèle {ref} n'a pas de signature par colonnes : le démonstrateur ne saurait pas quelles données lui donner"
            )
        self.sandbox.check_accepted(version)
        self.services.registry.check_artifacts_readable(version)  # a store that is down: 503 now
        view, warm, reused = self._insert(caller, version, ttl, reuse=reuse)
        if reused:
            return view, True
        latest = view.created_at + dt.timedelta(minutes=self.settings.demo_max_ttl_minutes)
        task = Launch(view.id, version, latest, warm=warm)
        self.watchers.start(view.id, functools.partial(self.launcher.run, task))
        return view, False

    def open_sandbox(self, caller: Caller, version: VersionInfo, *, ttl_minutes: int) -> str:
        """Start a sandbox of ``version`` for an evaluation job (warm when one is free); its id.

        The same factory, limits, warm pool, reaper and reconciliation as a
        demonstrator, with ``purpose`` "evaluation": it is neither listed nor
        reachable through the proxy nor counted in the demonstrators' quotas;
        the evaluation's own quota and workers bound it. The caller (the
        evaluation's organisation) was checked by the evaluation service.

        Raises:
            RunnerError: no runner. UntrustedModel: the runner does not isolate.
        """
        self.sandbox.require_runner()
        self.sandbox.check_accepted(version)
        view, warm, _ = self._insert(caller, version, ttl_minutes, purpose=PURPOSE_EVALUATION)
        latest = view.created_at + dt.timedelta(minutes=ttl_minutes)
        task = Launch(view.id, version, latest, warm=warm, refill=False)
        self.watchers.start(view.id, functools.partial(self.launcher.run, task))
        return view.id

    def sandbox_state(self, demo_id: str) -> tuple[DemoState | None, str | None]:
        """An evaluation sandbox's state and, when it failed, the members' message."""
        with self.services.db.session() as session:
            row = session.get(DemoSession, demo_id)
            if row is None:
                return None, None
            return DemoState(row.state), row.error

    def close_sandbox(self, demo_id: str) -> None:
        """Stop an evaluation's sandbox and remove it (idempotent)."""
        with self.services.db.session() as session:
            row = session.get(DemoSession, demo_id)
            ended = row is not None and not DemoState(row.state).is_terminal
            if row is not None and ended:
                transition(row, DemoState.STOPPED)
        self.endings.teardown(demo_id)
        if ended:  # the refill was held back while the evaluation predicted (see Launch.refill)
            self.pool.refill_later()

    def _insert(
        self,
        caller: Caller,
        version: VersionInfo,
        ttl: int,
        *,
        purpose: str = PURPOSE_DEMO,
        reuse: bool = False,
    ) -> tuple[DemoView, bool, bool]:
        """Insert the row, claiming a warm member when one is free; ``(view, warm, reused)``.

        A claimed member's id is tried once: the primary key refuses a row
        for a member another launch (maybe another replica's) claimed first,
        and the next member is tried; none left, the row gets a new id (cold).
        With ``reuse``, a running demonstrator of the version is returned
        instead (``reused``), and no member is claimed.
        """
        runner = self.sandbox.runner_name
        for member in self.pool.claimable():
            try:
                view, reused = self.sessions.insert(
                    caller,
                    version,
                    ttl,
                    member.demo_id,
                    runner=runner,
                    runner_ref=member.runner_id,
                    purpose=purpose,
                    reuse=reuse,
                )
            except IntegrityError:
                continue
            return view, not reused, reused
        cold = secrets.token_hex(8)
        view, reused = self.sessions.insert(
            caller, version, ttl, cold, runner=runner, runner_ref=None, purpose=purpose, reuse=reuse
        )
        return view, False, reused

    def get(self, caller: Caller, demo_id: str) -> DemoView:
        """The demonstrator ``demo_id`` if the caller may see it, with the name of who launched it."""
        with self.services.db.session() as session:
            row = self.sessions.row_for(session, caller, demo_id)
            return DemoView.of(row, launched_by=self.sessions.launcher(session, row))

    def visible(
        self,
        caller: Caller,
        *,
        include_finished: bool = False,
        own_organisation: bool = False,
        model: str | None = None,
    ) -> list[DemoView]:
        """The demonstrators the caller may see (see :meth:`Sessions.visible`)."""
        return self.sessions.visible(
            caller,
            include_finished=include_finished,
            own_organisation=own_organisation,
            model=model,
        )

    def stop(self, caller: Caller, demo_id: str) -> DemoView:
        with self.services.db.session() as session:
            row = self.sessions.row_for(session, caller, demo_id, policy.may_stop_demo)
            if DemoState(row.state).is_terminal:
                return DemoView.of(row)
            transition(row, DemoState.STOPPED)
            audit(session, caller, "demo.stop", demo_id)
            view = DemoView.of(row)
        self.endings.teardown(demo_id)
        return view

    def extend(self, caller: Caller, demo_id: str, minutes: int) -> DemoView:
        """Push the expiry back by ``minutes`` (owner's organisation), within the maximum time to live."""
        if minutes < 1:
            raise InvalidInput("la prolongation doit être d'au moins une minute")
        with self.services.db.session() as session:
            row = self.sessions.row_for(session, caller, demo_id, policy.may_stop_demo)
            if DemoState(row.state).is_terminal:
                raise Conflict(
                    f"le démonstrateur {demo_id} est terminé ({row.state}) : relancez-en un"
                )
            limit = aware(row.created_at) + dt.timedelta(minutes=self.settings.demo_max_ttl_minutes)
            if aware(row.expires_at) >= limit:
                raise Conflict(
                    f"ce démonstrateur a atteint sa durée de vie maximale ({duration(self.settings.demo_max_ttl_minutes)}) "
                    "et ne peut plus être prolongé ; quand il s'arrêtera, relancez-en un"
                )
            row.expires_at = min(aware(row.expires_at) + dt.timedelta(minutes=minutes), limit)
            audit(session, caller, "demo.extend", demo_id, minutes=minutes)
            return DemoView.of(row, launched_by=self.sessions.launcher(session, row))

    def max_expiry(self, view: DemoView) -> dt.datetime:
        """The latest ``view`` may be extended to (its creation plus the maximum time to live)."""
        return view.created_at + dt.timedelta(minutes=self.settings.demo_max_ttl_minutes)

    def logs(self, caller: Caller, demo_id: str, tail: int = 200) -> str:
        """The sandbox's last lines, else what was kept when it failed (experts of its organisation)."""
        with self.services.db.session() as session:
            row = self.sessions.row_for(session, caller, demo_id)
            if not policy.may_read_demo_logs(caller, row.organisation_id):
                raise Forbidden(
                    "accès refusé : les journaux des démonstrateurs sont réservés aux experts"
                )
            error, failure_logs = row.error, row.failure_logs
        runner = self.sandbox.require_runner()
        try:
            text = runner.logs(demo_id, tail=tail)
        except DemoMissing:
            text = ""
        return text or failure_logs or error or ""

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
            state = DemoState(self.sessions.row_for(session, caller, demo_id).state)
        if state != DemoState.READY:
            raise Conflict(f"le démonstrateur {demo_id} n'est pas prêt (état : {state.value})")
        socket_dir = self.sandbox.socket_dir(demo_id)
        try:
            check_socket(socket_dir, self.sandbox.socket_owner)
        except SandboxTampered as exc:
            self.endings.quarantine(demo_id, exc)
            raise
        return socket_dir

    def quarantine(self, demo_id: str, exc: SandboxTampered) -> None:
        """Fail and tear down a demonstrator whose sandbox tampered with its socket; audited."""
        self.endings.quarantine(demo_id, exc)

    # ------------------------------------------------------- upkeep

    @property
    def pool_enabled(self) -> bool:
        """Whether this service keeps a warm pool: a pool size and an isolating runner."""
        return self.pool.enabled

    def maintain_pool(self) -> dict[str, list[str]]:
        """Bring the warm pool to ``demo_pool_size`` (see :meth:`WarmPool.maintain`)."""
        return self.pool.maintain()

    def reap(self) -> list[str]:
        """One reaper pass (see :meth:`Reaper.reap`); returns the ids it expired."""
        return self.reaper.reap()

    def sweep_dirs(self) -> list[str]:
        """Remove the directories nothing owns (see :meth:`Reaper.sweep_dirs`)."""
        return self.reaper.sweep_dirs()

    def reconcile(self) -> dict[str, list[str]]:
        """At start: this replica joins (:meth:`Replicas.join`), then takes over what no live replica drives.

        See :func:`bibia.demos.reconcile.reconcile`; it waits for what it adopted.
        """
        self.replicas.join()
        return self._take_over()

    def _take_over(self) -> dict[str, list[str]]:
        result = reconcile(
            self.settings,
            self.sessions,
            self.sandbox,
            self.pool,
            self.endings,
            self.replicas.live(),
        )
        for demo_id in result["adopted"]:
            self.watchers.start(demo_id, functools.partial(self.launcher.adopt, demo_id))
        return result

    def upkeep_pass(self) -> bool:
        """One interval's work: the heartbeat, then the upkeep if this replica leads it, else its own pool.

        The replica holding the upkeep's lock (:class:`bibia.demos.replicas.Upkeep`)
        takes over the dead replicas' launches and removes their warm sandboxes and
        the orphans (:func:`reconcile`), then reaps (:meth:`reap`); the others only
        keep their own warm pool full. Returns whether this replica led.
        """
        self.replicas.beat()
        if not self.upkeep.lead():
            self.pool.maintain()
            return False
        live = self.replicas.live()
        self._take_over()
        self.pool.remove_dead(live)
        self.reap()
        self.replicas.forget_dead()
        self.upkeep_passes += 1
        return True

    def start_background(self) -> None:
        """Join the replicas and reconcile (when this replica leads the upkeep), then pass periodically until :meth:`shutdown`."""
        if self.sandbox.runner is None:
            return
        try:
            self.replicas.join()
            if self.upkeep.lead():
                self._take_over()
        except BACKGROUND_ERRORS:
            log.exception("reconciliation of demonstrators failed")
        self._loop = threading.Thread(
            target=self._background, name="bibia-demo-reaper", daemon=True
        )
        self._loop.start()

    def _background(self) -> None:
        try:
            self.maintain_pool()
        except BACKGROUND_ERRORS:
            log.exception("filling the warm pool failed")
        while not self._stopping.wait(self.settings.demo_reap_interval_s):
            try:
                self.upkeep_pass()
            except Exception:
                log.exception("reaping demonstrators failed")

    def shutdown(self) -> None:
        """Stop background work. Running demonstrators keep running: the next start adopts them.

        The heartbeat goes and the upkeep's lock is released: another replica takes
        over this one's launches and the upkeep at its next pass.
        """
        self._stopping.set()
        self.watchers.join(timeout=5)
        if self._loop is not None:
            self._loop.join(timeout=5)
        self.upkeep.release()
        if self.sandbox.runner is not None:
            try:
                self.replicas.leave()
            except BACKGROUND_ERRORS:
                log.warning("the replica's heartbeat could not be removed", exc_info=True)

    def _ttl(self, minutes: int | None) -> int:
        ttl = self.settings.demo_ttl_minutes if minutes is None else minutes
        if ttl < 1 or ttl > self.settings.demo_max_ttl_minutes:
            raise InvalidInput(
                f"durée de vie invalide : entre 1 et {self.settings.demo_max_ttl_minutes} minutes"
            )
        return ttl


def duration(minutes: int) -> str:
    """``240`` as « 4 h », ``90`` as « 1 h 30 », ``45`` as « 45 min »."""
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h" if not rest else f"{hours} h {rest:02d}"
