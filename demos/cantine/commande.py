"""cantine-nantes, staff-order variant: the staff's order of the day corrected.

The same model as ``demos.cantine`` with one more input, the order the
canteen's staff placed for the day (``prevision``), known when the
recommendation is made (the model is decision support for that very order).
Registered as another version of ``cantine-nantes`` under the alias
``correction-commande``; ``bibia seed`` builds it as its own reference package.
"""

from __future__ import annotations

from pathlib import Path

from demos.cantine.builder import NAME, PROJECT, STAFF_ALIAS
from demos.cantine.builder import build as _build
from demos.reference import ReferenceBuild

MODEL_NAME = NAME
ALIAS = STAFF_ALIAS


def build(out_dir: Path) -> ReferenceBuild:
    """Build the staff-order variant into ``out_dir`` (see :func:`demos.cantine.builder.build`)."""
    return _build(out_dir, staff_order=True)


__all__ = ["ALIAS", "MODEL_NAME", "NAME", "PROJECT", "build"]
