"""What a domain error is at the service's edges: an HTTP status, an exit code, an answer.

:data:`STATUS` and :data:`EXIT_CODE` map classes of :mod:`domain.errors` to
the HTTP status the service answers with and the code the CLI exits with. A
class without an entry takes its nearest ancestor's (the lookup walks its
MRO), so a new subclass answers like its parent until it gets its own line.

:func:`error_response` turns an error into what the caller asked for: the
JSON error body (``{"error": code, "message": ..., "details"?}``) for the API
and scripts, the French error page for a browser. The app's exception
handlers, the guards, the demonstrator proxy, the MLflow gateway and the web
pages answer errors through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from domain.errors import (
    ArtifactStoreUnavailable,
    BibiaError,
    BodyTimeout,
    Conflict,
    DatabaseUnavailable,
    DemoConflict,
    DemoMissing,
    Forbidden,
    IdentityProviderUnavailable,
    InvalidCard,
    InvalidData,
    InvalidInput,
    InvalidModel,
    InvalidPredictions,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    RegistryUnavailable,
    RunnerError,
    RunnerUnavailable,
    SignInError,
    SignInForbidden,
    SignInUnavailable,
    Unauthorized,
    UntrustedModel,
)

if TYPE_CHECKING:  # the CLI and the client read the tables without importing Starlette
    from starlette.requests import Request
    from starlette.responses import Response

# In the order a client falls back on for a status (see class_for_status): parents first.
STATUS: Final[Mapping[type[BibiaError], int]] = MappingProxyType(
    {
        BibiaError: 500,
        InvalidInput: 400,
        InvalidCard: 422,
        InvalidModel: 422,
        InvalidData: 422,
        PayloadTooLarge: 413,
        BodyTimeout: 408,
        Unauthorized: 401,
        Forbidden: 403,
        NotFound: 404,
        Conflict: 409,
        QuotaExceeded: 429,
        RegistryUnavailable: 503,
        ArtifactStoreUnavailable: 503,
        DatabaseUnavailable: 503,
        RunnerError: 502,
        RunnerUnavailable: 503,
        DemoConflict: 409,
        DemoMissing: 404,
        UntrustedModel: 403,
        InvalidPredictions: 502,
        SignInError: 400,
        SignInForbidden: 403,
        SignInUnavailable: 404,
        IdentityProviderUnavailable: 502,
    }
)

EXIT_CODE: Final[Mapping[type[BibiaError], int]] = MappingProxyType(
    {
        BibiaError: 1,
        InvalidInput: 2,
        Unauthorized: 3,
        Forbidden: 3,
        NotFound: 4,
        Conflict: 5,
        QuotaExceeded: 6,
        RegistryUnavailable: 7,
        RunnerError: 8,
        InvalidPredictions: 8,  # what a model answered: like a runner's failure, never the caller's
        SignInError: 3,  # refused credentials, like Unauthorized (the CLI never signs in this way)
    }
)


def _lookup(table: Mapping[type[BibiaError], int], error: BibiaError | type[BibiaError]) -> int:
    cls = error if isinstance(error, type) else type(error)
    # BibiaError has an entry in both tables and is in every error's MRO
    return next(table[ancestor] for ancestor in cls.__mro__ if ancestor in table)


def status_for(error: BibiaError | type[BibiaError]) -> int:
    """The HTTP status the service answers ``error`` (an instance or a class) with."""
    return _lookup(STATUS, error)


def exit_code_for(error: BibiaError | type[BibiaError]) -> int:
    """The code the CLI exits with on ``error`` (an instance or a class)."""
    return _lookup(EXIT_CODE, error)


def class_for_status(status: int) -> type[BibiaError]:
    """The class a client raises for an error answer whose code it does not know.

    The first class of :data:`STATUS` with this status (``503`` is
    :class:`RegistryUnavailable`), else by status family: :class:`InvalidInput`
    for any other 4xx, :class:`BibiaError` for the rest.
    """
    exact = next((cls for cls, known in STATUS.items() if known == status), None)
    if exact is not None:
        return exact
    return InvalidInput if 400 <= status < 500 else BibiaError


def error_body(error: BibiaError) -> dict[str, Any]:
    """The API's JSON body for ``error``: its wire code, its message, its details if any."""
    body: dict[str, Any] = {"error": error.code, "message": error.message}
    if error.details is not None:
        body["details"] = error.details
    return body


def wants_page(request: Request) -> bool:
    """A browser asking for a page (not the API): its errors are French HTML pages."""
    if request.url.path.startswith(("/api/", "/static/")):
        return False
    return "text/html" in request.headers.get("accept", "")


def error_response(
    request: Request,
    error: BibiaError,
    *,
    page: bool | None = None,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | None = None,
) -> Response:
    """``error`` answered with its status: a French error page or a JSON body.

    Args:
        request: the request being answered.
        error: what went wrong.
        page: True for the error page, False for JSON; by default, the page
            when :func:`wants_page` (a browser outside ``/api/``).
        title: the page's title instead of the usual one for the status.
        headers: extra headers (``Retry-After``), on either answer.
        body: the JSON body to send instead of :func:`error_body` (the MLflow
            gateway's shape).
    """
    from starlette.responses import JSONResponse

    status = status_for(error)
    if wants_page(request) if page is None else page:
        # the web layer imports the guards, which answer through this module: import it late
        from bibia.web.render import error_page

        response: Response = error_page(request, status, error.message, title=title)
        response.headers.update(headers or {})
        return response
    content = error_body(error) if body is None else dict(body)
    return JSONResponse(content, status_code=status, headers=headers)
