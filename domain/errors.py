"""The error tree of bibia, and its wire codes.

Every error a user can cause or meet is a :class:`BibiaError`, with a stable
wire ``code`` (``"execution_indisponible"``) that the API sends in its error
bodies and that :func:`error_class` turns back into the class, so a client
raises what the service raised. Codes are unique across the tree
(``tests/test_errors.py`` checks it).

What an error *is* for HTTP or a shell (its status, its exit code) is decided
at the edge, in :mod:`bibia.errors`, by class. Vendor errors (MLflow, docker,
SQLAlchemy) are translated into these where the vendor is imported, with
``raise ... from exc``.

The tree lives in ``domain``, a bottom package that imports nothing of
bibia's, so that ``registry``, ``runners`` and ``bibia`` all raise the same
errors while arrows keep pointing inward.
"""

from __future__ import annotations

from typing import Any, ClassVar


class BibiaError(Exception):
    """Base of all bibia errors: catch this to catch them all."""

    code: ClassVar[str] = "erreur"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(BibiaError):
    """The request or command is malformed: a bad name, a bad value."""

    code = "requete_invalide"


class InvalidCard(InvalidInput):
    """The model card does not validate; ``details`` lists every problem."""

    code = "fiche_invalide"


class InvalidModel(InvalidInput):
    """The uploaded model is not a usable MLflow model directory."""

    code = "modele_invalide"


class PayloadTooLarge(InvalidInput):
    """The request body is over the caller's bound."""

    code = "contenu_trop_volumineux"


class BodyTimeout(InvalidInput):
    """The request body stalled for too long between two chunks."""

    code = "delai_depasse"


class InvalidData(InvalidInput):
    """An uploaded dataset (a benchmark, a labelled CSV) is unusable: ``details`` says where."""

    code = "donnees_invalides"


class InvalidPredictions(BibiaError):
    """What a model answered cannot be scored: wrong length, missing columns, NaN, not numbers.

    A registered model's answer is hostile input: this ends its evaluation as
    failed, with the reason, and is never the caller's fault.
    """

    code = "predictions_invalides"


class Unauthorized(BibiaError):
    """No valid credentials: a missing, malformed, unknown or revoked token."""

    code = "non_authentifie"


class Forbidden(BibiaError):
    """Valid credentials, but the caller's tier does not allow this."""

    code = "acces_refuse"


class NotFound(BibiaError):
    """No such model, version, project, demonstrator... for this caller."""

    code = "introuvable"


class Conflict(BibiaError):
    """The thing already exists, or the change clashes with the current state."""

    code = "conflit"


class PromotionRefused(Conflict):
    """The model's promotion gate is on and no verified evaluation beats the task's baseline."""

    code = "promotion_refusee"


class QuotaExceeded(BibiaError):
    """The caller reached a limit on what it may hold or try (demonstrators running, sign-in attempts)."""

    code = "quota_depasse"


class TooManyFailures(QuotaExceeded):
    """Too many refused credentials from one client: wait for the window to free."""

    code = "trop_de_tentatives"


class RegistryUnavailable(BibiaError):
    """The MLflow backend or bibia's database cannot be reached."""

    code = "registre_indisponible"


class ArtifactStoreUnavailable(RegistryUnavailable):
    """The artifact store (a directory, or an S3 object store) cannot be read or written: the catalogue still answers."""

    code = "artefacts_indisponibles"


class DatabaseUnavailable(RegistryUnavailable):
    """bibia's database (accounts, tokens, sessions, demonstrators, cards) cannot be reached."""

    code = "base_de_donnees_indisponible"


class RunnerError(BibiaError):
    """The runner (Docker, processes, Kubernetes) failed to do what was asked."""

    code = "erreur_execution"


class RunnerUnavailable(RunnerError):
    """The runner's engine does not answer (Docker daemon down, ...)."""

    code = "execution_indisponible"


class DemoConflict(RunnerError):
    """A demonstrator with this id already runs (or was left behind)."""

    code = "demonstrateur_existant"


class DemoMissing(RunnerError):
    """The runner knows no demonstrator with this id."""

    code = "demonstrateur_introuvable"


class SandboxTampered(RunnerError):
    """The sandbox replaced what the service connects to (its socket): the demonstrator must be failed."""

    code = "bac_a_sable_compromis"


class UntrustedModel(RunnerError):
    """ProcessRunner refuses a model not marked trusted (no sandbox on the host)."""

    code = "modele_non_fiable"


class SignInError(BibiaError):
    """A sign-in through an identity provider (OpenID Connect) refused: its state, its answer, its ID token.

    ``title`` is the heading of the French page the person reads.
    """

    code = "connexion_refusee"
    default_title: ClassVar[str] = "Connexion refusée"

    def __init__(self, message: str, *, title: str | None = None, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.title = title or self.default_title


class SignInForbidden(SignInError):
    """The sign-in verified, but this person may not enter (their organisation is unknown to bibia, they cancelled)."""

    code = "connexion_interdite"


class SignInUnavailable(SignInError):
    """Sign-in through an identity provider is not configured on this service."""

    code = "connexion_indisponible"
    default_title = "Connexion indisponible"


class IdentityProviderUnavailable(SignInError):
    """The identity provider does not answer, or answers what no provider should."""

    code = "fournisseur_identite_indisponible"
    default_title = "Fournisseur d'identité indisponible"


def error_classes() -> list[type[BibiaError]]:
    """Every class of the tree, each parent before its subclasses."""
    found: list[type[BibiaError]] = [BibiaError]
    for cls in found:  # grows while it is walked: breadth first
        found.extend(cls.__subclasses__())
    return found


def error_class(code: str) -> type[BibiaError] | None:
    """The class whose wire code is ``code``, or None for a code this tree does not know."""
    return next((cls for cls in error_classes() if cls.code == code), None)
