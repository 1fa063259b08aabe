"""The catalogue's match count (MLflow internals on a database store) against MLflow's public search."""

from __future__ import annotations

import logging
import re
import tomllib
from pathlib import Path

import mlflow
import pytest

from registry import mlflow_count
from registry.mlflow_client import connect
from registry.mlflow_count import TESTED_MLFLOW, count_registered_models, internals_tested

ROOT = Path(__file__).resolve().parents[1]
PROMPT_TAG = "mlflow.prompt.is_prompt"
MODELS = {
    "cantine-nantes": {"bibia.theme": "education", "bibia.search": "cantines scolaires nantes"},
    "cantine-lille": {"bibia.theme": "education", "bibia.search": "cantines lille"},
    "creches-rennes": {"bibia.theme": "education", "bibia.search": "creches rennes"},
    "eau-batiments": {"bibia.theme": "transition-ecologique", "bibia.search": "eau batiments"},
    "eau-fuites": {"bibia.theme": "transition-ecologique", "bibia.search": "fuites eau"},
    "velo-nantes": {"bibia.theme": "mobilites"},
    "sans-tags": {},
}
# MLflow keeps a prompt as a registered model; the client hides prompts, and so must the count.
PROMPT = "invite-cantine"
FILTERS = [
    None,
    "name LIKE 'eau-%'",
    "name = 'absent'",
    "tags.`bibia.theme` = 'education'",
    "tags.`bibia.search` ILIKE '%cantines%' AND tags.`bibia.theme` = 'education'",
    "tags.`bibia.theme` != 'mobilites'",
    f"tags.`{PROMPT_TAG}` = 'true'",
    f"tags.`bibia.theme` = 'education' AND tags.`{PROMPT_TAG}` = 'true'",
]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("count")
    made = connect(f"sqlite:///{root / 'mlflow.db'}")
    for name, tags in MODELS.items():
        made.create_registered_model(name, tags=tags)
    made.register_prompt(PROMPT, "Menu du {{ jour }}", tags={"bibia.theme": "education"})
    return made


def public_count(client, filter_string: str | None) -> int:
    return len(client.search_registered_models(filter_string=filter_string, max_results=1000))


@pytest.mark.parametrize("filter_string", FILTERS)
def test_the_database_count_matches_the_public_search(client, filter_string, monkeypatch) -> None:
    def no_paging(*args: object) -> int:
        raise AssertionError("the database store must be counted in SQL, not page by page")

    monkeypatch.setattr(mlflow_count, "_count_by_pages", no_paging)
    assert count_registered_models(client, filter_string) == public_count(client, filter_string)


def test_the_prompt_is_not_counted(client) -> None:
    assert count_registered_models(client, "tags.`bibia.theme` = 'education'") == 3
    assert count_registered_models(client, None) == len(MODELS)
    asked = f"tags.`bibia.theme` = 'education' AND tags.`{PROMPT_TAG}` = 'true'"
    assert count_registered_models(client, asked) == 1  # it is there, with the same theme


def test_another_mlflow_release_counts_with_the_public_api_and_says_so(
    client, monkeypatch, caplog
) -> None:
    def no_internals(*args: object) -> int:
        raise AssertionError("MLflow internals must not be used on an untested release")

    monkeypatch.setattr(mlflow_count, "_count_in_database", no_internals)
    monkeypatch.setattr(mlflow, "__version__", "3.18.0")
    internals_tested.cache_clear()
    with caplog.at_level(logging.WARNING, logger="registry.mlflow_count"):
        for filter_string in FILTERS:
            assert count_registered_models(client, filter_string) == public_count(
                client, filter_string
            )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "MLflow 3.18.0" in warnings[0]  # once per release


@pytest.mark.parametrize(
    ("version", "tested"),
    [("3.17.2", True), ("3.17.0", True), ("3.18.0", False), ("4.17.0", False), ("3.1.7", False)],
)
def test_the_guard_reads_major_and_minor(version: str, tested: bool) -> None:
    assert internals_tested(version) is tested


def test_the_pinned_mlflow_is_the_tested_release() -> None:
    """Bumping MLflow's pin means reading the internals again, then moving TESTED_MLFLOW."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [d for d in project["project"]["dependencies"] if d.startswith("mlflow==")]
    assert len(pins) == 1
    major, minor = (int(part) for part in re.findall(r"\d+", pins[0])[:2])
    assert (major, minor) == TESTED_MLFLOW
    assert internals_tested(mlflow.__version__)
