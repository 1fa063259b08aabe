"""Model identifiers as value objects: one grammar for routes, CLI and store."""

from __future__ import annotations

import re
from dataclasses import dataclass

from registry.errors import InvalidInput

NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")
ALIAS_RE = re.compile(r"^[a-z](?:[a-z0-9_-]{0,62}[a-z0-9])?$")

NAME_HELP = "minuscules, chiffres et tirets (2 à 100 caractères), par exemple « cantine-nantes »"
ALIAS_HELP = "une lettre minuscule puis minuscules, chiffres, « - » ou « _ », par exemple « production »"


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid registered-model name, else raise InvalidInput."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidInput(f"nom de modèle invalide : {name!r} ; attendu : {NAME_HELP}")
    return name


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not ALIAS_RE.match(alias) or alias in {"latest"} or alias.startswith("v") and alias[1:].isdigit():
        raise InvalidInput(
            f"alias invalide : {alias!r} ; attendu : {ALIAS_HELP} (« latest » et « v1 », « v2 »... sont réservés)"
        )
    return alias


def check_version(version: str | int) -> int:
    text = str(version)
    if not text.isdigit() or int(text) < 1 or len(text) > 9:
        raise InvalidInput(f"version invalide : {version!r} ; attendu : un entier positif, par exemple 3")
    return int(text)


@dataclass(frozen=True)
class ModelRef:
    """``name``, ``name@alias`` or ``name/version``.

    >>> str(ModelRef.parse("cantine-nantes@production"))
    'cantine-nantes@production'
    >>> ModelRef.parse("cantine-nantes/3").version
    3
    """

    name: str
    alias: str | None = None
    version: int | None = None

    def __post_init__(self) -> None:
        check_name(self.name)
        if self.alias is not None and self.version is not None:
            raise InvalidInput("indiquez un alias ou une version, pas les deux")
        if self.alias is not None:
            check_alias(self.alias)
        if self.version is not None:
            check_version(self.version)

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """Parse ``NAME``, ``NAME@ALIAS`` or ``NAME/VERSION``.

        Raises:
            InvalidInput: saying which part is wrong and what is expected.
        """
        if not isinstance(text, str) or not text:
            raise InvalidInput("référence de modèle vide ; attendu : NOM, NOM@ALIAS ou NOM/VERSION")
        if "@" in text:
            name, _, alias = text.partition("@")
            return cls(name=name, alias=alias)
        if "/" in text:
            name, _, version = text.partition("/")
            return cls(name=name, version=check_version(version))
        return cls(name=text)

    def __str__(self) -> str:
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        if self.version is not None:
            return f"{self.name}/{self.version}"
        return self.name
