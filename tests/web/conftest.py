"""Fixtures of the web tests: one in-process service with a project and two models, shared by a module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from tests.conftest import EXAMPLE_CARD, World, make_world, register
from tests.web.browser import launched_chromium
from tests.web.webdata import (
    MODEL,
    OTHER,
    PROJECT,
    PROJECT_SLUG,
    model_card,
    model_with_chart,
    other_card,
)


@pytest.fixture(scope="module")
def site(sklearn_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """``eau-batiments`` (with an evaluation chart, in project ``eau-nantes``) and a second model.

    Read-only: tests that log in use their own client (:func:`browser`), so no cookie leaks between tests.
    """
    from bibia.settings import Settings

    tmp = tmp_path_factory.mktemp("web")
    world = make_world(Settings(data_dir=tmp / "data", seed_on_start=False, runner="none"))
    card_data = yaml.safe_load(EXAMPLE_CARD.read_text(encoding="utf-8"))
    with world.client:
        response = world.client.put(
            f"/api/v1/projects/{PROJECT_SLUG}", json=PROJECT, headers=world.headers("expert")
        )
        assert response.status_code == 201, response.text
        charted = model_with_chart(sklearn_model_dir, tmp / "charted")
        response = register(world, charted, model_card(card_data), name=MODEL)
        assert response.status_code == 201, response.text
        response = register(world, sklearn_model_dir, other_card(card_data), name=OTHER, alias=None)
        assert response.status_code == 201, response.text
        yield world


@pytest.fixture
def browser(site: World) -> TestClient:
    """A fresh client (its own cookie jar) on the shared service."""
    return TestClient(site.app)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, launched once per module (:func:`tests.web.browser.launched_chromium`)."""
    with launched_chromium() as browser:
        yield browser
