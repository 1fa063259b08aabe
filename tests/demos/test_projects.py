"""The shipped catalogue of the seed document's projects."""

from __future__ import annotations

import pytest

from demos.projects import load_projects
from registry.card import SUMMARY_MAX, Project, Status, Theme

# The projects of the seed document ("Quelques exemples de projets IA"),
# with the theme it files them under.
SEED_PROJECTS = {
    "pics-pollution-lille": (
        "transition-ecologique",
        "Anticiper les pics de pollution de l'air plus en amont (Lille)",
    ),
    "prevision-frequentation-cantines": (
        "transition-ecologique",
        "Prévoir la fréquentation des cantines pour réduire le gaspillage alimentaire (Nantes, Lyon et Toulouse)",
    ),
    "detection-panneaux-solaires-lyon": (
        "transition-ecologique",
        "Détecter les installations de panneaux solaires (Lyon)",
    ),
    "etat-du-bati-lille": ("maintenance", "Évaluer automatiquement l'état du bâti (Lille)"),
    "maintenance-reseau-eau-potable-lyon": (
        "maintenance",
        "Planifier les maintenances sur le réseau d'eau potable (Lyon)",
    ),
    "anomalies-comptage-velo-nantes": (
        "mobilites",
        "Détecter des anomalies données de comptage vélo (Nantes)",
    ),
    "accidents-route-web-mel": (
        "mobilites",
        "Collecter plus efficacement des données issues du web relatives à des accidents de la route (MEL)",
    ),
    "frequentation-decheteries-sicoval": (
        "mobilites",
        "Cartographie et évaluation pour un service de mesure de la fréquentation des déchetteries (Sicoval)",
    ),
}
ATTACHED_MODELS = {
    "pics-pollution-lille": ["pics-pollution-lille"],
    "prevision-frequentation-cantines": ["cantine-nantes"],
    "anomalies-comptage-velo-nantes": ["velo-anomalies-nantes"],
}


def _luhn(number: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(number)):
        digit = int(char) * (2 if i % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


@pytest.fixture(scope="module")
def projects():
    return load_projects()


def test_every_seed_project_is_present_once_under_its_theme(projects):
    by_slug = {p["slug"]: p for p in projects}
    assert len(by_slug) == len(projects), "slugs must be unique"
    assert set(by_slug) == set(SEED_PROJECTS)
    for slug, (theme, _) in SEED_PROJECTS.items():
        assert by_slug[slug]["theme"] == theme


def test_records_validate_as_projects(projects):
    for record in projects:
        public = {k: v for k, v in record.items() if k != "models"}
        project = Project.model_validate(public)
        assert len(project.summary) < SUMMARY_MAX
        assert project.theme in set(Theme)
        assert project.status in set(Status)
        assert project.keywords, record["slug"]
        for owner in project.owners:
            assert _luhn(owner.siren), f"{owner.name}: SIREN {owner.siren} fails the Luhn check"


def test_shared_canteen_project_has_three_owners(projects):
    canteens = next(p for p in projects if p["slug"] == "prevision-frequentation-cantines")
    names = " ".join(o["name"] for o in canteens["owners"])
    assert len(canteens["owners"]) == 3
    for city in ("Nantes", "Lyon", "Toulouse"):
        assert city in names


def test_models_are_attached_to_their_projects(projects):
    attached = {p["slug"]: p["models"] for p in projects if p["models"]}
    assert attached == ATTACHED_MODELS


def test_air_model_points_at_its_project(projects):
    from demos.air.card import NAME, PROJECT

    assert NAME in next(p for p in projects if p["slug"] == PROJECT)["models"]


def test_bad_file_gets_a_clear_error(tmp_path):
    path = tmp_path / "projets.yaml"
    path.write_text("slug: pas-une-liste\n", encoding="utf-8")
    with pytest.raises(ValueError, match="liste de projets"):
        load_projects(path)
    path.write_text("- {slug: a}\n- {slug: a}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="en double"):
        load_projects(path)
