"""benchmarks/evaluation.py runs: its leaderboard part, with tiny numbers, prints its table and exits 0.

No timing is asserted (a shared machine): only that the script measures what
it says, on a real app, and reports the same SQL statement count at both sizes.
"""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "evaluation.py"


def test_the_leaderboard_part_prints_its_table_and_exits_0() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--skip-sandbox", "--evaluations", "20", "--calls", "3"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "classement" in out and "objectif" in out, out
    for call in (
        "façade EvaluationService.leaderboard()",
        "GET /taches/cantine-frequentation",
        "GET /api/v1/tasks/cantine-frequentation/leaderboard",
    ):
        row = next((line for line in out.splitlines() if line.startswith(call)), None)
        assert row is not None, (call, out)
        counts = re.search(r"\| (\d+) → (\d+) +\|", row)
        assert counts is not None, row
        assert counts.group(1) == counts.group(2), row  # no statement per evaluation
    assert "20 évaluations terminées sur 20 versions de modèles" in out, out
    assert "Traceback" not in result.stderr


def test_bad_numbers_are_refused_with_a_french_message() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--skip-sandbox", "--evaluations", "0"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 2
    assert "au moins 1" in result.stderr
