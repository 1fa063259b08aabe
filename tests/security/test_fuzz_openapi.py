"""Finding 11: requests generated from bibia's own OpenAPI never get a server error.

A penetration test's fuzzer (schemathesis) got ``500 erreur_interne`` from the
MLflow gateway's searches. Here the same kind of fuzzer runs over every
operation of the OpenAPI, in-process, anonymously and with each role's valid
token, against a service holding one registered model (so that the paths
where the model exists are reached too). Every answer must be below 500, and
every error must be the error tree's JSON: ``{"error", "message"}`` (the
MLflow gateway's ``{"error_code", "message"}``).

Bounded to run in a minute or two: a few examples per operation and mode,
a fixed seed per role (the same requests at every run), no example database,
no shrinking (a failing request is recorded, not minimised), and negative
generation only where there is a query or a body to get wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.python.asgi import shutdown_lifespans

from domain.errors import BibiaError
from tests.conftest import EXAMPLE_CARD, World, make_world, register

MODEL = "cantine-nantes"  # the name the OpenAPI's examples use
EXAMPLES_PER_STRATEGY = 5
# Parameters fixed to the registered model for a second, "known model" pass over an operation.
KNOWN = {"name": MODEL}
KNOWN_PATHS = {
    "/api/2.0/mlflow-artifacts/artifacts": ("query", "path", f"bibia-models/{MODEL}/1"),
    "/api/2.0/mlflow-artifacts/artifacts/{path}": (
        "path_parameters",
        "path",
        f"bibia-models/{MODEL}/1/MLmodel",
    ),
}
GATEWAY_PREFIXES = ("/api/2.0/mlflow", "/api/3.0/mlflow")

FUZZ = settings(
    max_examples=EXAMPLES_PER_STRATEGY,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _error_codes() -> set[str]:
    """Every ``error`` code of the error tree, and the routing errors' (unknown route, wrong method).

    Called once the app is built: every module defining a BibiaError is imported by then.
    """
    from bibia.web import JSON_ERRORS

    codes, todo = set(), [BibiaError]
    while todo:
        cls = todo.pop()
        codes.add(cls.code)
        todo.extend(cls.__subclasses__())
    return codes | {code for code, _ in JSON_ERRORS.values()}


@pytest.fixture(scope="module")
def fuzz_world(
    tmp_path_factory: pytest.TempPathFactory, sklearn_model_dir: Path
) -> Iterator[World]:
    """A service with one registered model; the process runner refuses untrusted models with a 403."""
    from bibia.settings import Settings

    settings_ = Settings(
        data_dir=tmp_path_factory.mktemp("fuzz") / "data", seed_on_start=False, runner="process"
    )
    world = make_world(settings_)
    card = yaml.safe_load(EXAMPLE_CARD.read_text(encoding="utf-8"))
    response = register(world, sklearn_model_dir, card, name=MODEL, alias="production")
    assert response.status_code == 201, response.text
    yield world
    shutdown_lifespans()  # schemathesis ran the app's lifespan for its requests: stop the background tasks


@pytest.fixture(scope="module")
def api_schema(fuzz_world: World) -> Any:
    config = schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}})
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_world.app, config=config)


def _strategies(operation: Any) -> Iterator[tuple[str, Any]]:
    """The generations run over ``operation``: positive, negative, and positive on the registered model."""
    yield "positive", operation.as_strategy(GenerationMode.POSITIVE)
    if len(operation.query) or len(
        operation.body
    ):  # a path-only operation has nothing negative to send
        yield "negative", operation.as_strategy(GenerationMode.NEGATIVE)
    fixed: dict[str, dict[str, str]] = {"path_parameters": {}, "query": {}}
    for where, parameters in (
        ("path_parameters", operation.path_parameters),
        ("query", operation.query),
    ):
        for parameter in parameters:
            if parameter.name in KNOWN:
                fixed[where][parameter.name] = KNOWN[parameter.name]
    if operation.path in KNOWN_PATHS:
        where, key, value = KNOWN_PATHS[operation.path]
        fixed[where][key] = value
    if fixed["path_parameters"] or fixed["query"]:
        yield (
            "modèle connu",
            operation.as_strategy(GenerationMode.POSITIVE, **{k: v for k, v in fixed.items() if v}),
        )


def _problem(case: Any, response: Any, codes: set[str]) -> str | None:
    """What is wrong with ``response``, or None."""
    if response.status_code >= 500:
        return f"{response.status_code} {response.text[:300]}"
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} sans corps JSON : {response.text[:200]!r}"
    gateway = case.operation.path.startswith(GATEWAY_PREFIXES)
    key = "error_code" if gateway else "error"
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("message"), str)
        or not body["message"]
    ):
        return f"{response.status_code} hors de l'arbre d'erreurs : {body!r:.300}"
    if gateway:
        return (
            None
            if isinstance(body.get(key), str)
            else f"{response.status_code} sans error_code : {body!r:.300}"
        )
    if body.get(key) not in codes:
        return f"{response.status_code} code d'erreur inconnu : {body!r:.300}"
    return None


ROLES = [None, "member", "expert", "admin"]


@pytest.mark.parametrize("role", ROLES, ids=["anonyme", "membre", "expert", "admin"])
def test_no_server_error_and_french_errors_over_the_whole_openapi(
    role: str | None, api_schema: Any, fuzz_world: World
) -> None:
    headers = fuzz_world.headers(role)
    codes = _error_codes()
    problems: list[str] = []
    sent = 0
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 30, "the whole OpenAPI, not a part of it"
    for operation in operations:
        for mode, strategy in _strategies(operation):

            @FUZZ
            @seed(ROLES.index(role))  # the same requests at every run, other requests for each role
            @given(case=strategy)
            def run(case: Any) -> None:
                nonlocal sent
                sent += 1
                assert "authorization" not in {k.lower() for k in (case.headers or {})}, (
                    "only the role's valid token"
                )
                try:
                    response = case.call(headers=headers)
                except (
                    Exception
                ) as exc:  # an error the app did not answer (the test client re-raises it)
                    problems.append(
                        f"{case.method} {case.formatted_path} [{mode}] {case.query!r:.200} : {exc!r:.300}"
                    )
                    return
                found = _problem(case, response, codes)
                if found:
                    problems.append(
                        f"{case.method} {case.formatted_path} [{mode}] {case.query!r:.200} : {found}"
                    )

            try:
                run()
            except (
                Unsatisfiable
            ):  # nothing of this mode fits the operation (say, a negative case for one enum)
                continue
    assert sent > 4 * len(operations)
    assert problems == [], f"{len(problems)} problème(s) sur {sent} requêtes :\n" + "\n".join(
        problems[:40]
    )


# ------------------------------------------------- what the pentest's fuzzer found


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "/api/2.0/mlflow/registered-models/search?max_results=12104",
            "max_results (1000 au plus)",
        ),
        (
            "/api/2.0/mlflow/model-versions/search?max_results=11970133789905639424",
            "max_results (10000 au plus)",
        ),
        ("/api/2.0/mlflow/model-versions/search?max_results=0", "max_results (1 au moins)"),
        (
            "/api/2.0/mlflow/registered-models/search?filter=name%20IS%20NULL",
            "filtre, tri ou jeton de page illisible",
        ),
        (
            "/api/2.0/mlflow/model-versions/search?filter=name%20IS%20NULL",
            "filtre, tri ou jeton de page illisible",
        ),
        (
            "/api/2.0/mlflow/registered-models/search?page_token=bnVsbA%3D%3D",
            "filtre, tri ou jeton de page illisible",
        ),
        (
            "/api/2.0/mlflow/registered-models/search?page_token=eyJvZmZzZXQiOiAxZTMwMH0%3D",
            "valeur refusée par le registre",
        ),
        (
            "/api/2.0/mlflow/model-versions/search?filter=version_number%20%3E%2099999999999999999999999",
            "valeur refusée",
        ),
        (
            "/api/2.0/mlflow/model-versions/search?filter=name%20%3D%20(%27a%27)",
            "valeur refusée par le registre",
        ),
    ],
)
def test_mlflow_limits_and_grammar_are_a_400_in_french(
    registered: World, url: str, expected: str
) -> None:
    response = registered.client.get(url, headers=registered.headers("expert"))
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert expected in response.json()["message"]
    assert "SELECT" not in response.json()["message"], "no SQL in answers"


@pytest.mark.parametrize(
    "body",
    [b"{pas du json", b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000],
    ids=["pas-du-json", "pas-utf8", "trop-imbrique"],
)
def test_a_gateway_body_that_is_not_json_is_a_400(registered: World, body: bytes) -> None:
    response = registered.client.post(
        "/api/2.0/mlflow/registered-models/get-latest-versions",
        content=body,
        headers={**registered.headers("expert"), "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "corps de la requête illisible : un objet JSON est attendu",
    }


def test_searches_within_the_limits_still_answer(registered: World) -> None:
    client, expert = registered.client, registered.headers("expert")
    models = client.get("/api/2.0/mlflow/registered-models/search?max_results=1000", headers=expert)
    assert [m["name"] for m in models.json()["registered_models"]] == ["eau-batiments"]
    versions = client.get(
        "/api/2.0/mlflow/model-versions/search?max_results=10000&filter=name%3D%27eau-batiments%27",
        headers=expert,
    )
    assert [v["version"] for v in versions.json()["model_versions"]] == ["1"]
