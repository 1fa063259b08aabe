"""Launch → ready → page, JSON predictions, CSV upload → stop, through the service, on Docker.

One app per module (SQLite + local artifacts in a short tmp dir), seeded with
the cantine and velo reference models and the small ``ok`` fixture model.
The three demonstrators start once, concurrently; the tests read them, and the
last test stops them. Every container is removed in the module finaliser.

The app keeps one warm sandbox, as a real deployment does (pool on by
default): the first launch (cantine) runs through it, the others start cold,
so every test below covers both paths.
"""

from __future__ import annotations

import csv
import html
import io
import re
import time
from collections.abc import Iterator
from urllib.parse import urljoin

import pytest

from tests.conftest import World
from tests.demos_service.conftest import (
    container_ids,
    docker_settings,
    launch,
    open_world,
    register_model,
    seed_reference,
    wait_demo,
)
from tests.web.webdata import sign_in

pytestmark = [pytest.mark.docker, pytest.mark.slow]

MODELS = {
    "cantine-nantes": "Prévision de la fréquentation des cantines scolaires de Nantes",
    "velo-anomalies-nantes": "Détection d'anomalies des compteurs vélo de Nantes Métropole",
    "double-x": "Modèle d'essai : le double de x",
}
POOL = 1  # the first launch claims it; the refill waits for that demonstrator to be ready


@pytest.fixture(scope="module")
def world(demo_image, reference_builds, fixture_models, short_tmp) -> Iterator[World]:
    import tempfile
    from pathlib import Path

    data = Path(tempfile.mkdtemp(prefix="bds-life-", dir=short_tmp))
    with open_world(docker_settings(data, demo_image, demo_pool_size=POOL)) as w:
        seed_reference(w.services, reference_builds)
        register_model(w, "double-x", fixture_models("ok"), MODELS["double-x"])
        yield w


@pytest.fixture(scope="module")
def warm(world: World) -> dict[str, str]:
    """The warm sandbox running before the launches: ``{demo_id: container id}``."""
    deadline = time.monotonic() + 60
    while True:
        members = [
            m for m in world.app.state.demos.pool.members() if m.status.state.value == "running"
        ]
        if len(members) == POOL:
            return {m.demo_id: m.runner_id for m in members}
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the warm pool did not fill in 60 s ({len(members)} member(s) running)"
            )
        time.sleep(0.2)


@pytest.fixture(scope="module")
def demos(world: World, warm: dict[str, str]) -> dict[str, dict]:
    """One launched demonstrator per model: ``{model: first answer of POST}``."""
    launched = {}
    for model in MODELS:
        response = launch(world, model, alias="production")
        assert response.status_code == 202, response.text
        assert response.headers["location"] == f"/api/v1/demos/{response.json()['id']}"
        launched[model] = response.json()
    return launched


@pytest.fixture(scope="module")
def ready(world: World, demos: dict[str, dict]) -> dict[str, dict]:
    """The demonstrators once ready, with the states each went through."""
    out = {}
    for model, first in demos.items():
        demo, seen = wait_demo(world, first["id"], timeout=150)
        assert demo["state"] == "ready", (model, seen, demo)
        out[model] = {**demo, "seen": seen}
    return out


def _sample(model_dir, rows: int = 5) -> list[dict]:
    with open(model_dir / "bibia" / "sample.csv", encoding="utf-8") as handle:
        return [row for _, row in zip(range(rows), csv.DictReader(handle))]


def test_launch_answers_202_with_id_state_and_url(demos: dict[str, dict]) -> None:
    for model, demo in demos.items():
        assert re.fullmatch(r"[0-9a-f]{16}", demo["id"])
        assert demo["state"] == "pending"
        assert demo["url"] == f"/demos/{demo['id']}/"
        assert demo["model"] == model and demo["version"] == 1
        assert demo["error"] is None


def test_the_first_launch_runs_in_the_warm_sandbox(
    demos: dict[str, dict], warm: dict[str, str], ready: dict[str, dict]
) -> None:
    first = demos["cantine-nantes"]["id"]
    assert first in warm, "the launch took the warm sandbox's id"
    assert container_ids(first) == [warm[first][:12]], "and runs in the container started before it"
    assert ready["cantine-nantes"]["state"] == "ready"


def test_each_demo_goes_through_starting_to_ready_with_its_url(
    ready: dict[str, dict], world: World
) -> None:
    for demo in ready.values():
        assert demo["seen"][-1] == "ready"
        assert set(demo["seen"]) <= {"pending", "starting", "ready"}
        assert demo["url"] == f"/demos/{demo['id']}/"
    listed = world.client.get("/api/v1/demos", headers=world.headers("member")).json()
    assert {d["id"] for d in listed} >= {d["id"] for d in ready.values()}


@pytest.mark.parametrize("model", list(MODELS))
def test_page_with_bearer_shows_french_title_and_a_table(
    world: World, ready: dict[str, dict], model: str
) -> None:
    page = world.client.get(
        ready[model]["url"], headers={**world.headers("member"), "Accept": "text/html"}
    )
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert MODELS[model] in page.text.replace("&#x27;", "'")
    assert "<table>" in page.text
    assert 'lang="fr"' in page.text
    assert "script-src 'none'" in page.headers["content-security-policy"]


def test_page_with_the_session_cookie_from_connexion(world: World, ready: dict[str, dict]) -> None:
    from fastapi.testclient import TestClient

    url = ready["cantine-nantes"]["url"]
    with TestClient(world.app) as browser:
        anonymous = browser.get(url, headers={"Accept": "text/html"}, follow_redirects=False)
        assert anonymous.status_code == 303
        assert anonymous.headers["location"].startswith("/connexion?next=")
        login = sign_in(browser, world.tokens["member"], url)
        assert login.status_code == 303 and login.headers["location"] == url
        assert "bibia_session" in browser.cookies
        page = browser.get(url, headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert MODELS["cantine-nantes"] in page.text and "<table>" in page.text
        # The cookie is for pages and the proxy only: the JSON API does not read it.
        assert browser.get(f"/api/v1/demos/{ready['cantine-nantes']['id']}").status_code == 401


@pytest.mark.parametrize("model", list(MODELS))
def test_json_predictions_records_and_split(
    world: World, ready: dict[str, dict], model: str
) -> None:
    version = world.services.registry.version(model, 1)
    model_dir = world.services.registry.local_copy(model, version.version)
    inputs = [c["name"] for c in version.signature["inputs"]]
    rows = [{k: v for k, v in row.items() if k in inputs} for row in _sample(model_dir)]
    url = ready[model]["url"]
    headers = world.headers("member")

    records = world.client.post(f"{url}predict", headers=headers, json={"dataframe_records": rows})
    assert records.status_code == 200, records.text
    predictions = records.json()["predictions"]
    assert len(predictions) == len(rows)

    split = world.client.post(
        f"{url}predict",
        headers=headers,
        json={
            "dataframe_split": {
                "columns": inputs,
                "data": [[row[c] for c in inputs] for row in rows],
            }
        },
    )
    assert split.status_code == 200, split.text
    assert split.json()["predictions"] == predictions
    if model == "double-x":
        assert predictions == [{"y": 2.0 * float(r["x"])} for r in rows]


@pytest.mark.parametrize("model", list(MODELS))
def test_upload_of_the_sample_csv_shows_predictions_and_a_download(
    world: World, ready: dict[str, dict], model: str
) -> None:
    url = ready[model]["url"]
    headers = world.headers("member")
    sample = world.client.get(f"{url}sample.csv", headers=headers)
    assert sample.status_code == 200
    assert sample.headers["content-type"].startswith("text/csv")
    result = world.client.post(
        f"{url}upload", headers=headers, files={"file": ("exemple.csv", sample.content, "text/csv")}
    )
    assert result.status_code == 200, result.text
    assert result.history and result.history[0].status_code == 303  # POST, then the result page
    assert re.fullmatch(rf"{re.escape(url)}resultats/[\w-]{{22}}", result.url.path)
    assert "<table>" in result.text
    link = re.search(r'href="([A-Za-z0-9_-]{22}\.csv)"', result.text)
    assert link, result.text[:2000]
    download = world.client.get(urljoin(result.url.path, link.group(1)), headers=headers)
    assert download.status_code == 200
    assert "attachment" in download.headers["content-disposition"]
    text = download.content.decode("utf-8-sig")  # French Excel: BOM and ';'
    table = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    assert len(table) == min(len(sample.text.strip().splitlines()) - 1, 10_000)


def test_a_french_excel_csv_gives_predictions_through_the_sandbox_and_the_proxy(
    world: World, ready: dict[str, dict]
) -> None:
    url = ready["cantine-nantes"]["url"]
    headers = world.headers("member")
    french = (
        "\ufeffdate;cantine_nom;greve;note\r\n"
        "06/11/2017;LONGCHAMP;;12,5\r\n"
        "07/11/2017;LONGCHAMP;non;3,25\r\n"
        "07/11/2017;AIME CESAIRE;;1\r\n"
    ).encode("utf-8")
    result = world.client.post(
        f"{url}upload", headers=headers, files={"file": ("cantines.csv", french, "text/csv")}
    )
    assert result.status_code == 200, html.unescape(result.text)[:3000]
    page = html.unescape(result.text)
    assert "3 lignes calculées" in page and "<td>06/11/2017</td>" in page
    assert "Prédiction : Repas attendus" in page and '<td class="num">12,5</td>' in page
    assert '<a href="/modeles/cantine-nantes">Revenir à la fiche du modèle</a>' in page
    assert '<a href="/mes-demonstrateurs">Mes démonstrateurs</a>' in page
    again = world.client.get(result.url.path, headers=headers)  # a refresh sends nothing again
    assert again.status_code == 200 and again.text == result.text
    link = re.search(r'href="([A-Za-z0-9_-]{22}\.csv)"', result.text).group(1)
    download = world.client.get(urljoin(result.url.path, link), headers=headers)
    rows = list(csv.DictReader(io.StringIO(download.content.decode("utf-8-sig")), delimiter=";"))
    assert [r["date"] for r in rows] == ["06/11/2017", "07/11/2017", "07/11/2017"]
    assert all(int(r["repas_prevus"]) > 0 for r in rows)
    unknown = world.client.post(
        f"{url}upload",
        headers=headers,
        files={"file": ("x.csv", b"date;cantine_nom\n06/11/2017;LONGCHAMPS\n", "text/csv")},
    )
    assert unknown.status_code == 400
    message = html.unescape(unknown.text)
    assert (
        "Cantine inconnue : « LONGCHAMPS »" in message and "colonne cantine_nom, ligne 2" in message
    )
    assert "ValueError" not in message and "artefacts" not in message


def test_stop_removes_the_container(world: World, ready: dict[str, dict]) -> None:
    for demo in ready.values():
        assert container_ids(demo["id"]), "the demonstrator runs in a container"
        stopped = world.client.delete(
            f"/api/v1/demos/{demo['id']}", headers=world.headers("member")
        )
        assert stopped.status_code == 200, stopped.text
        assert stopped.json()["state"] == "stopped" and stopped.json()["url"] is None
        assert container_ids(demo["id"]) == []
        after = world.client.get(
            f"/api/v1/demos/{demo['id']}", headers=world.headers("member")
        ).json()
        assert after["state"] == "stopped"
        gone = world.client.post(
            f"{demo['url']}predict",
            headers=world.headers("member"),
            json={"dataframe_records": [{"x": 1}]},
        )
        assert gone.status_code == 409
        assert "n'est pas prêt" in gone.json()["message"]
    # Stopping twice is harmless.
    again = world.client.delete(
        f"/api/v1/demos/{ready['double-x']['id']}", headers=world.headers("member")
    )
    assert again.status_code == 200 and again.json()["state"] == "stopped"
