"""The whole service on each backend: both databases there, health, a registration through the API."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from bibia.app import create_app
from bibia.settings import Settings
from tests.backends.conftest import Backend
from tests.conftest import make_world, register


def test_service_serves_health_and_a_registration(
    fresh_backend: Backend, sklearn_model_dir: Path, card_data: dict
) -> None:
    settings = Settings(
        data_dir=fresh_backend.root / "data",
        database_url=fresh_backend.bibia_uri,
        mlflow_tracking_uri=fresh_backend.mlflow_uri,
        seed_on_start=False,
        runner="none",
    )
    world = make_world(settings)
    with world.client as client:
        health = client.get("/healthz")
        assert health.status_code == 200, health.text
        assert health.json()["status"] == "ok"

        created = register(world, sklearn_model_dir, card_data)
        assert created.status_code == 201, created.text
        assert (created.json()["version"], created.json()["aliases"]) == (1, ["production"])

        listing = client.get("/api/v1/models", params={"q": "batiments", "owner": "244400404"})
        assert listing.status_code == 200
        assert (
            listing.json()["total"] == 1 and listing.json()["items"][0]["name"] == "eau-batiments"
        )

        alias = client.get(
            "/api/v1/models/eau-batiments/aliases/production", headers=world.headers("expert")
        )
        assert alias.status_code == 200 and alias.json()["version"] == 1

        refused = register(world, sklearn_model_dir, card_data, role="other_expert")
        assert refused.status_code == 403

    # the data really is on this backend: a second service on the same databases sees it
    with TestClient(create_app(settings)) as client:
        detail = client.get("/api/v1/models/eau-batiments")
        assert detail.status_code == 200 and [v["version"] for v in detail.json()["versions"]] == [
            1
        ]
        assert client.get("/api/v1/models", params={"per_page": 5}).json()["total"] == 1
