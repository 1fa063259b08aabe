"""The model card of ``velo-anomalies-nantes`` (French, as a plain dict)."""

from __future__ import annotations

import datetime as dt

from demos.velo.protocol import Outcome

DATA_URL_DAILY = "https://www.data.gouv.fr/fr/datasets/comptages-velo-de-nantes-metropole/"
DATA_URL_HOURLY = (
    "https://data.nantesmetropole.fr/explore/dataset/244400404_comptages-velo-nantes-metropole/"
)
DATA_URL_LOOPS = "https://data.nantesmetropole.fr/explore/dataset/244400404_comptages-velo-nantes-metropole-boucles-comptage/"
COPY_URL = "https://github.com/yoannlv/velos-nantesmetropole"

_LABELS = {
    "precision": (
        "Précision",
        "Part des jours signalés qui sont de vraies anomalies injectées (test 2019)",
    ),
    "recall": ("Rappel", "Part des jours d'anomalie injectés qui sont signalés (test 2019)"),
    "f1": ("F1", "Moyenne harmonique de la précision et du rappel, par jour (test 2019)"),
    "accord_drapeau_nantes": (
        "Accord drapeau Nantes",
        "Indice de Dice entre jours signalés et drapeau Anomalie publié (2019, hors séries de 3 zéros)",
    ),
    "n_anomalies_injectees": (
        "Jours d'anomalie injectés",
        "Nombre de jours-compteurs anomaux injectés en 2019",
    ),
}


def make_card(outcome: Outcome) -> dict:
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
    metrics = [
        {
            "name": key,
            "value": round(float(m[key]), 4),
            "baseline": round(float(b[key]), 4),
            "description": _LABELS[key][1],
            "higher_is_better": key != "n_anomalies_injectees",
        }
        for key in ("precision", "recall", "f1", "accord_drapeau_nantes", "n_anomalies_injectees")
    ]
    solo = x["modele_compteur_seul"]
    metrics.append(
        {
            "name": "f1_compteur_seul",
            "value": round(float(solo["f1"]), 4),
            "baseline": round(float(b["f1"]), 4),
            "description": "F1 quand chaque compteur est soumis seul (sans contexte des autres compteurs)",
            "higher_is_better": True,
        }
    )
    rt, rb = x["rappel_par_type"], x["rappel_par_type_reference"]
    for kind, label in (
        ("panne", "pannes (séries de zéros)"),
        ("derive", "dérives (x ou / 2 à 10)"),
        ("pic", "pics isolés"),
    ):
        metrics.append(
            {
                "name": f"rappel_{kind}",
                "value": round(float(rt[f"rappel_{kind}"]), 4),
                "baseline": round(float(rb[f"rappel_{kind}"]), 4),
                "description": f"Rappel sur les {label}",
                "higher_is_better": True,
            }
        )
    protocol = (
        "Apprentissage sur 2014-2018, test sur 2019. Les vraies anomalies n'étant pas connues, des anomalies "
        "sont injectées (graine fixe 2019) dans les séries 2019 « propres » : jours présents et non nuls, dont "
        "aucun voisin n'est nul ou manquant, non signalés par Nantes et à moins d'un facteur 3 de la « Valeur "
        "modélisée » publiée par Nantes ; compteurs gardant au moins 150 jours propres "
        f"({x['n_compteurs_test']} compteurs, {x['n_jours_test']} jours). Par compteur : 3 pannes (2 à 10 jours "
        "à zéro), 3 dérives de capteur (3 à 10 jours multipliés ou divisés par 2 à 10), 4 pics isolés (un jour "
        f"multiplié par 3 à 10), soit {x['n_evenements_injectes']} événements et "
        f"{int(m['n_anomalies_injectees'])} jours anomaux. Précision, rappel et F1 sont comptés par jour. Les "
        "seuils du modèle et ceux de la référence sont réglés de la même façon, sur des anomalies injectées "
        "(graine 2018) dans 2018, le modèle étant alors appris sur 2014-2017 : l'année de test n'a servi à "
        f"aucun réglage (F1 de réglage 2018 : modèle {x['f1_reglage_2018']:.3f}, référence "
        f"{x['f1_reglage_2018_reference']:.3f}). L'entrée de test contient tous les compteurs sur toute "
        "l'année ; le F1 quand chaque compteur est soumis seul est donné à part. L'accord avec le drapeau "
        "« Anomalie » publié par Nantes (étiquette faible) est l'indice de Dice entre les jours signalés, "
        "calculé sur les comptages bruts 2019 hors séries de 3 zéros ou plus (où Nantes ne publie pas de "
        "drapeau)."
    )
    baseline = (
        f"Médiane glissante du même jour de semaine (±{bp['semaines']} semaines, "
        f"{'log' if bp['espace'] == 'log' else 'comptages bruts'}) ± {bp['seuil']} MAD, plus règle des 3 zéros"
    )
    return {
        "identification": {
            "title": "Détection d'anomalies des compteurs vélo de Nantes Métropole",
            "summary": (
                "Repère les jours où un compteur vélo mesure mal (panne, dérive du capteur, pic isolé) en "
                "comparant chaque comptage à la valeur attendue pour ce compteur, ce jour de la semaine, cette "
                "saison et ce calendrier, corrigée de ce que mesurent les autres compteurs le même jour."
            ),
            "owner": {"name": "Nantes Métropole", "siren": "244400404"},
            "territory": "Nantes Métropole (Loire-Atlantique)",
            "theme": "mobilites",
            "status": "experimentation",
            "created": dt.date(2014, 1, 1).isoformat(),
            "updated": dt.date.today().isoformat(),
            "keywords": [
                "vélo",
                "comptage",
                "anomalies",
                "capteurs",
                "qualité des données",
                "mobilités",
                "Nantes",
            ],
            "project": "velo-anomalies-nantes",
        },
        "purpose": {
            "context": (
                "Nantes Métropole publie chaque jour les passages de vélos mesurés par des boucles de comptage. "
                "Les capteurs tombent en panne (séries de zéros), dérivent (comptages multipliés ou divisés "
                "pendant plusieurs jours) ou produisent des pics isolés ; ces erreurs faussent les bilans de "
                "fréquentation et les évaluations d'aménagements cyclables. Le modèle signale les jours suspects "
                "pour que l'équipe de maintenance vérifie le capteur et que les jours faux soient écartés des "
                "statistiques. Il apprend, par compteur, le profil attendu (jour de semaine, saison, jours "
                "fériés, ponts, vacances scolaires zone B, niveau de l'année) ; quand l'entrée contient plusieurs "
                "jours consécutifs d'un compteur, il réestime son niveau récent (médiane glissante sur "
                f"{p['fenetre_niveau']} jours) et repère les écarts qui durent (médiane sur 3 jours) ; quand elle "
                "contient au moins 5 compteurs le même jour, il retire l'effet du jour commun à la ville (météo, "
                "grève, événement). Une ligne isolée est jugée sur le seul profil appris."
            ),
            "affected_public": (
                "Services mobilités et maintenance des équipements de comptage de Nantes Métropole ; "
                "indirectement, les usagers des données ouvertes de comptage. Aucune personne n'est concernée "
                "individuellement : les comptages sont des agrégats anonymes."
            ),
            "automation": "aide-a-la-decision",
            "human_oversight": (
                "Chaque jour signalé est vérifié par un agent (historique du capteur, intervention sur le terrain, "
                "travaux connus) avant d'être corrigé ou écarté ; le modèle ne modifie ni ne supprime aucune "
                "donnée publiée."
            ),
            "legal_basis": (
                "Mission de service public de gestion de la voirie et des mobilités ; publication des données "
                "au titre de l'ouverture des données publiques (code des relations entre le public et "
                "l'administration, art. L312-1-1)."
            ),
            "out_of_scope": [
                "Compter ou prévoir la fréquentation cyclable : la valeur attendue sert à repérer les anomalies, "
                "elle n'est pas une prévision évaluée comme telle.",
                "Compteurs absents de l'apprentissage (nouvelles boucles, autres villes) : le modèle les refuse ; "
                "il faut le réentraîner.",
                "Suivi de personnes ou de trajets individuels.",
                "Décider seul de corriger ou supprimer des données sans vérification humaine.",
            ],
            "risks_and_limits": [
                "Les performances sont mesurées sur des anomalies injectées, dont la forme (zéros, facteur 2 à 10, "
                "pics x3 à x10) est choisie par nous : des pannes partielles plus subtiles (perte de 20 à 40 %) "
                "échappent en grande partie au modèle.",
                "Les compteurs à faible trafic (Bouaye, une dizaine de passages par jour) ont un bruit naturel "
                "élevé : pics et dérives d'un facteur 2 à 3 y passent souvent inaperçus.",
                "Une ligne isolée ou un compteur soumis seul n'a pas le contexte des autres compteurs : moins de "
                f"rappel (F1 {solo['f1']:.2f} contre {m['f1']:.2f}).",
                "Un changement durable d'usage (travaux, nouvel aménagement) est d'abord signalé puis absorbé par "
                "la médiane glissante de niveau au bout de quelques semaines ; sans historique dans l'entrée, le "
                "niveau de 2018 sert de référence et vieillit.",
                "Le calendrier des vacances scolaires connu du modèle s'arrête le 31 août 2021 : les dates "
                "postérieures sont refusées.",
                "Le drapeau publié par Nantes n'est qu'une étiquette faible (il ignore 97 % des jours à zéro) : "
                "l'accord avec lui se lit comme un contexte, pas comme une mesure de justesse.",
                "Les seuils ont été réglés sur 2018 seulement ; mais deux choix de conception (échelle de bruit "
                "au quantile 95 % plutôt que MAD, règle de persistance « un voisin qui confirme ») ont été faits "
                "après avoir vu un chiffre 2019 : l'écart de +0,10 sur la référence est donc un peu optimiste.",
            ],
        },
        "data": {
            "sources": [
                {
                    "name": "Comptages vélo de Nantes Métropole – années 2014 à 2019 (journaliers)",
                    "url": DATA_URL_DAILY,
                    "licence": "Licence du producteur (Nantes Métropole), voir la fiche du jeu",
                    "description": (
                        "Comptage journalier par compteur, avec le drapeau « Anomalie » et la « Valeur "
                        f"modélisée » du détecteur de Nantes ; copie publique {COPY_URL} (dossier Data/)."
                    ),
                },
                {
                    "name": "Boucles de comptage vélo de Nantes Métropole",
                    "url": DATA_URL_LOOPS,
                    "licence": "Licence du producteur (Nantes Métropole), voir la fiche du jeu",
                    "description": "Numéro, libellé et position des boucles (pour retrouver un identifiant).",
                },
                {
                    "name": "Vacances scolaires zone B et jours fériés",
                    "url": "https://github.com/nantesmetropole/school_meal_forecast_xgboost",
                    "licence": "MIT (Copyright (c) 2020 Nantes Métropole)",
                    "description": "Tables de calendrier reprises du projet cantines de Nantes Métropole.",
                },
            ],
            "personal_data": False,
            "dpia": {
                "done": False,
                "reason": (
                    "Aucune donnée personnelle : des comptages agrégés par boucle et par jour, sans identification "
                    "de cyclistes."
                ),
            },
            "licence": "Données ouvertes de Nantes Métropole (licence indiquée sur chaque fiche de jeu)",
        },
        "model": {
            "task": "detection-anomalies",
            "inputs": [
                "compteur : identifiant du compteur (colonne « Identifiant du compteur »)",
                "jour : date AAAA-MM-JJ",
                "comptage : passages de vélos relevés ce jour",
            ],
            "outputs": [
                "attendu : comptage attendu",
                "borne_basse, borne_haute : intervalle attendu pour un jour isolé",
                "anomalie : jour signalé (vrai/faux)",
                "score : plus il est grand, plus le jour est anormal ; anomalie si score ≥ 1",
            ],
            "training_period": {"start": "2014-01-01", "end": "2018-12-31"},
            "evaluation": {"protocol": protocol, "baseline": baseline, "metrics": metrics},
            "licence": "EUPL-1.2",
            "code_url": None,
            "documentation_url": None,
            "environmental_cost": (
                "Négligeable : quelques secondes de calcul sur un cœur de processeur (réglage et apprentissage "
                "compris), sans GPU."
            ),
        },
        "accountability": {
            "public_contact": "opendata@nantesmetropole.fr",
            "supplier": "Modèle de référence de la Bibliothèque IA territorialisée (bibia), d'après les données de Nantes Métropole",
            "contacts": [
                {
                    "name": "Responsable données, Direction des mobilités",
                    "role": "Responsable métier",
                },
                {"name": "Référent open data, Département numérique", "role": "Référent données"},
            ],
            "team": "Direction des mobilités (maintenance des compteurs) et département numérique (données).",
            "lessons_learned": (
                "Le contexte des autres compteurs le même jour retire l'essentiel de l'effet météo et permet des "
                "seuils serrés ; sans lui, un compteur seul garde une bonne précision mais perd du rappel. "
                "Le drapeau publié par Nantes signale surtout des jours de météo ou d'événement et ignore les "
                "pannes : il ne peut pas servir seul de vérité terrain."
            ),
            "internal_documents": [],
        },
    }
