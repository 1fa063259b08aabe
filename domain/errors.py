"""The one error tree of bibia.

Every error a user can cause or meet is a :class:`BibiaError`. Each carries
the HTTP status the API answers with and the exit code the CLI ends with;
one FastAPI handler and one CLI wrapper translate them, nowhere else.
Vendor errors (MLflow, docker, SQLAlchemy) are translated into these where
the vendor is imported, with ``raise ... from exc``.

The tree lives in ``domain``, a bottom package that imports nothing of
bibia's, so that ``registry``, ``runners`` and ``bibia`` all raise the same
errors while arrows keep pointing inward.
"""

from __future__ import annotations

from typing import Any


class BibiaError(Exception):
    """Base of all bibia errors: catch this to catch them all."""

    http_status: int = 500
    exit_code: int = 1
    code: str = "erreur"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class InvalidInput(BibiaError):
    """The request or command is malformed: a bad name, a bad value."""

    http_status = 400
    exit_code = 2
    code = "requete_invalide"


class InvalidCard(InvalidInput):
    """The model card does not validate; ``details`` lists every problem."""

    http_status = 422
    code = "fiche_invalide"


class InvalidModel(InvalidInput):
    """The uploaded model is not a usable MLflow model directory."""

    http_status = 422
    code = "modele_invalide"


class PayloadTooLarge(InvalidInput):
    http_status = 413
    code = "contenu_trop_volumineux"


class Unauthorized(BibiaError):
    """No valid credentials: a missing, malformed, unknown or revoked token."""

    http_status = 401
    exit_code = 3
    code = "non_authentifie"


class Forbidden(BibiaError):
    """Valid credentials, but the caller's tier does not allow this."""

    http_status = 403
    exit_code = 3
    code = "acces_refuse"


class NotFound(BibiaError):
    http_status = 404
    exit_code = 4
    code = "introuvable"


class Conflict(BibiaError):
    """The thing already exists, or the change clashes with the current state."""

    http_status = 409
    exit_code = 5
    code = "conflit"


class QuotaExceeded(BibiaError):
    http_status = 429
    exit_code = 6
    code = "quota_depasse"


class RegistryUnavailable(BibiaError):
    """The MLflow backend or bibia's database cannot be reached."""

    http_status = 503
    exit_code = 7
    code = "registre_indisponible"


class RunnerError(BibiaError):
    """The runner (Docker, processes, Kubernetes) failed to do what was asked."""

    http_status = 502
    exit_code = 8
    code = "erreur_execution"


class BodyTimeout(InvalidInput):
    """The request body stalled for too long between two chunks."""

    http_status = 408
    code = "delai_depasse"


class TooManyFailures(QuotaExceeded):
    """Too many refused credentials from one client: wait for the window to free."""

    code = "trop_de_tentatives"


class RunnerUnavailable(RunnerError):
    """The runner's engine does not answer (Docker daemon down, ...)."""

    http_status = 503
    code = "execution_indisponible"


class DemoConflict(RunnerError):
    """A demonstrator with this id already runs (or was left behind)."""

    http_status = 409
    code = "demonstrateur_existant"


class DemoMissing(RunnerError):
    """The runner knows no demonstrator with this id."""

    http_status = 404
    code = "demonstrateur_introuvable"


class SandboxTampered(RunnerError):
    """The sandbox replaced what the service connects to (its socket): the demonstrator must be failed."""

    http_status = 502
    code = "bac_a_sable_compromis"


class UntrustedModel(RunnerError):
    """ProcessRunner refuses a model not marked trusted (no sandbox on the host)."""

    http_status = 403
    code = "modele_non_fiable"
