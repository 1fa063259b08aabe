"""Next-day air-pollution peak forecasting for Lille (synthetic data).

``build(out_dir)`` trains, evaluates and saves the ``pics-pollution-lille``
reference model; see ``demos/air/README.md``.
"""

from demos.air.build import build

__all__ = ["build"]
