"""The README's tour works when pasted: run its bash block, verbatim, against a real service.

Only the service address and the scratch directory are substituted (the
tour uses http://127.0.0.1:8000 and /tmp, which belong to the person
reading it).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, running_service

pytestmark = pytest.mark.slow


def tour_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## A tour", 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "README's tour has no bash block"
    return match.group(1)


@pytest.fixture
def seeded_server(tmp_path: Path):
    env = {"BIBIA_SEED_ON_START": "true"}
    # the first start trains the reference models
    with running_service(tmp_path / "data", tmp_path / "server.log", env, timeout=300) as server:
        yield server.url, {**os.environ, "BIBIA_DATA_DIR": str(server.data_dir)}


def test_readme_tour_runs_as_written(seeded_server, tmp_path: Path):
    url, env = seeded_server
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    script = tour_block().replace("http://127.0.0.1:8000", url).replace("/tmp/", f"{scratch}/")
    result = subprocess.run(
        ["bash", "-e", "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output
    assert "cantine-nantes" in result.stdout
    assert '"contacts"' in result.stdout  # the member sees named contacts
    assert "eau-batiments" in result.stdout
    assert (scratch / "velo-model" / "MLmodel").is_file()
    assert "model.alias" in result.stdout  # the audit log shows the alias move
