"""The S3 store down under a running service: the catalogue answers, artifact routes answer a French 503, then recover.

A SeaweedFS of the test's own (``.ci/start-seaweedfs.sh`` on other ports and
another directory) is killed with SIGKILL under a running ``bibia serve``,
then started again: nothing of the service restarts.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml

from tests.backends import s3
from tests.backends.test_s3_artifacts import _register, _tar, _token
from tests.conftest import EXAMPLE_CARD, LiveServer, running_service
from tests.web.webdata import sign_in

pytestmark = pytest.mark.slow

MODEL = "eau-batiments"
GATEWAY = "/api/2.0/mlflow-artifacts/artifacts/bibia-models"
CSV = b"surface;occupation;temperature;observe\n1;1;0;2\n2;1;15;4\n3;1;30;6\n"


@pytest.fixture(scope="module")
def outage(
    tmp_path_factory: pytest.TempPathFactory, sklearn_model_dir: Path
) -> Iterator[tuple[s3.PrivateStore, LiveServer, str]]:
    root = tmp_path_factory.mktemp("s3-outage")
    with s3.private_store(root / "seaweedfs") as store:
        bucket = s3.new_bucket(store.endpoint)
        env = {
            **bucket.env,
            # the process runner, so that a launch gets as far as the model's files
            "BIBIA_RUNNER": "process",
            "BIBIA_ALLOW_UNTRUSTED_PROCESS_RUNNER": "true",
            "BIBIA_DEMO_POOL_SIZE": "0",
        }
        token = _token(root / "data", env)
        with running_service(root / "data", root / "server.log", env) as server:
            card = yaml.safe_load(EXAMPLE_CARD.read_text(encoding="utf-8"))
            made = _register(
                server.url, token, MODEL, _tar(sklearn_model_dir, root / "m.tar"), card
            )
            assert made.status_code == 201, made.text
            yield store, server, token


@contextmanager
def _browser(url: str, token: str) -> Iterator[httpx.Client]:
    """A signed-in browser (the sign-in form, its CSRF token, the session cookie)."""
    with httpx.Client(base_url=url, timeout=60) as browser:
        assert sign_in(browser, token).status_code == 303
        yield browser


def _unavailable(response: httpx.Response) -> str:
    """The 503's text as read (a page's tags dropped, its entities decoded)."""
    assert response.status_code == 503, (response.status_code, response.text[:500])
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def test_the_store_down_leaves_the_catalogue_up_and_artifact_routes_503_until_it_returns(
    outage: tuple[s3.PrivateStore, LiveServer, str],
) -> None:
    store, server, token = outage
    bearer = {"Authorization": f"Bearer {token}"}
    store.stop()
    assert not s3.answers(store.endpoint)

    # the catalogue: API and pages
    assert httpx.get(f"{server.url}/api/v1/models", timeout=30).status_code == 200
    assert httpx.get(f"{server.url}/api/v1/models/{MODEL}", timeout=30).status_code == 200
    page = httpx.get(f"{server.url}/modeles/{MODEL}", headers={"accept": "text/html"}, timeout=60)
    assert page.status_code == 200, page.text[:500]

    # the gateway: MLflow's error shape, in French
    down = httpx.get(f"{server.url}{GATEWAY}/{MODEL}/1/MLmodel", headers=bearer, timeout=60)
    _unavailable(down)
    assert down.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert "stockage des artefacts indisponible" in down.json()["message"]
    listing = httpx.get(
        f"{server.url}/api/2.0/mlflow-artifacts/artifacts",
        params={"path": f"bibia-models/{MODEL}/1"},
        headers=bearer,
        timeout=60,
    )
    _unavailable(listing)

    # the web's files page and a download: the French error page
    with _browser(server.url, token) as browser:
        files = browser.get(
            f"/modeles/{MODEL}/versions/1/fichiers", headers={"accept": "text/html"}
        )
        text = _unavailable(files)
        assert "stockage des artefacts indisponible" in text.lower(), text
        one = browser.get(
            f"/modeles/{MODEL}/versions/1/fichiers/MLmodel", headers={"accept": "text/html"}
        )
        _unavailable(one)

    # a launch that needs the model: refused now, nothing left behind
    launch = httpx.post(
        f"{server.url}/api/v1/demos", json={"model": MODEL}, headers=bearer, timeout=60
    )
    assert _unavailable(launch) and launch.json()["error"] == "artefacts_indisponibles"
    assert "stockage des artefacts indisponible" in launch.json()["message"]
    listed = httpx.get(f"{server.url}/api/v1/demos", headers=bearer, timeout=30)
    assert listed.status_code == 200 and listed.json() == [], listed.text
    evaluation = httpx.post(
        f"{server.url}/api/v1/evaluations",
        headers=bearer,
        data={"model": f"{MODEL}@production", "truth_column": "observe", "task": "regression"},
        files={"fichier": ("eau.csv", CSV, "text/csv")},
        timeout=60,
    )
    assert _unavailable(evaluation) and evaluation.json()["error"] == "artefacts_indisponibles"
    jobs = httpx.get(f"{server.url}/api/v1/evaluations", headers=bearer, timeout=30)
    assert jobs.status_code == 200 and jobs.json() == [], jobs.text

    # the store returns: the same service serves the files, no restart
    store.start()
    back = httpx.get(f"{server.url}{GATEWAY}/{MODEL}/1/MLmodel", headers=bearer, timeout=60)
    assert back.status_code == 200 and b"flavors" in back.content
    with _browser(server.url, token) as browser:
        files = browser.get(
            f"/modeles/{MODEL}/versions/1/fichiers", headers={"accept": "text/html"}
        )
        assert files.status_code == 200 and "MLmodel" in files.text
    launched = httpx.post(
        f"{server.url}/api/v1/demos", json={"model": MODEL}, headers=bearer, timeout=60
    )
    assert launched.status_code == 202, launched.text
    stopped = httpx.delete(
        f"{server.url}/api/v1/demos/{launched.json()['id']}", headers=bearer, timeout=60
    )
    assert stopped.status_code in (200, 202, 204), stopped.text
