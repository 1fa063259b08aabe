"""Un agent essaie le modèle d'une autre collectivité, sans rien installer : le démonstrateur.

Le script lance le démonstrateur d'un modèle du catalogue (dans un bac à sable
du service), attend qu'il soit prêt en affichant sa progression, le fait
prédire sur ses données d'exemple (API JSON), puis envoie un petit fichier CSV
« à soi » comme le ferait le formulaire de la page, affiche les prédictions
et récupère le CSV de résultats. Le démonstrateur est arrêté à la fin, même
en cas d'erreur ou d'interruption.

Usage ::

    export BIBIA_URL=http://127.0.0.1:8000
    export BIBIA_TOKEN=bibia_xxxxxxxx_...      # jeton d'un agent (membre) d'une collectivité
    python examples/run_demo.py [cantine-nantes@production] [--csv mes-donnees.csv]

Le modèle se désigne par ``NOM``, ``NOM@ALIAS`` ou ``NOM/VERSION``. Sans
``--csv``, le script écrit lui-même un petit fichier (quelques lignes au format
des données d'exemple) dans un dossier temporaire.
"""

from __future__ import annotations

import argparse
import csv
import html
import io
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "cantine-nantes@production"
STATES = {
    "pending": "en attente",
    "starting": "démarrage du bac à sable et chargement du modèle",
    "ready": "prêt",
    "failed": "en échec",
    "stopped": "arrêté",
    "expired": "expiré",
}


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def own_rows(sample: list[dict[str, str]], inputs: list[str]) -> list[dict[str, str]]:
    """A small file of one's own, in the model's format: a few rows unlike the first ones of the sample.

    For the canteens of Nantes, the next school week of two canteens of the
    sample; for any other model, the last rows of the sample, inputs only.
    """
    if {"date", "cantine_nom"} <= set(inputs):
        canteens = list(dict.fromkeys(row["cantine_nom"] for row in sample))[:2]
        days = [
            "2018-06-11",
            "2018-06-12",
            "2018-06-14",
            "2018-06-15",
        ]  # lundi, mardi, jeudi, vendredi
        rows = [{"date": day, "cantine_nom": name} for name in canteens for day in days]
        for row in rows:
            row.update({c: "False" for c in inputs if c not in row})  # pas de grève prévue
        return rows
    return [{c: row[c] for c in inputs} for row in sample[-5:]]


def alert_of(page: str) -> str | None:
    """The error message a demonstrator page shows, if any."""
    found = re.search(r'role="alert"[^>]*>(.*?)</', page, re.S)
    return html.unescape(found.group(1)).strip() if found else None


def show(rows: list[dict[str, Any]], limit: int = 8) -> None:
    for row in rows[:limit]:
        print("  " + " | ".join(f"{k} = {v}" for k, v in row.items()))
    if len(rows) > limit:
        print(f"  … et {len(rows) - limit} autre(s) ligne(s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Essayer un modèle du catalogue bibia dans son démonstrateur."
    )
    parser.add_argument(
        "model",
        nargs="?",
        default=DEFAULT_MODEL,
        help=f"modèle à essayer (défaut : {DEFAULT_MODEL})",
    )
    parser.add_argument(
        "--csv", type=Path, help="votre fichier CSV (sinon un petit fichier d'essai est écrit)"
    )
    parser.add_argument(
        "--timeout", type=float, default=180.0, help="attente maximale du démarrage, en secondes"
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

    import httpx

    from bibia.client import BibiaClient, raise_for_error
    from bibia.errors import exit_code_for
    from domain.errors import BibiaError, InvalidInput
    from registry.refs import ModelRef

    try:
        ref = ModelRef.parse(args.model)
    except (BibiaError, ValueError) as exc:
        print(f"erreur : {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2

    client = BibiaClient(token=token)
    demo: dict[str, Any] | None = None
    try:
        demo = client.launch_demo(str(ref))
        print(f"démonstrateur {demo['id']} demandé pour {demo['model']} version {demo['version']}")
        started, last = time.monotonic(), None

        def progress(state: dict[str, Any]) -> None:
            nonlocal last
            if state["state"] != last:
                last = state["state"]
                print(
                    f"  [{time.monotonic() - started:5.1f} s] {STATES.get(last, last)}", flush=True
                )

        demo = client.wait_demo(demo["id"], timeout=args.timeout, on_state=progress)
        if demo["state"] != "ready":
            reason = (
                demo.get("error")
                or f"toujours « {STATES.get(demo['state'], demo['state'])} » après {args.timeout:.0f} s"
            )
            print(f"erreur : le démonstrateur n'a pas démarré : {reason}", file=sys.stderr)
            return 1
        page_url = f"{client.url}{demo['url']}"
        print(f"démonstrateur prêt en {time.monotonic() - started:.1f} s : {page_url}")
        print("  (dans un navigateur : connectez-vous d'abord sur /connexion avec le même jeton)")

        model = client.model(ref.name)
        version = next(v for v in model["versions"] if v["version"] == demo["version"])
        inputs = [c["name"] for c in version["signature"]["inputs"]]
        with httpx.Client(
            base_url=page_url, headers={"Authorization": f"Bearer {token}"}, timeout=120.0
        ) as demo_http:
            # 1. The model on its own sample data, through the JSON API.
            sample_answer = demo_http.get("sample.csv")
            raise_for_error(sample_answer)
            sample = read_csv(sample_answer.text)
            records = [{c: row[c] for c in inputs} for row in sample[:5]]
            predictions = client.demo_predict(demo["id"], records)["predictions"]
            print(
                f"\nprédictions sur les {len(records)} premières lignes des données d'exemple ({len(sample)} lignes) :"
            )
            show([{**row, "→ prédiction": p} for row, p in zip(records, predictions)])

            # 2. A CSV of one's own, sent like the page's upload form.
            if args.csv is not None:
                mine = args.csv
            else:
                mine = write_csv(
                    own_rows(sample, inputs),
                    Path(tempfile.mkdtemp(prefix="bibia-demo-")) / "mes-donnees.csv",
                )
                print(f"\nfichier d'essai écrit : {mine}")
            result = demo_http.post(
                "upload", files={"file": (mine.name, mine.read_bytes(), "text/csv")}
            )
            # An accepted file is answered « 303 See Other » towards its result page
            # (resultats/<id>), so that a refresh does not send it again; a refused
            # one gets the page again with the reason.
            # (the service's proxy answers it as a path on its own origin:
            # /demos/<id>/resultats/<result>).
            found = re.fullmatch(
                r"(?:/demos/[0-9a-f]+/)?resultats/([A-Za-z0-9_-]+)",
                result.headers.get("location", ""),
            )
            if result.status_code != 303 or found is None:
                message = (
                    alert_of(result.text)
                    if "text/html" in result.headers.get("content-type", "")
                    else None
                )
                if message is None:
                    raise_for_error(result)
                    raise InvalidInput(
                        f"réponse inattendue du démonstrateur ({result.status_code})"
                    )
                raise InvalidInput(f"fichier refusé par le démonstrateur : {message}")
            location = f"resultats/{found.group(1)}"
            page = demo_http.get(location)
            raise_for_error(page)
            print(f"\npage du résultat : {page_url}{location}")
            # The download in international format (comma, decimal point), for csv.DictReader.
            download = demo_http.get(f"{location}.csv", params={"format": "international"})
            raise_for_error(download)
            rows = read_csv(download.text)
            print(f"prédictions sur votre fichier {mine.name} ({len(rows)} lignes) :")
            show(rows)
            saved = mine.with_name(f"{mine.stem}-predictions.csv")
            saved.write_bytes(download.content)
            print(f"fichier de prédictions enregistré : {saved}")
        return 0
    except BibiaError as exc:
        print(f"erreur : {exc.message}", file=sys.stderr)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        print("\ninterrompu", file=sys.stderr)
        return 130
    finally:
        if demo is not None and demo.get("state") not in {"failed", "stopped", "expired"}:
            try:
                client.stop_demo(demo["id"])
                print(f"démonstrateur {demo['id']} arrêté")
            except BibiaError as exc:
                print(
                    f"attention : le démonstrateur {demo['id']} n'a pas pu être arrêté ({exc.message}) ; "
                    "il s'arrêtera seul à la fin de sa durée de vie",
                    file=sys.stderr,
                )
        client.close()


if __name__ == "__main__":
    sys.exit(main())
