"""What the API answers, with a tier on every field (filtered by ``registry.tiers.visible``).

Routes return ``visible(obj, caller.tier)`` rather than a pydantic response
model: a response model would put the hidden keys back (as nulls). These
classes still document the responses in OpenAPI.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from registry.card import Card, Project
from registry.tiers import Tier, tiered

T = TypeVar("T")


class VersionOut(BaseModel):
    name: str
    version: int
    created: dt.datetime
    status: str
    aliases: list[str]
    metrics: dict[str, float] = Field(
        description="Métriques du modèle sur son protocole d'évaluation"
    )
    baseline_metrics: dict[str, float] = Field(
        description="Métriques de la référence nommée, même protocole"
    )
    signature: dict[str, Any] | None = Field(
        None, description="Signature MLflow : colonnes d'entrée et de sortie"
    )
    registered_by: str | None = tiered(Tier.RESTRICTED, None)
    run_id: str | None = tiered(Tier.EXPERT, None)
    artifact_uri: str | None = tiered(
        Tier.EXPERT, None, description="Emplacement réel des artefacts"
    )
    model_uri: str | None = tiered(
        Tier.EXPERT, None, description="URI à passer à mlflow.pyfunc.load_model via bibia"
    )


class ModelOut(BaseModel):
    name: str
    card: Card | None
    aliases: dict[str, int]
    latest_version: int | None
    created: dt.datetime
    updated: dt.datetime


class ModelDetail(ModelOut):
    versions: list[VersionOut]


class Invitation(BaseModel):
    """An organisation named as co-owner of a project, which has not accepted (yet)."""

    name: str = Field(examples=["Ville de Lyon"])
    siren: str = Field(examples=["216901231"])
    invited_by: str = Field(
        description="Collectivité porteuse qui a envoyé l'invitation", examples=["Nantes Métropole"]
    )


class ProjectOut(Project):
    invitations: list[Invitation] = tiered(
        Tier.RESTRICTED,
        default_factory=list,
        description="Collectivités invitées à porter le projet, qui n'ont pas encore accepté (accès restreint)",
    )
    models: list[str] = Field(
        default_factory=list, description="Modèles enregistrés rattachés au projet"
    )


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    per_page: int


class ErrorOut(BaseModel):
    error: str = Field(examples=["introuvable"])
    message: str = Field(examples=["modèle « cantine-nantes » introuvable"])
    details: Any | None = None


class OrganisationIn(BaseModel):
    slug: str = Field(examples=["nantes-metropole"])
    name: str = Field(examples=["Nantes Métropole"])
    siren: str | None = Field(None, examples=["244400404"])


class OrganisationOut(OrganisationIn):
    created_at: dt.datetime


class TokenIn(BaseModel):
    organisation: str = Field(examples=["nantes-metropole"])
    role: str = Field(examples=["expert"], description="member, expert ou admin")
    user: str | None = Field(None, examples=["alice"])
    label: str | None = None
    expires_at: dt.datetime | None = Field(
        None,
        examples=["2027-01-01T00:00:00+01:00"],
        description="Fin de validité (avec fuseau horaire, à venir, 5 ans au plus) ; absent : jusqu'à la révocation",
    )


class TokenOut(BaseModel):
    prefix: str
    organisation: str
    user: str
    role: str
    token: str | None = Field(None, description="Affiché une seule fois, à la création")


class AliasIn(BaseModel):
    version: int = Field(ge=1, examples=[3])


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Requête invalide"},
    401: {"model": ErrorOut, "description": "Jeton absent, mal formé, inconnu ou révoqué"},
    403: {"model": ErrorOut, "description": "Niveau d'accès insuffisant"},
    404: {"model": ErrorOut, "description": "Introuvable"},
}
