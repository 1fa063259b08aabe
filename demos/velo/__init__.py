"""Reference model ``velo-anomalies-nantes``: bike-counter anomaly detection, Nantes."""

from demos.velo.build import NAME as MODEL_NAME
from demos.velo.build import build

__all__ = ["MODEL_NAME", "build"]
