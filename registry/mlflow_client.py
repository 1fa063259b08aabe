"""The MLflow client the registry's parts share, and MLflow's errors turned into bibia's.

The catalogue, the registration, the artifact cache and the REST shapes
share one :class:`MlflowClient` built by :func:`connect` and make their
calls inside :func:`translated`, so that their callers get the errors of
:mod:`domain.errors` rather than MLflow's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    BAD_REQUEST,
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    ErrorCode,
)
from mlflow.tracking import MlflowClient
from sqlalchemy.exc import IntegrityError

from domain.errors import (
    ArtifactStoreUnavailable,
    BibiaError,
    Conflict,
    InvalidInput,
    NotFound,
    RegistryUnavailable,
)
from registry.object_store import STORE_ERRORS

PAGE = 1000  # MLflow's threshold for search_registered_models


def connect(tracking_uri: str) -> MlflowClient:
    """A client on ``tracking_uri`` for both tracking and the model registry."""
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def already_exists(exc: MlflowException) -> bool:
    return _is(exc, RESOURCE_ALREADY_EXISTS)


def does_not_exist(exc: MlflowException) -> bool:
    return _is(exc, RESOURCE_DOES_NOT_EXIST)


def _is(exc: MlflowException, code: int) -> bool:
    actual: str = exc.error_code
    expected: str = ErrorCode.Name(code)
    return actual == expected


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """Turn MLflow errors (and storage errors) into bibia errors, naming ``what`` failed."""
    try:
        yield
    except BibiaError:
        raise
    except MlflowException as exc:
        if does_not_exist(exc):
            raise NotFound(f"{what} introuvable") from exc
        if already_exists(exc):
            raise Conflict(f"{what} existe déjà") from exc
        if _is(exc, INVALID_PARAMETER_VALUE):
            raise InvalidInput(f"{what} : {exc.message}") from exc
        if _refused_value(exc):
            # MLflow's message quotes the SQL it built: say what is wrong, not how it failed.
            if isinstance(exc.__cause__, IntegrityError):
                raise Conflict(
                    f"{what} : modifié en même temps par une autre requête ; réessayez"
                ) from exc
            raise InvalidInput(
                f"{what} : valeur refusée par le registre (nombre trop grand ou valeur d'un type inattendu)"
            ) from exc
        raise RegistryUnavailable(f"registre MLflow indisponible ({what}) : {exc.message}") from exc
    except STORE_ERRORS as exc:  # a directory, or an S3 store that does not answer
        raise ArtifactStoreUnavailable(
            f"stockage des artefacts indisponible ({what}) ; réessayez dans quelques minutes"
        ) from exc


def _refused_value(exc: MlflowException) -> bool:
    """Whether MLflow failed on a value the caller sent rather than on the backend.

    MLflow's database store reports a statement the database refuses
    (a tuple bound as a value, a number beyond 64 bits on PostgreSQL, a
    unique key taken by a concurrent write) as BAD_REQUEST, and a number
    beyond 64 bits on SQLite as an INTERNAL_ERROR caused by an
    OverflowError; a lost database is TEMPORARILY_UNAVAILABLE.
    """
    if _is(exc, BAD_REQUEST):
        return True
    return _is(exc, INTERNAL_ERROR) and isinstance(exc.__cause__, OverflowError)


def by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion:
    """The version ``alias`` points at; NotFound for an unknown model or alias.

    MLflow answers an unknown alias with INVALID_PARAMETER_VALUE (a 400),
    but for the caller it is a missing resource.
    """
    what = f"alias « {alias} » de « {name} »"
    with translated(what):
        try:
            return client.get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            if _is(exc, INVALID_PARAMETER_VALUE) and "not found" in exc.message:
                raise NotFound(f"{what} introuvable") from exc
            raise
