"""Reference cards: prose from card.yaml, figures from the evaluation (fast: made-up figures, no training)."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import yaml

from demos.air.card import card as air_card
from demos.cantine.card import card as cantine_card
from demos.cards import build_card
from demos.velo.card import make_card as velo_card
from domain import french
from registry.card import Card

DEMOS = Path(__file__).resolve().parents[2] / "demos"


def metric_names(model: str) -> list[str]:
    prose = yaml.safe_load((DEMOS / model / "card.yaml").read_text(encoding="utf-8"))
    return [entry["name"] for entry in prose["model"]["evaluation"]["metrics"]]


def strings(node: object) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in strings(value)]
    return [node] if isinstance(node, str) else []


def metrics_of(card: dict) -> dict[str, tuple[float, float | None]]:
    return {
        m["name"]: (m["value"], m.get("baseline")) for m in card["model"]["evaluation"]["metrics"]
    }


def test_cantine_card() -> None:
    keys = metric_names("cantine")
    metrics = {key: 0.011 * (i + 1) for i, key in enumerate(keys)}
    baseline = {key: 0.1 + 0.013 * (i + 1) for i, key in enumerate(keys)}
    metrics["jours_en_deficit"], baseline["jours_en_deficit"] = 1.0, 4.0
    card = cantine_card(metrics, baseline, validation={"part_deficit_visee": 0.17})
    Card.model_validate(card)
    expected = {key: (metrics[key], baseline[key]) for key in keys}
    expected["n_jours_test"] = (metrics["n_jours_test"], None)  # a fact: stated, not compared
    assert metrics_of(card) == expected
    risks = card["purpose"]["risks_and_limits"][0]
    # French figures: « 5,5 % » (narrow no-break space), the day in the singular under 2, each
    # stated against the staff's orders, never against an internal target
    assert f"en trop {french.percent(metrics['surproduction'])} contre" in risks
    assert f"{french.percent(baseline['surproduction'])} pour les équipes" in risks
    assert "insuffisante 1 jour sur" in risks and "(équipes : 4 jours)" in risks
    assert "(s)" not in risks and "visés" not in risks
    assert "17\u202f%" in card["model"]["evaluation"]["protocol"]
    staff = cantine_card(
        metrics, baseline, True, {"part_deficit_visee": 0.16, "garde_commande_equipes": 0.99}
    )
    Card.model_validate(staff)
    assert metrics_of(staff) == expected
    assert any("prevision" in line for line in staff["model"]["inputs"])
    assert "16\u202f%" in staff["model"]["evaluation"]["protocol"]
    assert "99\u202f%" in staff["model"]["evaluation"]["protocol"]
    assert "99\u202f%" in staff["purpose"]["context"]
    assert staff["identification"]["owner"] == card["identification"]["owner"]
    assert (
        f"pondérée de {french.percent(metrics['wmape'])}"
        in card["accountability"]["lessons_learned"]
    )
    texts = strings(card)
    assert not [
        t
        for t in texts
        if "`" in t or "wMAPE" in t or "MAE" in t or "%" in t.replace("\u202f%", "")
    ]
    by_name = {m["name"]: m for m in card["model"]["evaluation"]["metrics"]}
    assert by_name["mae"]["label"] == "Erreur absolue moyenne" and by_name["mae"]["unit"] == "repas"
    assert by_name["n_jours_test"]["kind"] == "contexte"
    assert all(m.get("label") and m.get("description") for m in by_name.values())


def test_velo_card() -> None:
    keys = ["precision", "recall", "f1", "accord_drapeau_nantes", "n_anomalies_injectees"]
    family = [f"{k}_{s}" for k in ("precision", "recall", "f1") for s in ("moyenne", "ecart_type")]
    family += ["f1_p05"]
    kinds = ["rappel_panne", "rappel_derive", "rappel_pic"]
    outcome = types.SimpleNamespace(
        metrics={key: 0.812345 + i / 100 for i, key in enumerate(keys + family)}
        | {"n_anomalies_injectees": 951.0},
        baseline_metrics={key: 0.612345 + i / 100 for i, key in enumerate(keys + family)},
        extra={
            "modele_compteur_seul": {"f1": 0.7777},
            "rappel_par_type": {key: 0.9 for key in kinds},
            "rappel_par_type_reference": {key: 0.5 for key in kinds},
            "rappel_par_type_famille": {key: 0.8 for key in kinds},
            "rappel_par_type_famille_reference": {key: 0.6 for key in kinds},
            "n_compteurs_test": 41,
            "n_jours_test": 365,
            "n_evenements_injectes": 410,
            "n_tirages_test": 24,
            "validation": {
                "annees": [2017, 2018],
                "tirages_par_annee": 6,
                "modele": {"f1": 0.8123},
                "version_3": {"f1": 0.7901},
                "reference": {"f1": 0.7012},
            },
            "version_3_famille": {"f1": {"moyenne": 0.7712}},
            "apprentissage": {"tirages_par_annee": 32},
        },
        params={
            "fenetre_niveau": 63,
            "duree_longue": 5,
            "seuil_jour": 8.0,
            "seuil_hausse": 4.5,
            "seuil_proba": 0.84,
        },
        baseline_params={"semaines": 8, "seuil": 3.5, "espace": "brut"},
    )
    card = velo_card(outcome)
    Card.model_validate(card)
    found = metrics_of(card)
    assert list(found) == metric_names("velo")
    assert found["f1"] == (0.8323, 0.6323) and found["f1_compteur_seul"] == (0.7777, 0.6323)
    assert found["rappel_pic"] == (0.9, 0.5)
    assert found["f1_moyenne"] == (0.9023, 0.7023)
    protocol = card["model"]["evaluation"]["protocol"]
    assert "(41 compteurs, 365 jours)" in protocol and "410 événements et 951 jours" in protocol
    assert "24 tirages" in protocol and "12 tirages" in protocol
    assert "validation 0,812 contre 0,701" in protocol
    assert "32 tirages simulés par année" in protocol and "son seuil 0,84" in protocol
    assert "0,812 contre 0,790 pour la version 3" in protocol
    assert "obtenait 0,77 sur les mêmes tirages" in card["accountability"]["lessons_learned"]
    assert card["model"]["evaluation"]["baseline"].startswith(
        "Médiane glissante du même jour de semaine (±8 semaines, comptages bruts) ± 3,5 MAD"
    )
    missed = card["purpose"]["risks_and_limits"][0]
    assert missed.startswith("Ce que le modèle manque le plus") and "80\u202f% des jours" in missed
    dips = card["purpose"]["risks_and_limits"][1]
    assert "n'est signalée que si elle est très forte" in dips
    assert "surtout des pics ; anomalies rares" in protocol
    assert "probabilité atteint 0,84" in card["purpose"]["context"]
    assert (
        "F1 moyen de 0,90 (écart-type 0,91) contre 0,70"
        in card["accountability"]["lessons_learned"]
    )
    assert "n_anomalies_injectees" in found and found["n_anomalies_injectees"][1] is None
    assert all(
        m.get("label") and m.get("description") for m in card["model"]["evaluation"]["metrics"]
    )


def test_air_card() -> None:
    pooled = ["taux_detection", "taux_fausses_alertes", "brier"]
    skills = {"brier_skill_score_persistance": 0.31, "brier_skill_score_climatologie": 0.42}
    blocks = {key: 0.2 for key in pooled}
    extra = {
        "evenements_test": 33,
        "jours_test": 1095,
        "brier_climatologie": 0.016,
        "brier_persistance_binaire": 0.014,
        "par_polluant": {p: {"modele": blocks, "persistance": blocks} for p in ("PM10", "O3")},
    }
    metrics = {"taux_detection": 0.7, "taux_fausses_alertes": 0.25, "brier": 0.01, **skills}
    baseline = {"taux_detection": 0.5, "taux_fausses_alertes": 0.4, "brier": 0.02}
    card = air_card(metrics, baseline, extra)
    Card.model_validate(card)
    found = metrics_of(card)
    assert list(found) == metric_names("air")
    assert found["brier"] == (0.01, 0.02) and found["brier_climatologie"] == (0.016, None)
    labels = [m["label"] for m in card["model"]["evaluation"]["metrics"]]
    assert "Taux de détection (PM10)" in labels and not [x for x in labels if "_" in x]
    assert found["brier_skill_score_persistance"] == (0.31, 0.0)
    assert found["O3/taux_detection"] == (0.2, 0.2)
    assert "(1095 jours × 2 polluants, 33 dépassements)" in card["model"]["evaluation"]["protocol"]
    assert any(s.startswith("Fausses alertes : 25\u202f% des alertes") for s in strings(card))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "card.yaml"
    path.write_text(text, encoding="utf-8")
    return path


CARD = """\
identification:
  title: "{part:.0%} des repas, {{entre accolades}}"
model:
  evaluation:
    metrics:
      - name: mae
        description: Erreur absolue moyenne
"""


def test_figures_are_filled_and_values_merged(tmp_path: Path) -> None:
    card = build_card(
        write(tmp_path, CARD), {"part": 0.25}, {"mae": {"value": 1.5, "baseline": 2.0}}
    )
    assert card["identification"]["title"] == "25\u202f% des repas, {entre accolades}"
    assert card["model"]["evaluation"]["metrics"] == [
        {"name": "mae", "description": "Erreur absolue moyenne", "value": 1.5, "baseline": 2.0}
    ]


@pytest.mark.parametrize(
    ("title", "message"),
    [
        ("{absent}", "« {absent} » : chiffre inconnu"),
        ("{part.real}", "un nom de chiffre simple est attendu"),
        ("{part[0]}", "un nom de chiffre simple est attendu"),
        ("{0}", "un nom de chiffre simple est attendu"),
        ("{part", "card.yaml : "),
    ],
)
def test_a_text_names_only_given_figures(tmp_path: Path, title: str, message: str) -> None:
    path = write(
        tmp_path, CARD.replace('"{part:.0%} des repas, {{entre accolades}}"', f'"{title}"')
    )
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("{", r"\{")):
        build_card(path, {"part": 0.25}, {"mae": {"value": 1.5}})


@pytest.mark.parametrize(
    ("text", "figures", "shown"),
    [
        ("{x:.1%}", {"x": 0.0541}, "5,4\u202f%"),
        ("{x:.3f}", {"x": 0.5234}, "0,523"),
        ("{x:.1f}", {"x": 12345.67}, "12\u202f345,7"),
        ("{x}", {"x": 2017}, "2017"),  # a year is never grouped
        ("{x}", {"x": 0.25}, "0,25"),
        ("{x:.0f|jour}", {"x": 0}, "0 jour"),
        ("{x:.0f|jour}", {"x": 1}, "1 jour"),
        ("{x:.0f|jour}", {"x": 4}, "4 jours"),
        ("{x:|repas}", {"x": 12}, "12 repas"),
        ("{x}", {"x": "brut"}, "brut"),
        ("4,5 % visés", {}, "4,5\u202f% visés"),
    ],
)
def test_figures_are_written_the_french_way(
    tmp_path: Path, text: str, figures: dict[str, object], shown: str
) -> None:
    path = write(tmp_path, CARD.replace('"{part:.0%} des repas, {{entre accolades}}"', f'"{text}"'))
    card = build_card(path, figures, {"mae": {"value": 1.5}})
    assert card["identification"]["title"] == shown


def test_a_fact_about_the_evaluation_keeps_no_baseline(tmp_path: Path) -> None:
    path = write(tmp_path, CARD.replace("description: Erreur absolue moyenne", "kind: contexte"))
    card = build_card(path, {"part": 0.25}, {"mae": {"value": 131.0, "baseline": 131.0}})
    assert card["model"]["evaluation"]["metrics"] == [
        {"name": "mae", "kind": "contexte", "value": 131.0}
    ]


def test_the_metrics_of_the_file_and_of_the_evaluation_must_be_the_same(tmp_path: Path) -> None:
    path = write(tmp_path, CARD)
    with pytest.raises(ValueError, match="métriques de la fiche"):
        build_card(path, {"part": 0.25}, {"mae": {"value": 1.5}, "rmse": {"value": 2.0}})
    with pytest.raises(ValueError, match="une fiche"):
        build_card(write(tmp_path, "- une liste\n"), {}, {})
