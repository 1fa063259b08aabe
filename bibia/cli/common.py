"""What the command groups share: the consoles, the common options, and the way to the
settings, the database, the services and the running service.

The helpers import what they build when they are called, so that ``bibia --help`` does not
load the service.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from domain.errors import InvalidInput

if TYPE_CHECKING:
    from bibia.client import BibiaClient
    from bibia.db import Database
    from bibia.services import Services
    from bibia.settings import Settings

out = Console()
err = Console(stderr=True)

UrlOpt = Annotated[str | None, typer.Option("--url", envvar="BIBIA_URL", help="Adresse du service")]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="BIBIA_TOKEN", help="Jeton d'accès", show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Sortie JSON")]


def load_settings() -> Settings:
    """The settings, from the environment (``BIBIA_*``)."""
    from bibia.settings import Settings

    return Settings()


def build_services() -> Services:
    """The service's parts (database, registry, runner), built from the settings."""
    from bibia.services import Services

    return Services.build(load_settings())


def open_database() -> Database:
    """The local database, its directories created and its migrations applied."""
    from bibia.db import Database

    settings = load_settings()
    settings.ensure_dirs()
    db = Database(settings.database_uri)
    db.upgrade()
    return db


def connect(url: str | None, token: str | None) -> BibiaClient:
    """A client of the running service at ``url`` (``BIBIA_URL``) with ``token``."""
    from bibia.client import BibiaClient

    return BibiaClient(url, token)


def existing_file(path: Path) -> Path:
    """``path`` itself, or :class:`InvalidInput` if it is not a file."""
    if not path.is_file():
        raise InvalidInput(f"fichier introuvable : {path}")
    return path


def print_json(data: Any) -> None:
    """Print ``data`` as JSON on standard output (non-ASCII kept, dates as strings)."""
    out.print_json(json.dumps(data, ensure_ascii=False, default=str))
