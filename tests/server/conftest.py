"""Fixtures for the demonstrator server tests: fixture models and in-process clients."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.fixtures.models import make_model

FORECAST_CARD = {
    "identification": {
        "title": "Fréquentation des cantines",
        "summary": "Prévoit les repas servis.",
        "owner": {"name": "Nantes Métropole", "siren": "244400404"},
    },
    "purpose": {
        "context": "Réduire le gaspillage.",
        "automation": "aide-a-la-decision",
        "risks_and_limits": ["Grèves imprévues"],
    },
    "model": {
        "task": "prevision-serie-temporelle",
        "evaluation": {
            "baseline": "commandes du personnel",
            "metrics": [{"name": "mae", "value": 12.5, "baseline": 20}],
        },
    },
}
ANOMALY_CARD = {
    "title": "Compteurs vélo",
    "summary": "Repère les comptages anormaux.",
    "task": "detection-anomalies",
}


@pytest.fixture(scope="session")
def fixture_model(tmp_path_factory) -> Callable[..., Path]:
    """``fixture_model(kind, card=None, **params)``: a fixture model directory, built once per session."""
    cache: dict[tuple, Path] = {}

    def get(kind: str, card: dict | None = None, **params) -> Path:
        key = (kind, repr(card), tuple(sorted(params.items())))
        if key not in cache:
            cache[key] = make_model(
                kind, tmp_path_factory.mktemp(kind) / "model", card=card, **params
            )
        return cache[key]

    return get


@pytest.fixture(scope="session")
def demo_client(fixture_model) -> Callable[..., TestClient]:
    """``demo_client(kind, card=None, **settings)``: the app in-process on a fixture model."""
    from demos.server.app import create_app
    from demos.server.model import DemoModel
    from demos.server.settings import Settings

    loaded: dict[tuple, DemoModel] = {}

    def make(kind: str, card: dict | None = None, **settings) -> TestClient:
        key = (kind, repr(card))
        if key not in loaded:
            loaded[key] = DemoModel.load(fixture_model(kind, card=card))
        model = loaded[key]
        return TestClient(create_app(model, Settings(model_dir=model.model_dir, **settings)))

    return make
