"""The model card of cantine-nantes (a plain dict validated by ``registry.card.Card``)."""

from __future__ import annotations

from typing import Any

from demos.cantine import train

_METRICS = {
    "mae": ("Erreur absolue moyenne des repas prévus, par cantine et par jour (repas)", False),
    "wmape": (
        "Erreur absolue pondérée des repas prévus, par cantine et par jour (fraction)",
        False,
    ),
    "surproduction": (
        "Surproduction des commandes sur les totaux journaliers : somme des excédents / somme des commandes",
        False,
    ),
    "jours_en_deficit": ("Jours où la commande totale est inférieure aux repas servis", False),
    "part_cantine_jours_en_deficit": (
        "Part des couples cantine-jour où la commande est inférieure aux repas servis",
        False,
    ),
    "n_jours_test": (
        "Nombre de jours de l'année de test (avec repas servis, hors mercredis)",
        True,
    ),
}

PROTOCOL = (
    "Apprentissage sur les années scolaires 2010-2011 à 2016-2017, test sur 2017-2018 (jamais utilisée pour "
    "régler quoi que ce soit). Unité : une cantine (87 cantines de cantines.csv) un jour donné ; les repas d'une "
    "cantine sont la somme de `reel` des sites qui lui sont rattachés. Jours évalués : jours avec repas servis, "
    "mercredis exclus (131 jours, environ 11 000 couples cantine-jour). Les facteurs de sécurité de la commande, "
    "un par cantine (quantiles propres à chaque cantine rétrécis vers ceux de l'ensemble, répartis pour viser "
    "17 % de couples cantine-jour en déficit avec le moins de repas possible), sont calés sur l'année "
    "2016-2017 mise de côté (modèle appris sur les années précédentes), puis le modèle est réappris jusqu'à "
    "2016-2017. Les réglages ont été choisis en validation (calage sur 2015-2016, évaluation sur 2016-2017). Le niveau récent d'une "
    "cantine n'utilise que les repas servis au moins 7 jours avant le jour prévu. Mesures : MAE et wMAPE des "
    "repas prévus par cantine-jour ; sur les totaux journaliers (vue de la cuisine centrale) la surproduction "
    "Σ max(commande − servis, 0) / Σ commande et le nombre de jours en déficit ; la part de couples cantine-jour "
    "en déficit. La référence est évaluée exactement de la même façon."
)


def card(
    metrics: dict[str, float], baseline: dict[str, float], fitted: train.Fitted
) -> dict[str, Any]:
    """The card, in French, with every metric beside the staff's value."""
    return {
        "identification": {
            "title": "Prévision de la fréquentation des cantines scolaires de Nantes",
            "summary": (
                "Prévoit, pour chaque cantine scolaire de Nantes et chaque jour d'école, le nombre de repas "
                "servis et recommande une commande (borne haute calibrée) pour limiter le gaspillage "
                "alimentaire sans manquer de repas."
            ),
            "owner": {"name": "Nantes Métropole", "siren": "244400404"},
            "territory": "Ville de Nantes (Loire-Atlantique)",
            "theme": "transition-ecologique",
            "status": "experimentation",
            "keywords": [
                "cantine",
                "restauration scolaire",
                "gaspillage alimentaire",
                "prévision",
                "fréquentation",
                "cuisine centrale",
                "Nantes",
            ],
            "project": "cantine-nantes",
        },
        "purpose": {
            "context": (
                "La cuisine centrale de Nantes prépare chaque jour les repas de 87 cantines scolaires à partir des "
                "commandes des équipes, qui surestiment d'environ 6 à 7 % les repas réellement servis. Le modèle "
                "donne pour chaque cantine et chaque jour les repas attendus et une commande recommandée, pour "
                "réduire la surproduction (gaspillage, coût) en gardant le risque de manquer de repas au niveau "
                "de celui des équipes."
            ),
            "affected_public": (
                "Élèves des écoles maternelles et élémentaires publiques de Nantes qui déjeunent à la "
                "cantine, leurs familles, les agents de la restauration scolaire et de la cuisine centrale."
            ),
            "automation": "aide-a-la-decision",
            "human_oversight": (
                "La commande recommandée est une proposition : les équipes de la restauration scolaire la valident ou "
                "la corrigent (sorties scolaires, événements, grèves annoncées tardivement) avant l'envoi à la "
                "cuisine centrale. Aucune décision ne concerne un élève."
            ),
            "legal_basis": (
                "Mission de service public de restauration scolaire de la commune (Code de l'éducation, "
                "art. L. 212-4 et L. 533-1) ; loi EGalim de 2018 sur la lutte contre le gaspillage alimentaire."
            ),
            "out_of_scope": [
                "Prévoir la présence d'un élève ou d'une classe en particulier (le modèle ne voit que des totaux par cantine).",
                "Fixer des effectifs d'agents ou des budgets sans validation humaine.",
                "Cantines d'autres communes sans réapprentissage sur leurs données.",
                "Jours sans école (vacances, fériés, week-ends, mercredis) : le modèle répond 0 par construction.",
            ],
            "risks_and_limits": [
                (
                    f"Objectif non atteint : surproduction {metrics['surproduction']:.1%} sur 2017-2018 contre 4,5 % visés "
                    f"(équipes : {baseline['surproduction']:.1%}), avec {metrics['jours_en_deficit']:.0f} jour(s) en "
                    f"déficit sur {metrics['n_jours_test']:.0f} (3 au plus visés ; équipes : "
                    f"{baseline['jours_en_deficit']:.0f}) et {metrics['part_cantine_jours_en_deficit']:.1%} de "
                    f"couples cantine-jour en déficit (équipes : {baseline['part_cantine_jours_en_deficit']:.1%})."
                ),
                (
                    "Les petites cantines et les cantines régulières reçoivent une marge plus large que les grandes "
                    "cantines variables : ces dernières manquent plus souvent "
                    "et doivent compter sur les stocks de dépannage."
                ),
                (
                    "Le niveau récent d'une cantine vient de l'historique livré avec le modèle (jusqu'au 21/12/2018) : "
                    "au-delà, il reste figé au dernier niveau connu et la précision se dégrade ; le modèle doit être "
                    "réappris avec les données récentes avant tout usage réel."
                ),
                (
                    "Les grèves doivent être connues à l'avance (colonne greve) ; une grève non signalée entraîne une "
                    "forte surproduction ce jour-là."
                ),
                (
                    "Le calendrier des vacances fourni (zone B) contredit les données de 2015-2016 et 2016-2017 sur "
                    "quelques semaines où des repas ont été servis ; ces jours sont écartés de l'apprentissage."
                ),
                "Les menus ne couvrent que septembre 2016 à février 2017 dans l'extrait : ils ne sont pas utilisés.",
                (
                    "Un déficit au niveau d'une cantine se compense en pratique par les stocks de dépannage ; le modèle "
                    "ne le garantit pas."
                ),
            ],
        },
        "data": {
            "sources": [
                {
                    "name": "Nombre de convives par jour, cantines de Nantes (2011-2018, extrait)",
                    "url": "https://data.nantesmetropole.fr/explore/dataset/244400404_nombre-convives-jour-cantine-nantes-2011/",
                    "licence": "MIT (extrait du dépôt nantesmetropole/school_meal_forecast_xgboost)",
                    "description": "Repas commandés (prevision) et servis (reel) par site et par jour, calendriers, grèves.",
                },
                {
                    "name": "Effectifs des élèves des écoles publiques de Nantes",
                    "url": "https://data.nantesmetropole.fr/explore/dataset/244400404_effectifs-eleves-ecoles-publiques-maternelles-elementaires-nantes/",
                    "licence": "MIT (extrait du dépôt nantesmetropole/school_meal_forecast_regressions)",
                    "description": "Élèves par école et par année scolaire, rattachés aux cantines.",
                },
                {
                    "name": "Code source d'origine de Nantes Métropole",
                    "url": "https://github.com/nantesmetropole/school_meal_forecast_xgboost",
                    "licence": "MIT",
                    "description": "Projet de prévision de Nantes Métropole dont proviennent les extraits.",
                },
            ],
            "personal_data": False,
            "dpia": {
                "done": False,
                "reason": (
                    "Aucune donnée personnelle : des totaux de repas par cantine et par jour, "
                    "des calendriers et des effectifs agrégés par école."
                ),
            },
            "licence": "Licence MIT (Copyright (c) 2020 Nantes Métropole) pour les extraits livrés",
        },
        "model": {
            "task": "prevision-serie-temporelle",
            "inputs": [
                "date (texte AAAA-MM-JJ)",
                "cantine_nom (nom exact de cantines.csv)",
                "greve (booléen, facultatif : à défaut, le calendrier des grèves connues)",
            ],
            "outputs": [
                "repas_prevus (repas attendus)",
                "commande_recommandee (borne haute calibrée, à commander)",
            ],
            "training_period": {"start": "2011-01-03", "end": "2017-07-07"},
            "evaluation": {
                "protocol": PROTOCOL,
                "baseline": "Commandes des équipes de restauration scolaire (colonne prevision)",
                "metrics": [
                    {
                        "name": key,
                        "value": float(metrics[key]),
                        "baseline": float(baseline[key]),
                        "description": text,
                        "higher_is_better": higher,
                    }
                    for key, (text, higher) in _METRICS.items()
                ],
            },
            "licence": "EUPL-1.2",
            "code_url": "https://github.com/nantesmetropole/school_meal_forecast_xgboost",
            "documentation_url": "https://github.com/nantesmetropole/school_meal_forecast_xgboost#readme",
            "environmental_cost": (
                "Négligeable : deux paires de modèles à gradient boosting apprises en une dizaine de "
                "secondes sur un cœur de processeur, sans GPU."
            ),
        },
        "accountability": {
            "public_contact": "restauration.scolaire@mairie-nantes.fr",
            "supplier": "Aucun : développement interne (modèle de référence de bibia)",
            "contacts": [
                {
                    "name": "Responsable données",
                    "role": "Direction du numérique, Nantes Métropole",
                    "email": "donnees@nantesmetropole.fr",
                },
                {
                    "name": "Responsable de la cuisine centrale",
                    "role": "Direction de l'éducation, Ville de Nantes",
                    "email": "restauration.scolaire@mairie-nantes.fr",
                },
            ],
            "team": "Équipe données de Nantes Métropole avec la direction de l'éducation (restauration scolaire).",
            "lessons_learned": (
                "Le niveau récent de chaque cantine est la variable la plus utile : l'écart des repas prévus aux "
                f"repas servis (wMAPE {metrics['wmape']:.1%}) est nettement inférieur à celui des commandes des "
                f"équipes ({baseline['wmape']:.1%}, marge comprise). Répartir la marge cantine par cantine (marges fines pour les grandes cantines, "
                "larges pour les petites) baisse la surproduction d'environ un point à part de déficit égale, mais "
                "l'erreur commune à toutes les cantines un jour donné (écart-type d'environ 3,5 % sur le total) "
                "empêche d'atteindre 4,5 % sans jours en déficit. Nantes a rapporté qu'une "
                "borne haute de modèle avait réduit la surproduction de 9,6 % à 6,5 % en 2018-2019."
            ),
        },
    }
