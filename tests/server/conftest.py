"""Fixtures for the demonstrator server tests: fixture models and in-process clients."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.demos_service.conftest import cached_builds
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
def demo_client(fixture_model, tmp_path_factory) -> Callable[..., TestClient]:
    """``demo_client(kind, card=None, model_name=None, **settings)``: the app in-process on a fixture
    model; with ``model_name``, as bibia places it (``bibia/demo.json`` names the registered model)."""
    from demos.server.app import create_app
    from demos.server.model import DemoModel
    from demos.server.settings import Settings

    loaded: dict[tuple, DemoModel] = {}

    def make(
        kind: str, card: dict | None = None, model_name: str | None = None, **settings
    ) -> TestClient:
        key = (kind, repr(card), model_name)
        if key not in loaded:
            model_dir = fixture_model(kind, card=card)
            if model_name is not None:
                placed = tmp_path_factory.mktemp("placed") / "model"
                shutil.copytree(model_dir, placed)
                (placed / "bibia" / "demo.json").write_text(
                    json.dumps({"model": model_name, "version": 1}), encoding="utf-8"
                )
                model_dir = placed
            loaded[key] = DemoModel.load(model_dir)
        model = loaded[key]
        settings.setdefault("results_dir", tmp_path_factory.mktemp("resultats"))
        return TestClient(create_app(model, Settings(model_dir=model.model_dir, **settings)))

    return make


@pytest.fixture(scope="session")
def cantine_client(request, tmp_path_factory) -> TestClient:
    """The app in-process on the cantine reference model (trained once, cached by fingerprint),
    with its card as bibia places it."""
    return _cantine_app(request, tmp_path_factory, "demos.cantine")


@pytest.fixture(scope="session")
def cantine_staff_client(request, tmp_path_factory) -> TestClient:
    """The same on cantine-nantes' staff-order variant (``demos.cantine.commande``)."""
    return _cantine_app(request, tmp_path_factory, "demos.cantine.commande")


def _cantine_app(request, tmp_path_factory, package: str) -> TestClient:
    import demos.cantine
    from demos.server.app import create_app
    from demos.server.model import DemoModel
    from demos.server.settings import Settings

    build = cached_builds(request, tmp_path_factory, (package,))[package]
    placed = tmp_path_factory.mktemp("cantine") / "model"
    shutil.copytree(build.model_dir, placed)
    (placed / "bibia" / "card.json").write_text(
        json.dumps(build.card, default=str), encoding="utf-8"
    )
    (placed / "bibia" / "demo.json").write_text(
        json.dumps({"model": demos.cantine.MODEL_NAME, "version": 1}), encoding="utf-8"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
        model = DemoModel.load(placed)
    settings = Settings(model_dir=placed, results_dir=tmp_path_factory.mktemp("resultats"))
    return TestClient(create_app(model, settings))
