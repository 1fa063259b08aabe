"""cantine-nantes, with its real card and a small stand-in model."""

from pathlib import Path

from demos.reference import ReferenceBuild
from tests.replica_references import stand_in

MODEL_NAME = "cantine-nantes"


def build(model_dir: Path) -> ReferenceBuild:
    return stand_in(MODEL_NAME, "cantine-nantes", "prevision-frequentation-cantines", model_dir)
