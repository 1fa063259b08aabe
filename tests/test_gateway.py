"""The MLflow-compatible gateway: tiers, MLflow's error format, no leaked location, no traversal.

In-process tests use the ``registered`` world (TestClient). The live tests
start the real service (uvicorn), set it up with the real CLI, and run the
stock MLflow client in a subprocess, as an expert's machine would: that
subprocess loads the model; the service only serves files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from bibia.gateway import _split_artifact_path
from bibia.pull import pull
from domain import errors
from tests.conftest import EXAMPLE_CARD, World, cli, make_world, register
from tests.fixtures.models import make_model

NAME = "eau-batiments"
M = "/api/2.0/mlflow"
A = "/api/2.0/mlflow-artifacts/artifacts"

# Every gateway route, as (method, url, params or JSON body).
ROUTES = [
    ("GET", "/api/3.0/mlflow/server-info", {}),
    ("GET", f"{M}/registered-models/get", {"name": NAME}),
    (
        "GET",
        f"{M}/registered-models/search",
        {"filter": "tag.`mlflow.prompt.is_prompt` != 'true'", "max_results": 100},
    ),
    ("GET", f"{M}/registered-models/alias", {"name": NAME, "alias": "production"}),
    ("GET", f"{M}/registered-models/get-latest-versions", {"name": NAME}),
    ("POST", f"{M}/registered-models/get-latest-versions", {"name": NAME}),
    ("GET", f"{M}/model-versions/get", {"name": NAME, "version": "1"}),
    ("GET", f"{M}/model-versions/get-download-uri", {"name": NAME, "version": "1"}),
    ("GET", f"{M}/model-versions/search", {"filter": f"name='{NAME}'", "max_results": 10000}),
    ("GET", A, {"path": f"bibia-models/{NAME}/1"}),
    ("GET", f"{A}/bibia-models/{NAME}/1/MLmodel", {}),
]
ROUTE_IDS = [f"{m} {u.rsplit('/', 2)[-2]}/{u.rsplit('/', 1)[-1]}" for m, u, _ in ROUTES]


@pytest.fixture(scope="module")
def registered(
    tmp_path_factory: pytest.TempPathFactory, sklearn_model_dir: Path
) -> Iterator[World]:
    """The conftest ``registered`` world, built once for this module (the gateway only reads)."""
    from bibia.settings import Settings

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("gateway") / "data", seed_on_start=False, runner="none"
    )
    world = make_world(settings)
    with world.client:
        card = yaml.safe_load(EXAMPLE_CARD.read_text(encoding="utf-8"))
        response = register(world, sklearn_model_dir, card)
        assert response.status_code == 201, response.text
        yield world


def call(world, method: str, url: str, payload: dict, role: str | None):
    if method == "POST":
        return world.client.post(url, json=payload, headers=world.headers(role))
    return world.client.get(url, params=payload, headers=world.headers(role))


# ---------------------------------------------------------------- tiers


@pytest.mark.parametrize(("method", "url", "payload"), ROUTES, ids=ROUTE_IDS)
def test_every_route_is_expert_only_and_answers_in_mlflow_format(
    registered, method, url, payload
) -> None:
    for role in ("expert", "admin", "other_expert"):
        response = call(registered, method, url, payload, role)
        assert response.status_code == 200, (role, response.text)
    anonymous = call(registered, method, url, payload, None)
    assert anonymous.status_code == 401
    assert anonymous.json()["error_code"] == "UNAUTHENTICATED"
    assert "MLFLOW_TRACKING_TOKEN" in anonymous.json()["message"]
    member = call(registered, method, url, payload, "member")
    assert member.status_code == 403
    assert member.json()["error_code"] == "PERMISSION_DENIED"
    assert "réservé aux experts" in member.json()["message"]
    bad_token = registered.client.get(
        url, params=payload, headers={"Authorization": "Bearer nimporte-quoi"}
    )
    assert bad_token.status_code == 401 and bad_token.json()["error_code"] == "UNAUTHENTICATED"


def test_answers_have_mlflow_shapes(registered) -> None:
    h = registered.headers("expert")
    get = registered.client.get
    version = get(
        f"{M}/registered-models/alias", params={"name": NAME, "alias": "production"}, headers=h
    ).json()
    assert version["model_version"]["name"] == NAME and version["model_version"]["version"] == "1"
    assert version["model_version"]["aliases"] == ["production"]
    model = get(f"{M}/registered-models/get", params={"name": NAME}, headers=h).json()[
        "registered_model"
    ]
    assert model["aliases"] == [{"alias": "production", "version": "1"}]
    keys = {t["key"] for t in model["tags"]}
    assert {"bibia.title", "bibia.theme", "bibia.search"} <= keys and "bibia.card" not in keys
    uri = get(
        f"{M}/model-versions/get-download-uri", params={"name": NAME, "version": "1"}, headers=h
    ).json()
    assert uri == {"artifact_uri": f"mlflow-artifacts:/bibia-models/{NAME}/1"}
    listing = get(A, params={"path": f"bibia-models/{NAME}/1"}, headers=h).json()["files"]
    by_path = {f["path"]: f for f in listing}
    assert by_path["bibia"]["is_dir"] is True
    assert by_path["MLmodel"]["file_size"] > 0
    inner = get(A, params={"path": f"bibia-models/{NAME}/1/bibia"}, headers=h).json()["files"]
    assert [f["path"] for f in inner] == ["card.json"]
    card = get(f"{A}/bibia-models/{NAME}/1/bibia/card.json", headers=h)
    assert (
        card.status_code == 200
        and json.loads(card.content)["identification"]["owner"]["siren"] == "244400404"
    )
    found = get(
        f"{M}/registered-models/search", params={"filter": "name LIKE 'eau%'"}, headers=h
    ).json()
    assert [m["name"] for m in found["registered_models"]] == [NAME]
    assert (
        get(f"{M}/registered-models/search", params={"filter": "name = 'autre'"}, headers=h).json()[
            "registered_models"
        ]
        == []
    )


def test_real_artifact_location_never_leaks(registered) -> None:
    services = registered.services
    real = services.registry.version(NAME, 1).source
    hidden = [real, real.removeprefix("file://"), str(services.settings.data_dir)]
    for method, url, payload in ROUTES:
        if url.startswith(A + "/"):
            continue  # a file's content, not a description of the version
        text = call(registered, method, url, payload, "expert").text
        for secret in hidden:
            assert secret not in text, (url, secret)
    versions = registered.client.get(
        f"{M}/model-versions/search",
        params={"filter": f"name='{NAME}'"},
        headers=registered.headers("expert"),
    )
    assert [v["source"] for v in versions.json()["model_versions"]] == [
        f"mlflow-artifacts:/bibia-models/{NAME}/1"
    ]
    probe = registered.client.get(
        f"{M}/model-versions/search",
        params={"filter": "source_path LIKE '/%'"},
        headers=registered.headers("expert"),
    )
    assert probe.status_code == 400 and probe.json()["error_code"] == "INVALID_PARAMETER_VALUE"


# --------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("url", "params", "status", "code", "words"),
    [
        (
            f"{M}/registered-models/get",
            {"name": "inconnu"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
            "inconnu",
        ),
        (
            f"{M}/registered-models/alias",
            {"name": NAME, "alias": "staging"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
            "alias existants : production",
        ),
        (
            f"{M}/registered-models/alias",
            {"name": "inconnu", "alias": "production"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
            "« inconnu » introuvable",
        ),
        (
            f"{M}/model-versions/get",
            {"name": NAME, "version": "9"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
            "version 9",
        ),
        (
            f"{M}/model-versions/get-download-uri",
            {"name": NAME, "version": "9"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
            "version 9",
        ),
        (
            f"{M}/model-versions/get",
            {"name": NAME, "version": "abc"},
            400,
            "INVALID_PARAMETER_VALUE",
            "version invalide",
        ),
        (f"{M}/model-versions/get", {"name": NAME}, 400, "INVALID_PARAMETER_VALUE", "version"),
        (
            f"{M}/registered-models/get",
            {"name": "Pas Un Nom"},
            400,
            "INVALID_PARAMETER_VALUE",
            "nom de modèle invalide",
        ),
        (
            f"{M}/registered-models/search",
            {"filter": "nope = 1"},
            400,
            "INVALID_PARAMETER_VALUE",
            "nope",
        ),
        (f"{M}/runs/get", {"run_id": "x"}, 404, "ENDPOINT_NOT_FOUND", "lecture seule"),
    ],
)
def test_errors_in_mlflow_format(registered, url, params, status, code, words) -> None:
    response = registered.client.get(url, params=params, headers=registered.headers("expert"))
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == code
    assert words in body["message"]


def test_writes_are_refused(registered) -> None:
    expert = registered.headers("expert")
    create = registered.client.post(
        f"{M}/registered-models/create", json={"name": "x"}, headers=expert
    )
    assert create.status_code == 404 and create.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    assert "bibia register" in create.json()["message"]
    upload = registered.client.put(
        f"{A}/bibia-models/{NAME}/1/MLmodel", content=b"x", headers=expert
    )
    assert upload.status_code == 404 and upload.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    assert (
        registered.client.post(f"{M}/registered-models/create", json={"name": "x"}).status_code
        == 401
    )
    assert registered.services.registry.exists("x") is False


# ------------------------------------------------------------ traversal


@pytest.mark.parametrize(
    "path",
    [
        f"bibia-models/{NAME}/1/../../../mlflow.db",
        f"bibia-models/{NAME}/1/..",
        f"bibia-models/../bibia-models/{NAME}/1",
        "/etc/passwd",
        f"/bibia-models/{NAME}/1",
        f"bibia-models/{NAME}/1/%2e%2e/%2e%2e/mlflow.db",
        f"bibia-models/{NAME}/1/..%2fmlflow.db",
        f"bibia-models/{NAME}/1/..\\..\\mlflow.db",
        f"bibia-models/{NAME}/1//MLmodel",
        f"bibia-models/{NAME}/1/MLmodel\x00.txt",
        "",
        "bibia-models",
        f"bibia-models/{NAME}",
        f"autre/{NAME}/1",
        f"bibia-models/{NAME}/2",
        "bibia-models/inconnu/1",
        f"bibia-models/{NAME}/abc",
        f"bibia-models/{NAME}/1/absent.txt",
    ],
)
def test_artifact_paths_outside_a_version_are_refused(registered, path) -> None:
    h = registered.headers("expert")
    listing = registered.client.get(A, params={"path": path}, headers=h)
    assert listing.status_code in {400, 404}, listing.text
    assert listing.json()["error_code"] in {"INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"}
    download = registered.client.get(
        f"{A}/{path}".replace("\x00", "%00"), headers=h
    )  # httpx refuses a raw NUL
    assert download.status_code in {400, 404}, download.text
    assert b"SQLite" not in download.content and b"root:" not in download.content


@pytest.mark.parametrize(
    "path",
    [
        "a/../b",
        "bibia-models/x/1/..",
        "bibia-models/x/1/./MLmodel",
        "/bibia-models/x/1",
        "bibia-models/x/1/%2e%2e",
        "bibia-models/x/1/a\\b",
        "bibia-models/x/1/a\x00",
    ],
)
def test_split_artifact_path_refuses_traversal_after_decoding(path: str) -> None:
    with pytest.raises(errors.InvalidInput):
        _split_artifact_path(path)


def test_split_artifact_path_accepts_a_version_file() -> None:
    assert _split_artifact_path("bibia-models/cantine-nantes/3/bibia/card.json") == (
        "cantine-nantes",
        3,
        "bibia/card.json",
    )
    assert _split_artifact_path("bibia-models/cantine-nantes/3") == ("cantine-nantes", 3, "")


def test_gateway_serves_files_of_a_model_that_fails_to_load(
    registered, tmp_path: Path, card_data: dict
) -> None:
    """The service serves files only: a model whose loading raises is served whole."""
    world = registered
    model_dir = make_model("raises_on_load", tmp_path / "model")
    assert register(world, model_dir, card_data, name="casse-au-chargement").status_code == 201
    h = world.headers("expert")
    files = world.client.get(
        A, params={"path": "bibia-models/casse-au-chargement/1"}, headers=h
    ).json()["files"]
    for entry in files:
        if not entry["is_dir"]:
            response = world.client.get(
                f"{A}/bibia-models/casse-au-chargement/1/{entry['path']}", headers=h
            )
            assert response.status_code == 200 and len(response.content) == entry["file_size"]


def test_openapi_says_the_gateway_is_for_experts(registered) -> None:
    paths = registered.client.get("/openapi.json").json()["paths"]
    route = paths[f"{M}/registered-models/alias"]["get"]
    assert "réservée aux experts" in route["description"]
    assert {"401", "403"} <= set(route["responses"])


# ------------------------------------------------- live: the real client


class BreaksOff(httpx.HTTPTransport):
    """A real HTTP transport whose connection drops on the ``after``-th file download."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after, self.downloads = after, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith(A + "/"):
            self.downloads += 1
            if self.downloads == self.after:
                raise httpx.ReadError("connexion coupée (test)", request=request)
        return super().handle_request(request)


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _token(data_dir: Path, role: str) -> str:
    out = _ok(
        cli(
            data_dir,
            "token",
            "create",
            "--org",
            "nantes-metropole",
            "--role",
            role,
            "--user",
            f"{role}-test",
        )
    )
    return out.strip().splitlines()[-1].strip()


@pytest.fixture
def live_model(live_server, tmp_path: Path) -> dict:
    """The live service with ``eau-batiments`` v1 @production (y = 2x), set up with the real CLI."""
    data_dir = live_server.data_dir
    _ok(
        cli(
            data_dir,
            "org",
            "create",
            "nantes-metropole",
            "--name",
            "Nantes Métropole",
            "--siren",
            "244400404",
        )
    )
    tokens = {role: _token(data_dir, role) for role in ("expert", "member")}
    model_dir = make_model("ok", tmp_path / "model")
    env = {"BIBIA_URL": live_server.url, "BIBIA_TOKEN": tokens["expert"]}
    _ok(
        cli(
            data_dir,
            "model",
            "register",
            NAME,
            "--card",
            str(EXAMPLE_CARD),
            "--model-dir",
            str(model_dir),
            "--alias",
            "production",
            env=env,
        )
    )
    return {"url": live_server.url, "tokens": tokens, "server": live_server}


def mlflow_env(url: str, token: str | None) -> dict[str, str]:
    """The environment of an expert's machine: their MLflow client pointed at bibia, no telemetry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "BIBIA_"))}
    env.update(
        {"MLFLOW_TRACKING_URI": url, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    )
    if token is not None:
        env["MLFLOW_TRACKING_TOKEN"] = token
    return env


def run_mlflow(script: str, url: str, token: str | None, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=mlflow_env(url, token),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


EXPERT_SCRIPT = f"""
    import json, os, tempfile
    import mlflow, pandas as pd
    from mlflow import MlflowClient

    frame = pd.DataFrame({{"x": [1.0, 2.5, 10.0]}})
    by_alias = mlflow.pyfunc.load_model("models:/{NAME}@production")
    by_version = mlflow.pyfunc.load_model("models:/{NAME}/1")
    client = MlflowClient()
    mv = client.get_model_version("{NAME}", "1")
    files = os.listdir(mlflow.artifacts.download_artifacts("models:/{NAME}@production", dst_path=tempfile.mkdtemp()))
    print(json.dumps({{
        "alias": by_alias.predict(frame)["y"].tolist(),
        "version": by_version.predict(frame)["y"].tolist(),
        "search": [m.name for m in client.search_registered_models()],
        "source": mv.source,
        "aliases": list(mv.aliases),
        "files": sorted(files),
    }}))
"""


@pytest.mark.slow
def test_stock_mlflow_client_pulls_and_predicts(live_model, tmp_path: Path) -> None:
    result = run_mlflow(EXPERT_SCRIPT, live_model["url"], live_model["tokens"]["expert"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["alias"] == [2.0, 5.0, 20.0]
    assert out["version"] == [2.0, 5.0, 20.0]
    assert out["search"] == [NAME]
    assert out["source"] == f"mlflow-artifacts:/bibia-models/{NAME}/1"
    assert out["aliases"] == ["production"]
    assert {"MLmodel", "bibia", "input_example.json"} <= set(out["files"])
    log = live_model["server"].log.read_text()
    for call_seen in (
        "/registered-models/alias?",
        "/model-versions/get-download-uri?",
        "/mlflow-artifacts/artifacts?path=",
        "/registered-models/search?",
    ):
        assert call_seen in log, call_seen


@pytest.mark.slow
def test_stock_mlflow_client_is_refused_below_expert(live_model, tmp_path: Path) -> None:
    script = f'import mlflow\nmlflow.pyfunc.load_model("models:/{NAME}@production")\n'
    for role, code in (("member", "PERMISSION_DENIED"), (None, "UNAUTHENTICATED")):
        token = live_model["tokens"][role] if role else None
        result = run_mlflow(script, live_model["url"], token, tmp_path)
        assert result.returncode != 0, role
        assert "MlflowException" in result.stderr or "RestException" in result.stderr, (
            result.stderr[-2000:]
        )
        assert code in result.stderr
        assert "réservé aux experts" in result.stderr


@pytest.mark.slow
def test_pull_over_http(live_model, tmp_path: Path) -> None:
    url, tokens = live_model["url"], live_model["tokens"]
    tmp_path = tmp_path / "pulls"  # the live server keeps its data beside
    out = pull(url, tokens["expert"], f"{NAME}@production", tmp_path / "pulled", progress=False)
    assert (out / "MLmodel").is_file()
    card = json.loads((out / "bibia" / "card.json").read_text(encoding="utf-8"))
    assert card["identification"]["owner"]["siren"] == "244400404"
    assert (out / "bibia" / "sample.csv").is_file()
    assert pull(
        url, tokens["expert"], f"{NAME}/1", tmp_path / "by-version", progress=False
    ).is_dir()
    assert pull(url, tokens["expert"], NAME, tmp_path / "newest", progress=False).is_dir()

    with pytest.raises(errors.Forbidden, match="réservé aux experts"):
        pull(url, tokens["member"], f"{NAME}@production", tmp_path / "member", progress=False)
    with pytest.raises(errors.Unauthorized):
        pull(url, None, f"{NAME}@production", tmp_path / "anonymous", progress=False)
    with pytest.raises(errors.NotFound, match="pas d'alias « staging »"):
        pull(url, tokens["expert"], f"{NAME}@staging", tmp_path / "staging", progress=False)
    with pytest.raises(errors.NotFound, match="inconnu"):
        pull(url, tokens["expert"], "inconnu@production", tmp_path / "unknown", progress=False)
    with pytest.raises(errors.Conflict, match="pas vide"):
        pull(url, tokens["expert"], f"{NAME}@production", out, progress=False)
    with pytest.raises(errors.RegistryUnavailable, match="interrompu"):
        pull(
            url,
            tokens["expert"],
            f"{NAME}@production",
            tmp_path / "broken",
            progress=False,
            transport=BreaksOff(after=3),
        )
    live_model["server"].process.terminate()
    live_model["server"].process.wait(timeout=15)
    with pytest.raises(errors.RegistryUnavailable, match="injoignable"):
        pull(url, tokens["expert"], f"{NAME}@production", tmp_path / "down", progress=False)
    # Nothing half-written: only the complete pulls, no temporary directories.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["by-version", "newest", "pulled"]
