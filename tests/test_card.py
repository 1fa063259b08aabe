"""The model card: validation (every problem, field by field, in French) and public exports."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from bibia.errors import exit_code_for, status_for
from domain.errors import InvalidCard
from registry.card import SUMMARY_MAX, Card, parse_card
from registry.export import to_etalab, to_hf_readme
from registry.tiers import Tier, hidden_paths


def full_card(card_data: dict) -> dict:
    """The example card with every tiered field filled, so that leaks can be seen."""
    card = copy.deepcopy(card_data)
    card["model"]["documentation_url"] = "https://docs.example.org/nantes/eau-batiments-interne"
    card["accountability"]["internal_documents"] = [
        {"title": "Note interne sur les seuils", "url": "https://intranet.example.org/note-seuils"}
    ]
    return card


def values_at(data: Any, dotted: str) -> list[str]:
    """Every leaf value (as text) under ``dotted`` in ``data``."""
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return []
        node = node[part]
    leaves: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif value is not None:
            leaves.append(str(value))

    walk(node)
    return leaves


def secret_values(card: dict, tier: Tier) -> list[str]:
    """Values of every card field a caller of ``tier`` must not see."""
    found = [v for path in hidden_paths(Card, tier) for v in values_at(card, path)]
    return [v for v in found if len(v) > 3]


def problems_of(data: Any) -> dict[str, str]:
    with pytest.raises(InvalidCard) as info:
        parse_card(data)
    details = info.value.details
    assert isinstance(details, list) and details, "InvalidCard must list its problems"
    assert status_for(info.value) == 422 and exit_code_for(info.value) == 2
    assert f"{len(details)} problème(s)" in info.value.message
    return {d["field"]: d["message"] for d in details}


def test_example_card_is_valid(card_data: dict) -> None:
    card = parse_card(card_data)
    assert card.identification.owner.siren == "244400404"
    assert card.search_tags()["bibia.search"].startswith("prevision de la consommation d'eau")


def test_every_problem_is_listed_field_by_field_in_french(card_data: dict) -> None:
    bad = copy.deepcopy(card_data)
    del bad["purpose"]
    bad["identification"]["summary"] = "x" * SUMMARY_MAX
    bad["identification"]["owner"]["siren"] = "24440040"
    bad["identification"]["theme"] = "astrologie"
    bad["identification"]["couleur"] = "bleu"
    bad["data"]["dpia"] = {"done": False}
    bad["model"]["code_url"] = "ftp://git.example.org/x"
    bad["accountability"]["public_contact"] = "pas-une-adresse"
    bad["data"]["personal_data"] = "peut-être"
    bad["model"]["evaluation"]["metrics"][0]["value"] = "beaucoup"
    bad["identification"]["keywords"] = "eau"
    bad["identification"]["created"] = "hier"

    found = problems_of(bad)

    expected = {
        "purpose": "champ obligatoire manquant",
        "identification.summary": f"texte trop long ({SUMMARY_MAX - 1} caractères au plus)",
        "identification.owner.siren": "format invalide : 9 chiffres, sans espace attendu",
        "identification.couleur": "champ inconnu (vérifiez l'orthographe)",
        "data.dpia": "indiquez pourquoi l'AIPD n'a pas été réalisée (champ reason)",
        "model.code_url": "format invalide : une adresse http:// ou https:// attendu",
        "accountability.public_contact": "format invalide : une adresse électronique attendu",
        "data.personal_data": "doit valoir true ou false",
        "model.evaluation.metrics.0.value": "doit être un nombre",
        "identification.keywords": "doit être une liste",
        "identification.created": "date invalide, format attendu AAAA-MM-JJ",
    }
    for field, message in expected.items():
        assert field in found, f"{field} missing from {found}"
        assert found[field] == message, (field, found[field])
    assert found["identification.theme"].startswith("valeur inconnue ; valeurs possibles : ")
    assert "transition-ecologique" in found["identification.theme"]
    assert len(found) == len(expected) + 1


def test_summary_limit_is_strictly_below_350(card_data: dict) -> None:
    card_data["identification"]["summary"] = "é" * (SUMMARY_MAX - 1)
    parse_card(card_data)
    card_data["identification"]["summary"] = "é" * SUMMARY_MAX
    assert "identification.summary" in problems_of(card_data)


@pytest.mark.parametrize(
    "missing", ["identification", "purpose", "data", "model", "accountability"]
)
def test_each_missing_section_is_named(card_data: dict, missing: str) -> None:
    del card_data[missing]
    assert problems_of(card_data) == {missing: "champ obligatoire manquant"}


def test_dpia_not_done_with_a_reason_is_fine(card_data: dict) -> None:
    card_data["data"]["dpia"] = {"done": False, "reason": "aucune donnée personnelle"}
    assert parse_card(card_data).data.dpia.reason == "aucune donnée personnelle"


@pytest.mark.parametrize("data", [None, [], "identification: x", 3])
def test_a_card_that_is_not_an_object_is_refused(data: Any) -> None:
    with pytest.raises(InvalidCard, match="objet JSON ou YAML"):
        parse_card(data)


def test_wrong_types_in_nested_lists(card_data: dict) -> None:
    card_data["accountability"]["contacts"] = [{"name": "A", "email": "a@b"}, "Bob"]
    card_data["data"]["sources"] = []
    found = problems_of(card_data)
    assert (
        found["accountability.contacts.0.email"]
        == "format invalide : une adresse électronique attendu"
    )
    assert found["accountability.contacts.1"] == "doit être un objet (clés et valeurs)"
    assert found["data.sources"] == "doit contenir au moins 1 élément(s)"


def _front_matter(readme: str) -> tuple[dict, str]:
    assert readme.startswith("---\n")
    _, front, body = readme.split("---\n", 2)
    return yaml.safe_load(front), body


def test_hf_readme_front_matter_parses_and_holds_no_restricted_value(card_data: dict) -> None:
    data = full_card(card_data)
    readme = to_hf_readme(parse_card(data), "eau-batiments")
    front, body = _front_matter(readme)
    assert front["language"] == ["fr"]
    assert front["license"] == "etalab-2.0"
    assert front["model-index"][0]["name"] == "eau-batiments"
    assert front["model-index"][0]["results"][0]["metrics"][0] == {
        "name": "mae",
        "type": "mae",
        "value": 1.8,
    }
    assert "# Prévision de la consommation d'eau des bâtiments municipaux" in body
    secrets = secret_values(data, Tier.PUBLIC)
    assert (
        "https://git.example.org/nantes/eau-batiments" in secrets
        and "Responsable données" in secrets
    )
    for value in secrets:
        assert value not in readme, value


def test_etalab_record_holds_only_public_values(card_data: dict) -> None:
    data = full_card(card_data)
    record = to_etalab(parse_card(data), "eau-batiments")
    assert record["identifiant"] == "eau-batiments"
    assert record["siren"] == "244400404"
    assert record["type_decision"] == "aide à la décision"
    assert record["aipd_realisee"] is False
    assert record["contact"] == "donnees@nantesmetropole.fr"
    text = yaml.safe_dump(record, allow_unicode=True)
    for value in secret_values(data, Tier.PUBLIC):
        assert value not in text, value


def test_unknown_licence_is_kept_by_name(card_data: dict) -> None:
    card_data["model"]["licence"] = "Licence maison"
    front, _ = _front_matter(to_hf_readme(parse_card(card_data), "x"))
    assert front["license"] == "other" and front["license_name"] == "Licence maison"


def test_a_metric_says_what_it_is_in_plain_french(card_data: dict) -> None:
    data = copy.deepcopy(card_data)
    data["model"]["evaluation"]["metrics"] = [
        {
            "name": "mae",
            "label": "Erreur absolue moyenne",
            "unit": "repas",
            "description": "Écart moyen entre repas prévus et servis ; plus bas = mieux.",
            "value": 12.0,
            "baseline": 15.0,
        },
        {"name": "n_jours_test", "kind": "contexte", "label": "Jours évalués", "value": 131},
    ]
    card = parse_card(data)
    score, fact = card.model.evaluation.metrics
    assert score.kind.value == "score" and fact.kind.value == "contexte" and fact.unit == ""


def test_a_fact_about_the_evaluation_has_no_baseline(card_data: dict) -> None:
    """A count of test days is not a score: it cannot be judged against a baseline."""
    data = copy.deepcopy(card_data)
    data["model"]["evaluation"]["metrics"] = [
        {"name": "n_jours_test", "kind": "contexte", "value": 131, "baseline": 131}
    ]
    problems = problems_of(data)
    assert any("fait de contexte" in text for text in problems.values()), problems
    data["model"]["evaluation"]["metrics"][0]["kind"] = "verdict"
    assert problems_of(data)
