"""Models: ``model`` (register, ls, show, alias) and ``pull`` through the running service,
and ``card`` (validate, export) on a local file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from bibia.cli.common import (
    JsonOpt,
    TokenOpt,
    UrlOpt,
    connect,
    existing_file,
    load_settings,
    out,
    print_json,
)
from domain.errors import InvalidInput

if TYPE_CHECKING:
    from registry.card import Card

model_app = typer.Typer(
    help="Modèles du catalogue (via le service : BIBIA_URL, BIBIA_TOKEN).", no_args_is_help=True
)
card_app = typer.Typer(help="Fiches de modèles.", no_args_is_help=True)


@model_app.command("register")
def model_register(
    name: Annotated[str, typer.Argument(help="Nom du modèle, ex. cantine-nantes")],
    card: Annotated[Path, typer.Option("--card", help="Fiche du modèle (YAML ou JSON)")],
    model_dir: Annotated[
        Path | None, typer.Option("--model-dir", help="Dossier d'un modèle MLflow")
    ] = None,
    model_uri: Annotated[
        str | None, typer.Option("--model-uri", help="URI MLflow : runs:/…, models:/…")
    ] = None,
    alias: Annotated[
        str | None, typer.Option("--alias", help="Alias à faire pointer sur la nouvelle version")
    ] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Enregistrer un modèle (ou une nouvelle version) avec sa fiche, en un appel."""
    if (model_dir is None) == (model_uri is None):
        raise InvalidInput(
            "indiquez soit --model-dir DOSSIER, soit --model-uri URI (l'un des deux)"
        )
    with connect(url, token) as client:
        version = client.register(
            name, str(model_dir) if model_dir else model_uri, card, alias=alias
        )
    if as_json:
        print_json(version)
        return
    aliases = f" (alias : {', '.join(version['aliases'])})" if version.get("aliases") else ""
    out.print(f"{name} version {version['version']} enregistrée{aliases}")


@model_app.command("ls")
def model_ls(
    q: Annotated[str | None, typer.Option("--q", help="Texte libre")] = None,
    theme: Annotated[str | None, typer.Option()] = None,
    owner: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option()] = None,
    task: Annotated[str | None, typer.Option()] = None,
    page: Annotated[int, typer.Option(min=1)] = 1,
    per_page: Annotated[int, typer.Option(min=1, max=100)] = 20,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Parcourir le catalogue des modèles."""
    with connect(url, token) as client:
        result = client.models(
            q=q, theme=theme, owner=owner, status=status, task=task, page=page, per_page=per_page
        )
    if as_json:
        print_json(result)
        return
    table = Table(
        "modèle",
        "titre",
        "collectivité",
        "thème",
        "statut",
        "alias",
        title=f"{result['total']} modèle(s)",
    )
    for item in result["items"]:
        ident = (item.get("card") or {}).get("identification", {})
        aliases = ", ".join(f"{a}→v{v}" for a, v in item["aliases"].items())
        table.add_row(
            item["name"],
            ident.get("title", ""),
            ident.get("owner", {}).get("name", ""),
            ident.get("theme", ""),
            ident.get("status", ""),
            aliases,
        )
    out.print(table)


@model_app.command("show")
def model_show(name: str, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Afficher un modèle : fiche, versions, métriques (selon votre niveau d'accès)."""
    with connect(url, token) as client:
        print_json(client.model(name))


@model_app.command("alias")
def model_alias(
    name: str,
    alias: str,
    version: Annotated[int, typer.Argument(min=1)],
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Faire pointer un alias sur une version, ex. : bibia model alias cantine-nantes production 3."""
    with connect(url, token) as client:
        client.set_alias(name, alias, version)
    out.print(f"{name}@{alias} → version {version}")


def pull_command(
    ref: Annotated[str, typer.Argument(help="NOM, NOM@ALIAS ou NOM/VERSION")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Dossier de destination")],
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Télécharger les artefacts d'un modèle (experts), comme le client MLflow."""
    from bibia.pull import pull

    with connect(url, token) as client:  # the address as every command resolves it
        base_url = client.url
    target = pull(base_url, token, ref, output)
    out.print(f"modèle {ref} téléchargé dans {target}")


def _read_card(file: Path) -> Card:
    from bibia.uploads import parse_card_text

    return parse_card_text(existing_file(file).read_bytes(), load_settings().max_card_bytes)


@card_app.command("validate")
def card_validate(file: Annotated[Path, typer.Argument(help="Fiche (YAML ou JSON)")]) -> None:
    """Valider une fiche sans rien enregistrer."""
    card = _read_card(file)
    out.print(f"fiche valide : {card.identification.title}")


@card_app.command("export")
def card_export(
    file: Annotated[Path, typer.Argument(help="Fiche (YAML ou JSON)")],
    name: Annotated[str, typer.Option("--name", help="Nom du modèle")],
    fmt: Annotated[str, typer.Option("--format", help="hf (README Hugging Face) ou etalab")] = "hf",
) -> None:
    """Exporter une fiche (champs publics seulement) au format Hugging Face ou Etalab."""
    from registry.export import to_etalab, to_hf_readme

    card = _read_card(file)
    if fmt == "hf":
        print(to_hf_readme(card, name))
    elif fmt == "etalab":
        print(json.dumps(to_etalab(card, name), ensure_ascii=False, indent=2, default=str))
    else:
        raise InvalidInput(f"format inconnu : {fmt!r} ; formats possibles : hf, etalab")
