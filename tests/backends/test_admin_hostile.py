"""The administrators' pages and API on each backend: hostile input is a French 4xx, never a 500.

PostgreSQL refuses a NUL character anywhere in a query's text, where SQLite
takes it: every field, path and filter of /admin gets one (and other hostile
values), on both databases, and nothing is written.
"""

from __future__ import annotations

import pytest

from bibia.settings import Settings
from tests.backends.conftest import Backend
from tests.conftest import make_world

NUL = "a\x00b"
HTML = {"accept": "text/html"}


def test_hostile_input_on_every_admin_page_is_a_french_4xx(fresh_backend: Backend) -> None:
    settings = Settings(
        data_dir=fresh_backend.root / "data",
        database_url=fresh_backend.bibia_uri,
        mlflow_tracking_uri=fresh_backend.mlflow_uri,
        seed_on_start=False,
        runner="none",
    )
    world = make_world(settings)
    admin = {**world.headers("admin"), **HTML}
    with world.client as client:
        posts = [
            ("/admin/organisations", {"slug": "ok-slug", "name": NUL, "siren": ""}),
            ("/admin/organisations", {"slug": NUL, "name": "X", "siren": NUL}),
            ("/admin/organisations/lille/jetons", {"user": NUL, "role": "member", "label": ""}),
            ("/admin/organisations/lille/jetons", {"user": "ok", "role": "member", "label": NUL}),
            ("/admin/organisations/lille/jetons", {"user": "ok", "role": NUL}),
            ("/admin/organisations/lille/roles", {"user": NUL, "role": "member"}),
            ("/admin/organisations/lille/roles", {"user": "expert-lille", "role": NUL}),
            ("/admin/organisations/lille/quotas", {"demos": NUL, "evaluations": "²"}),
            ("/admin/organisations/a%00b/quotas", {"demos": "1"}),
            ("/admin/organisations/a%00b/jetons", {"user": "ok", "role": "member"}),
            ("/admin/organisations/a%00b/roles", {"user": "ok", "role": "member"}),
            ("/admin/organisations/lille/jetons/a%00b/revoquer", {}),
            ("/admin/organisations/a%00b/jetons/00000000/revoquer", {}),
        ]
        for path, data in posts:
            response = client.post(path, data=data, headers=admin, follow_redirects=False)
            assert 400 <= response.status_code < 500, (path, data, response.status_code)
            assert "text/html" in response.headers["content-type"]
            assert "Erreur" in response.text or "erreur" in response.text, (path, data)
        gets = [
            "/admin/organisations/a%00b",
            "/admin/journal?qui=a%00b",
            "/admin/journal?objet=a%00b",
            "/admin/journal?action=a%00b",
            "/admin/journal?du=a%00b",
            "/admin/journal.csv?qui=a%00b",
            "/admin/journal?page=a%00b",
        ]
        for path in gets:
            response = client.get(path, headers=admin)
            assert response.status_code in (200, 400, 404), (path, response.status_code)
        api = client.put(
            "/api/v1/orgs/a%00b/quotas", json={"demos": 1}, headers=world.headers("admin")
        )
        assert api.status_code in (400, 404), api.text
        for path in (
            "/api/v1/tokens?organisation=a%00b",
            "/api/v1/audit?action=a%00b",
        ):
            answer = client.get(path, headers=world.headers("admin"))
            assert answer.status_code == 200 and answer.json() == [], path
        refused = client.post(
            "/api/v1/tokens",
            json={"organisation": "lille", "role": "member", "user": NUL},
            headers=world.headers("admin"),
        )
        assert refused.status_code == 400, refused.text
        assert "caractère de contrôle" in refused.json()["message"]
        bad_org = client.post(
            "/api/v1/orgs", json={"slug": "x", "name": NUL}, headers=world.headers("admin")
        )
        assert bad_org.status_code == 400, bad_org.text
        orgs = {o["slug"] for o in client.get("/api/v1/orgs").json()}
        assert orgs == {"nantes-metropole", "lille"}
        tokens = client.get("/api/v1/tokens", headers=world.headers("admin")).json()
        assert {t["user"] for t in tokens} == {"agent", "experte", "admin", "expert-lille"}


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
