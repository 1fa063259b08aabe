"""The model card of ``velo-anomalies-nantes``: its prose in ``card.yaml``, its figures from the evaluation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from demos.cards import build_card
from demos.velo.protocol import Outcome

CARD_FILE = Path(__file__).with_name("card.yaml")


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
    figures = {
        "date_de_construction": dt.date.today().isoformat(),
        "fenetre_niveau": p["fenetre_niveau"],
        "f1": m["f1"],
        "f1_compteur_seul": solo["f1"],
        "n_compteurs_test": x["n_compteurs_test"],
        "n_jours_test": x["n_jours_test"],
        "n_evenements_injectes": x["n_evenements_injectes"],
        "jours_anomaux": int(m["n_anomalies_injectees"]),
        "f1_reglage_2018": x["f1_reglage_2018"],
        "f1_reglage_2018_reference": x["f1_reglage_2018_reference"],
        "semaines_reference": bp["semaines"],
        "espace_reference": "log" if bp["espace"] == "log" else "comptages bruts",
        "seuil_reference": bp["seuil"],
    }
    pairs = {key: (m[key], b[key]) for key in b}
    pairs["f1_compteur_seul"] = (solo["f1"], b["f1"])
    for kind in ("panne", "derive", "pic"):
        key = f"rappel_{kind}"
        pairs[key] = (x["rappel_par_type"][key], x["rappel_par_type_reference"][key])
    values = {
        key: {"value": round(float(value), 4), "baseline": round(float(reference), 4)}
        for key, (value, reference) in pairs.items()
    }
    return build_card(CARD_FILE, figures, values)
