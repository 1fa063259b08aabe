"""Une évaluatrice vérifie un modèle avant de le réutiliser : la plateforme mesure, elle compare.

Lyon veut savoir si le modèle de prévision des cantines de Nantes vaut la
peine avant d'investir. Le script, avec le jeton d'un agent (membre) :

1. liste les tâches partagées (contrat, métrique principale, référence naïve) ;
2. lance une évaluation **vérifiée par la plateforme** du modèle sur le jeu de
   données de référence de sa tâche (le modèle tourne dans un bac à sable, sans
   jamais voir la vérité terrain ; ses prédictions sont notées au dehors), suit
   sa progression et affiche ses métriques à côté de la référence naïve, avec
   le coût mesuré ;
3. compare ``cantine-nantes@production`` à ``cantine-nantes/1`` (et à tout autre
   modèle de la même tâche), puis à un modèle d'une autre tâche, pour lire
   pourquoi la plateforme refuse de comparer ;
4. essaie le modèle sur un fichier CSV étiqueté « à soi », écrit à la française
   (« ; », dates jj/mm/aaaa, oui/non, UTF-8 avec BOM comme Excel) : les repas
   servis à la rentrée 2018 dans quatre cantines ; le résultat est privé à la
   collectivité de l'agent.

Usage ::

    export BIBIA_URL=http://127.0.0.1:8000
    export BIBIA_TOKEN=bibia_xxxxxxxx_...      # jeton d'un agent (membre) d'une collectivité
    python examples/evaluate.py [cantine-nantes@production] [--csv mes-donnees.csv]

Codes de sortie : 0 tout s'est bien passé ; 8 une évaluation a échoué (sa
raison est affichée) ; 1 une évaluation n'a pas fini à temps ; les autres,
ceux de la ligne de commande bibia (2 requête invalide, 3 accès refusé,
4 introuvable, 6 quota atteint, 7 service injoignable).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "cantine-nantes@production"
STATES = {
    "queued": "en file d'attente",
    "running": "en cours",
    "done": "terminée",
    "failed": "en échec",
    "cancelled": "annulée",
}
CANTINE_DATA = Path(__file__).resolve().parent.parent / "demos" / "cantine" / "data"


def fr(value: float | None, unit: str = "") -> str:
    """A number as a French reader writes it (a fraction as a percentage)."""
    if value is None:
        return "—"
    if unit == "fraction":
        return f"{value * 100:.1f} %".replace(".", ",")
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"
    return text.replace(",", "\u202f").replace(".", ",") + (f" {unit}" if unit else "")


class Failed(Exception):
    """An evaluation that did not end done: its exit code and its reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def follow(client: Any, job: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Wait for the job, printing each new stage; returns it done, or raises Failed."""
    from bibia.errors import exit_code_for
    from domain.errors import BibiaError, RunnerError

    started, last = time.monotonic(), None

    def progress(state: dict[str, Any]) -> None:
        nonlocal last
        stage = state.get("stage") or STATES.get(state["state"], state["state"])
        if stage != last:
            last = stage
            share = f"{(state.get('progress') or 0) * 100:3.0f} %"
            print(f"  [{time.monotonic() - started:5.1f} s] {share} {stage}", flush=True)

    job = client.wait_evaluation(job["id"], timeout=timeout, on_progress=progress)
    if job["state"] == "failed":
        raise Failed(exit_code_for(RunnerError), job.get("error") or "raison inconnue")
    if job["state"] != "done":
        raise Failed(
            exit_code_for(BibiaError),
            f"toujours « {STATES.get(job['state'], job['state'])} » après {timeout:.0f} s",
        )
    return job


def show_result(client: Any, job: dict[str, Any], task: dict[str, Any]) -> None:
    """The metrics beside the baseline's, in plain French, then the cost and the address."""
    metrics = {m["name"]: m for m in task["metrics"]}
    print(f"résultat sur {fr(job['n_rows'])} lignes, contre « {task['baseline_name']} » :")
    for name, value in (job.get("metrics") or {}).items():
        meta = metrics.get(name, {"label": name, "unit": "", "higher_is_better": False})
        base = (job.get("baseline_metrics") or {}).get(name)
        verdict = ""
        if base is not None and value != base:
            better = value > base if meta["higher_is_better"] else value < base
            verdict = " → meilleur que la référence" if better else " → moins bon"
        main = " (principale)" if name == job["primary"] else ""
        print(
            f"  {meta['label']}{main} : modèle {fr(value, meta['unit'])}, "
            f"référence {fr(base, meta['unit'])}{verdict}"
        )
    cost = job.get("cost") or {}
    if cost.get("cpu_seconds") is not None:
        memory = cost.get("peak_memory_bytes")
        print(
            f"coût mesuré : {fr(cost['cpu_seconds'])} s de calcul"
            + (f", {fr(memory / 2**20)} Mio de mémoire au plus" if memory else "")
            + (f", {fr(cost['energy_wh'])} Wh" if cost.get("energy_wh") is not None else "")
            + (f", {fr(cost['co2e_g'])} gCO2e" if cost.get("co2e_g") is not None else "")
        )
    print(f"détail : {client.url}{job['url']}")


def show_comparison(comparison: dict[str, Any], units: dict[str, str]) -> None:
    names = list(comparison.get("metrics") or [])
    for model in comparison["models"]:
        names += [m["name"] for m in model["metrics"] if m["name"] not in names]
    where = f", jeu de données {comparison['benchmark']}" if comparison.get("benchmark") else ""
    print(
        f"  tâche {comparison['task']}{where}" if comparison.get("task") else "  tâches différentes"
    )
    for name in names:
        cells = []
        for model in comparison["models"]:
            entry = next(
                (m for m in model["metrics"] if m["name"] == name and m["verified"]), None
            ) or next((m for m in model["metrics"] if m["name"] == name), None)
            if entry is None or entry.get("value") is None:
                cells.append(f"{model['ref']} —")
            else:
                mark = "vérifié" if entry["verified"] else "déclaré"
                cells.append(f"{model['ref']} {fr(entry['value'], units.get(name, ''))} ({mark})")
        print(f"  {name} : " + " | ".join(cells))
    if not comparison["comparable"]:
        print("  non comparables :")
        for reason in comparison["reasons"]:
            print(f"    - {reason}")


def autumn_2018_csv(folder: Path, canteens: int = 4) -> Path:
    """A labelled CSV of one's own, French style: meals served in autumn 2018 in a few canteens.

    Rows after the reference benchmark's year (2017-2018), from the shipped
    Nantes open data (``demos/cantine/data``): each site mapped to its canteen
    as the reference model's data loader does, canteen-days with meals served,
    Wednesdays excluded, the strike days marked « oui ».
    """

    def read(name: str) -> list[dict[str, str]]:
        with (CANTINE_DATA / name).open(encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    canteen_of = {
        (row["site_nom"], row["site_type"]): row["cantine_nom"].strip()
        for row in read("mapping_frequentation_cantines.csv")
        if row["cantine_nom"].strip()
    }
    strikes = {row["date"] for row in read("greves.csv")}
    served: dict[tuple[str, str], int] = {}
    for row in read("frequentation.csv"):
        canteen = canteen_of.get((row["site_nom"], row["site_type"]))
        day = dt.date.fromisoformat(row["date"])
        if canteen is None or day < dt.date(2018, 9, 1) or day.weekday() == 2 or not row["reel"]:
            continue
        key = (canteen, row["date"])
        served[key] = served.get(key, 0) + round(float(row["reel"]))
    chosen = sorted({canteen for canteen, _ in served})[:canteens]
    path = folder / "cantines-rentree-2018.csv"
    with path.open("w", newline="", encoding="utf-8-sig") as handle:  # a BOM, as Excel writes
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(["date", "cantine_nom", "greve", "reel"])
        for (canteen, day), meals in sorted(served.items(), key=lambda item: item[0][::-1]):
            if canteen in chosen and meals > 0:
                french_day = dt.date.fromisoformat(day).strftime("%d/%m/%Y")
                writer.writerow([french_day, canteen, "oui" if day in strikes else "non", meals])
    return path


def same_task_models(client: Any, name: str, task: str) -> tuple[list[str], str | None]:
    """Other models of the catalogue on ``task``, and one model of another task (if any)."""
    same, other = [], None
    for item in client.models(per_page=100)["items"]:
        if item["name"] == name:
            continue
        their = client.model_evaluations(item["name"]).get("task")
        ref = f"{item['name']}@production" if "production" in item["aliases"] else item["name"]
        if their == task:
            same.append(ref)
        elif other is None:
            other = ref
    return same, other


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Évaluer un modèle du catalogue bibia, le comparer, l'essayer sur ses données."
    )
    parser.add_argument(
        "model", nargs="?", default=DEFAULT_MODEL, help=f"modèle (défaut : {DEFAULT_MODEL})"
    )
    parser.add_argument(
        "--csv", type=Path, help="votre CSV étiqueté (sinon un fichier d'essai est écrit)"
    )
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="attente maximale d'une évaluation (s)"
    )
    args = parser.parse_args(argv)

    token = os.environ.get("BIBIA_TOKEN")
    if not token:
        print(
            "erreur : BIBIA_TOKEN n'est pas défini (jeton d'un agent : bibia token create --role member)",
            file=sys.stderr,
        )
        return 2
    if args.csv is not None and not args.csv.is_file():
        print(f"erreur : fichier introuvable : {args.csv}", file=sys.stderr)
        return 2

    from bibia.client import BibiaClient
    from bibia.errors import exit_code_for
    from domain.errors import BibiaError
    from registry.refs import ModelRef

    try:
        ref = ModelRef.parse(args.model)
    except BibiaError as exc:
        print(f"erreur : {exc.message}", file=sys.stderr)
        return 2

    with BibiaClient(token=token) as client:
        try:
            # 1. The shared tasks.
            tasks = {t["slug"]: t for t in client.tasks()}
            print(f"{len(tasks)} tâches partagées :")
            for task in tasks.values():
                benches = ", ".join(task["benchmarks"]) or "aucun jeu de données"
                print(
                    f"  {task['slug']} — {task['title']} (principale : {task['primary']} ; {benches})"
                )

            results = client.model_evaluations(ref.name)
            slug = results.get("task")
            if slug not in tasks:
                print(
                    f"erreur : le modèle {ref.name} n'est rattaché à aucune tâche ; "
                    "son expert peut la choisir (PUT /api/v1/models/{nom}/evaluation-settings)",
                    file=sys.stderr,
                )
                return 2
            task = tasks[slug]
            print(f"\n{ref} relève de la tâche « {task['title']} » ({slug})")

            # 2. A verified evaluation on the task's reference benchmark.
            benches = client.benchmarks(task=slug)
            reference = next(
                (b for b in benches if b["reference"]), benches[0] if benches else None
            )
            if reference is None:
                print(
                    f"aucun jeu de données de référence pour la tâche {slug} : pas d'évaluation vérifiée"
                )
            else:
                print(
                    f"\névaluation vérifiée sur « {reference['title']} » "
                    f"({reference['slug']}/{reference['version']}, {fr(reference['n_rows'])} lignes, "
                    f"empreinte {reference['content_hash'][:12]}…)"
                )
                job = client.evaluate(str(ref), benchmark=reference["slug"])
                print(f"évaluation {job['id']} demandée : {job['model']} version {job['version']}")
                job = follow(client, job, args.timeout)
                show_result(client, job, task)

            # 3. Compare two versions, the task's other models, then a model of another task.
            same, other = same_task_models(client, ref.name, slug)
            refs = [str(ref), f"{ref.name}/1", *same]
            print(f"\ncomparaison de {', '.join(refs)} :")
            units = {m["name"]: m["unit"] for m in task["metrics"]}
            show_comparison(client.compare(refs), units)
            if not same:
                print(f"  (aucun autre modèle de la tâche {slug} dans le catalogue)")
            if other is not None:
                print(f"\ncomparaison de {ref} avec {other}, d'une autre tâche :")
                show_comparison(client.compare([str(ref), other]), units)

            # 4. The model on a labelled CSV of one's own.
            if args.csv is not None:
                mine = args.csv
            elif slug == "cantine-frequentation":
                mine = autumn_2018_csv(Path(tempfile.mkdtemp(prefix="bibia-evaluation-")))
                print(f"\nfichier étiqueté écrit (« ; », jj/mm/aaaa, oui/non) : {mine}")
            else:
                print("\npas de fichier étiqueté : indiquez le vôtre avec --csv")
                return 0
            job = client.evaluate(str(ref), data=mine)
            print(f"évaluation {job['id']} demandée sur votre fichier {mine.name}")
            job = follow(client, job, args.timeout)
            show_result(client, job, task)
            print(
                "ce résultat est privé à votre collectivité (publiez-le depuis la page du modèle)"
            )
            return 0
        except Failed as exc:
            print(f"erreur : l'évaluation n'a pas abouti : {exc.reason}", file=sys.stderr)
            return exc.code
        except BibiaError as exc:
            print(f"erreur : {exc.message}", file=sys.stderr)
            return exit_code_for(exc)
        except KeyboardInterrupt:
            print("\ninterrompu", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
