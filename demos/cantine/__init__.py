"""cantine-nantes: school-canteen attendance and recommended orders, Nantes.

``build(out_dir)`` trains on the shipped open data (``data/``), evaluates
against the staff's own orders and writes the MLflow model directory; see
README.md (in French) for the data, features, protocol and results.
"""

from demos.cantine.builder import ALIAS, NAME, PROJECT, build

MODEL_NAME = NAME

__all__ = ["ALIAS", "MODEL_NAME", "NAME", "PROJECT", "build"]
