"""The model card and the project record: one schema, a tier on every field.

Fields are merged from Hugging Face model cards, the Dutch algorithm register
standard, the Amsterdam/Helsinki registers, Etalab's "inventaire des
algorithmes publics" and the EU AI Act (Annex VIII). Every field is public
unless declared otherwise with :func:`registry.tiers.tiered`.

A card is validated on every write; :func:`parse_card` turns pydantic's
errors into an :class:`~domain.errors.InvalidCard` listing every problem,
field by field, in French.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from domain.errors import InvalidCard
from registry.refs import SIREN_PATTERN, SLUG_PATTERN, anchored
from registry.tiers import Tier, tiered

SUMMARY_MAX = 350

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Url = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^https?://\S+$", max_length=2_000)
]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320),
]
# Identifiers follow the one grammar of registry.refs (ASCII only: "\d" would accept "٢٤٤٤٠٠٤٠٤").
Siren = Annotated[str, StringConstraints(pattern=anchored(SIREN_PATTERN))]
Slug = Annotated[str, StringConstraints(pattern=anchored(SLUG_PATTERN))]


class Theme(str, enum.Enum):
    """The themes of the seed document, and a few more public-policy areas."""

    TRANSITION_ECOLOGIQUE = "transition-ecologique"
    MAINTENANCE = "maintenance"
    MOBILITES = "mobilites"
    SOCIAL = "social"
    SANTE = "sante"
    EDUCATION = "education"
    URBANISME = "urbanisme"
    SECURITE = "securite"
    RELATION_USAGER = "relation-usager"
    AUTRE = "autre"


class Status(str, enum.Enum):
    EXPERIMENTATION = "experimentation"
    PILOTE = "pilote"
    PRODUCTION = "production"
    RETIRE = "retire"


class Task(str, enum.Enum):
    """What the model does; the demonstrator picks its chart from it."""

    PREVISION_SERIE_TEMPORELLE = "prevision-serie-temporelle"
    DETECTION_ANOMALIES = "detection-anomalies"
    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    DETECTION_OBJETS = "detection-objets"
    SEGMENTATION_IMAGE = "segmentation-image"
    TRAITEMENT_TEXTE = "traitement-texte"
    AUTRE = "autre"


class Automation(str, enum.Enum):
    AIDE_A_LA_DECISION = "aide-a-la-decision"
    DECISION_AUTOMATISEE = "decision-automatisee"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, use_enum_values=False)


class Owner(_Strict):
    """A collectivité, identified by its SIREN."""

    name: ShortText = Field(description="Nom de la collectivité", examples=["Nantes Métropole"])
    siren: Siren = Field(description="SIREN (9 chiffres)", examples=["244400404"])


class Identification(_Strict):
    title: ShortText = Field(description="Titre en français")
    summary: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=SUMMARY_MAX - 1)
    ] = Field(description=f"Résumé en langage courant (moins de {SUMMARY_MAX} caractères)")
    owner: Owner
    territory: ShortText = Field(
        description="Territoire concerné", examples=["Nantes Métropole (Loire-Atlantique)"]
    )
    theme: Theme
    status: Status
    created: dt.date | None = Field(None, description="Date de mise en service ou de création")
    updated: dt.date | None = None
    keywords: list[ShortText] = Field(default_factory=list, max_length=30)
    project: Slug | None = Field(
        None, description="Identifiant du projet du catalogue auquel le modèle appartient"
    )


class Purpose(_Strict):
    context: Text = Field(description="Contexte et objectif")
    affected_public: Text = Field(description="Public concerné")
    automation: Automation = Field(description="Aide à la décision ou décision automatisée")
    human_oversight: Text = Field(description="Contrôle humain")
    legal_basis: Text | None = Field(None, description="Base légale")
    out_of_scope: list[Text] = Field(default_factory=list, description="Usages hors périmètre")
    risks_and_limits: list[Text] = Field(default_factory=list, description="Risques et limites")


class DataSource(_Strict):
    name: ShortText
    url: Url | None = None
    licence: ShortText | None = None
    description: Text | None = None


class Dpia(_Strict):
    done: bool = Field(description="Analyse d'impact (AIPD) réalisée")
    reason: Text | None = Field(None, description="Pourquoi elle n'a pas été faite, le cas échéant")


class Data(_Strict):
    sources: list[DataSource] = Field(min_length=1)
    personal_data: bool = Field(description="Le modèle traite-t-il des données personnelles ?")
    dpia: Dpia
    licence: ShortText | None = Field(None, description="Licence des données")

    @field_validator("dpia")
    @classmethod
    def _dpia_reason(cls, dpia: Dpia) -> Dpia:
        if not dpia.done and not dpia.reason:
            raise ValueError("indiquez pourquoi l'AIPD n'a pas été réalisée (champ reason)")
        return dpia


# What a figure of the evaluation is: a score judged against the baseline, or a fact about the
# evaluation itself (how many test days, how many anomalies injected), never judged. (Comments,
# not docstrings: a schema's description is French, bibia.docs.)
class MetricKind(str, enum.Enum):
    SCORE = "score"
    CONTEXTE = "contexte"


# A figure of the evaluation, with what a person needs to read it: ``label`` is its French name
# and ``description`` a one-line explanation in plain words (what it measures, in which unit,
# which way is better); ``unit`` is written in the singular (« repas », « jour », « µg/m³ ») or
# ``fraction`` for a share shown as a percentage. A ``contexte`` figure is a fact about the
# evaluation, not a performance: it has no baseline.
class Metric(_Strict):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-/ ]{1,250}$")]
    value: float
    baseline: float | None = Field(None, description="Valeur obtenue par la référence nommée")
    label: ShortText | None = Field(
        None, description="Nom de la métrique en français", examples=["Erreur absolue moyenne"]
    )
    description: ShortText | None = Field(
        None, description="Ce que la métrique mesure, en une phrase simple"
    )
    unit: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] = Field(
        "", description="Unité au singulier (repas, jour, µg/m³), ou fraction (en pourcentage)"
    )
    higher_is_better: bool = False
    kind: MetricKind = Field(
        MetricKind.SCORE,
        description="score (comparé à la référence) ou contexte (un fait sur l'évaluation)",
    )

    @model_validator(mode="after")
    def _context_is_not_judged(self) -> Metric:
        if self.kind is MetricKind.CONTEXTE and self.baseline is not None:
            raise ValueError(
                f"« {self.name} » est un fait de contexte (kind: contexte) : "
                "il n'a pas de valeur de référence (baseline)"
            )
        return self


class Evaluation(_Strict):
    protocol: Text = Field(description="Protocole d'évaluation (découpage, période de test)")
    baseline: ShortText = Field(description="La référence nommée à battre")
    metrics: list[Metric] = Field(default_factory=list, max_length=100)


class Period(_Strict):
    start: dt.date
    end: dt.date


class ModelInfo(_Strict):
    task: Task
    inputs: list[ShortText] = Field(
        default_factory=list, description="Entrées (complétées par la signature MLflow)"
    )
    outputs: list[ShortText] = Field(default_factory=list, description="Sorties")
    training_period: Period | None = None
    evaluation: Evaluation
    licence: ShortText = Field(description="Licence du modèle (Etalab 2.0, MIT, EUPL...)")
    code_url: Url | None = tiered(
        Tier.EXPERT, None, description="Lien vers le code source (niveau expert)"
    )
    documentation_url: Url | None = tiered(
        Tier.EXPERT, None, description="Documentation complète (niveau expert)"
    )
    environmental_cost: Text | None = Field(
        None, description="Coût environnemental de l'entraînement"
    )


class Contact(_Strict):
    name: ShortText
    role: ShortText | None = None
    email: Email | None = None


class Document(_Strict):
    title: ShortText
    url: Url


class Accountability(_Strict):
    public_contact: Email = Field(description="Adresse de contact publique")
    supplier: ShortText | None = Field(None, description="Prestataire, le cas échéant")
    contacts: list[Contact] = tiered(
        Tier.RESTRICTED, default_factory=list, description="Contacts nommés (accès restreint)"
    )
    team: Text | None = tiered(Tier.RESTRICTED, None, description="Équipe (accès restreint)")
    lessons_learned: Text | None = tiered(
        Tier.RESTRICTED, None, description="Retour d'expérience (accès restreint)"
    )
    internal_documents: list[Document] = tiered(
        Tier.RESTRICTED, default_factory=list, description="Documents internes (accès restreint)"
    )


class Card(_Strict):
    """The model card. See DESIGN.md, "The card"."""

    identification: Identification
    purpose: Purpose
    data: Data
    model: ModelInfo
    accountability: Accountability

    def search_text(self) -> str:
        """What a catalogue search matches, folded: public fields only.

        Title, summary, keywords, owner (name and SIREN) and territory, as a
        project's search matches them (``bibia.catalogue``).
        """
        ident = self.identification
        words = [ident.title, ident.summary, *ident.keywords, ident.owner.name, ident.owner.siren]
        return fold(" ".join([*words, ident.territory]))

    def search_tags(self) -> dict[str, str]:
        """The searchable fields mirrored as ``bibia.*`` registered-model tags."""
        ident = self.identification
        return {
            "bibia.title": ident.title,
            "bibia.theme": ident.theme.value,
            "bibia.status": ident.status.value,
            "bibia.task": self.model.task.value,
            "bibia.owner": ident.owner.name,
            "bibia.owner_siren": ident.owner.siren,
            "bibia.territory": ident.territory,
            "bibia.project": ident.project or "",
            "bibia.search": self.search_text(),
        }


class Project(_Strict):
    """A territorial AI project; it may exist before any model is registered."""

    slug: Slug
    title: ShortText
    summary: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=SUMMARY_MAX - 1)
    ]
    owners: list[Owner] = Field(min_length=1)
    territory: ShortText
    theme: Theme
    status: Status = Status.EXPERIMENTATION
    keywords: list[ShortText] = Field(default_factory=list, max_length=30)
    website: Url | None = None
    public_contact: Email | None = None
    contacts: list[Contact] = tiered(Tier.RESTRICTED, default_factory=list)
    lessons_learned: Text | None = tiered(Tier.RESTRICTED, None)
    internal_documents: list[Document] = tiered(Tier.RESTRICTED, default_factory=list)


_FOLD = str.maketrans("àâäáãåçéèêëíìîïñóòôöõúùûüýÿœæ", "aaaaaaceeeeiiiinooooouuuuyyoa")


def fold(text: str) -> str:
    """Lowercase, accent-free, single-spaced text for case- and accent-blind search."""
    return re.sub(r"\s+", " ", text.lower().translate(_FOLD)).strip()


_MESSAGES = {
    "missing": "champ obligatoire manquant",
    "extra_forbidden": "champ inconnu (vérifiez l'orthographe)",
    "string_too_long": "texte trop long ({max_length} caractères au plus)",
    "string_too_short": "ne doit pas être vide",
    "too_short": "doit contenir au moins {min_length} élément(s)",
    "too_long": "doit contenir au plus {max_length} éléments",
    "string_pattern_mismatch": "format invalide",
    "enum": "valeur inconnue ; valeurs possibles : {expected}",
    "bool_parsing": "doit valoir true ou false",
    "bool_type": "doit valoir true ou false",
    "float_parsing": "doit être un nombre",
    "float_type": "doit être un nombre",
    "date_from_datetime_parsing": "date invalide, format attendu AAAA-MM-JJ",
    "date_parsing": "date invalide, format attendu AAAA-MM-JJ",
    "date_type": "date invalide, format attendu AAAA-MM-JJ",
    "string_type": "doit être un texte",
    "list_type": "doit être une liste",
    "model_type": "doit être un objet (clés et valeurs)",
    "model_attributes_type": "doit être un objet (clés et valeurs)",
    "dict_type": "doit être un objet (clés et valeurs)",
}

_PATTERN_HINTS = {
    "siren": "9 chiffres, sans espace",
    "url": "une adresse http:// ou https://",
    "email": "une adresse électronique",
    "public_contact": "une adresse électronique",
    "code_url": "une adresse http:// ou https://",
    "documentation_url": "une adresse http:// ou https://",
    "project": "minuscules, chiffres et tirets",
    "slug": "minuscules, chiffres et tirets",
}


def problems(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as ``[{"field": "a.b", "message": "..."}]``, in French."""
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        template = _MESSAGES.get(err["type"])
        ctx = dict(err.get("ctx") or {})
        if isinstance(ctx.get("expected"), str):
            ctx["expected"] = ctx["expected"].replace(" or ", " ou ")
        if template is None:
            message = str(err.get("msg", "valeur invalide")).removeprefix("Value error, ")
        else:
            try:
                message = template.format(**ctx)
            except (KeyError, IndexError):
                message = template
        if err["type"] == "string_pattern_mismatch":
            last = next((str(p) for p in reversed(err["loc"]) if isinstance(p, str)), "")
            hint = _PATTERN_HINTS.get(last)
            if hint:
                message = f"format invalide : {hint} attendu"
        out.append({"field": loc or "(fiche)", "message": message})
    return out


def parse_card(data: Any) -> Card:
    """Validate ``data`` (a dict) as a :class:`Card`.

    Raises:
        InvalidCard: with ``details`` listing every problem, field by field.
    """
    if not isinstance(data, dict):
        raise InvalidCard("la fiche doit être un objet JSON ou YAML (clés et valeurs)")
    try:
        return Card.model_validate(data)
    except ValidationError as exc:
        found = problems(exc)
        raise InvalidCard(
            f"fiche invalide : {len(found)} problème(s) à corriger", details=found
        ) from exc


def parse_project(data: Any) -> Project:
    """Validate ``data`` as a :class:`Project` (same error shape as :func:`parse_card`)."""
    if not isinstance(data, dict):
        raise InvalidCard("le projet doit être un objet JSON ou YAML (clés et valeurs)")
    try:
        return Project.model_validate(data)
    except ValidationError as exc:
        found = problems(exc)
        raise InvalidCard(
            f"projet invalide : {len(found)} problème(s) à corriger", details=found
        ) from exc
