"""examples/pull_model.py, run as a developer would, against a real service."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_CARD, ROOT, cli
from tests.fixtures.models import make_model

SCRIPT = ROOT / "examples" / "pull_model.py"


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _run(url: str, token: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "BIBIA_"))}
    env.update({"BIBIA_URL": url, "BIBIA_TOKEN": token, "DO_NOT_TRACK": "true"})
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )


@pytest.mark.slow
def test_pull_model_example_predicts_on_the_sample(live_server, tmp_path: Path) -> None:
    data_dir = live_server.data_dir
    _ok(
        cli(
            data_dir,
            "org",
            "create",
            "nantes-metropole",
            "--name",
            "Nantes Métropole",
            "--siren",
            "244400404",
        )
    )
    tokens = {
        role: _ok(cli(data_dir, "token", "create", "--org", "nantes-metropole", "--role", role))
        .strip()
        .splitlines()[-1]
        for role in ("expert", "member")
    }
    model_dir = make_model("ok", tmp_path / "model")  # y = 2x, with bibia/sample.csv
    env = {"BIBIA_URL": live_server.url, "BIBIA_TOKEN": tokens["expert"]}
    _ok(
        cli(
            data_dir,
            "model",
            "register",
            "double-x",
            "--card",
            str(EXAMPLE_CARD),
            "--model-dir",
            str(model_dir),
            "--alias",
            "production",
            env=env,
        )
    )

    result = _run(live_server.url, tokens["expert"], "double-x@production")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Modèle chargé : models:/double-x@production" in result.stdout
    assert "Données : bibia/sample.csv, 20 lignes" in result.stdout
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 10
    for x, y in rows:
        assert float(y) == pytest.approx(2 * float(x))

    refused = _run(live_server.url, tokens["member"], "double-x@production")
    assert refused.returncode == 1
    assert "Erreur : impossible de récupérer models:/double-x@production" in refused.stderr
    assert "PERMISSION_DENIED" in refused.stderr and "réservé aux experts" in refused.stderr
