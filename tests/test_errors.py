"""The error tree at the edge: statuses and exit codes by class, one renderer, the client's round trip."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.requests import Request

from bibia.client import BibiaClient
from bibia.errors import (
    EXIT_CODE,
    STATUS,
    class_for_status,
    error_body,
    error_response,
    exit_code_for,
    status_for,
)
from domain import errors
from domain.errors import error_class, error_classes

# What every class of the tree answers with (HTTP status, CLI exit code): the service's contract.
EXPECTED = {
    errors.BibiaError: (500, 1),
    errors.InvalidInput: (400, 2),
    errors.InvalidCard: (422, 2),
    errors.InvalidModel: (422, 2),
    errors.PayloadTooLarge: (413, 2),
    errors.BodyTimeout: (408, 2),
    errors.Unauthorized: (401, 3),
    errors.Forbidden: (403, 3),
    errors.NotFound: (404, 4),
    errors.Conflict: (409, 5),
    errors.QuotaExceeded: (429, 6),
    errors.TooManyFailures: (429, 6),
    errors.RegistryUnavailable: (503, 7),
    errors.ArtifactStoreUnavailable: (503, 7),
    errors.DatabaseUnavailable: (503, 7),
    errors.RunnerError: (502, 8),
    errors.RunnerUnavailable: (503, 8),
    errors.DemoConflict: (409, 8),
    errors.DemoMissing: (404, 8),
    errors.SandboxTampered: (502, 8),
    errors.UntrustedModel: (403, 8),
    errors.InvalidData: (422, 2),
    errors.InvalidPredictions: (502, 8),
    errors.PromotionRefused: (409, 5),
    errors.SignInError: (400, 3),
    errors.SignInForbidden: (403, 3),
    errors.SignInUnavailable: (404, 3),
    errors.IdentityProviderUnavailable: (502, 3),
}


def request(path: str = "/api/v1/models", accept: str = "application/json") -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": "http",
            "server": ("bibia.test", 80),
            "root_path": "",
            "path": path,
            "query_string": b"",
            "headers": [(b"accept", accept.encode())],
        }
    )


def test_every_class_has_its_status_and_exit_code() -> None:
    assert set(error_classes()) == set(EXPECTED)
    got = {cls: (status_for(cls), exit_code_for(cls)) for cls in error_classes()}
    assert got == EXPECTED


def test_a_class_without_an_entry_answers_like_its_parent() -> None:
    for cls in (errors.SandboxTampered, errors.TooManyFailures):
        assert cls not in STATUS and cls not in EXIT_CODE
        (parent,) = cls.__bases__
        assert status_for(cls) == status_for(parent)
        assert exit_code_for(cls) == exit_code_for(parent)
    assert status_for(errors.DemoMissing("x")) == 404  # an instance resolves as its class
    assert exit_code_for(errors.DemoMissing("x")) == 8


def test_wire_codes_are_unique_and_name_their_class() -> None:
    codes = [cls.code for cls in error_classes()]
    assert len(codes) == len(set(codes))
    for cls in error_classes():
        assert "code" in vars(cls), f"{cls.__name__} needs its own wire code"
        assert error_class(cls.code) is cls
    assert error_class("code_inconnu") is None


def test_unknown_codes_fall_back_on_the_status() -> None:
    assert class_for_status(503) is errors.RegistryUnavailable
    assert class_for_status(502) is errors.RunnerError
    assert class_for_status(422) is errors.InvalidCard
    assert class_for_status(404) is errors.NotFound
    assert class_for_status(418) is errors.InvalidInput  # by family
    assert class_for_status(504) is errors.BibiaError


def test_error_body_shape() -> None:
    assert error_body(errors.NotFound("aucun modèle « x »")) == {
        "error": "introuvable",
        "message": "aucun modèle « x »",
    }
    problems = [{"field": "titre", "message": "manquant"}]
    assert error_body(errors.InvalidCard("1 problème(s)", details=problems)) == {
        "error": "fiche_invalide",
        "message": "1 problème(s)",
        "details": problems,
    }


def test_error_response_json_for_the_api_and_scripts() -> None:
    for asked in (request(), request("/api/v1/models", "text/html"), request("/healthz", "*/*")):
        response = error_response(asked, errors.RunnerUnavailable("le moteur ne répond pas"))
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/json"
        assert response.body == (
            b'{"error":"execution_indisponible","message":"le moteur ne r\xc3\xa9pond pas"}'
        )


def test_error_response_page_for_a_browser_keeps_status_title_and_headers() -> None:
    error = errors.TooManyFailures("réessayez dans 3 s")
    page = error_response(
        request("/connexion", "text/html"), error, headers={"Retry-After": "3"}, title="Trop"
    )
    assert page.status_code == 429 and page.headers["retry-after"] == "3"
    assert page.headers["content-type"].startswith("text/html")
    text = bytes(page.body).decode()
    assert "Erreur 429" in text and "<h1>Trop</h1>" in text and "Réessayez dans 3 s" in text
    assert "content-security-policy" in page.headers


def test_error_response_page_and_body_can_be_chosen() -> None:
    forced = error_response(request(), errors.NotFound("absent"), page=True)
    assert forced.status_code == 404 and forced.headers["content-type"].startswith("text/html")
    mlflow = error_response(
        request("/modeles", "text/html"),
        errors.NotFound("absent"),
        page=False,
        body={"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "absent"},
    )
    assert mlflow.status_code == 404
    assert mlflow.body == b'{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"absent"}'


def client_answering(status: int, content: bytes, content_type: str) -> BibiaClient:
    def answer(_: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content, headers={"content-type": content_type})

    return BibiaClient("http://bibia.test", transport=httpx.MockTransport(answer))


@pytest.mark.parametrize("cls", error_classes(), ids=lambda cls: cls.__name__)
def test_the_client_raises_what_the_service_raised(cls: type[errors.BibiaError]) -> None:
    details: Any = [{"field": "x", "message": "y"}]
    sent = error_response(request(), cls("le message du service", details=details))
    with (
        client_answering(sent.status_code, bytes(sent.body), "application/json") as client,
        pytest.raises(errors.BibiaError) as raised,
    ):
        client.whoami()
    assert type(raised.value) is cls
    assert raised.value.message == "le message du service" and raised.value.details == details


def test_a_runner_503_is_not_a_registry_503() -> None:
    body = b'{"error": "execution_indisponible", "message": "Docker ne repond pas"}'
    with (
        client_answering(503, body, "application/json") as client,
        pytest.raises(errors.RunnerUnavailable),
    ):
        client.demos()


@pytest.mark.parametrize(
    ("status", "content", "expected"),
    [
        (503, b'{"error": "code_futur", "message": "m"}', errors.RegistryUnavailable),
        (502, b"<html>Bad Gateway</html>", errors.RunnerError),
        (413, b"<html>Request Entity Too Large</html>", errors.PayloadTooLarge),
        (405, b'{"error": "methode_non_permise", "message": "m"}', errors.InvalidInput),
        (500, b'{"error": "erreur_interne", "message": "m"}', errors.BibiaError),
    ],
)
def test_the_client_falls_back_on_the_status(
    status: int, content: bytes, expected: type[errors.BibiaError]
) -> None:
    with (
        client_answering(status, content, "application/json") as client,
        pytest.raises(errors.BibiaError) as raised,
    ):
        client.whoami()
    assert type(raised.value) is expected
