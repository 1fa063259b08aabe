"""What every reference model hands to the catalogue.

A reference model (``demos/cantine``, ``demos/velo``, ``demos/air``) exposes
``build(out_dir: Path) -> ReferenceBuild``. ``build`` trains the model on the
shipped data, evaluates it against its named baseline, and writes a complete
MLflow model directory (``MLmodel``, signature, input example) into
``out_dir``. ``bibia seed`` then registers that directory with the registry
facade exactly as an expert's upload would be registered: the service never
imports, loads or unpickles the model itself.

Files the demonstrator and the catalogue read inside the model directory, by
convention (all optional for expert uploads, always present for reference
models):

- ``bibia/sample.csv``      the sample data the demonstrator runs on
- ``bibia/evaluation.png``  the evaluation chart
- ``bibia/metrics.json``    ``{"model": {...}, "baseline": {...}}``
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluation.benchmark_data import BenchmarkData

SAMPLE_FILE = "bibia/sample.csv"
CHART_FILE = "bibia/evaluation.png"
METRICS_FILE = "bibia/metrics.json"


@dataclass(frozen=True)
class ReferenceBuild:
    """The result of building one reference model.

    Attributes:
        name: registered model name, e.g. ``"cantine-nantes"``.
        model_dir: the MLflow model directory written by ``build``.
        card: the model card as a plain dict (validated by the registry).
        metrics: the model's metrics on the evaluation protocol.
        baseline_metrics: the named baseline's metrics on the same protocol.
        project: slug of the catalogue project the model belongs to.
        alias: the alias to point at the new version.
        extra: secondary figures of the protocol.
        benchmark: exactly the rows the evaluation scored (the task's input and
            truth columns) with their provenance; ``bibia seed`` registers it
            as the model's reference benchmark.
    """

    name: str
    model_dir: Path
    card: dict[str, Any]
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    project: str
    alias: str = "production"
    extra: dict[str, Any] = field(default_factory=dict)
    benchmark: BenchmarkData | None = None
