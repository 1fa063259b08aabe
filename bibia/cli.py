"""The ``bibia`` command line (French messages; exit codes from the error tree).

Administration commands (``org``, ``token``, ``user``, ``audit``, ``seed``,
``db``) act on the local data directory (``BIBIA_DATA_DIR``) directly, as
the platform's operator. Catalogue commands (``model``, ``project``,
``pull``, ``demo``) talk to a running service (``BIBIA_URL``) with a token
(``BIBIA_TOKEN``), like any other user, so the service checks their tier.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bibia.errors import exit_code_for
from domain.errors import BibiaError, InvalidInput

if TYPE_CHECKING:  # each command imports what it needs when it runs
    from bibia.client import BibiaClient
    from bibia.db import Database
    from bibia.services import Services
    from bibia.settings import Settings

app = typer.Typer(
    name="bibia",
    help="bibia — Bibliothèque IA territorialisée : catalogue, fiches, jetons et démonstrateurs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
org_app = typer.Typer(help="Organisations (collectivités).", no_args_is_help=True)
token_app = typer.Typer(
    help="Jetons d'accès (affichés une seule fois, conservés hachés).", no_args_is_help=True
)
user_app = typer.Typer(help="Utilisateurs et rôles.", no_args_is_help=True)
model_app = typer.Typer(
    help="Modèles du catalogue (via le service : BIBIA_URL, BIBIA_TOKEN).", no_args_is_help=True
)
project_app = typer.Typer(help="Projets du catalogue (via le service).", no_args_is_help=True)
card_app = typer.Typer(help="Fiches de modèles.", no_args_is_help=True)
db_app = typer.Typer(help="Base de données de bibia.", no_args_is_help=True)
demo_app = typer.Typer(
    help="Démonstrateurs (via le service : BIBIA_URL, BIBIA_TOKEN).", no_args_is_help=True
)
app.add_typer(org_app, name="org")
app.add_typer(token_app, name="token")
app.add_typer(user_app, name="user")
app.add_typer(model_app, name="model")
app.add_typer(project_app, name="project")
app.add_typer(card_app, name="card")
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")

out = Console()
err = Console(stderr=True)

UrlOpt = Annotated[str | None, typer.Option("--url", envvar="BIBIA_URL", help="Adresse du service")]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="BIBIA_TOKEN", help="Jeton d'accès", show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Sortie JSON")]


def _settings() -> Settings:
    from bibia.settings import Settings

    return Settings()


def _services() -> Services:
    from bibia.services import Services

    return Services.build(_settings())


def _db() -> Database:
    from bibia.db import Database

    settings = _settings()
    settings.ensure_dirs()
    db = Database(settings.database_uri)
    db.upgrade()
    return db


def _client(url: str | None, token: str | None) -> BibiaClient:
    from bibia.client import BibiaClient

    return BibiaClient(url, token)


def _print_json(data: Any) -> None:
    out.print_json(json.dumps(data, ensure_ascii=False, default=str))


# ------------------------------------------------------------------ service


@app.command()
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

    settings = _settings()
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
        from bibia.seed import seed as seed_catalogue

        seed_catalogue(application.state.services, log=err.print)
    err.print(f"bibia écoute sur http://{settings.host}:{settings.port} (documentation : /docs)")
    server.run(application, settings)


@app.command("seed")
def seed_command() -> None:
    """Peupler le catalogue : projets des Interconnectés et modèles de référence (idempotent)."""
    from bibia.seed import seed

    report = seed(_services(), log=err.print)
    out.print(report.summary())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Appliquer les migrations de la base de bibia."""
    _db()
    out.print("base de données à jour")


# ------------------------------------------------------------ organisations


@org_app.command("create")
def org_create(
    slug: Annotated[str, typer.Argument(help="Identifiant court, ex. nantes-metropole")],
    name: Annotated[str, typer.Option("--name", help="Nom complet, ex. « Nantes Métropole »")],
    siren: Annotated[str | None, typer.Option("--siren", help="SIREN (9 chiffres)")] = None,
) -> None:
    """Créer une organisation."""
    from bibia import accounts
    from bibia.auth import SYSTEM

    with _db().session() as session:
        org = accounts.create_organisation(session, SYSTEM, slug, name, siren)
        out.print(
            f"organisation créée : {org.slug} — {org.name}"
            + (f" (SIREN {org.siren})" if org.siren else "")
        )


@org_app.command("ls")
def org_ls(as_json: JsonOpt = False) -> None:
    """Lister les organisations."""
    from bibia import accounts

    with _db().session() as session:
        rows = [
            {"slug": o.slug, "name": o.name, "siren": o.siren}
            for o in accounts.list_organisations(session)
        ]
    if as_json:
        _print_json(rows)
        return
    table = Table("identifiant", "nom", "SIREN")
    for row in rows:
        table.add_row(row["slug"], row["name"], row["siren"] or "")
    out.print(table)


# ------------------------------------------------------------------- tokens


@token_app.command("create")
def token_create(
    org: Annotated[str, typer.Option("--org", help="Organisation du porteur du jeton")],
    role: Annotated[str, typer.Option("--role", help="member, expert ou admin")],
    user: Annotated[
        str | None, typer.Option("--user", help="Nom de l'utilisateur (par défaut : le rôle)")
    ] = None,
    label: Annotated[str | None, typer.Option("--label", help="Libellé libre")] = None,
) -> None:
    """Créer un jeton. Il est affiché une seule fois, en dernière ligne."""
    from bibia import accounts
    from bibia.auth import SYSTEM

    with _db().session() as session:
        issued = accounts.create_token(session, SYSTEM, org, role, user, label)
    err.print(
        f"jeton {issued.prefix} créé pour {issued.user}@{issued.organisation} (rôle {issued.role.value}). "
        "Copiez-le maintenant : il ne sera plus jamais affiché."
    )
    print(issued.token)


@token_app.command("ls")
def token_ls(
    org: Annotated[str | None, typer.Option("--org")] = None, as_json: JsonOpt = False
) -> None:
    """Lister les jetons (jamais leur valeur)."""
    from bibia import accounts

    with _db().session() as session:
        rows: list[dict[str, Any]] = [
            {
                "prefix": t.prefix,
                "organisation": t.user.organisation.slug,
                "user": t.user.name,
                "role": t.user.role,
                "created_at": t.created_at.isoformat(timespec="seconds"),
                "revoked": t.revoked_at is not None,
            }
            for t in accounts.list_tokens(session, org)
        ]
    if as_json:
        _print_json(rows)
        return
    table = Table("jeton", "organisation", "utilisateur", "rôle", "créé le", "révoqué")
    for r in rows:
        table.add_row(
            r["prefix"],
            r["organisation"],
            r["user"],
            r["role"],
            r["created_at"],
            "oui" if r["revoked"] else "",
        )
    out.print(table)


@token_app.command("revoke")
def token_revoke(
    prefix: Annotated[
        str, typer.Argument(help="Préfixe du jeton (8 caractères, voir bibia token ls)")
    ],
) -> None:
    """Révoquer un jeton."""
    from bibia import accounts
    from bibia.auth import SYSTEM

    with _db().session() as session:
        accounts.revoke_token(session, SYSTEM, prefix)
    out.print(f"jeton {prefix} révoqué")


@user_app.command("role")
def user_role(
    org: Annotated[str, typer.Option("--org")],
    user: Annotated[str, typer.Option("--user")],
    role: Annotated[str, typer.Option("--role", help="member, expert ou admin")],
) -> None:
    """Changer le rôle d'un utilisateur."""
    from bibia import accounts
    from bibia.auth import SYSTEM

    with _db().session() as session:
        accounts.set_role(session, SYSTEM, org, user, role)
    out.print(f"{user}@{org} a désormais le rôle {role}")


@app.command("audit")
def audit_command(
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    action: Annotated[str | None, typer.Option(help="Filtrer par action, ex. model.alias")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Afficher le journal d'audit (qui, quoi, quand)."""
    from bibia import accounts

    with _db().session() as session:
        rows: list[dict[str, Any]] = [
            {
                "at": e.at.isoformat(timespec="seconds"),
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "details": e.details,
            }
            for e in accounts.audit_events(session, limit, action)
        ]
    if as_json:
        _print_json(rows)
        return
    table = Table("quand", "qui", "action", "objet", "détails")
    for r in rows:
        table.add_row(
            r["at"],
            r["actor"],
            r["action"],
            r["target"],
            json.dumps(r["details"], ensure_ascii=False) if r["details"] else "",
        )
    out.print(table)


# ------------------------------------------------------------------- models


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
    with _client(url, token) as client:
        version = client.register(
            name, str(model_dir) if model_dir else model_uri, card, alias=alias
        )
    if as_json:
        _print_json(version)
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
    with _client(url, token) as client:
        result = client.models(
            q=q, theme=theme, owner=owner, status=status, task=task, page=page, per_page=per_page
        )
    if as_json:
        _print_json(result)
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
    with _client(url, token) as client:
        _print_json(client.model(name))


@model_app.command("alias")
def model_alias(
    name: str,
    alias: str,
    version: Annotated[int, typer.Argument(min=1)],
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Faire pointer un alias sur une version, ex. : bibia model alias cantine-nantes production 3."""
    with _client(url, token) as client:
        client.set_alias(name, alias, version)
    out.print(f"{name}@{alias} → version {version}")


@app.command("pull")
def pull_command(
    ref: Annotated[str, typer.Argument(help="NOM, NOM@ALIAS ou NOM/VERSION")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Dossier de destination")],
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Télécharger les artefacts d'un modèle (experts), comme le client MLflow."""
    from bibia.client import BibiaClient
    from bibia.pull import pull

    target = pull(BibiaClient(url, token).url, token, ref, output)
    out.print(f"modèle {ref} téléchargé dans {target}")


@project_app.command("ls")
def project_ls(
    q: Annotated[str | None, typer.Option("--q")] = None,
    theme: Annotated[str | None, typer.Option()] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Parcourir les projets du catalogue."""
    with _client(url, token) as client:
        result = client.projects(q=q, theme=theme, per_page=100)
    if as_json:
        _print_json(result)
        return
    table = Table(
        "projet", "titre", "collectivités", "thème", "modèles", title=f"{result['total']} projet(s)"
    )
    for p in result["items"]:
        table.add_row(
            p["slug"],
            p["title"],
            ", ".join(o["name"] for o in p["owners"]),
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

    if not file.is_file():
        raise InvalidInput(f"fichier introuvable : {file}")
    with _client(url, token) as client:
        project = client.put_project(load_structured(file.read_text(encoding="utf-8"), "projet"))
    out.print(f"projet {project['slug']} enregistré")


SlugArg = Annotated[
    str, typer.Argument(help="Identifiant du projet, ex. prevision-frequentation-cantines")
]


@project_app.command("accept")
def project_accept(slug: SlugArg, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Accepter l'invitation de votre collectivité à porter un projet (experts de la collectivité invitée)."""
    with _client(url, token) as client:
        project = client.answer_invitation(slug, accept=True)
    out.print(
        f"invitation acceptée : {project['slug']} est porté par {', '.join(o['name'] for o in project['owners'])}"
    )


@project_app.command("decline")
def project_decline(slug: SlugArg, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Décliner l'invitation de votre collectivité à porter un projet."""
    with _client(url, token) as client:
        project = client.answer_invitation(slug, accept=False)
    out.print(
        f"invitation déclinée : {project['slug']} reste porté par {', '.join(o['name'] for o in project['owners'])}"
    )


@card_app.command("validate")
def card_validate(file: Annotated[Path, typer.Argument(help="Fiche (YAML ou JSON)")]) -> None:
    """Valider une fiche sans rien enregistrer."""
    from bibia.uploads import parse_card_text

    if not file.is_file():
        raise InvalidInput(f"fichier introuvable : {file}")
    card = parse_card_text(file.read_bytes(), _settings().max_card_bytes)
    out.print(f"fiche valide : {card.identification.title}")


@card_app.command("export")
def card_export(
    file: Annotated[Path, typer.Argument(help="Fiche (YAML ou JSON)")],
    name: Annotated[str, typer.Option("--name", help="Nom du modèle")],
    fmt: Annotated[str, typer.Option("--format", help="hf (README Hugging Face) ou etalab")] = "hf",
) -> None:
    """Exporter une fiche (champs publics seulement) au format Hugging Face ou Etalab."""
    from bibia.uploads import parse_card_text
    from registry.export import to_etalab, to_hf_readme

    if not file.is_file():
        raise InvalidInput(f"fichier introuvable : {file}")
    card = parse_card_text(file.read_bytes(), _settings().max_card_bytes)
    if fmt == "hf":
        print(to_hf_readme(card, name))
    elif fmt == "etalab":
        print(json.dumps(to_etalab(card, name), ensure_ascii=False, indent=2, default=str))
    else:
        raise InvalidInput(f"format inconnu : {fmt!r} ; formats possibles : hf, etalab")


# -------------------------------------------------------------------- demos

_STATES = {
    "pending": "en attente",
    "starting": "démarrage",
    "ready": "prêt",
    "stopped": "arrêté",
    "failed": "en échec",
    "expired": "expiré",
}


def _demo_line(demo: dict[str, Any], base_url: str) -> str:
    state = _STATES.get(demo["state"], demo["state"])
    url = f" — {base_url}{demo['url']}" if demo.get("url") and demo["state"] == "ready" else ""
    return f"{demo['id']} : {demo['model']} v{demo['version']}, {state}{url}"


@demo_app.command("launch")
def demo_launch(
    ref: Annotated[str, typer.Argument(help="NOM, NOM@ALIAS ou NOM/VERSION")],
    ttl: Annotated[int | None, typer.Option("--ttl", help="Durée de vie en minutes")] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Attendre que le démonstrateur soit prêt")
    ] = True,
    timeout: Annotated[float, typer.Option(help="Attente maximale (secondes)")] = 180.0,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Lancer un démonstrateur d'un modèle, et attendre qu'il soit prêt."""
    with _client(url, token) as client:
        demo = client.launch_demo(ref, ttl_minutes=ttl)
        if wait:
            with err.status(f"lancement du démonstrateur {demo['id']}…") as status:
                demo = client.wait_demo(
                    demo["id"],
                    timeout=timeout,
                    on_state=lambda d: status.update(
                        f"démonstrateur {d['id']} : {_STATES.get(d['state'], d['state'])}…"
                    ),
                )
        if as_json:
            _print_json(demo)
        else:
            out.print(_demo_line(demo, client.url), highlight=False)
    if demo["state"] == "failed":
        err.print(
            f"[bold red]échec[/] : {demo.get('error') or 'voir bibia demo logs ' + demo['id']}",
            highlight=False,
        )
        raise typer.Exit(8)


@demo_app.command("ls")
def demo_ls(
    all_: Annotated[
        bool, typer.Option("--all", help="Inclure les démonstrateurs terminés")
    ] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Lister les démonstrateurs de votre collectivité."""
    with _client(url, token) as client:
        demos = client.demos(include_finished=all_)
        if as_json:
            _print_json(demos)
            return
        if not demos:
            out.print("aucun démonstrateur actif")
        for demo in demos:
            out.print(_demo_line(demo, client.url), highlight=False)


@demo_app.command("status")
def demo_status(
    demo_id: str, url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """État d'un démonstrateur."""
    with _client(url, token) as client:
        demo = client.demo(demo_id)
        if as_json:
            _print_json(demo)
        else:
            out.print(_demo_line(demo, client.url), highlight=False)
            if demo.get("error"):
                out.print(demo["error"], highlight=False)


@demo_app.command("logs")
def demo_logs(
    demo_id: str,
    tail: Annotated[int, typer.Option(min=1, max=5000)] = 200,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Journaux d'un démonstrateur (experts)."""
    with _client(url, token) as client:
        print(client.demo_logs(demo_id, tail))


@demo_app.command("stop")
def demo_stop(demo_id: str, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Arrêter un démonstrateur."""
    with _client(url, token) as client:
        demo = client.stop_demo(demo_id)
        out.print(_demo_line(demo, client.url), highlight=False)


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
        run(args=argv, prog_name="bibia", standalone_mode=False)
    except BibiaError as exc:
        _report(exc)
        sys.exit(exit_code_for(exc))
    except typer.Abort:
        err.print("interrompu")
        sys.exit(130)
    except KeyboardInterrupt:
        err.print("interrompu")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (
        typer.TyperException
    ) as exc:  # usage errors (typer's own click) carry their own exit code
        show = getattr(exc, "show", None)
        if show is None:
            err.print(f"[bold red]erreur[/] : {exc.message}", highlight=False)
        else:
            show()
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
