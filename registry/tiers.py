"""Access tiers, and the one function that filters data by tier.

Three tiers come from the seed document (public, restricted to members of a
collectivité, expert); admin sits above them. Every schema field declares
the lowest tier allowed to read it with :func:`tiered`; :func:`visible`
removes everything above the caller's tier. Routes never filter by hand.
"""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, Field


class Tier(enum.IntEnum):
    """Who may read a field; ordered, so ``caller >= field`` means allowed."""

    PUBLIC = 0
    RESTRICTED = 1
    EXPERT = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def display(self) -> str:
        """The tier's name for people, in French (``label`` is the code APIs and schemas use)."""
        return _TIER_TITLES[self]


_TIER_TITLES = {
    Tier.PUBLIC: "public",
    Tier.RESTRICTED: "membre",
    Tier.EXPERT: "expert",
    Tier.ADMIN: "administrateur",
}


class Role(str, enum.Enum):
    """A member's role inside their organisation."""

    MEMBER = "member"
    EXPERT = "expert"
    ADMIN = "admin"

    @property
    def display(self) -> str:
        """The role's name for people, in French: membre, expert, administrateur."""
        return self.tier.display

    @property
    def tier(self) -> Tier:
        return {Role.MEMBER: Tier.RESTRICTED, Role.EXPERT: Tier.EXPERT, Role.ADMIN: Tier.ADMIN}[
            self
        ]


TIER_KEY = "x-tier"


def tiered(tier: Tier, default: Any = ..., **kwargs: Any) -> Any:
    """A pydantic ``Field`` readable from ``tier`` up (shown in the JSON schema)."""
    extra = dict(kwargs.pop("json_schema_extra", None) or {})
    extra[TIER_KEY] = tier.label
    return Field(default, json_schema_extra=extra, **kwargs)


def field_tier(model: type[BaseModel], name: str) -> Tier:
    extra = model.model_fields[name].json_schema_extra
    if isinstance(extra, dict) and TIER_KEY in extra:
        return Tier[str(extra[TIER_KEY]).upper()]
    return Tier.PUBLIC


def visible(obj: BaseModel, tier: Tier) -> dict[str, Any]:
    """``obj`` as JSON-ready data, without any field above ``tier``.

    Nested models and lists of models are filtered recursively. Which fields
    of a card or a model a tier reads is decided here; who may do what
    (launch, write, pull) is :mod:`bibia.policy`'s.
    """
    out: dict[str, Any] = {}
    for name in type(obj).model_fields:
        if field_tier(type(obj), name) > tier:
            continue
        out[name] = _visible_value(getattr(obj, name), tier)
    return out


def _visible_value(value: Any, tier: Tier) -> Any:
    if isinstance(value, BaseModel):
        return visible(value, tier)
    if isinstance(value, (list, tuple)):
        return [_visible_value(v, tier) for v in value]
    if isinstance(value, dict):
        return {k: _visible_value(v, tier) for k, v in value.items()}
    if isinstance(value, enum.Enum):
        return value.value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def hidden_paths(model: type[BaseModel], tier: Tier, prefix: str = "") -> list[str]:
    """Dotted names of every field of ``model`` above ``tier`` (for tests and docs)."""
    paths: list[str] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        if field_tier(model, name) > tier:
            paths.append(path)
            continue
        for sub in _submodels(info.annotation):
            paths.extend(hidden_paths(sub, tier, prefix=f"{path}."))
    return paths


def _submodels(annotation: Any) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    for arg in getattr(annotation, "__args__", ()) or ():
        found.extend(_submodels(arg))
    return found
