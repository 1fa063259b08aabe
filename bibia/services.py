"""The service's collaborators, built once from settings and handed to the app."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from bibia.db import Database
from bibia.settings import Settings
from domain.errors import RunnerError
from registry.store import Registry
from runners.base import Runner

log = logging.getLogger("bibia")


@dataclass
class Services:
    settings: Settings
    db: Database
    registry: Registry
    runner: Runner | None = None  # None when demonstrators are off

    @classmethod
    def build(
        cls, settings: Settings, *, registry: Registry | None = None, runner: Runner | None = None
    ) -> Services:
        """Create directories, migrate bibia's database and open the registry.

        Cards a catalogue deployed before the card store kept in MLflow tags are moved
        into bibia's database (:func:`open_registry`).
        """
        settings.ensure_dirs()
        db = Database(settings.database_uri, name=f"bibia {settings.replica_id}")
        db.upgrade()
        if registry is None:
            registry = open_registry(settings, db)
        if runner is None:
            runner = build_runner(settings)
        return cls(settings=settings, db=db, registry=registry, runner=runner)

    @property
    def instance(self) -> str:
        """Identifies this deployment (its database) among demonstrators sharing one engine."""
        return instance_id(self.settings)


def open_registry(settings: Settings, db: Database) -> Registry:
    """The registry on the settings' MLflow, its cards in ``db``; legacy card tags moved there."""
    from bibia.cards import DatabaseCards

    # MLflow creates its schema on a new database when its client is made: replicas
    # starting together do that one at a time (as bibia's migrations), then move cards once.
    with db.exclusive("registre"):
        registry = Registry(
            settings.tracking_uri, settings.artifact_root, settings.cache_dir, DatabaseCards(db)
        )
        registry.ping()
        moved = registry.move_legacy_cards()
        date_catalogue_entries(db, registry)
    if moved:
        log.info("fiches déplacées des tags MLflow vers la base de bibia : %s", ", ".join(moved))
    return registry


def date_catalogue_entries(db: Database, registry: Registry) -> None:
    """Date the models' search entries that have no registration date with MLflow's.

    Only entries the migration filled from stored cards lack one (a card written since
    dates its new entry): once, after that migration, one read of those models.
    """
    from bibia import catalogue_index

    with db.session() as session:
        undated = catalogue_index.undated_models(session)
        if undated:
            found = {s.name: s.created for s in registry.summaries_of(undated)}
            catalogue_index.date_models(session, found)


def instance_id(settings: Settings) -> str:
    return hashlib.sha256(settings.database_uri.encode()).hexdigest()[:16]


def build_runner(settings: Settings) -> Runner | None:
    """The runner the settings ask for; ``auto`` prefers Docker when an engine answers.

    Raises:
        RunnerError: ``docker`` was asked for and no engine answers.
    """
    if settings.runner == "none":
        return None
    if settings.runner == "kubernetes":
        from runners.kubernetes import KubernetesRunner

        pods = KubernetesRunner(
            namespace=settings.kubernetes_namespace,
            kubeconfig=settings.kubernetes_kubeconfig,
            in_cluster=settings.kubernetes_in_cluster,
            image=settings.kubernetes_image or settings.demo_image,
            service_labels=settings.kubernetes_service_selector,
            service_namespace=settings.kubernetes_service_namespace,
        )
        pods.list()  # RunnerUnavailable when the cluster does not answer
        return pods
    if settings.runner in ("docker", "auto"):
        from runners.docker import DockerRunner

        runner = DockerRunner()
        try:
            runner.list()
            return runner
        except RunnerError:
            if settings.runner == "docker":
                raise
            log.warning(
                "no Docker engine answers: demonstrators use the process runner (reference models only)"
            )
    from runners.process import ProcessRunner

    return ProcessRunner(
        settings.demos_dir / ".process", allow_untrusted=settings.allow_untrusted_process_runner
    )
