"""Stand-ins for the reference packages, for tests of the seed's start-up path.

Each module has a reference package's shape (``MODEL_NAME``, ``build``) and
builds in a moment: a copy of the MLflow model directory named by
``BIBIA_TEST_MODEL_DIR`` and the reference model's real card (figures stood
in, :mod:`tests.reference_cards`), so that a test can start several replicas
that seed at once without training anything.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from demos.reference import ReferenceBuild
from tests.reference_cards import reference_card


def stand_in(name: str, card_of: str, project: str, model_dir: Path) -> ReferenceBuild:
    shutil.copytree(os.environ["BIBIA_TEST_MODEL_DIR"], model_dir)
    card = reference_card(card_of).model_dump(mode="json")
    metrics = {m["name"]: m["value"] for m in card["model"]["evaluation"]["metrics"]}
    return ReferenceBuild(
        name=name,
        model_dir=model_dir,
        card=card,
        metrics=metrics,
        baseline_metrics={},
        project=project,
    )
