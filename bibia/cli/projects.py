"""Projects through the running service: ``project`` (ls, put, accept, decline)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from bibia.cli.common import JsonOpt, TokenOpt, UrlOpt, connect, existing_file, out, print_json

project_app = typer.Typer(help="Projets du catalogue (via le service).", no_args_is_help=True)

SlugArg = Annotated[
    str, typer.Argument(help="Identifiant du projet, ex. prevision-frequentation-cantines")
]


def _owners(project: dict[str, Any]) -> str:
    return ", ".join(o["name"] for o in project["owners"])


@project_app.command("ls")
def project_ls(
    q: Annotated[str | None, typer.Option("--q")] = None,
    theme: Annotated[str | None, typer.Option()] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Parcourir les projets du catalogue."""
    with connect(url, token) as client:
        result = client.projects(q=q, theme=theme, per_page=100)
    if as_json:
        print_json(result)
        return
    table = Table(
        "projet", "titre", "collectivités", "thème", "modèles", title=f"{result['total']} projet(s)"
    )
    for p in result["items"]:
        table.add_row(
            p["slug"],
            p["title"],
            _owners(p),
            p["theme"],
            ", ".join(p.get("models", [])),
        )
    out.print(table)


@project_app.command("put")
def project_put(
    file: Annotated[Path, typer.Argument(help="Projet (YAML ou JSON)")],
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Créer ou remplacer un projet."""
    from bibia.uploads import load_structured

    text = existing_file(file).read_text(encoding="utf-8")
    with connect(url, token) as client:
        project = client.put_project(load_structured(text, "projet"))
    out.print(f"projet {project['slug']} enregistré")


@project_app.command("accept")
def project_accept(slug: SlugArg, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Accepter l'invitation de votre collectivité à porter un projet (experts de la collectivité invitée)."""
    with connect(url, token) as client:
        project = client.answer_invitation(slug, accept=True)
    out.print(f"invitation acceptée : {project['slug']} est porté par {_owners(project)}")


@project_app.command("decline")
def project_decline(slug: SlugArg, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Décliner l'invitation de votre collectivité à porter un projet."""
    with connect(url, token) as client:
        project = client.answer_invitation(slug, accept=False)
    out.print(f"invitation déclinée : {project['slug']} reste porté par {_owners(project)}")
