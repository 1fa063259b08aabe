"""PostgreSQL down under a running service: French 503s on every route that needs it, then recovery.

A PostgreSQL cluster of the test's own (``.ci/start-postgres.sh`` on another port
and directory, :mod:`tests.scale.postgres`) holds both databases (bibia's and
MLflow's, the scale configuration); one ``bibia serve`` replica
(:mod:`tests.scale.cluster`, behind nginx) runs on it with the process runner,
so that its reaper and its evaluation worker run. The server is stopped
(``pg_ctl -m immediate``) under the running service: every route of the route
table (:data:`tests.test_tiers.CASES`), as the API and as a signed-in browser,
answers either without the database (the documentation) or a 503 with a French
message, never a 500 nor a traceback; the background loops log and go on. The
server starts again: the same process serves everything, no restart.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.scale.cluster import Cluster, cluster
from tests.scale.postgres import PrivatePostgres, private_postgres
from tests.test_tiers import CASES
from tests.web.webdata import csrf_token, sign_in

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

OUTAGE_CODES = {"base_de_donnees_indisponible", "registre_indisponible"}
#: Background loops that meet the outage: what each logs when a pass fails.
LOOPS = ("reaping demonstrators failed", "evaluation worker")


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, sklearn_model_dir: Path
) -> Iterator[tuple[PrivatePostgres, Cluster, str]]:
    root = tmp_path_factory.mktemp("pg-outage")
    with private_postgres() as postgres:
        env = {
            # the process runner (reference models only): the reaper runs, often
            "BIBIA_RUNNER": "process",
            "BIBIA_DEMO_POOL_SIZE": "0",
            "BIBIA_DEMO_REAP_INTERVAL_S": "0.5",
            "BIBIA_EVALUATION_WORKERS": "1",
            "BIBIA_EVALUATION_POLL_INTERVAL_S": "0.5",
        }
        with cluster(
            root, postgres.server(), replicas=1, env=env, seed_model_dir=sklearn_model_dir
        ) as made:
            yield postgres, made, made.token("nantes-metropole", "admin")
            postgres.start()  # the cluster drops its databases on the way out


def _text(response: httpx.Response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def _problem(response: httpx.Response, page: bool) -> str | None:
    """What is wrong with an answer given while the database is down (None: nothing)."""
    status = response.status_code
    if "Traceback" in response.text:
        return f"{status}: a traceback"
    if status < 500:
        return None
    if status != 503:
        return f"{status} instead of 503: {response.text[:200]}"
    if page and response.headers.get("content-type", "").startswith("text/html"):
        text = _text(response).lower()
        return None if "indisponible" in text else f"503 page without a French reason: {text[:200]}"
    try:
        body: Any = response.json()
    except ValueError:
        return f"503 that is neither a page nor JSON: {response.text[:200]}"
    code = body.get("error") or body.get("error_code")
    if (
        body.get("error") not in OUTAGE_CODES
        and body.get("error_code") != "TEMPORARILY_UNAVAILABLE"
    ):
        return f"503 with code {code}"
    return None if "indisponible" in str(body.get("message")) else f"503 not in French: {body}"


def _log_count(made: Cluster, what: str) -> int:
    return made.replicas[0].log.read_text(errors="replace").count(what)


def test_postgres_down_every_route_answers_a_french_503_or_works_then_all_recovers(
    site: tuple[PrivatePostgres, Cluster, str],
) -> None:
    postgres, made, admin = site
    url = made.url
    bearer = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=url, timeout=60) as browser:
        assert sign_in(browser, admin).status_code == 303
        assert browser.get("/mes-demonstrateurs").status_code == 200
        assert httpx.get(f"{url}/api/v1/me", headers=bearer, timeout=30).status_code == 200
        csrf = csrf_token(browser)

        postgres.stop()
        problems: list[str] = []
        codes: dict[str, int] = {}
        answered = 0
        with httpx.Client(base_url=url, timeout=60) as api:
            for (method, _), case in sorted(CASES.items()):
                page = not case.path.startswith(("/api/", "/openapi", "/docs", "/redoc"))
                if page:
                    asks: list[tuple[httpx.Client, dict[str, Any]]] = [
                        (api, {"headers": {"accept": "text/html"}}),
                        (browser, {"headers": {"accept": "text/html"}}),
                    ]
                    if method != "GET":
                        asks = [(c, {**kw, "data": {"csrftoken": csrf}}) for c, kw in asks]
                else:
                    asks = [(api, {}), (api, {"headers": bearer})]
                    if method in ("POST", "PUT"):
                        asks = [(c, {**kw, "json": {}}) for c, kw in asks]
                for client, kwargs in asks:
                    response = client.request(method, case.path, follow_redirects=False, **kwargs)
                    problem = _problem(response, page)
                    if problem:
                        problems.append(f"{method} {case.path}: {problem}")
                    if response.status_code == 503 and not page:
                        code = response.json().get("error", "?")
                        codes[code] = codes.get(code, 0) + 1
                    answered += 1
        assert not problems, "\n".join(problems)

        # the routes of bibia's own data: its own 503, as JSON and as a page
        me = httpx.get(f"{url}/api/v1/me", headers=bearer, timeout=30)
        assert me.status_code == 503 and me.json()["error"] == "base_de_donnees_indisponible"
        assert me.json()["message"].startswith("base de données indisponible")
        mine = browser.get("/mes-demonstrateurs", headers={"accept": "text/html"})
        assert mine.status_code == 503, mine.text[:300]
        assert "base de données indisponible" in _text(mine).lower(), _text(mine)
        assert httpx.get(f"{url}/healthz", timeout=30).status_code == 503
        assert codes.get("base_de_donnees_indisponible", 0) >= 20, codes
        # what needs no database still answers: the documentation
        assert httpx.get(f"{url}/openapi.json", timeout=30).status_code == 200
        assert httpx.get(f"{url}/docs", timeout=30).status_code == 200

        # the background loops met the outage more than once: they went on after a failure
        deadline = time.monotonic() + 30
        while any(_log_count(made, loop) < 2 for loop in LOOPS) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert all(_log_count(made, loop) >= 2 for loop in LOOPS), made.replicas[0].tail()

        # the server returns: the same process serves again, the same session cookie included
        postgres.start()
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/healthz", timeout=30).status_code != 200:
            assert time.monotonic() < deadline, made.replicas[0].tail()
            time.sleep(0.5)
        assert made.replicas[0].alive
        assert httpx.get(f"{url}/api/v1/me", headers=bearer, timeout=30).status_code == 200
        models = httpx.get(f"{url}/api/v1/models", timeout=30)
        assert models.status_code == 200
        assert {"cantine-nantes", "pics-pollution-lille"} <= {
            m["name"] for m in models.json()["items"]
        }
        assert browser.get("/mes-demonstrateurs").status_code == 200
        assert browser.get("/modeles/cantine-nantes").status_code == 200
        made_token = httpx.post(
            f"{url}/api/v1/tokens",
            headers=bearer,
            json={"organisation": "nantes-metropole", "role": "member", "label": "après la panne"},
            timeout=30,
        )
        assert made_token.status_code in (200, 201), made_token.text

    # the loops work again: no failed pass after a few of their intervals
    time.sleep(2)
    before = [_log_count(made, loop) for loop in LOOPS]
    time.sleep(3)
    assert [_log_count(made, loop) for loop in LOOPS] == before, made.replicas[0].tail()
    assert made.replicas[0].alive
