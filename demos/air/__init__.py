"""Next-day air-pollution peak forecasting for Lille (synthetic data).

``build(out_dir)`` trains, evaluates and saves the ``pics-pollution-lille``
reference model; see ``demos/air/README.md``.
"""

from demos.air.build import build
from demos.air.card import NAME as MODEL_NAME

__all__ = ["MODEL_NAME", "build"]
