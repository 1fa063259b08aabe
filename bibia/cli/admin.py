"""The operator's commands on the local data directory: ``org``, ``token``, ``user``, ``audit``.

They act as the platform (:data:`bibia.auth.SYSTEM`), with no token, on the database of
``BIBIA_DATA_DIR``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from bibia.cli.common import JsonOpt, err, load_settings, open_database, out, print_json

org_app = typer.Typer(help="Organisations (collectivités).", no_args_is_help=True)
token_app = typer.Typer(
    help="Jetons d'accès (affichés une seule fois, conservés hachés).", no_args_is_help=True
)
user_app = typer.Typer(help="Utilisateurs et rôles.", no_args_is_help=True)


@org_app.command("create")
def org_create(
    slug: Annotated[str, typer.Argument(help="Identifiant court, ex. nantes-metropole")],
    name: Annotated[str, typer.Option("--name", help="Nom complet, ex. « Nantes Métropole »")],
    siren: Annotated[str | None, typer.Option("--siren", help="SIREN (9 chiffres)")] = None,
) -> None:
    """Créer une organisation."""
    from bibia import accounts
    from bibia.auth import SYSTEM

    with open_database().session() as session:
        org = accounts.create_organisation(session, SYSTEM, slug, name, siren)
        out.print(
            f"organisation créée : {org.slug} — {org.name}"
            + (f" (SIREN {org.siren})" if org.siren else "")
        )


@org_app.command("ls")
def org_ls(as_json: JsonOpt = False) -> None:
    """Lister les organisations."""
    from bibia import accounts

    with open_database().session() as session:
        rows = [
            {"slug": o.slug, "name": o.name, "siren": o.siren}
            for o in accounts.list_organisations(session)
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("identifiant", "nom", "SIREN")
    for row in rows:
        table.add_row(row["slug"], row["name"], row["siren"] or "")
    out.print(table)


@org_app.command("quota")
def org_quota(
    slug: Annotated[
        str, typer.Argument(help="Identifiant de l'organisation, ex. nantes-metropole")
    ],
    demos: Annotated[
        str | None,
        typer.Option(
            "--demos",
            help="Démonstrateurs actifs à la fois (0 à 1000), ou « defaut » pour le réglage du service",
        ),
    ] = None,
    evaluations: Annotated[
        str | None,
        typer.Option(
            "--evaluations",
            help="Évaluations en attente ou en cours (0 à 1000), ou « defaut » pour le réglage du service",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Afficher ou fixer les quotas propres d'une organisation (sans option : les afficher)."""
    from bibia import accounts
    from bibia.auth import SYSTEM

    settings = load_settings()
    with open_database().session() as session:
        org = accounts.get_organisation(session, slug)
        if demos is not None or evaluations is not None:

            def wanted(given: str | None, current: int | None) -> object:
                if given is None:
                    return current
                return None if given.strip().lower() in {"defaut", "défaut"} else given

            accounts.set_quotas(
                session,
                SYSTEM,
                slug,
                wanted(demos, org.demo_quota),
                wanted(evaluations, org.evaluation_quota),
            )
        applied = accounts.quotas_of(
            org, settings.demo_quota_per_org, settings.evaluation_quota_per_org
        )
        row: dict[str, Any] = {
            "organisation": org.slug,
            "demos": org.demo_quota,
            "evaluations": org.evaluation_quota,
            "demos_applied": applied.demos,
            "evaluations_applied": applied.evaluations,
        }
    if as_json:
        print_json(row)
        return

    def shown(own: int | None, value: int) -> str:
        return f"{value}" if own is not None else f"{value} (réglage du service)"

    out.print(
        f"{row['organisation']} : démonstrateurs actifs {shown(row['demos'], applied.demos)}, "
        f"évaluations en cours {shown(row['evaluations'], applied.evaluations)}"
    )


@token_app.command("create")
def token_create(
    org: Annotated[str, typer.Option("--org", help="Organisation du porteur du jeton")],
    role: Annotated[str, typer.Option("--role", help="member, expert ou admin")],
    user: Annotated[
        str | None, typer.Option("--user", help="Nom de l'utilisateur (par défaut : le rôle)")
    ] = None,
    label: Annotated[str | None, typer.Option("--label", help="Libellé libre")] = None,
    expires: Annotated[
        str | None,
        typer.Option(
            "--expire-le",
            help="Dernier jour de validité, AAAA-MM-JJ (jusqu'à minuit, heure du service)",
        ),
    ] = None,
) -> None:
    """Créer un jeton. Il est affiché une seule fois, en dernière ligne."""
    import datetime as dt
    import zoneinfo

    from bibia import accounts
    from bibia.auth import SYSTEM
    from domain.errors import InvalidInput

    expires_at = None
    if expires is not None:
        try:
            day = dt.date.fromisoformat(expires.strip()) if len(expires.strip()) == 10 else None
        except ValueError:
            day = None
        if day is None:
            raise InvalidInput(
                f"date d'expiration invalide : {expires[:30]!r} ; attendu : AAAA-MM-JJ, par exemple 2027-01-31"
            )
        zone = zoneinfo.ZoneInfo(load_settings().timezone)
        expires_at = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    with open_database().session() as session:
        issued = accounts.create_token(session, SYSTEM, org, role, user, label, expires_at)
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

    with open_database().session() as session:
        rows: list[dict[str, Any]] = [
            {
                "prefix": t.prefix,
                "organisation": t.user.organisation.slug,
                "user": t.user.name,
                "role": t.user.role,
                "created_at": t.created_at.isoformat(timespec="seconds"),
                "revoked": t.revoked_at is not None,
                "label": t.label,
                "last_used_at": t.last_used_at.isoformat(timespec="seconds")
                if t.last_used_at
                else None,
                "expires_at": t.expires_at.isoformat(timespec="seconds") if t.expires_at else None,
            }
            for t in accounts.list_tokens(session, org)
        ]
    if as_json:
        print_json(rows)
        return
    table = Table(
        "jeton", "organisation", "utilisateur", "rôle", "libellé", "créé le", "expire le", "révoqué"
    )
    for r in rows:
        table.add_row(
            r["prefix"],
            r["organisation"],
            r["user"],
            r["role"],
            r["label"] or "",
            r["created_at"],
            r["expires_at"] or "",
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

    with open_database().session() as session:
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

    with open_database().session() as session:
        accounts.set_role(session, SYSTEM, org, user, role)
    out.print(f"{user}@{org} a désormais le rôle {role}")


def audit_command(
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    action: Annotated[str | None, typer.Option(help="Filtrer par action, ex. model.alias")] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Auteur contenant ce texte (sans casse)")
    ] = None,
    target: Annotated[
        str | None,
        typer.Option("--target", help="Objet contenant ce texte : un modèle, une organisation…"),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Depuis : date AAAA-MM-JJ (jour compris) ou date et heure ISO 8601 (heure de Paris)",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Jusqu'à : date (jour compris) ou date et heure (exclue)"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Afficher le journal d'audit (qui, quoi, quand), du plus récent au plus ancien."""
    from zoneinfo import ZoneInfo

    from bibia import accounts

    query = accounts.audit_query(
        ZoneInfo(load_settings().timezone),
        actor=actor,
        action=action,
        target=target,
        since=since,
        until=until,
    )
    with open_database().session() as session:
        rows: list[dict[str, Any]] = [
            {
                "at": e.at.isoformat(timespec="seconds"),
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "details": e.details,
            }
            for e in accounts.search_audit(session, query, limit=limit)[0]
        ]
    if as_json:
        print_json(rows)
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
