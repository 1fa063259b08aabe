"""examples/register_model.py, run as an expert would run it, against a live service."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from tests.conftest import ROOT, LiveServer, cli

SCRIPT = ROOT / "examples" / "register_model.py"


def run_script(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in {"BIBIA_TOKEN", "BIBIA_URL"}}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env={**full, **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_example_registers_a_sklearn_model_in_the_catalogue(live_server: LiveServer) -> None:
    data = live_server.data_dir
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
    token = (
        cli(data, "token", "create", "--org", "nantes-metropole", "--role", "expert")
        .stdout.strip()
        .splitlines()[-1]
    )

    missing = run_script({"BIBIA_URL": live_server.url})
    assert missing.returncode == 2 and "BIBIA_TOKEN n'est pas défini" in missing.stderr

    result = run_script({"BIBIA_URL": live_server.url, "BIBIA_TOKEN": token})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "modèle entraîné : erreur absolue moyenne" in result.stdout
    assert "eau-batiments version 1, alias production" in result.stdout

    catalogue = httpx.get(f"{live_server.url}/api/v1/models", params={"q": "eau"}).json()
    assert [m["name"] for m in catalogue["items"]] == ["eau-batiments"]
    model = httpx.get(f"{live_server.url}/api/v1/models/eau-batiments").json()
    assert model["aliases"] == {"production": 1}
    version = model["versions"][0]
    assert [c["name"] for c in version["signature"]["inputs"]] == [
        "surface",
        "occupation",
        "temperature",
    ]
    assert version["metrics"]["mae"] < version["baseline_metrics"]["mae"], (
        "the trained pipeline beats its baseline"
    )
    assert model["card"]["model"]["evaluation"]["metrics"][0]["value"] == version["metrics"]["mae"]
