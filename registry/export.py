"""A card in the formats others read: a Hugging Face README, an Etalab record.

Both exports are PUBLIC documents: they only ever contain public fields.
"""

from __future__ import annotations

from typing import Any

import yaml

from registry.card import Card
from registry.tiers import Tier, visible

_LICENCES = {
    "etalab 2.0": "etalab-2.0",
    "licence ouverte 2.0": "etalab-2.0",
    "mit": "mit",
    "eupl": "eupl-1.2",
    "eupl 1.2": "eupl-1.2",
    "apache 2.0": "apache-2.0",
}
_PIPELINE = {
    "prevision-serie-temporelle": "time-series-forecasting",
    "detection-anomalies": "tabular-classification",
    "classification": "tabular-classification",
    "regression": "tabular-regression",
    "detection-objets": "object-detection",
    "segmentation-image": "image-segmentation",
    "traitement-texte": "text-classification",
}


def _public(card: Card) -> dict[str, Any]:
    return visible(card, Tier.PUBLIC)


def to_hf_readme(card: Card, name: str) -> str:
    """A Hugging Face style model card: YAML front matter, then Markdown in French."""
    c = _public(card)
    ident, purpose, data, model, acc = (
        c["identification"],
        c["purpose"],
        c["data"],
        c["model"],
        c["accountability"],
    )
    front: dict[str, Any] = {
        "language": ["fr"],
        "license": _LICENCES.get(model["licence"].strip().lower(), "other"),
        "library_name": "mlflow",
        "tags": ["bibia", ident["theme"], model["task"], *ident["keywords"]],
        "model-index": [
            {
                "name": name,
                "results": [
                    {
                        "task": {"type": model["task"]},
                        "metrics": [
                            {"name": m["name"], "type": m["name"], "value": m["value"]}
                            for m in model["evaluation"]["metrics"]
                        ],
                    }
                ],
            }
        ],
    }
    if front["license"] == "other":
        front["license_name"] = model["licence"]
    lines = [
        "---",
        yaml.safe_dump(front, allow_unicode=True, sort_keys=False).strip(),
        "---",
        "",
        f"# {ident['title']}",
        "",
        ident["summary"],
        "",
        f"- **Collectivité** : {ident['owner']['name']} (SIREN {ident['owner']['siren']})",
        f"- **Territoire** : {ident['territory']}",
        f"- **Thème** : {ident['theme']} — **statut** : {ident['status']}",
        f"- **Contact** : {acc['public_contact']}",
        "",
        "## Finalité",
        "",
        purpose["context"],
        "",
        f"- **Public concerné** : {purpose['affected_public']}",
        f"- **Automatisation** : {purpose['automation']}",
        f"- **Contrôle humain** : {purpose['human_oversight']}",
    ]
    if purpose.get("legal_basis"):
        lines.append(f"- **Base légale** : {purpose['legal_basis']}")
    for title, items in (
        ("Usages hors périmètre", purpose["out_of_scope"]),
        ("Risques et limites", purpose["risks_and_limits"]),
    ):
        if items:
            lines += ["", f"## {title}", "", *[f"- {item}" for item in items]]
    lines += ["", "## Données", ""]
    for src in data["sources"]:
        link = f" — {src['url']}" if src.get("url") else ""
        lic = f" ({src['licence']})" if src.get("licence") else ""
        lines.append(f"- {src['name']}{lic}{link}")
    lines.append(f"- **Données personnelles** : {'oui' if data['personal_data'] else 'non'}")
    lines += [
        "",
        "## Évaluation",
        "",
        model["evaluation"]["protocol"],
        "",
        f"Référence : {model['evaluation']['baseline']}",
        "",
    ]
    if model["evaluation"]["metrics"]:
        lines += ["| métrique | modèle | référence |", "|---|---|---|"]
        for m in model["evaluation"]["metrics"]:
            base = "" if m.get("baseline") is None else f"{m['baseline']:.4g}"
            lines.append(f"| {m['name']} | {m['value']:.4g} | {base} |")
    lines += ["", f"Licence du modèle : {model['licence']}", ""]
    return "\n".join(lines)


def to_etalab(card: Card, name: str) -> dict[str, Any]:
    """A record for Etalab's « inventaire des algorithmes publics »."""
    c = _public(card)
    ident, purpose, data, model, acc = (
        c["identification"],
        c["purpose"],
        c["data"],
        c["model"],
        c["accountability"],
    )
    return {
        "identifiant": name,
        "nom": ident["title"],
        "administration": ident["owner"]["name"],
        "siren": ident["owner"]["siren"],
        "territoire": ident["territory"],
        "description": ident["summary"],
        "objectif": purpose["context"],
        "public_concerne": purpose["affected_public"],
        "type_decision": "décision automatisée"
        if purpose["automation"] == "decision-automatisee"
        else "aide à la décision",
        "intervention_humaine": purpose["human_oversight"],
        "base_legale": purpose.get("legal_basis"),
        "donnees": [s["name"] for s in data["sources"]],
        "donnees_personnelles": data["personal_data"],
        "aipd_realisee": data["dpia"]["done"],
        "statut": ident["status"],
        "date_mise_en_service": ident.get("created"),
        "licence": model["licence"],
        "contact": acc["public_contact"],
    }
