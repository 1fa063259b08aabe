"""Evaluation through the running service: ``task``, ``benchmark``, ``evaluation`` (ls, show,
cancel), ``evaluate`` and ``compare``.

``bibia evaluate REF --benchmark SLUG`` queues a verified evaluation (or, with ``--data
FICHIER.csv``, an evaluation on a labelled CSV of one's own, private to one's organisation),
follows the job with a progress bar, then prints the metrics beside the task's naive
baseline, the measured cost and the evaluation's address. Exit codes are the error tree's
(:mod:`bibia.errors`); a job that ends badly exits with:

- 8 (the runner's code, as a failed demonstrator): the evaluation failed — the model
  crashed, ran out of time or memory, or answered predictions that cannot be scored;
  its reason is printed;
- 1: the evaluation was cancelled, or it was still running when ``--timeout`` ran out.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Column, Table

from bibia.cli.common import JsonOpt, TokenOpt, UrlOpt, connect, err, existing_file, out, print_json
from bibia.errors import exit_code_for
from domain.errors import BibiaError, InvalidInput, RunnerError
from registry.refs import check_version

if TYPE_CHECKING:
    from bibia.client import BibiaClient

task_app = typer.Typer(
    help="Tâches partagées : contrat, métriques, référence naïve, classements.",
    no_args_is_help=True,
)
benchmark_app = typer.Typer(
    help="Jeux de données de référence (benchmarks) pour évaluer les modèles.",
    no_args_is_help=True,
)
evaluation_app = typer.Typer(
    help="Évaluations (tâches de fond) : lister, afficher, annuler.", no_args_is_help=True
)

STATES = {
    "queued": "en file d'attente",
    "running": "en cours",
    "done": "terminée",
    "failed": "en échec",
    "cancelled": "annulée",
}
VISIBILITIES = {"public": "public", "membres": "membres", "verite-cachee": "vérité cachée"}
KINDS = {"benchmark": "vérifiée (jeu de référence)", "donnees": "sur vos données (privée)"}

#: Exit codes of a job that ended badly (see the module's docstring).
FAILED_EXIT = exit_code_for(RunnerError)
UNFINISHED_EXIT = exit_code_for(BibiaError)


# ------------------------------------------------------------------ formatting


def fr_number(value: float | int | None, digits: int = 3) -> str:
    """``value`` in French: ``digits`` significant digits, decimal comma, grouped thousands."""
    if value is None or isinstance(value, bool):
        return "—"
    number = float(value)
    if not math.isfinite(number):
        return "—"
    if number == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(number)))
    decimals = min(8, max(0, digits - 1 - magnitude))
    text = f"{number:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.replace(",", "\u202f").replace(".", ",")


def fr_metric(value: float | None, unit: str = "") -> str:
    """A metric's value as its unit reads: a fraction as a percentage, counts as they are."""
    if value is None:
        return "—"
    if unit == "fraction":
        return f"{fr_number(value * 100)} %"
    return f"{fr_number(value)} {unit}".strip() if unit else fr_number(value)


def _metric_info(task: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in (task or {}).get("metrics", [])}


def _task_or_none(client: BibiaClient, slug: str | None) -> dict[str, Any] | None:
    """The task's description, or None when the service cannot give it (labels are then names)."""
    if not slug:
        return None
    try:
        return client.task(slug)
    except BibiaError:
        return None


def _units(client: BibiaClient) -> dict[tuple[str, str], str]:
    """``(task, metric) -> unit`` for every task (empty when the service cannot say)."""
    try:
        tasks = client.tasks()
    except BibiaError:
        return {}
    return {(t["slug"], m["name"]): m.get("unit", "") for t in tasks for m in t["metrics"]}


def _verdict(value: float, baseline: float, higher_is_better: bool) -> str:
    if value == baseline:
        return "égal à la référence"
    better = value > baseline if higher_is_better else value < baseline
    return "[green]meilleur que la référence[/]" if better else "[red]moins bon[/]"


def result_table(job: dict[str, Any], task: dict[str, Any] | None) -> Table:
    """The metrics of a done evaluation beside its baseline's, one row per metric."""
    info = _metric_info(task)
    metrics: dict[str, float] = job.get("metrics") or {}
    baseline: dict[str, float] = job.get("baseline_metrics") or {}
    names = [n for n in info if n in metrics] + [n for n in metrics if n not in info]
    where = job.get("benchmark") or job.get("data_name") or ""
    rows = f", {fr_number(job['n_rows'], 9)} lignes" if job.get("n_rows") is not None else ""
    baseline_name = (task or {}).get("baseline_name") or "référence naïve"
    table = Table(
        "métrique",
        Column("modèle", justify="right", no_wrap=True),
        Column("référence", justify="right", no_wrap=True),
        "comparaison",
        title=f"{job['model']} version {job['version']} sur {where}{rows}",
        caption=f"référence : {baseline_name}",
    )
    primary = job.get("primary")
    for name in names:
        meta = info.get(name, {})
        unit = meta.get("unit", "")
        label = meta.get("label") or name
        if name == primary:
            label = f"[bold]{label}[/] (principale)"
        value, base = metrics.get(name), baseline.get(name)
        verdict = (
            _verdict(value, base, bool(meta["higher_is_better"]))
            if value is not None and base is not None and "higher_is_better" in meta
            else ""
        )
        table.add_row(label, fr_metric(value, unit), fr_metric(base, unit), verdict)
    return table


def cost_line(cost: dict[str, Any] | None) -> str | None:
    """The measured cost in one French line, or None when nothing was measured."""
    cost = cost or {}
    parts = []
    if cost.get("cpu_seconds") is not None:
        parts.append(f"{fr_number(cost['cpu_seconds'])} s de calcul (CPU)")
    if cost.get("peak_memory_bytes") is not None:
        parts.append(f"{fr_number(cost['peak_memory_bytes'] / 2**20)} Mio de mémoire au plus")
    if cost.get("energy_wh") is not None:
        parts.append(f"{fr_number(cost['energy_wh'])} Wh")
    if cost.get("co2e_g") is not None:
        parts.append(f"{fr_number(cost['co2e_g'])} gCO2e")
    if cost.get("duration_s") is not None:
        parts.append(f"durée {fr_number(cost['duration_s'])} s")
    return "coût mesuré : " + ", ".join(parts) if parts else None


def print_job(client: BibiaClient, job: dict[str, Any]) -> None:
    """An evaluation as a person reads it: what, where, its state, and its result or reason."""
    state = STATES.get(job["state"], job["state"])
    where = job.get("benchmark") or job.get("data_name") or "?"
    out.print(
        f"évaluation {job['id']} : {job['model_ref']} (version {job['version']}) sur {where}, "
        f"tâche {job['task']} — {state}",
        highlight=False,
    )
    out.print(f"  {KINDS.get(job.get('kind', ''), job.get('kind', ''))}", highlight=False)
    if job["state"] in ("queued", "running"):
        stage = f" — {job['stage']}" if job.get("stage") else ""
        out.print(f"  avancement : {fr_number(job.get('progress', 0) * 100)} %{stage}")
    if job["state"] == "done":
        out.print(result_table(job, _task_or_none(client, job.get("task"))))
        line = cost_line(job.get("cost"))
        if line:
            out.print(line, highlight=False)
        if job.get("benchmark_hash"):
            out.print(f"  empreinte du jeu de données : {job['benchmark_hash']}", highlight=False)
        if job.get("kind") == "donnees":
            out.print("  résultat privé à votre collectivité", highlight=False)
    if job.get("error"):
        out.print(f"  raison : {job['error']}", highlight=False)
    out.print(f"  {client.url}{job['url']}", highlight=False)


def _split(values: str | None) -> list[str] | None:
    if values is None:
        return None
    items = [v.strip() for v in values.split(",") if v.strip()]
    return items or None


# ------------------------------------------------------------------ tasks


@task_app.command("ls")
def task_ls(url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Lister les tâches partagées et leurs jeux de données de référence."""
    with connect(url, token) as client:
        tasks = client.tasks()
    if as_json:
        print_json(tasks)
        return
    table = Table(
        Column("tâche", no_wrap=True),
        "titre",
        Column("principale", no_wrap=True),
        Column("jeux de données", no_wrap=True),
        title=f"{len(tasks)} tâche(s)",
    )
    for task in tasks:
        kind = " (générique)" if task.get("generic") else ""
        table.add_row(
            task["slug"],
            f"{task['title']}{kind}",
            task["primary"],
            "\n".join(task.get("benchmarks") or []) or "—",
        )
    out.print(table)
    out.print("détail d'une tâche (colonnes, métriques, référence naïve) : bibia task show TÂCHE")


def _columns_table(title: str, columns: list[dict[str, Any]]) -> Table:
    table = Table(Column("colonne", no_wrap=True), "type", "obligatoire", "contenu", title=title)
    for column in columns:
        table.add_row(
            column["name"],
            column["type"],
            "oui" if column.get("required", True) else "non",
            column.get("label", ""),
        )
    return table


@task_app.command("show")
def task_show(
    slug: str, url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Afficher une tâche : colonnes, métriques, référence naïve, jeux de données."""
    with connect(url, token) as client:
        task = client.task(slug)
    if as_json:
        print_json(task)
        return
    out.print(f"[bold]{task['title']}[/] ({task['slug']})", highlight=False)
    out.print(task.get("description", ""), highlight=False)
    out.print(_columns_table("entrées (envoyées au modèle)", task.get("inputs", [])))
    out.print(_columns_table("vérité terrain (jamais envoyée au modèle)", task.get("truth", [])))
    out.print(_columns_table("sorties attendues du modèle", task.get("outputs", [])))
    metrics = Table(
        "métrique", Column("nom", no_wrap=True), "sens", "définition", title="métriques"
    )
    for metric in task.get("metrics", []):
        label = metric["label"]
        if metric["name"] == task["primary"]:
            label = f"[bold]{label}[/] (principale)"
        direction = "plus haut = mieux" if metric["higher_is_better"] else "plus bas = mieux"
        metrics.add_row(label, metric["name"], direction, metric.get("description", ""))
    out.print(metrics)
    out.print(
        f"référence naïve : {task['baseline_name']} — {task.get('baseline_description', '')}",
        highlight=False,
    )
    benchmarks = ", ".join(task.get("benchmarks") or []) or "aucun"
    out.print(f"jeux de données : {benchmarks}", highlight=False)


@task_app.command("leaderboard")
def task_leaderboard(
    slug: str,
    benchmark: Annotated[
        str | None, typer.Option("--benchmark", help="Jeu de données (défaut : celui de référence)")
    ] = None,
    sort: Annotated[
        str | None, typer.Option("--sort", help="Métrique de tri (défaut : la principale)")
    ] = None,
    order: Annotated[str | None, typer.Option("--order", help="asc ou desc")] = None,
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics", help="Colonnes, séparées par des virgules (défaut : principale et tri)"
        ),
    ] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Classement d'une tâche : les scores vérifiés de chaque modèle à côté de la référence."""
    if order is not None and order not in ("asc", "desc"):
        raise InvalidInput(f"ordre inconnu : {order!r} ; attendu : asc ou desc")
    with connect(url, token) as client:
        board = client.leaderboard(slug, benchmark=benchmark, sort=sort, order=order)
    if as_json:
        print_json(board)
        return
    task = board["task"]
    info = _metric_info(task)
    rows = board.get("rows", [])
    asked = _split(metrics)
    unknown = [n for n in asked or [] if n not in info]
    if unknown:
        raise InvalidInput(
            f"métrique(s) inconnue(s) pour la tâche {task['slug']} : {', '.join(unknown)} ; "
            f"métriques possibles : {', '.join(info)}"
        )
    names = asked or list(dict.fromkeys(n for n in (task["primary"], board.get("sort")) if n))
    bench = board.get("benchmark")
    where = f"{bench['slug']}/{bench['version']}" if bench else "aucun jeu de données"
    table = Table("#", Column("modèle", no_wrap=True), title=f"{task['title']} — {where}")
    arrow = "▼" if board.get("descending") else "▲"
    for name in names:
        header = f"{name} {arrow}" if name == board.get("sort") else name
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("collectivité")
    table.add_column("évaluation", overflow="fold")
    rank = 0
    for row in rows:
        values = [fr_metric(row["metrics"].get(n), info[n].get("unit", "")) for n in names]
        if row.get("is_baseline"):
            table.add_row("", "référence naïve", *values, "", "", style="yellow")
            continue
        rank += 1
        aliases = f" ({', '.join(row['aliases'])})" if row.get("aliases") else ""
        table.add_row(
            str(rank),
            f"{row['model']} v{row['version']}{aliases}",
            *values,
            row.get("organisation", ""),
            row.get("evaluation") or "",
        )
    out.print(table)
    out.print(f"référence naïve : {task['baseline_name']}", highlight=False)
    if not rank:
        out.print("aucune évaluation vérifiée sur ce jeu de données pour l'instant")


# ------------------------------------------------------------------ benchmarks


def _benchmark_row(bench: dict[str, Any]) -> list[str]:
    owner = bench.get("organisation_name") or bench.get("organisation", "")
    return [
        f"{bench['slug']}/{bench['version']}",
        f"{bench['title']}\n[dim]tâche {bench['task']}, {owner}[/]",
        VISIBILITIES.get(bench["visibility"], bench["visibility"]),
        fr_number(bench.get("n_rows"), 9),
    ]


@benchmark_app.command("ls")
def benchmark_ls(
    task: Annotated[str | None, typer.Option("--task", help="Seulement cette tâche")] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Lister les jeux de données de référence que vous pouvez voir."""
    with connect(url, token) as client:
        benchmarks = client.benchmarks(task=task)
    if as_json:
        print_json(benchmarks)
        return
    table = Table(
        Column("jeu de données", no_wrap=True),
        "titre",
        Column("visibilité", no_wrap=True),
        Column("lignes", justify="right", no_wrap=True),
        title=f"{len(benchmarks)} jeu(x) de données",
    )
    for bench in benchmarks:
        table.add_row(*_benchmark_row(bench))
    out.print(table)


def _print_benchmark(bench: dict[str, Any]) -> None:
    out.print(f"[bold]{bench['title']}[/] ({bench['slug']}/{bench['version']})", highlight=False)
    if bench.get("description"):
        out.print(bench["description"], highlight=False)
    period = " – ".join(p for p in (bench.get("period_start"), bench.get("period_end")) if p)
    lines = [
        ("tâche", bench["task"]),
        ("collectivité", bench.get("organisation_name") or bench.get("organisation")),
        ("producteur des données", bench.get("producer")),
        ("période", period or None),
        ("licence", bench.get("licence")),
        ("source", bench.get("source_url")),
        ("visibilité", VISIBILITIES.get(bench["visibility"], bench["visibility"])),
        ("lignes", fr_number(bench.get("n_rows"), 9)),
        ("entrées", ", ".join(bench.get("input_columns") or [])),
        ("vérité terrain", ", ".join(bench.get("truth_columns") or [])),
        ("empreinte (sha256)", bench.get("content_hash")),
        ("enregistré le", bench.get("created_at")),
        ("entrées téléchargeables", "oui" if bench.get("data_readable") else "non"),
        ("vérité téléchargeable", "oui" if bench.get("truth_readable") else "non"),
    ]
    for label, value in lines:
        if value:
            out.print(f"  {label} : {value}", highlight=False)


@benchmark_app.command("show")
def benchmark_show(
    slug: str,
    version: Annotated[int | None, typer.Option("--version", min=1)] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Afficher un jeu de données de référence : provenance, colonnes, empreinte."""
    with connect(url, token) as client:
        bench = client.benchmark(slug, version)
    if as_json:
        print_json(bench)
    else:
        _print_benchmark(bench)


@benchmark_app.command("register")
def benchmark_register(
    file: Annotated[Path, typer.Argument(help="CSV des entrées et de la vérité terrain")],
    slug: Annotated[str, typer.Option("--slug", help="Identifiant, ex. cantine-lyon-2023")],
    task: Annotated[str, typer.Option("--task", help="Tâche, ex. cantine-frequentation")],
    title: Annotated[str, typer.Option("--title", help="Titre")],
    licence: Annotated[str, typer.Option("--licence", help="Licence des données, ex. ODbL")],
    visibility: Annotated[
        str, typer.Option("--visibility", help="public, membres ou verite-cachee")
    ] = "public",
    producer: Annotated[
        str | None, typer.Option("--producer", help="Producteur des données")
    ] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    period_start: Annotated[
        str | None, typer.Option("--period-start", help="Début de la période (AAAA-MM-JJ)")
    ] = None,
    period_end: Annotated[
        str | None, typer.Option("--period-end", help="Fin de la période (AAAA-MM-JJ)")
    ] = None,
    source_url: Annotated[
        str | None, typer.Option("--source-url", help="Adresse des données d'origine")
    ] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Enregistrer un jeu de données de référence (experts), ou sa version suivante."""
    if visibility not in VISIBILITIES:
        raise InvalidInput(
            f"visibilité inconnue : {visibility!r} ; attendu : public, membres ou verite-cachee"
        )
    existing_file(file)
    with connect(url, token) as client:
        bench = client.register_benchmark(
            file,
            slug=slug,
            task=task,
            title=title,
            licence=licence,
            visibility=visibility,
            producer=producer,
            description=description,
            period_start=period_start,
            period_end=period_end,
            source_url=source_url,
        )
    if as_json:
        print_json(bench)
        return
    out.print(
        f"jeu de données {bench['slug']} version {bench['version']} enregistré "
        f"({fr_number(bench['n_rows'], 9)} lignes, empreinte {bench['content_hash'][:12]}…)",
        highlight=False,
    )


# ------------------------------------------------------------------ evaluations


def _follow(client: BibiaClient, job: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    """Wait for the job with a progress bar on standard error, fed by its progress and stage."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    def label(state: dict[str, Any]) -> str:
        stage = state.get("stage")
        return str(stage) if stage else STATES.get(state["state"], str(state["state"]))

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err,
    ) as bar:
        handle = bar.add_task(label(job), total=1.0)

        def update(state: dict[str, Any]) -> None:
            progress = state.get("progress")
            done = 1.0 if state["state"] == "done" else progress
            bar.update(
                handle,
                description=label(state),
                completed=float(done) if isinstance(done, (int, float)) else 0.0,
            )

        update(job)
        return client.wait_evaluation(job["id"], timeout=timeout, on_progress=update)


def _end(client: BibiaClient, job: dict[str, Any], as_json: bool) -> None:
    """Print the job; exit non-zero when it did not end done (see the module's docstring)."""
    if as_json:
        print_json(job)
    else:
        print_job(client, job)
    if job["state"] == "failed":
        err.print(
            f"[bold red]échec de l'évaluation[/] : {job.get('error') or 'raison inconnue'}",
            highlight=False,
        )
        raise typer.Exit(FAILED_EXIT)
    if job["state"] == "cancelled":
        err.print("[bold red]évaluation annulée[/]", highlight=False)
        raise typer.Exit(UNFINISHED_EXIT)
    if job["state"] != "done":
        err.print(
            f"[bold red]toujours {STATES.get(job['state'], job['state'])}[/] ; "
            f"suivez-la avec : bibia evaluation show {job['id']} --wait",
            highlight=False,
        )
        raise typer.Exit(UNFINISHED_EXIT)


def evaluate_command(
    ref: Annotated[str, typer.Argument(help="NOM, NOM@ALIAS ou NOM/VERSION")],
    benchmark: Annotated[
        str | None,
        typer.Option(
            "--benchmark",
            help="Jeu de données de référence (évaluation vérifiée) : JEU ou JEU/VERSION",
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Votre CSV étiqueté (entrées et valeurs observées ; « ; », virgule décimale "
            "et dates JJ/MM/AAAA acceptés) : résultat privé à votre collectivité",
        ),
    ] = None,
    truth_column: Annotated[
        str | None,
        typer.Option("--truth-column", help="Colonne des valeurs observées (tâches génériques)"),
    ] = None,
    task: Annotated[
        str | None, typer.Option("--task", help="Tâche (quand la fiche du modèle n'en dit rien)")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Suivre l'évaluation jusqu'à la fin")
    ] = True,
    timeout: Annotated[float, typer.Option(help="Attente maximale (secondes)", min=1)] = 3600.0,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Évaluer un modèle sur un jeu de données de référence ou sur vos données (membres).

    Codes de sortie : 0 terminée ; 8 en échec (le modèle a planté, dépassé son temps ou répondu des prédictions inutilisables : la raison est affichée) ; 1 annulée, ou toujours en cours à la fin de --timeout ; les autres comme toute commande.
    """
    if (benchmark is None) == (data is None):
        raise InvalidInput(
            "indiquez soit --benchmark JEU (évaluation vérifiée), soit --data FICHIER.csv "
            "(vos données étiquetées), l'un des deux"
        )
    if data is not None:
        existing_file(data)
    elif truth_column is not None or task is not None:
        raise InvalidInput("--truth-column et --task ne vont qu'avec --data")
    version = None
    if benchmark is not None and "/" in benchmark:
        benchmark, _, number = benchmark.partition("/")
        version = check_version(number)
    with connect(url, token) as client:
        job = client.evaluate(
            ref,
            benchmark=benchmark,
            benchmark_version=version,
            data=data,
            truth_column=truth_column,
            task=task,
        )
        if not wait:
            if as_json:
                print_json(job)
            else:
                out.print(
                    f"évaluation {job['id']} demandée : {job['model_ref']} (version "
                    f"{job['version']}), {STATES.get(job['state'], job['state'])}",
                    highlight=False,
                )
                out.print(f"suivez-la avec : bibia evaluation show {job['id']} --wait")
                out.print(f"{client.url}{job['url']}", highlight=False)
            return
        if not as_json:
            out.print(
                f"évaluation {job['id']} demandée : {job['model_ref']} (version {job['version']})",
                highlight=False,
            )
        job = _follow(client, job, timeout)
        _end(client, job, as_json)


@evaluation_app.command("ls")
def evaluation_ls(
    model: Annotated[str | None, typer.Option("--model", help="Seulement ce modèle")] = None,
    benchmark: Annotated[
        str | None, typer.Option("--benchmark", help="Seulement ce jeu de données")
    ] = None,
    mine: Annotated[
        bool, typer.Option("--mine", help="Seulement celles de votre collectivité")
    ] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Lister les évaluations que vous pouvez voir, les plus récentes d'abord."""
    with connect(url, token) as client:
        jobs = client.evaluations(model=model, benchmark=benchmark, mine=mine)
        units = {} if as_json else _units(client)
    if as_json:
        print_json(jobs)
        return
    if not jobs:
        out.print("aucune évaluation")
    for job in jobs:
        primary = job.get("primary")
        value = (job.get("metrics") or {}).get(primary) if primary else None
        unit = units.get((str(job.get("task")), str(primary)), "")
        score = f", {primary} = {fr_metric(value, unit)}" if value is not None else ""
        mark = " (vérifiée)" if job.get("verified") else ""
        when = (job.get("created_at") or "")[:16].replace("T", " ")
        out.print(
            f"{job['id']} : {job['model']} v{job['version']} sur "
            f"{job.get('benchmark') or job.get('data_name') or '?'}{mark} — "
            f"{STATES.get(job['state'], job['state'])}{score} ({when})",
            highlight=False,
        )


@evaluation_app.command("show")
def evaluation_show(
    evaluation_id: str,
    wait: Annotated[
        bool, typer.Option("--wait", help="Suivre l'évaluation jusqu'à la fin")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Attente maximale (secondes)", min=1)] = 3600.0,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Afficher une évaluation : état, avancement, résultat ou raison de l'échec.

    Avec --wait, suivre l'évaluation jusqu'à la fin et sortir avec les codes de bibia evaluate.
    """
    with connect(url, token) as client:
        job = client.evaluation(evaluation_id)
        if wait:  # then exit as evaluate does: non-zero unless it ended done
            if job["state"] in ("queued", "running"):
                job = _follow(client, job, timeout)
            _end(client, job, as_json)
        elif as_json:
            print_json(job)
        else:
            print_job(client, job)


@evaluation_app.command("cancel")
def evaluation_cancel(evaluation_id: str, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Annuler une évaluation en attente ou en cours de votre collectivité."""
    with connect(url, token) as client:
        before = client.evaluation(evaluation_id)
        job = client.cancel_evaluation(evaluation_id)
    if before["state"] in ("done", "failed", "cancelled"):
        out.print(
            f"évaluation {job['id']} déjà terminée ({STATES.get(job['state'], job['state'])})",
            highlight=False,
        )
    else:
        out.print(
            f"évaluation {job['id']} : {STATES.get(job['state'], job['state'])}", highlight=False
        )


# ------------------------------------------------------------------ compare


def _cell(entries: list[dict[str, Any]], unit: str) -> str:
    """A verified figure marked ✓ (with the declared one when they differ as shown), else the declared one."""
    verified = next((m for m in entries if m.get("verified") and m.get("value") is not None), None)
    declared = next(
        (m for m in entries if not m.get("verified") and m.get("value") is not None), None
    )
    if verified is not None:
        text = f"{fr_metric(verified['value'], unit)} ✓"
        if declared is not None:
            shown = fr_metric(declared["value"], unit)
            if shown != fr_metric(verified["value"], unit):
                text += f" (déclaré {shown})"
        return text
    if declared is not None:
        return f"{fr_metric(declared['value'], unit)} (déclaré)"
    return "—"


def compare_command(
    refs: Annotated[
        list[str], typer.Argument(help="Deux modèles ou plus : NOM@ALIAS, NOM/VERSION")
    ],
    metrics: Annotated[
        str | None, typer.Option("--metrics", help="Métriques, séparées par des virgules")
    ] = None,
    benchmark: Annotated[
        str | None, typer.Option("--benchmark", help="Jeu de données des chiffres vérifiés")
    ] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Comparer des modèles ou des versions, sur la même tâche et le même jeu de données."""
    if len(refs) < 2:
        raise InvalidInput("indiquez au moins deux modèles à comparer, ex. : A@production A/1")
    with connect(url, token) as client:
        comparison = client.compare(refs, metrics=_split(metrics), benchmark=benchmark)
        task = _task_or_none(client, comparison.get("task"))
    if as_json:
        print_json(comparison)
        return
    info = _metric_info(task)
    models = comparison.get("models", [])
    names = list(comparison.get("metrics") or [])
    for model in models:
        names += [m["name"] for m in model.get("metrics", []) if m["name"] not in names]
    title = f"tâche {comparison.get('task') or '?'}"
    if comparison.get("benchmark"):
        title += f", jeu de données {comparison['benchmark']}"
    table = Table(Column("métrique", overflow="fold"), title=title)
    for model in models:
        table.add_column(f"{model['ref']}\nv{model['version']}", justify="right", no_wrap=True)
    table.add_column("référence", justify="right", no_wrap=True)
    every = [m for model in models for m in model.get("metrics", [])]
    # The baseline's figure beside the verified ones (measured on the same rows), else as declared.
    ranked = sorted(every, key=lambda m: not m.get("verified"))
    for name in names:
        unit = info.get(name, {}).get("unit", "")
        cells = [
            _cell([m for m in model.get("metrics", []) if m["name"] == name], unit)
            for model in models
        ]
        baseline = next(
            (m["baseline"] for m in ranked if m["name"] == name and m.get("baseline") is not None),
            None,
        )
        table.add_row(name, *cells, fr_metric(baseline, unit))
    out.print(table)
    out.print("✓ vérifié par la plateforme ; « déclaré » : chiffre de la fiche du modèle")
    for verified, what in ((True, "référence mesurée"), (False, "référence déclarée")):
        named = dict.fromkeys(
            m["baseline_name"]
            for m in every
            if m.get("baseline_name") and bool(m.get("verified")) == verified
        )
        if named:
            out.print(f"{what} : {' ; '.join(named)}", highlight=False)
    for model in models:
        if model.get("task") is None:
            out.print(f"  {model['ref']} : aucune tâche connue", highlight=False)
    if not comparison.get("comparable", False):
        out.print("[bold]non comparables[/] :")
        for reason in comparison.get("reasons") or []:
            out.print(f"  - {reason}", highlight=False)
