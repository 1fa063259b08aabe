"""The ``bibia`` command line (French messages; exit codes from the error tree).

Administration commands (``org``, ``token``, ``user``, ``audit``, ``seed``,
``db``) act on the local data directory (``BIBIA_DATA_DIR``) directly, as
the platform's operator. Catalogue commands (``model``, ``project``,
``pull``, ``demo``, ``task``, ``benchmark``, ``evaluate``, ``evaluation``,
``compare``) talk to a running service (``BIBIA_URL``) with a token
(``BIBIA_TOKEN``), like any other user, so the service checks their tier.

This module assembles the command tree from one module per group and runs it
(:func:`main`); what the groups share is in :mod:`bibia.cli.common`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import typer

from bibia.cli import admin, demos, evaluations, models, projects, service
from bibia.cli.common import err
from bibia.errors import exit_code_for
from domain.errors import BibiaError

app = typer.Typer(
    name="bibia",
    help="bibia — Bibliothèque IA territorialisée : catalogue, fiches, jetons, démonstrateurs, "
    "évaluations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Commands are listed in this order in ``bibia --help``, then the groups in theirs.
app.command("serve")(service.serve)
app.command("seed")(service.seed_command)
app.command("audit")(admin.audit_command)
app.command("pull")(models.pull_command)
app.command("evaluate")(evaluations.evaluate_command)
app.command("compare")(evaluations.compare_command)
app.add_typer(admin.org_app, name="org")
app.add_typer(admin.token_app, name="token")
app.add_typer(admin.user_app, name="user")
app.add_typer(models.model_app, name="model")
app.add_typer(projects.project_app, name="project")
app.add_typer(models.card_app, name="card")
app.add_typer(service.db_app, name="db")
app.add_typer(demos.demo_app, name="demo")
app.add_typer(evaluations.task_app, name="task")
app.add_typer(evaluations.benchmark_app, name="benchmark")
app.add_typer(evaluations.evaluation_app, name="evaluation")


def _report(exc: BibiaError) -> None:
    err.print(f"[bold red]erreur[/] : {exc.message}", highlight=False)
    details = exc.details
    if isinstance(details, list):
        for item in details:
            if isinstance(item, dict) and "field" in item:
                err.print(f"  - {item['field']} : {item.get('message', '')}", highlight=False)
            else:
                err.print(f"  - {item}", highlight=False)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning bibia errors into a message and an exit code."""
    run: Callable[..., Any] = typer.main.get_command(app)
    try:
        # Not standalone, click *returns* the code of a ``typer.Exit`` raised by a command.
        code = run(args=argv, prog_name="bibia", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except BibiaError as exc:
        _report(exc)
        sys.exit(exit_code_for(exc))
    except (typer.Abort, KeyboardInterrupt):
        err.print("interrompu")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:
        # usage errors (typer's own click) carry their own exit code
        show = getattr(exc, "show", None)
        if show is None:
            err.print(f"[bold red]erreur[/] : {exc.message}", highlight=False)
        else:
            show()
        sys.exit(exc.exit_code)
