"""The service's collaborators, built once from settings and handed to the app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bibia.db import Database
from bibia.settings import Settings
from registry.store import Registry


@dataclass
class Services:
    settings: Settings
    db: Database
    registry: Registry
    runner: Any = None  # runners.base.Runner, wired by the demonstrator routes

    @classmethod
    def build(cls, settings: Settings, *, registry: Registry | None = None, runner: Any = None) -> Services:
        """Create directories, migrate bibia's database and open the registry."""
        settings.ensure_dirs()
        db = Database(settings.database_uri)
        db.upgrade()
        if registry is None:
            registry = Registry(settings.tracking_uri, settings.artifact_root, settings.cache_dir)
        return cls(settings=settings, db=db, registry=registry, runner=runner)
