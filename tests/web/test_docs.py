"""The API documentation served offline (/docs, /redoc, their files) and the OpenAPI document in French.

In-process (TestClient) against the real app; the browser side (the pages
actually rendering with the network cut off, axe-core) is in
``test_docs_browser.py``.
"""

from __future__ import annotations

import enum
import inspect
import re
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from bibia import docs
from tests.conftest import ROOT, World, make_world, need

NPM = ROOT / "node_modules"
PAGES = ("/docs", "/redoc")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from bibia.settings import Settings

    need((NPM / "swagger-ui-dist").is_dir(), f"the npm assets are missing in {NPM} (make install)")
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("docs") / "data", seed_on_start=False, runner="none"
    )
    world = make_world(settings)
    with world.client:
        yield world


@pytest.fixture(scope="module")
def client(world: World) -> TestClient:
    return world.client  # type: ignore[return-value]


@pytest.fixture(scope="module")
def schema(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


class _Refs(HTMLParser):
    """What a page makes the browser load: scripts (with or without src), stylesheets, icons, images."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.inline_scripts: list[str] = []
        self.lang: str | None = None
        self.title = ""
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if tag in ("script", "title"):
            self._in = tag
        if tag == "script":
            if a.get("src"):
                self.loads.append(a["src"] or "")
        elif tag == "link" and a.get("href"):
            self.loads.append(a["href"] or "")
        elif tag in ("img", "iframe", "source", "embed") and a.get("src"):
            self.loads.append(a["src"] or "")
        for name, value in attrs:
            if name.startswith("on"):
                self.inline_scripts.append(f"{tag} {name}={value}")

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script" and data.strip():
            self.inline_scripts.append(data.strip())
        elif self._in == "title":
            self.title += data


def _parse(html: str) -> _Refs:
    parser = _Refs()
    parser.feed(html)
    return parser


def _csp(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


# ------------------------------------------------------------------ the pages and their files


@pytest.mark.parametrize("path", PAGES)
def test_pages_load_only_files_of_their_own_origin(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    page = _parse(response.text)
    assert page.lang == "fr"
    assert page.title.startswith("Documentation de l'API")
    assert page.loads, "the page loads nothing: where are Swagger UI / ReDoc?"
    for url in page.loads:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), url
        assert not url.startswith("//"), url
    assert not page.inline_scripts, "no inline script (bibia's CSP): " + repr(page.inline_scripts)
    assert "googleapis" not in response.text and "cdn" not in response.text.lower()


@pytest.mark.parametrize("path", PAGES)
def test_every_file_a_page_loads_answers_with_its_type_and_a_long_cache(
    client: TestClient, path: str
) -> None:
    expected = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
    for url in _parse(client.get(path).text).loads:
        response = client.get(url)
        assert response.status_code == 200, url
        kind = expected[Path(url).suffix]
        assert response.headers["content-type"].startswith(kind), url
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable", url
        assert response.headers["x-content-type-options"] == "nosniff"
        etag = response.headers["etag"]
        again = client.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304, url


def test_the_files_are_the_installed_packages(client: TestClient) -> None:
    """Served from the npm packages the lock pins (not copies), and bibia's initialisers."""
    urls = {Path(u).name: u for p in PAGES for u in _parse(client.get(p).text).loads}
    bundle = client.get(urls["swagger-ui-bundle.js"]).content
    assert bundle == (NPM / "swagger-ui-dist" / "swagger-ui-bundle.js").read_bytes()
    redoc = client.get(urls["redoc.standalone.js"]).content
    assert redoc == (NPM / "redoc" / "bundles" / "redoc.standalone.js").read_bytes()
    init = client.get(urls["swagger-init.js"]).text
    assert "SwaggerUIBundle(" in init and "openapiUrl" in init
    assert "Redoc.init(" in client.get(urls["redoc-init.js"]).text


@pytest.mark.parametrize("path", PAGES)
def test_the_pages_have_their_own_csp_scripts_of_bibia_only(client: TestClient, path: str) -> None:
    response = client.get(path)
    csp = _csp(response.headers["content-security-policy"])
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]  # no inline script, no eval, no other host
    assert csp["connect-src"] == ["'self'"]
    assert csp["worker-src"] == ["blob:"]  # ReDoc's search index
    assert csp["style-src"] == ["'self'", "'unsafe-inline'"]
    assert csp["img-src"] == ["'self'", "data:"]
    assert csp["object-src"] == ["'none'"] and csp["base-uri"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"


def test_other_pages_keep_the_csp_without_scripts(client: TestClient) -> None:
    csp = _csp(client.get("/").headers["content-security-policy"])
    assert csp["script-src"] == ["'none'"]


@pytest.mark.parametrize(
    "path",
    [
        "/docs/ressources/0000000000000000/swagger-ui-bundle.js",  # not the file's digest
        "/docs/ressources/x/package.json",
        "/docs/ressources/x/swagger-ui-bundle.js.map",
        "/docs/ressources/x/..%2Fpackage.json",
        "/docs/ressources/x/..%2F..%2F..%2Fpyproject.toml",
        "/docs/ressources/x/%2e%2e%2f%2e%2e%2fpackage.json",
        "/docs/ressources/x/swagger-ui-dist%2Fpackage.json",
        "/docs/ressources/x/swagger-ui-dist/package.json",
        "/docs/ressources/../../package.json",
        "/docs/ressources/x/%2Fetc%2Fpasswd",
        "/docs/ressources/x/..",
        "/docs/ressources/x/",
    ],
)
def test_the_file_route_serves_only_its_allow_list(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404, path
    assert "root:" not in response.text and '"dependencies"' not in response.text
    if response.headers["content-type"].startswith("application/json"):
        assert response.json()["error"] == "introuvable"


def test_an_outdated_digest_is_not_served_from_the_new_file(client: TestClient) -> None:
    url = next(u for u in _parse(client.get("/docs").text).loads if u.endswith("swagger-init.js"))
    digest = url.split("/")[-2]
    assert client.get(url).status_code == 200
    assert client.get(url.replace(digest, "f" * len(digest))).status_code == 404


def test_without_the_assets_the_pages_say_in_french_how_to_install_them(
    tmp_path: Path,
) -> None:
    from bibia.settings import Settings

    world = make_world(
        Settings(
            data_dir=tmp_path / "data",
            seed_on_start=False,
            runner="none",
            assets_dir=tmp_path / "pas-de-node-modules",
        )
    )
    with world.client as client:
        for path in PAGES:
            response = client.get(path)
            assert response.status_code == 503, path
            assert response.headers["content-type"].startswith("text/html")
            assert '<html lang="fr">' in response.text
            assert "make install" in response.text and "BIBIA_ASSETS_DIR" in response.text
            assert "/openapi.json" in response.text
            assert "Traceback" not in response.text and str(tmp_path) not in response.text
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/docs/ressources/x/swagger-ui-bundle.js").status_code == 404


def test_with_redoc_missing_only_redoc_is_unavailable(tmp_path: Path) -> None:
    from bibia.settings import Settings

    partial = tmp_path / "node_modules"
    shutil.copytree(NPM / "swagger-ui-dist", partial / "swagger-ui-dist")
    world = make_world(
        Settings(data_dir=tmp_path / "data", seed_on_start=False, runner="none", assets_dir=partial)
    )
    with world.client as client:
        assert client.get("/docs").status_code == 200
        assert client.get("/redoc").status_code == 503


def test_the_site_links_to_the_documentation(client: TestClient) -> None:
    home = client.get("/").text
    assert '<a href="/docs">API</a>' in home
    assert '<a href="/docs">Documentation de l\'API</a>' in home
    docs_page = client.get("/docs").text
    assert 'href="/redoc"' in docs_page and 'href="/openapi.json"' in docs_page


def test_fastapis_own_documentation_routes_are_gone(client: TestClient) -> None:
    paths = {getattr(r, "path", None) for r in client.app.routes}  # type: ignore[attr-defined]
    assert "/docs/oauth2-redirect" not in paths
    assert client.get("/docs/oauth2-redirect").status_code == 404


# ------------------------------------------------------------------ the OpenAPI document


def _walk(node: Any, where: str = "") -> Iterator[tuple[str, str, Any]]:
    """Every (path, key, value) of the document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield where, key, value
            yield from _walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{where}/{i}")


ENGLISH_DEFAULTS = ("Successful Response", "Validation Error", "HTTPValidationError")
# words that would show an English sentence (bibia's texts are French; code samples excepted)
ENGLISH_WORDS = re.compile(r"\b(the|and|with|of|is|are|this|that|returns?|see)\b")


def _prose(text: str) -> str:
    return re.sub(r"`[^`]*`", "", text)  # inline code is not prose


def test_no_english_default_text_anywhere(schema: dict[str, Any]) -> None:
    for where, key, value in _walk(schema):
        if isinstance(value, str):
            for default in ENGLISH_DEFAULTS:
                assert default not in value, f"{where}/{key}: {value!r}"
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert "ValidationError" not in schema["components"]["schemas"]


def test_response_descriptions_are_french(schema: dict[str, Any]) -> None:
    phrases = {s.phrase for s in HTTPStatus}
    seen = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                text = response["description"]
                assert text and text not in phrases, f"{method} {path} {code}: {text!r}"
                seen += 1
    assert seen > 100
    assert any(
        r["description"] == "Réponse réussie"
        for ops in schema["paths"].values()
        for op in ops.values()
        for r in op["responses"].values()
    )


def test_summaries_descriptions_and_tags_are_french(schema: dict[str, Any]) -> None:
    declared = {t["name"]: t.get("description", "") for t in schema["tags"]}
    assert all(declared.values()), "every tag has a French description"
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert operation.get("summary"), f"{where} has no summary"
            for tag in operation["tags"]:
                assert tag in declared, f"{where}: tag {tag!r} is not declared in bibia.docs.TAGS"
    for where, key, value in _walk(schema):
        if key in ("summary", "description") and isinstance(value, str):
            found = ENGLISH_WORDS.findall(_prose(value))
            assert not found, f"{where}/{key} reads English ({found}): {value!r}"
    for tag in declared.values():
        assert not ENGLISH_WORDS.findall(tag), tag


def _documented_classes() -> Iterator[type]:
    stack: list[type] = [BaseModel, enum.Enum]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] in ("bibia", "registry", "domain", "evaluation"):
            yield cls


def test_no_class_docstring_becomes_a_schema_description(schema: dict[str, Any]) -> None:
    """A model's docstring (written for developers, in English) must not be what the documentation shows."""
    import bibia.schemas  # noqa: F401 - every model the routes use is defined by now
    import registry.card  # noqa: F401

    docstrings = {
        inspect.cleandoc(cls.__doc__): cls.__name__
        for cls in _documented_classes()
        if cls.__doc__ and "__doc__" in vars(cls)
    }
    for name, component in schema["components"]["schemas"].items():
        text = component.get("description")
        assert text not in docstrings, (
            f"schema {name} shows the docstring of {docstrings.get(text or '')}: "
            f"add a French description in bibia.docs.SCHEMA_DESCRIPTIONS"
        )


def test_the_bearer_token_scheme_behind_authorize(schema: dict[str, Any]) -> None:
    scheme = schema["components"]["securitySchemes"]["jeton"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert {"jeton": []} in schema["security"] and {} in schema["security"]


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _conforms(schema: dict[str, Any], node: dict[str, Any], value: Any, where: str) -> None:
    """``value`` matches ``node`` (the JSON Schema subset the 422 schema uses): types, const, required, no extra key."""
    node = _resolve(schema, node)
    if "const" in node:
        assert value == node["const"], where
    kind = node.get("type")
    if kind == "object":
        assert isinstance(value, dict), where
        assert set(node.get("required", [])) <= set(value), where
        assert set(value) <= set(node["properties"]), f"{where}: undocumented {set(value)}"
        for key, item in value.items():
            _conforms(schema, node["properties"][key], item, f"{where}.{key}")
    elif kind == "array":
        assert isinstance(value, list), where
        for i, item in enumerate(value):
            _conforms(schema, node["items"], item, f"{where}[{i}]")
    elif kind == "string":
        assert isinstance(value, str), where


@pytest.mark.parametrize(
    ("method", "path", "role", "body"),
    [
        ("GET", "/api/v1/models?per_page=1000&page=zero", None, None),  # query parameters
        ("POST", "/api/v1/orgs", "admin", {"slug": 5}),  # a JSON body
        ("PUT", "/api/v1/models/eau/aliases/production", "expert", {"version": "une"}),
    ],
)
def test_the_422_answer_is_what_the_schema_describes(
    world: World, schema: dict[str, Any], method: str, path: str, role: str | None, body: Any
) -> None:
    response = world.client.request(  # type: ignore[attr-defined]
        method, path, headers=world.headers(role), json=body
    )
    assert response.status_code == 422, response.text
    answer = response.json()
    route = path.split("?")[0]
    template = next(
        p
        for p in schema["paths"]
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", p), route)
        and method.lower() in schema["paths"][p]
    )
    documented = schema["paths"][template][method.lower()]["responses"]["422"]
    assert documented["description"].startswith("Erreur de validation")
    target = documented["content"]["application/json"]["schema"]
    assert target == {"$ref": "#/components/schemas/ValidationErrorOut"}
    _conforms(schema, target, answer, "réponse 422")
    assert answer["error"] == "requete_invalide" and answer["details"]
    assert answer["message"].startswith("paramètres invalides : ")
    docs.ValidationErrorOut.model_validate(answer)


def test_every_validated_route_documents_bibias_422(schema: dict[str, Any]) -> None:
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            answer = operation["responses"].get("422")
            if answer is None or "content" not in answer:
                continue
            ref = answer["content"]["application/json"]["schema"].get("$ref", "")
            assert ref.rsplit("/", 1)[-1] in ("ValidationErrorOut", "ErrorOut"), (
                f"{method} {path}: {ref}"
            )
    titles = schema["components"]["schemas"]["ValidationErrorOut"]
    assert titles["title"] == "Erreur de validation" and titles["description"]
    assert schema["components"]["schemas"]["FieldErrorOut"]["title"] == "Champ refusé"
