"""The model card of ``velo-anomalies-nantes``: its prose in ``card.yaml``, its figures from the evaluation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from demos.cards import build_card
from demos.velo.protocol import Outcome

CARD_FILE = Path(__file__).with_name("card.yaml")
#: The family's figures the card states for the model and the baseline alike.
FAMILY_METRICS = (
    "f1_moyenne",
    "f1_ecart_type",
    "f1_p05",
    "precision_moyenne",
    "precision_ecart_type",
    "recall_moyenne",
    "recall_ecart_type",
)


def make_card(outcome: Outcome) -> dict[str, Any]:
    """Build the card from the evaluation outcome.

    Args:
        outcome: the result of :func:`demos.velo.protocol.run`.

    Returns:
        A dict valid against ``registry.card.Card``.
    """
    m, b, x, p, bp = (
        outcome.metrics,
        outcome.baseline_metrics,
        outcome.extra,
        outcome.params,
        outcome.baseline_params,
    )
    solo = x["modele_compteur_seul"]
    val = x["validation"]
    types = x["rappel_par_type_famille"]
    types_ref = x["rappel_par_type_famille_reference"]
    figures = {
        "date_de_construction": dt.date.today().isoformat(),
        "fenetre_niveau": p["fenetre_niveau"],
        "duree_longue": p.get("duree_longue", 0),
        "seuil_jour": p["seuil_jour"],
        "seuil_hausse": p.get("seuil_hausse", p["seuil_jour"]),
        "f1": m["f1"],
        "f1_moyenne": m["f1_moyenne"],
        "f1_ecart_type": m["f1_ecart_type"],
        "f1_moyenne_reference": b["f1_moyenne"],
        "f1_ecart_type_reference": b["f1_ecart_type"],
        "precision_moyenne": m["precision_moyenne"],
        "recall_moyenne": m["recall_moyenne"],
        "f1_compteur_seul": solo["f1"],
        "n_tirages": x["n_tirages_test"],
        "n_tirages_validation": val["tirages_par_annee"] * len(val["annees"]),
        "n_compteurs_test": x["n_compteurs_test"],
        "n_jours_test": x["n_jours_test"],
        "n_evenements_injectes": x["n_evenements_injectes"],
        "jours_anomaux": int(m["n_anomalies_injectees"]),
        "f1_validation": val["modele"]["f1"],
        "f1_validation_version_3": val["version_3"]["f1"],
        "f1_moyenne_version_3": x["version_3_famille"]["f1"]["moyenne"],
        "seuil_proba": p["seuil_proba"],
        "tirages_apprentissage": x["apprentissage"]["tirages_par_annee"],
        "f1_validation_reference": val["reference"]["f1"],
        "rappel_panne_famille": types.get("rappel_panne", 0.0),
        "rappel_derive_famille": types.get("rappel_derive", 0.0),
        "rappel_pic_famille": types.get("rappel_pic", 0.0),
        "rappel_derive_famille_reference": types_ref.get("rappel_derive", 0.0),
        "rappel_pic_famille_reference": types_ref.get("rappel_pic", 0.0),
        "semaines_reference": bp["semaines"],
        "espace_reference": "log" if bp["espace"] == "log" else "comptages bruts",
        "seuil_reference": bp["seuil"],
    }
    pairs = {
        key: (m[key], b[key])
        for key in ("precision", "recall", "f1", "accord_drapeau_nantes", "n_anomalies_injectees")
    }
    pairs.update({key: (m[key], b[key]) for key in FAMILY_METRICS})
    pairs["f1_compteur_seul"] = (solo["f1"], b["f1"])
    for kind in ("panne", "derive", "pic"):
        key = f"rappel_{kind}"
        pairs[key] = (x["rappel_par_type"][key], x["rappel_par_type_reference"][key])
    values = {
        key: {"value": round(float(value), 4), "baseline": round(float(reference), 4)}
        for key, (value, reference) in pairs.items()
    }
    return build_card(CARD_FILE, figures, values)
