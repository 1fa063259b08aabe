"""The model card of ``pics-pollution-lille`` (plain dict, French texts)."""

from __future__ import annotations

from typing import Any

from demos.air.protocol import TEST_YEARS, TRAIN_YEARS

NAME = "pics-pollution-lille"
PROJECT = "pics-pollution-lille"
CREATED = "2026-11-25"  # first version of this reference model

_METRICS = [
    (
        "taux_detection",
        "Part des dépassements observés qui avaient été annoncés (alerte si probabilité ≥ 0,5)",
        True,
    ),
    (
        "taux_fausses_alertes",
        "Part des alertes émises qui se sont révélées fausses (ratio de fausses alertes)",
        False,
    ),
    ("brier", "Score de Brier de la probabilité de dépassement (0 = parfait)", False),
]


def _metrics(
    metrics: dict[str, float], baseline: dict[str, float], extra: dict[str, Any]
) -> list[dict]:
    out = [
        {
            "name": key,
            "value": metrics[key],
            "baseline": baseline[key],
            "description": text,
            "higher_is_better": higher,
        }
        for key, text, higher in _METRICS
    ]
    out += [
        {
            "name": "brier_skill_score_persistance",
            "value": metrics["brier_skill_score_persistance"],
            "baseline": 0.0,
            "description": "Gain de score de Brier par rapport à la persistance calibrée",
            "higher_is_better": True,
        },
        {
            "name": "brier_skill_score_climatologie",
            "value": metrics["brier_skill_score_climatologie"],
            "baseline": 0.0,
            "description": "Gain de score de Brier par rapport à la climatologie mensuelle",
            "higher_is_better": True,
        },
        {
            "name": "brier_climatologie",
            "value": extra["brier_climatologie"],
            "description": "Score de Brier de la climatologie mensuelle (référence secondaire)",
        },
        {
            "name": "brier_persistance_binaire",
            "value": extra["brier_persistance_binaire"],
            "description": "Score de Brier de la persistance en tout-ou-rien (probabilité 0 ou 1)",
        },
    ]
    for pollutant, blocks in extra["par_polluant"].items():
        for key, _, higher in _METRICS:
            out.append(
                {
                    "name": f"{pollutant}/{key}",
                    "value": blocks["modele"][key],
                    "baseline": blocks["persistance"][key],
                    "higher_is_better": higher,
                    "description": f"{key} pour le seul polluant {pollutant}",
                }
            )
    return out


def card(
    metrics: dict[str, float], baseline: dict[str, float], extra: dict[str, Any]
) -> dict[str, Any]:
    """The card, filled with the numbers the evaluation protocol measured.

    Args:
        metrics: the model's pooled metrics (:class:`demos.air.protocol.Result`).
        baseline: persistence's pooled metrics.
        extra: the protocol's extra figures (climatology, per pollutant...).

    Returns:
        A dict that validates as :class:`registry.card.Card`.
    """
    n_events = extra["evenements_test"]
    return {
        "identification": {
            "title": "Anticiper les pics de pollution de l'air à Lille (PM10 et ozone, J+1)",
            "summary": (
                "Prévoit la veille la concentration de particules PM10 et d'ozone du lendemain dans "
                "l'agglomération lilloise, et la probabilité de dépasser le seuil d'information "
                "(PM10 50 µg/m³, ozone 180 µg/m³). Modèle de démonstration entraîné sur des données "
                "synthétiques."
            ),
            "owner": {"name": "Métropole Européenne de Lille", "siren": "200093201"},
            "territory": "Métropole Européenne de Lille (Nord)",
            "theme": "transition-ecologique",
            "status": "experimentation",
            "created": CREATED,
            "updated": CREATED,
            "keywords": [
                "qualité de l'air",
                "pollution",
                "PM10",
                "particules",
                "ozone",
                "pic de pollution",
                "prévision",
                "météo",
                "seuil d'information",
                "Lille",
                "données synthétiques",
            ],
            "project": PROJECT,
        },
        "purpose": {
            "context": (
                "Les épisodes de pollution (particules en hiver et au printemps par temps froid, sec et "
                "anticyclonique ; ozone l'été par forte chaleur et fort ensoleillement) déclenchent des "
                "procédures d'information et de recommandation. Les anticiper un jour plus tôt permet "
                "de préparer la communication aux habitants, les mesures de circulation et l'information "
                "des publics sensibles. Ce modèle de référence montre la démarche : à partir de la "
                "concentration observée aujourd'hui et de la prévision météo de demain, il estime la "
                "concentration de demain et la probabilité d'un dépassement du seuil d'information."
            ),
            "affected_public": (
                "Habitants de la métropole, en particulier les personnes sensibles à la pollution "
                "(enfants, personnes âgées, asthmatiques) ; services de la collectivité chargés de "
                "l'information du public et des mesures d'urgence."
            ),
            "automation": "aide-a-la-decision",
            "human_oversight": (
                "La prévision est une aide : le déclenchement d'une procédure préfectorale reste décidé "
                "par l'État sur la base des prévisions de l'association agréée de surveillance de la "
                "qualité de l'air (Atmo Hauts-de-France). Un agent lit la prévision et la probabilité, "
                "les compare aux bulletins officiels et décide des actions de communication."
            ),
            "legal_basis": (
                "Code de l'environnement, articles L221-1 et suivants et R221-1 (surveillance de la "
                "qualité de l'air, seuils d'information et d'alerte) ; arrêté du 7 avril 2016 relatif au "
                "déclenchement des procédures préfectorales en cas d'épisodes de pollution."
            ),
            "out_of_scope": [
                "Déclencher automatiquement une procédure préfectorale ou une restriction de circulation.",
                "Remplacer les prévisions officielles d'Atmo Hauts-de-France ou de Prev'air.",
                "Prévoir d'autres polluants (NO2, PM2,5) ou le seuil d'alerte (PM10 80 µg/m³, O3 240 µg/m³) : "
                "le modèle n'a appris que le seuil d'information.",
                "Prévoir au-delà du lendemain, ou à l'échelle d'une rue ou d'une station de proximité trafic.",
                "Toute utilisation opérationnelle en l'état : le modèle est entraîné sur des données synthétiques.",
            ],
            "risks_and_limits": [
                "Données synthétiques : les séries reproduisent la saisonnalité et les mécanismes des "
                "épisodes (froid anticyclonique, chaleur et soleil) mais ne sont pas des mesures ; les "
                "chiffres de performance ne disent rien de la performance sur des données réelles.",
                f"Événements rares : le jeu de test ({TEST_YEARS[0]}–{TEST_YEARS[1]}) ne compte que "
                f"{n_events} jours de dépassement, dont peu pour l'ozone ; les taux de détection sont "
                "donc très incertains (quelques événements de plus ou de moins changent le taux de "
                "plusieurs dizaines de points).",
                "La qualité de la prévision dépend de celle de la prévision météo fournie en entrée.",
                "Les épisodes dus à des sources exceptionnelles (incendies, poussières désertiques, "
                "feux d'artifice) ne sont pas représentés.",
                f"Fausses alertes : {metrics['taux_fausses_alertes']:.0%} des alertes du jeu de test sont "
                "fausses ; une communication fondée sur ce seul modèle inquiéterait parfois à tort.",
            ],
        },
        "data": {
            "sources": [
                {
                    "name": "Séries synthétiques de qualité de l'air et de météo, agglomération lilloise 2015–2024",
                    "licence": "Licence Ouverte / Etalab 2.0",
                    "description": (
                        "Générées par demos/air/synthetic.py (graine fixe, reproductible) : température, "
                        "vent, pression, hauteur de couche limite, ensoleillement, pluie, PM10 moyenne "
                        "journalière et O3 maximum horaire, avec des prévisions météo de la veille "
                        "entachées d'erreurs réalistes. Aucune mesure réelle."
                    ),
                },
                {
                    "name": "Atmo Hauts-de-France, données de qualité de l'air (source réelle à utiliser pour un usage réel)",
                    "url": "https://www.atmo-hdf.fr/",
                    "description": "Non utilisée ici ; les concentrations mesurées par les stations de la métropole.",
                },
                {
                    "name": "Météo-France, données publiques (source réelle à utiliser pour un usage réel)",
                    "url": "https://meteo.data.gouv.fr/",
                    "licence": "Licence Ouverte / Etalab 2.0",
                    "description": "Non utilisée ici ; observations et prévisions météorologiques.",
                },
            ],
            "personal_data": False,
            "dpia": {
                "done": False,
                "reason": (
                    "Aucune donnée personnelle : séries journalières agrégées à l'échelle de "
                    "l'agglomération (concentrations et météo)."
                ),
            },
            "licence": "Licence Ouverte / Etalab 2.0",
        },
        "model": {
            "task": "prevision-serie-temporelle",
            "inputs": [
                "date : jour J de l'observation (AAAA-MM-JJ) ; la prévision porte sur J+1",
                "polluant : 'PM10' ou 'O3'",
                "concentration_jour : concentration observée le jour J (µg/m³ ; moyenne journalière pour "
                "PM10, maximum horaire pour O3)",
                "temperature_prevue, temperature_max_prevue : températures moyenne et maximale prévues "
                "pour J+1 (°C)",
                "vent_prevu : vitesse moyenne du vent prévue (m/s)",
                "pression_prevue : pression au niveau de la mer prévue (hPa)",
                "couche_limite_prevue : hauteur maximale de la couche de mélange prévue (m)",
                "ensoleillement_prevu : durée d'ensoleillement prévue (heures)",
                "pluie_prevue : cumul de pluie prévu (mm)",
            ],
            "outputs": [
                "concentration_prevue : concentration prévue pour J+1 (µg/m³)",
                "probabilite_depassement : probabilité de dépasser le seuil d'information à J+1",
                "seuil : seuil d'information utilisé (PM10 50 µg/m³ en moyenne journalière, "
                "O3 180 µg/m³ en maximum horaire)",
            ],
            "training_period": {
                "start": f"{TRAIN_YEARS[0]}-01-01",
                "end": f"{TRAIN_YEARS[1]}-12-31",
            },
            "evaluation": {
                "protocol": (
                    f"Apprentissage sur {TRAIN_YEARS[0]}–{TRAIN_YEARS[1]}, test sur "
                    f"{TEST_YEARS[0]}–{TEST_YEARS[1]} ({extra['jours_test']} jours × 2 polluants, "
                    f"{n_events} dépassements). Une régression ridge par polluant (PM10 en logarithme, "
                    "O3 en concentration) ; la probabilité de dépassement suppose une erreur gaussienne "
                    "dont l'écart-type est mesuré hors échantillon (une année laissée de côté à tour de "
                    "rôle) sur les jours proches du seuil. Alerte si probabilité ≥ 0,5. Taux de détection "
                    "= dépassements annoncés / dépassements ; taux de fausses alertes = alertes fausses / "
                    "alertes émises ; score de Brier sur la probabilité. Scores calculés sur les deux "
                    "polluants réunis, et détaillés par polluant."
                ),
                "baseline": (
                    "Persistance : demain comme aujourd'hui (alerte si le seuil est dépassé aujourd'hui ; "
                    "probabilité calibrée = fréquence de dépassement le lendemain d'un jour de "
                    "dépassement ou d'un jour calme, comptée sur les années d'apprentissage). "
                    "Référence secondaire : climatologie mensuelle."
                ),
                "metrics": _metrics(metrics, baseline, extra),
            },
            "licence": "EUPL-1.2",
            "environmental_cost": (
                "Négligeable : l'entraînement complet (deux régressions linéaires) dure moins d'une "
                "seconde sur un cœur de processeur."
            ),
        },
        "accountability": {
            "public_contact": "qualite-air@lillemetropole.fr",
            "supplier": None,
            "contacts": [
                {
                    "name": "Responsable données",
                    "role": "Direction de la transition écologique, MEL",
                },
                {
                    "name": "Chargé·e de mission qualité de l'air",
                    "role": "Service climat-air-énergie, MEL",
                },
            ],
            "team": (
                "Modèle de référence de la Bibliothèque IA territorialisée, construit pour montrer la "
                "démarche ; à reprendre avec le service climat-air-énergie et Atmo Hauts-de-France "
                "pour un usage réel."
            ),
            "lessons_learned": (
                "Pour un événement rare, le score de Brier et la fiabilité des probabilités disent plus "
                "que le taux de détection, qui repose sur quelques dizaines de jours. Comparer à la "
                "persistance calibrée (et pas seulement à la persistance en tout-ou-rien, trop facile à "
                "battre) et à la climatologie. Mesurer l'incertitude près du seuil, pas sur l'ensemble "
                "des jours calmes."
            ),
        },
    }
