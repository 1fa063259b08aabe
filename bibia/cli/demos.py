"""Demonstrators through the running service: ``demo`` (launch, ls, status, logs, stop)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from bibia.cli.common import JsonOpt, TokenOpt, UrlOpt, connect, err, out, print_json
from bibia.errors import exit_code_for
from domain.errors import RunnerError

demo_app = typer.Typer(
    help="Démonstrateurs (via le service : BIBIA_URL, BIBIA_TOKEN).", no_args_is_help=True
)

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
    with connect(url, token) as client:
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
            print_json(demo)
        else:
            out.print(_demo_line(demo, client.url), highlight=False)
    if demo["state"] == "failed":
        err.print(
            f"[bold red]échec[/] : {demo.get('error') or 'voir bibia demo logs ' + demo['id']}",
            highlight=False,
        )
        raise typer.Exit(exit_code_for(RunnerError))  # a failed demonstrator: the runner's code


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
    with connect(url, token) as client:
        demos = client.demos(include_finished=all_)
        if as_json:
            print_json(demos)
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
    with connect(url, token) as client:
        demo = client.demo(demo_id)
        if as_json:
            print_json(demo)
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
    with connect(url, token) as client:
        print(client.demo_logs(demo_id, tail))


@demo_app.command("stop")
def demo_stop(demo_id: str, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Arrêter un démonstrateur."""
    with connect(url, token) as client:
        demo = client.stop_demo(demo_id)
        out.print(_demo_line(demo, client.url), highlight=False)
