"""examples/run_demo.py, run as an agent would run it, against a live service with Docker demonstrators."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, LiveServer, cli, running_service
from tests.demos_service.conftest import (  # noqa: F401 - fixtures
    container_ids,
    demo_image,
    reference_builds,
    remove_instance_containers,
)

SCRIPT = ROOT / "examples" / "run_demo.py"

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture
def docker_live_server(demo_image: str) -> Iterator[LiveServer]:  # noqa: F811
    """``live_server`` with ``BIBIA_RUNNER=docker`` and the test's demonstrator image, on a short data dir."""
    from bibia.services import instance_id
    from bibia.settings import Settings

    root = Path(tempfile.mkdtemp(prefix="bds-live-", dir="/tmp"))
    data_dir = root / "data"
    env = {"BIBIA_RUNNER": "docker", "BIBIA_DEMO_IMAGE": demo_image}
    try:
        with running_service(data_dir, root / "server.log", env) as server:
            yield server
    finally:
        remove_instance_containers(instance_id(Settings(data_dir=data_dir)))
        subprocess.run(["rm", "-rf", str(root)], check=False)


def run_script(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in {"BIBIA_TOKEN", "BIBIA_URL"}}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env={**full, **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=400,
    )


def test_agent_runs_the_cantine_demonstrator_on_sample_data_and_own_csv(
    docker_live_server: LiveServer,
    reference_builds,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    from bibia.client import BibiaClient

    server = docker_live_server
    data = server.data_dir
    assert (
        cli(
            data,
            "org",
            "create",
            "nantes-metropole",
            "--name",
            "Nantes Métropole",
            "--siren",
            "244400404",
        ).returncode
        == 0
    )
    expert = (
        cli(data, "token", "create", "--org", "nantes-metropole", "--role", "expert")
        .stdout.strip()
        .splitlines()[-1]
    )
    member = (
        cli(data, "token", "create", "--org", "nantes-metropole", "--role", "member")
        .stdout.strip()
        .splitlines()[-1]
    )
    cantine = reference_builds["demos.cantine"]
    card = {
        **cantine.card,
        "identification": {
            k: v for k, v in cantine.card["identification"].items() if k != "project"
        },
    }
    with BibiaClient(server.url, token=expert) as client:
        client.register("cantine-nantes", cantine.model_dir, card, alias="production")

    missing = run_script({"BIBIA_URL": server.url})
    assert missing.returncode == 2 and "BIBIA_TOKEN n'est pas défini" in missing.stderr

    env = {"BIBIA_URL": server.url, "BIBIA_TOKEN": member}
    result = run_script(env)  # the default model: cantine-nantes@production
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert "demandé pour cantine-nantes version 1" in out
    assert "démarrage du bac à sable" in out or "en attente" in out
    assert "démonstrateur prêt en" in out
    assert "prédictions sur les 5 premières lignes des données d'exemple" in out
    assert "prédictions sur votre fichier mes-donnees.csv (8 lignes)" in out
    assert "fichier de prédictions enregistré" in out
    assert out.rstrip().endswith("arrêté")

    demos = httpx.get(
        f"{server.url}/api/v1/demos",
        params={"all": "true"},
        headers={"Authorization": f"Bearer {member}"},
    ).json()
    assert len(demos) == 1 and demos[0]["state"] == "stopped"
    assert container_ids(demos[0]["id"]) == []

    # An agent's own CSV with a mistake: a clear French message, exit code, and the demo still stopped.
    wrong = tmp_path / "faux.csv"
    wrong.write_text("jour,cantine\n2018-06-11,LONGCHAMP\n", encoding="utf-8")
    refused = run_script(env, "cantine-nantes", "--csv", str(wrong))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "fichier refusé par le démonstrateur : Colonne(s) manquante(s)" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert refused.stdout.rstrip().endswith("arrêté")

    unknown = run_script(env, "inconnu@production")
    assert unknown.returncode == 4 and "introuvable" in unknown.stderr
