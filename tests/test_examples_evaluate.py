"""examples/evaluate.py, run as an evaluator would run it, against a live service with Docker sandboxes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, LiveServer, cli
from tests.demos_service.conftest import (  # noqa: F401 - fixtures
    demo_image,
    reference_builds,
)
from tests.test_examples_demo import docker_live_server  # noqa: F401 - the same live service

SCRIPT = ROOT / "examples" / "evaluate.py"

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def run_script(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in {"BIBIA_TOKEN", "BIBIA_URL"}}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env={**full, **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
    )


def without_project(card: dict) -> dict:
    ident = {k: v for k, v in card["identification"].items() if k != "project"}
    return {**card, "identification": ident}


def test_evaluator_evaluates_compares_and_tries_own_data(
    docker_live_server: LiveServer,  # noqa: F811 - the fixture imported above
    reference_builds,  # noqa: F811
    tmp_path: Path,
) -> None:
    from bibia.client import BibiaClient

    server = docker_live_server
    data = server.data_dir
    for slug, name, siren in (
        ("nantes-metropole", "Nantes Métropole", "244400404"),
        ("lyon", "Métropole de Lyon", "200046977"),
    ):
        created = cli(data, "org", "create", slug, "--name", name, "--siren", siren)
        assert created.returncode == 0, created.stderr

    def token(org: str, role: str) -> str:
        made = cli(data, "token", "create", "--org", org, "--role", role)
        assert made.returncode == 0, made.stderr
        return made.stdout.strip().splitlines()[-1]

    expert, evaluator = token("nantes-metropole", "expert"), token("lyon", "member")
    cantine, velo = reference_builds["demos.cantine"], reference_builds["demos.velo"]
    bench = cantine.benchmark
    bench_csv = tmp_path / "cantines-2017-2018.csv"
    bench.frame.to_csv(bench_csv, index=False)
    with BibiaClient(server.url, token=expert) as client:
        client.register(
            "cantine-nantes", cantine.model_dir, without_project(cantine.card), alias="production"
        )
        client.register(
            "velo-anomalies-nantes", velo.model_dir, without_project(velo.card), alias="production"
        )
        client.register_benchmark(
            bench_csv,
            slug=bench.slug,
            task=bench.task,
            title=bench.title,
            licence="Licence Ouverte 2.0",
            producer=bench.producer,
        )

    missing = run_script({"BIBIA_URL": server.url})
    assert missing.returncode == 2 and "BIBIA_TOKEN n'est pas défini" in missing.stderr

    env = {"BIBIA_URL": server.url, "BIBIA_TOKEN": evaluator}
    result = run_script(env)  # cantine-nantes@production
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Traceback" not in result.stderr
    assert "tâches partagées" in out and "cantine-frequentation" in out
    assert "relève de la tâche « Prévision de la fréquentation des cantines scolaires »" in out
    assert f"évaluation vérifiée sur « {bench.title} » ({bench.slug}/1" in out
    assert f"résultat sur {len(bench.frame):,} lignes".replace(",", "\u202f") in out
    assert "(principale) : modèle" in out and "référence" in out
    assert "coût mesuré :" in out and "gCO2e" in out
    assert "comparaison de cantine-nantes@production, cantine-nantes/1" in out
    assert "(vérifié)" in out
    assert "(aucun autre modèle de la tâche cantine-frequentation dans le catalogue)" in out
    assert "avec velo-anomalies-nantes@production, d'une autre tâche" in out
    assert "tâches différentes" in out and "non comparables" in out
    assert "fichier étiqueté écrit" in out and "résultat sur 208 lignes" in out
    assert out.rstrip().endswith("(publiez-le depuis la page du modèle)")

    # The verified result is public; the one on Lyon's own data is Lyon's only.
    public = httpx.get(f"{server.url}/api/v1/evaluations").json()
    assert [e["kind"] for e in public] == ["benchmark"]
    assert public[0]["metrics"]["wmape"] == pytest.approx(cantine.metrics["wmape"], abs=1e-3)
    lyon = httpx.get(
        f"{server.url}/api/v1/evaluations",
        params={"mine": "true"},
        headers={"Authorization": f"Bearer {evaluator}"},
    ).json()
    assert sorted(e["kind"] for e in lyon) == ["benchmark", "donnees"]
    nantes = httpx.get(
        f"{server.url}/api/v1/evaluations", headers={"Authorization": f"Bearer {expert}"}
    ).json()
    assert "donnees" not in [e["kind"] for e in nantes]

    unknown = run_script(env, "inconnu@production")
    assert unknown.returncode == 4 and "introuvable" in unknown.stderr
    assert "Traceback" not in unknown.stderr
