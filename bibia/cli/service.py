"""Running the service and preparing its storage: ``serve``, ``seed``, ``db upgrade``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from bibia.cli.common import build_services, err, load_settings, open_database, out

db_app = typer.Typer(help="Base de données de bibia.", no_args_is_help=True)


def serve(
    host: Annotated[str | None, typer.Option(help="Adresse d'écoute (BIBIA_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (BIBIA_PORT)")] = None,
    seed: Annotated[
        bool | None,
        typer.Option("--seed/--no-seed", help="Peupler le catalogue au premier démarrage"),
    ] = None,
) -> None:
    """Lancer le service (initialise le stockage, puis sert l'API)."""
    from bibia import server
    from bibia.app import create_app

    settings = load_settings()
    updates: dict[str, Any] = {}
    if host:
        updates["host"] = host
    if port:
        updates["port"] = port
    if seed is not None:
        updates["seed_on_start"] = seed
    settings = settings.model_copy(update=updates)
    application = create_app(settings)
    if settings.seed_on_start:
        from bibia.seed import evaluate_references
        from bibia.seed import seed as seed_catalogue

        services = application.state.services
        # Replicas starting together seed one after the other: the first registers the
        # reference models, the others find them registered (the seed is idempotent).
        with services.db.exclusive("seed"):
            seed_catalogue(services, log=err.print)
            evaluate_references(application.state.evaluations, log=err.print)
    err.print(f"bibia écoute sur http://{settings.host}:{settings.port} (documentation : /docs)")
    server.run(application, settings)


def seed_command() -> None:
    """Peupler le catalogue : projets des Interconnectés et modèles de référence (idempotent)."""
    from bibia.seed import seed

    services = build_services()
    with services.db.exclusive("seed"):
        report = seed(services, log=err.print)
    out.print(report.summary())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Appliquer les migrations de la base de bibia (et ranger dans celle-ci les fiches
    qu'un catalogue antérieur gardait dans les tags MLflow)."""
    from bibia.services import open_registry

    open_registry(load_settings(), open_database())
    out.print("base de données à jour")
