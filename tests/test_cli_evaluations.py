"""``bibia task``, ``benchmark``, ``evaluate``, ``evaluation`` and ``compare``, run for real in a
subprocess against a live service whose worker runs evaluations (process runner): French
messages, the documented exit codes, never a traceback."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LiveServer, cli, running_service
from tests.demos_service.conftest import (  # noqa: F401 - fixtures
    fixture_card,
    fixture_models,
    reference_builds,
)
from tests.test_cli import flat, ok, refused

pytestmark = pytest.mark.slow


@pytest.fixture
def evaluating_server() -> Iterator[LiveServer]:
    """A live service running evaluations in host processes (fixture models are trusted here).

    Under a short ``/tmp/bds-*`` directory: a sandbox's socket path must stay under 108 bytes.
    """
    root = Path(tempfile.mkdtemp(prefix="bds-cli-", dir="/tmp"))
    env = {"BIBIA_RUNNER": "process", "BIBIA_ALLOW_UNTRUSTED_PROCESS_RUNNER": "true"}
    try:
        with running_service(root / "data", root / "server.log", env) as server:
            yield server
    finally:
        subprocess.run(["rm", "-rf", str(root)], check=False)


def token(data: Path, org: str, role: str) -> str:
    return ok(cli(data, "token", "create", "--org", org, "--role", role)).strip().splitlines()[-1]


def accounts(server: LiveServer) -> dict[str, dict[str, str]]:
    """Environments for the CLI: an expert and a member of Nantes, a member of Lyon, anonymous."""
    data = server.data_dir
    ok(
        cli(
            data,
            "org",
            "create",
            "nantes-metropole",
            "--name",
            "Nantes Métropole",
            "--siren",
            "244400404",
        )
    )
    ok(cli(data, "org", "create", "lyon", "--name", "Métropole de Lyon", "--siren", "200046977"))
    base = {"BIBIA_URL": server.url, "COLUMNS": "200"}  # rich's tables, one line per row
    return {
        "expert": {**base, "BIBIA_TOKEN": token(data, "nantes-metropole", "expert")},
        "member": {**base, "BIBIA_TOKEN": token(data, "nantes-metropole", "member")},
        "lyon": {**base, "BIBIA_TOKEN": token(data, "lyon", "member")},
        "anonymous": base,
    }


def job_id(output: str) -> str:
    found = re.search(r"évaluation (\S+) demandée", output)
    assert found, output
    return found.group(1)


def test_evaluate_on_own_data_failures_listing_and_cancel(
    evaluating_server: LiveServer,
    fixture_models,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    from bibia.client import BibiaClient

    server = evaluating_server
    data = server.data_dir
    env = accounts(server)
    with BibiaClient(server.url, env["expert"]["BIBIA_TOKEN"]) as client:
        client.register("doublement", fixture_models("ok"), fixture_card("Doublement"))
        client.register("mauvaise-forme", fixture_models("wrong_shape"), fixture_card("Mauvaise"))

    tasks = ok(cli(data, "task", "ls", env=env["anonymous"]))
    assert "regression" in tasks and "(générique)" in tasks
    regression = json.loads(
        ok(cli(data, "task", "show", "regression", "--json", env=env["anonymous"]))
    )
    assert regression["primary"] == "mae"
    shown = flat(ok(cli(data, "task", "show", "regression", env=env["anonymous"])))
    assert "vérité terrain (jamais envoyée au modèle)" in shown and "(principale)" in shown
    refused(cli(data, "task", "show", "inconnue", env=env["anonymous"]), 4, "erreur :")

    # A labelled CSV of one's own, French style: « ; » and decimal commas. y = 2x, observed ≠ 2x.
    observed = [1.1, 2.0, 2.9, 4.2, 5.0, 5.8, 7.1, 8.0]
    mine = tmp_path / "mes-mesures.csv"
    mine.write_text(
        "x;observe\n"
        + "".join(
            f"{str(0.5 * (i + 1)).replace('.', ',')};{str(v).replace('.', ',')}\n"
            for i, v in enumerate(observed)
        ),
        encoding="utf-8",
    )
    expected_mae = sum(abs(2 * 0.5 * (i + 1) - v) for i, v in enumerate(observed)) / len(observed)
    on_mine = ["--data", str(mine), "--task", "regression", "--truth-column", "observe"]

    refused(cli(data, "evaluate", "doublement", *on_mine, env=env["anonymous"]), 3, "erreur :")
    done = ok(cli(data, "evaluate", "doublement", *on_mine, env=env["member"]))
    text = flat(done)
    ident = job_id(done)
    assert "doublement version 1 sur mes-mesures.csv, 8 lignes" in text
    assert "(principale)" in text and regression["baseline_name"] in text
    assert "résultat privé à votre collectivité" in text
    assert f"{server.url}/evaluations/{ident}" in text
    assert "coût mesuré :" in text and "s de calcul (CPU)" in text
    job = json.loads(ok(cli(data, "evaluation", "show", ident, "--json", env=env["member"])))
    assert job["state"] == "done" and job["kind"] == "donnees" and job["n_rows"] == 8
    assert job["metrics"]["mae"] == pytest.approx(expected_mae, abs=1e-9)
    assert job["baseline_metrics"]["mae"] > job["metrics"]["mae"]

    # Private to Nantes: Lyon and the public do not see it.
    refused(cli(data, "evaluation", "show", ident, env=env["lyon"]), 4, "erreur :")
    public = json.loads(ok(cli(data, "evaluation", "ls", "--json", env=env["anonymous"])))
    assert ident not in [j["id"] for j in public]
    mine_listed = ok(cli(data, "evaluation", "ls", "--mine", env=env["member"]))
    assert ident in mine_listed and "terminée" in mine_listed

    # A model that answers one prediction too many: a failed job, its reason, exit code 8.
    failed = cli(data, "evaluate", "mauvaise-forme", *on_mine, env=env["member"])
    text = refused(failed, 8, "échec de l'évaluation :")
    bad = json.loads(
        ok(cli(data, "evaluation", "show", job_id(failed.stdout), "--json", env=env["member"]))
    )
    assert bad["state"] == "failed" and bad["error"] and bad["error"] in text
    assert "Traceback" not in bad["error"]

    # Bad input: clear French messages and the error tree's exit codes.
    wrong = tmp_path / "faux.csv"
    wrong.write_text("a;b\n1;2\n", encoding="utf-8")
    refused(
        cli(
            data,
            "evaluate",
            "doublement",
            "--data",
            str(wrong),
            "--task",
            "regression",
            "--truth-column",
            "observe",
            env=env["member"],
        ),
        2,
        "erreur :",
    )
    refused(cli(data, "evaluate", "doublement", "--benchmark", "inconnu", env=env["member"]), 4)
    refused(cli(data, "evaluate", "inconnu@production", *on_mine, env=env["member"]), 4)
    refused(cli(data, "evaluate", "doublement", env=env["member"]), 2, "l'un des deux")
    refused(
        cli(
            data,
            "evaluate",
            "doublement",
            "--benchmark",
            "b",
            "--task",
            "regression",
            env=env["member"],
        ),
        2,
        "ne vont qu'avec --data",
    )
    refused(cli(data, "evaluation", "show", "../../etc", env=env["member"]), 2)

    # --no-wait returns at once; cancel stops it (or finds it already finished).
    queued = ok(cli(data, "evaluate", "doublement", *on_mine, "--no-wait", env=env["member"]))
    later = job_id(queued)
    assert f"bibia evaluation show {later} --wait" in queued
    refused(cli(data, "evaluation", "cancel", later, env=env["lyon"]), 4)
    cancelled = ok(cli(data, "evaluation", "cancel", later, env=env["member"]))
    final = json.loads(ok(cli(data, "evaluation", "show", later, "--json", env=env["member"])))
    if final["state"] == "cancelled":
        assert f"évaluation {later} : annulée" in cancelled or "déjà terminée" in cancelled
        refused(cli(data, "evaluation", "show", later, "--wait", env=env["member"]), 1)
    else:
        assert final["state"] == "done" and "déjà terminée" in cancelled
    again = ok(cli(data, "evaluation", "cancel", later, env=env["member"]))
    assert "déjà terminée" in again


def french_benchmark_csv(frame, path: Path) -> Path:
    """The benchmark's rows as a collectivité's spreadsheet exports them: « ; », dd/mm/yyyy, oui/non."""
    french = frame.copy()
    french["date"] = [f"{d[8:10]}/{d[5:7]}/{d[0:4]}" for d in french["date"]]
    french["greve"] = ["oui" if g else "non" for g in french["greve"]]
    french.to_csv(path, sep=";", index=False, encoding="utf-8-sig")
    return path


def test_benchmark_register_verified_evaluation_leaderboard_and_compare(
    evaluating_server: LiveServer,
    reference_builds,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    from bibia.client import BibiaClient

    server = evaluating_server
    data = server.data_dir
    env = accounts(server)
    cantine = reference_builds["demos.cantine"]
    card = {
        **cantine.card,
        "identification": {
            k: v for k, v in cantine.card["identification"].items() if k != "project"
        },
    }
    with BibiaClient(server.url, env["expert"]["BIBIA_TOKEN"]) as client:
        client.register("cantine-nantes", cantine.model_dir, card, alias="production")
        client.register("cantine-nantes", cantine.model_dir, card)  # version 2, same model

    tasks = ok(cli(data, "task", "ls", env=env["anonymous"]))
    assert "cantine-frequentation" in tasks and "velo-anomalies" in tasks
    shown = flat(ok(cli(data, "task", "show", "cantine-frequentation", env=env["anonymous"])))
    assert "repas_prevus" in shown and "moyenne du même jour de la semaine" in shown

    bench = cantine.benchmark
    french = french_benchmark_csv(bench.frame, tmp_path / "cantines-2017-2018.csv")
    register = [
        "benchmark",
        "register",
        str(french),
        "--slug",
        bench.slug,
        "--task",
        bench.task,
        "--title",
        bench.title,
        "--licence",
        "Licence Ouverte 2.0",
        "--visibility",
        "public",
        "--producer",
        bench.producer,
        "--period-start",
        str(bench.period_start),
        "--period-end",
        str(bench.period_end),
    ]
    refused(cli(data, *register, env=env["member"]), 3, "erreur :")
    created = flat(ok(cli(data, *register, env=env["expert"])))
    assert (
        f"jeu de données {bench.slug} version 1 enregistré ({len(bench.frame):,} lignes".replace(
            ",", " "
        )
        in created
    )
    # The same rows written the plain way (« , », ISO dates): the same content, refused.
    plain = tmp_path / "plain.csv"
    bench.frame.to_csv(plain, index=False)
    refused(
        cli(data, *[str(plain) if a == str(french) else a for a in register], env=env["expert"]),
        5,
        "erreur :",
    )
    refused(cli(data, *register[:-2], "--visibility", "secret", env=env["expert"]), 2)

    listed = ok(cli(data, "benchmark", "ls", env=env["anonymous"]))
    assert bench.slug in flat(listed)
    shown = flat(ok(cli(data, "benchmark", "show", bench.slug, env=env["anonymous"])))
    assert "empreinte (sha256)" in shown and "Nantes Métropole" in shown

    # The verified evaluation: a progress bar, then metrics beside the baseline.
    result = cli(
        data, "evaluate", "cantine-nantes@production", "--benchmark", bench.slug, env=env["lyon"]
    )
    out = flat(ok(result))
    ident = job_id(result.stdout)
    assert "cantine-nantes version 1 sur" in out and "(principale)" in out
    assert "moyenne du même jour de la semaine" in out
    assert "coût mesuré :" in out and "gCO2e" in out
    assert "%" in result.stderr  # the progress bar
    job = json.loads(ok(cli(data, "evaluation", "show", ident, "--json", env=env["anonymous"])))
    assert job["verified"] and job["state"] == "done"
    for name in ("mae", "wmape"):
        assert job["metrics"][name] == pytest.approx(cantine.metrics[name], rel=1e-3, abs=1e-3)

    board = flat(
        ok(cli(data, "task", "leaderboard", "cantine-frequentation", env=env["anonymous"]))
    )
    assert "cantine-nantes v1 (production)" in board and ident in board
    assert "référence naïve : moyenne du même jour de la semaine" in board
    wide = flat(
        ok(
            cli(
                data,
                "task",
                "leaderboard",
                "cantine-frequentation",
                "--sort",
                "mae",
                "--order",
                "asc",
                "--metrics",
                "mae,wmape,surproduction",
                env=env["anonymous"],
            )
        )
    )
    assert "mae ▲" in wide and "surproduction" in wide
    refused(cli(data, "task", "leaderboard", "cantine-frequentation", "--order", "haut"), 2)
    refused(
        cli(
            data,
            "task",
            "leaderboard",
            "cantine-frequentation",
            "--metrics",
            "justesse",
            env=env["anonymous"],
        ),
        2,
        "métrique(s) inconnue(s)",
    )

    compared = flat(
        ok(
            cli(
                data,
                "compare",
                "cantine-nantes@production",
                "cantine-nantes/2",
                "--metrics",
                "mae,wmape",
                env=env["anonymous"],
            )
        )
    )
    assert "cantine-nantes@production" in compared and "cantine-nantes/2" in compared
    assert "✓" in compared and "vérifié par la plateforme" in compared
    as_json = json.loads(
        ok(
            cli(
                data,
                "compare",
                "cantine-nantes@production",
                "cantine-nantes/2",
                "--json",
                env=env["anonymous"],
            )
        )
    )
    assert [m["ref"] for m in as_json["models"]] == [
        "cantine-nantes@production",
        "cantine-nantes/2",
    ]
    refused(cli(data, "compare", "cantine-nantes@production"), 2, "au moins deux modèles")
