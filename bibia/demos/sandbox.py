"""The sandbox factory shared by launches and the warm pool: directories, spec, model placement.

A demonstrator's host directory is ``<demos_dir>/<id>/`` with ``model/``
(mounted read-only) and ``run/`` (its socket's tmpfs, see
:mod:`runners.sockets`). Cold or warm, every sandbox gets its spec from
:meth:`SandboxFactory.spec`, so the image, the limits and this instance's
label are the same on both paths.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from bibia.demos import messages
from bibia.settings import Settings
from domain.errors import RunnerError, UntrustedModel
from registry.entries import VersionInfo
from registry.store import Registry
from registry.tiers import Tier, visible
from runners import hostfs
from runners.base import SANDBOX_UID, DemoSpec, RunInfo, Runner, Usage

log = logging.getLogger("bibia.demos")

LABEL_MODEL = "bibia.model"
LABEL_INSTANCE = "bibia.instance"
LABEL_REPLICA = "bibia.replica"  # the replica that started the sandbox (Settings.replica_id)
REFERENCE_TAG = (
    "bibia.reference"  # version tag set by `bibia seed` on the reference models it built
)
READY_MARKER = (
    ".bibia-ready"  # written last into a warm sandbox's model directory (demos/server/settings.py)
)
LOGS_TAIL = 60


def is_reference(version: VersionInfo) -> bool:
    """Whether ``bibia seed`` built this version (a trusted reference model)."""
    return version.tags.get(REFERENCE_TAG) == "true"


class SandboxFactory:
    """Builds, fills and removes the sandboxes of one service instance on its runner."""

    def __init__(
        self, settings: Settings, registry: Registry, runner: Runner | None, instance: str
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.runner = runner
        self.instance = instance

    # ------------------------------------------------------------ the runner

    @property
    def socket_owner(self) -> int:
        """The host uid a genuine demonstrator socket belongs to (the sandbox user's)."""
        return self.runner.socket_owner if self.runner is not None else SANDBOX_UID

    @property
    def runner_name(self) -> str:
        return type(self.runner).__name__ if self.runner is not None else "none"

    def require_runner(self) -> Runner:
        """The runner.

        Raises:
            RunnerError: demonstrators are off on this service (no runner).
        """
        if self.runner is None:
            raise RunnerError(messages.NO_RUNNER)
        return self.runner

    def check_accepted(self, version: VersionInfo) -> None:
        """Refuse at once what the runner would refuse in the background (no sandbox, untrusted model).

        Raises:
            UntrustedModel: the runner does not isolate and the version is not a reference model.
        """
        if self.runner is None or self.runner.accepts(trusted=is_reference(version)):
            return
        raise UntrustedModel(
            f"ce service lance les démonstrateurs sans bac à sable (mode développement) : seuls les modèles de "
            f"référence y sont lancés, pas « {version.name} » version {version.version}. Pour les modèles déposés, "
            "l'administrateur doit activer Docker (BIBIA_RUNNER=docker)"
        )

    def mine(self) -> list[RunInfo]:
        """The runner's sandboxes of this service instance (demonstrators and warm pool members)."""
        if self.runner is None:
            return []
        return [
            info for info in self.runner.list() if info.labels.get(LABEL_INSTANCE) == self.instance
        ]

    def logs_tail(self, demo_id: str) -> str:
        """The sandbox's last lines, or nothing once it is gone (logs are a best effort)."""
        if self.runner is None:
            return ""
        try:
            return self.runner.logs(demo_id, tail=LOGS_TAIL)
        except RunnerError:
            return ""

    def usage(self, demo_id: str) -> Usage | None:
        """What the sandbox consumed so far by its runner's accounting; None when nobody can tell.

        No runner, a sandbox gone or ended, or a runner error (logged): None,
        as measuring is a best effort that never holds up a teardown.
        """
        if self.runner is None:
            return None
        try:
            return self.runner.usage(demo_id)
        except RunnerError:
            log.warning("runner usage failed for %s", demo_id, exc_info=True)
            return None

    def stop(self, demo_id: str) -> None:
        """Stop a sandbox; a failure is logged (stopping is idempotent; the reaper retries)."""
        if self.runner is None:
            return
        try:
            self.runner.stop(demo_id)
        except RunnerError:
            log.warning("runner stop failed for %s", demo_id, exc_info=True)

    def teardown(self, demo_id: str) -> None:
        """Stop the sandbox and remove everything of the demonstrator on the host (tmpfs included)."""
        self.stop(demo_id)
        hostfs.remove_tree(self.demo_dir(demo_id))

    # ------------------------------------------------------------ the host

    def demo_dir(self, demo_id: str) -> Path:
        return self.settings.demos_dir / demo_id

    def socket_dir(self, demo_id: str) -> Path:
        """The directory the sandbox's socket is in (a tiny tmpfs the sandbox writes; see runners.sockets)."""
        return self.demo_dir(demo_id) / "run"

    def model_dir(self, demo_id: str) -> Path:
        return self.demo_dir(demo_id) / "model"

    def spec(
        self,
        demo_id: str,
        *,
        ttl_seconds: int,
        labels: dict[str, str],
        env: dict[str, str] | None = None,
        trusted: bool = False,
    ) -> DemoSpec:
        """The sandbox every demonstrator gets, cold or warm: image, limits, directories, this instance's and replica's labels."""
        self.socket_dir(demo_id).mkdir(parents=True, exist_ok=True)
        return DemoSpec(
            demo_id=demo_id,
            image=self.settings.demo_image,
            model_dir=self.model_dir(demo_id),
            socket_dir=self.socket_dir(demo_id),
            memory_bytes=self.settings.demo_memory_mb * 1024 * 1024,
            cpus=self.settings.demo_cpus,
            pids_limit=self.settings.demo_pids,
            ttl_seconds=ttl_seconds,
            labels={
                LABEL_INSTANCE: self.instance,
                LABEL_REPLICA: self.settings.replica_id,
                **labels,
            },
            env=env or {},
            trusted=trusted,
        )

    def cold_spec(self, demo_id: str, version: VersionInfo, *, ttl_seconds: int) -> DemoSpec:
        """A cold demonstrator: its model placed, its sandbox alive ``ttl_seconds``."""
        self.place_model(demo_id, version, warm=False)
        return self.spec(
            demo_id,
            ttl_seconds=ttl_seconds,
            labels={LABEL_MODEL: f"{version.name}/{version.version}"},
            trusted=is_reference(version),
        )

    def place_model(self, demo_id: str, version: VersionInfo, *, warm: bool) -> None:
        """Hard-link the cached model into the demonstrator's model directory, readable by the sandbox.

        The card beside it is filtered to what members may read. Cold, the
        directory is replaced; ``warm``, it is filled in place (the sandbox
        has it bind-mounted: replacing it would hide the model from the
        sandbox) and ``.bibia-ready`` is written last, once all is readable.

        Raises:
            BibiaError: the registry could not give the artifacts or the card.
            OSError: the host refused a copy.
        """
        model_dir = self.model_dir(demo_id)
        source = self.registry.local_copy_of(version)
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
        summary = self.registry.get(version.name)
        card_path.unlink(missing_ok=True)
        card = visible(summary.card, Tier.RESTRICTED) if summary.card is not None else {}
        card_path.write_text(json.dumps(card, ensure_ascii=False, default=str), encoding="utf-8")
        # Which registered model this is: the demonstrator's pages link back to its page.
        origin = {"model": version.name, "version": version.version}
        origin_path = card_path.parent / "demo.json"
        origin_path.unlink(missing_ok=True)  # never write through a hard link into the cache
        origin_path.write_text(json.dumps(origin), encoding="utf-8")
        _readable_by_sandbox(model_dir)
        if warm:
            marker = model_dir / READY_MARKER
            marker.write_bytes(b"")
            marker.chmod(0o644)


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
