"""Identifiers as value objects: one grammar for routes, CLI, store, cards and accounts.

Every identifier is checked by a FULL match against an ASCII pattern
(``re.fullmatch``): ``re.match`` with ``$`` accepts a final newline
(``"cantine-nantes\\n"``), and ``str.isdigit`` or ``\\d`` accept digits that
``int`` refuses or reads differently (``"²"``, ``"٣"``). Other modules import
their patterns and checks from here rather than writing their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from domain.errors import InvalidInput

# The bare patterns, without anchors: Python checks use re.fullmatch, and
# pydantic fields use anchored() (character classes are ASCII ranges, so no
# Unicode digit or letter slips in whatever the regex engine).
NAME_PATTERN = r"[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?"
ALIAS_PATTERN = r"[a-z](?:[a-z0-9_-]{0,62}[a-z0-9])?"
VERSION_PATTERN = r"[0-9]{1,9}"
SLUG_PATTERN = r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?"  # projects and organisations
SIREN_PATTERN = r"[0-9]{9}"
PAGE_PATTERN = r"[0-9]{1,6}"

NAME_RE = re.compile(NAME_PATTERN)
ALIAS_RE = re.compile(ALIAS_PATTERN)
VERSION_RE = re.compile(VERSION_PATTERN)
SLUG_RE = re.compile(SLUG_PATTERN)
SIREN_RE = re.compile(SIREN_PATTERN)
PAGE_RE = re.compile(PAGE_PATTERN)
_RESERVED_ALIAS_RE = re.compile(r"latest|v[0-9]+")

MAX_PAGE = 100_000

NAME_HELP = "minuscules, chiffres et tirets (2 à 100 caractères), par exemple « cantine-nantes »"
ALIAS_HELP = (
    "une lettre minuscule puis minuscules, chiffres, « - » ou « _ », par exemple « production »"
)
SLUG_HELP = (
    "minuscules, chiffres et tirets (64 caractères au plus), par exemple « nantes-metropole »"
)
SIREN_HELP = "9 chiffres, sans espace, par exemple 244400404"


def anchored(pattern: str) -> str:
    """``pattern`` anchored for a pydantic field (whose default Rust engine has ``$`` at the very end only)."""
    return f"^(?:{pattern})$"


def _full(regex: re.Pattern[str], value: object) -> bool:
    return isinstance(value, str) and regex.fullmatch(value) is not None


def _shown(value: object) -> str:
    """``value`` for an error message: quoted with escapes (a newline shows as ``\\n``), never too long."""
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid registered-model name, else raise InvalidInput."""
    if not _full(NAME_RE, name):
        raise InvalidInput(f"nom de modèle invalide : {_shown(name)} ; attendu : {NAME_HELP}")
    return name


def check_alias(alias: str) -> str:
    """Return ``alias`` if it is a valid alias (``latest`` and ``v1``, ``v2``... are MLflow's), else raise."""
    if not _full(ALIAS_RE, alias) or _RESERVED_ALIAS_RE.fullmatch(alias):
        raise InvalidInput(
            f"alias invalide : {_shown(alias)} ; attendu : {ALIAS_HELP} (« latest » et « v1 », « v2 »... sont réservés)"
        )
    return alias


def check_version(version: str | int) -> int:
    """A version number (``3`` or ``"3"``, from 1 to 999,999,999) as an int, else raise InvalidInput."""
    if isinstance(version, bool) or not isinstance(version, (int, str)):
        text = None
    else:
        text = str(version)
    if text is None or not VERSION_RE.fullmatch(text) or int(text) < 1:
        raise InvalidInput(
            f"version invalide : {_shown(version)} ; attendu : un entier positif, par exemple 3"
        )
    return int(text)


def check_slug(slug: str, what: str = "de projet") -> str:
    """Return ``slug`` if it is a valid identifier of a project or an organisation (``what``: « de projet »...), else raise."""
    if not _full(SLUG_RE, slug):
        raise InvalidInput(f"identifiant {what} invalide : {_shown(slug)} ; attendu : {SLUG_HELP}")
    return slug


LA_POSTE_SIREN = "356000000"  # La Poste: INSEE's one documented exception to the Luhn key


def siren_key_ok(siren: str) -> bool:
    """Whether nine ASCII digits pass the SIREN's control key (INSEE: the Luhn algorithm).

    From the right, every second digit is doubled (minus 9 past 9) and the
    sum of all digits must be a multiple of 10. INSEE's one documented
    exception is La Poste (SIREN 356000000): its establishments' SIRETs do not
    pass Luhn, their digits sum to a multiple of 5 instead; its SIREN is
    accepted by name here, whatever the rule says of it.
    """
    if not _full(SIREN_RE, siren):
        return False
    if siren == LA_POSTE_SIREN:
        return True
    total = 0
    for position, char in enumerate(reversed(siren)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def check_siren(siren: str) -> str:
    """Return ``siren`` if it is nine ASCII digits with a right control key, else raise InvalidInput."""
    if not _full(SIREN_RE, siren):
        raise InvalidInput(f"SIREN invalide : {_shown(siren)} ; attendu : {SIREN_HELP}")
    if not siren_key_ok(siren):
        raise InvalidInput(
            f"SIREN invalide : {siren} ; sa clé de contrôle est fausse (ses 9 chiffres ne "
            "vérifient pas la formule de Luhn). Vérifiez-le sur annuaire-entreprises.data.gouv.fr"
        )
    return siren


def is_siren(text: str) -> bool:
    """Whether ``text`` is a SIREN (nine ASCII digits), for inputs that may be a SIREN or a name."""
    return _full(SIREN_RE, text)


def check_page(page: str | int) -> int:
    """A page number (from 1 to 100,000) as an int, else raise InvalidInput."""
    text = None if isinstance(page, bool) or not isinstance(page, (int, str)) else str(page)
    if text is None or not PAGE_RE.fullmatch(text) or not 1 <= int(text) <= MAX_PAGE:
        raise InvalidInput(
            f"numéro de page invalide : {_shown(page)} ; attendu : un entier de 1 à {MAX_PAGE}"
        )
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
            # A str or bool given by a caller becomes the int the grammar reads (frozen: set through object).
            object.__setattr__(self, "version", check_version(self.version))

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
