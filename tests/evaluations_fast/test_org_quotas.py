"""An organisation's own quotas (set by an administrator) are the ones a launch and an evaluation meet.

The real service on the fake runner: the service's settings say 1 demonstrator
and 1 evaluation per organisation; an administrator raises Nantes Métropole's
own quotas to 2 through ``PUT /api/v1/orgs/{slug}/quotas`` and the second
launch and evaluation go through, the third are refused (429, in French, with
the organisation's quota in the message); Lille keeps the service's setting;
clearing the override brings the service's setting back.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tests.conftest import World
from tests.demos_fast.conftest import add_row, fake_world
from tests.demos_service.conftest import launch
from tests.evaluations_fast.conftest import eval_world, submit


def _quotas(world: World, slug: str, **body: object):
    return world.client.put(
        f"/api/v1/orgs/{slug}/quotas", json=body, headers=world.headers("admin")
    )


def test_an_organisations_own_demo_quota_applies(fast_tmp: Path, ok_model: Path) -> None:
    with fake_world(fast_tmp, ok_model, demo_quota_per_org=1, demo_quota_global=10) as world:
        add_row(world, "ready", dt.datetime.now(dt.UTC))  # Nantes runs one already
        refused = launch(world, "double-x")
        assert refused.status_code == 429, refused.text
        assert "(quota : 1)" in refused.json()["message"]

        response = _quotas(world, "nantes-metropole", demos=2, evaluations=None)
        assert response.status_code == 200, response.text
        assert response.json() == {
            "organisation": "nantes-metropole",
            "demos": 2,
            "evaluations": None,
            "demos_applied": 2,
            "evaluations_applied": world.services.settings.evaluation_quota_per_org,
        }
        allowed = launch(world, "double-x")
        assert allowed.status_code == 202, allowed.text
        third = launch(world, "double-x")
        assert third.status_code == 429 and "(quota : 2)" in third.json()["message"], third.text

        assert _quotas(world, "nantes-metropole", demos=None).json()["demos_applied"] == 1
        again = launch(world, "double-x")
        assert again.status_code == 429 and "(quota : 1)" in again.json()["message"]


def test_an_organisations_own_evaluation_quota_applies(fast_tmp: Path, ok_model: Path) -> None:
    with eval_world(fast_tmp, ok_model, evaluation_quota_per_org=1) as world:
        assert submit(world, "double-x@production", benchmark="doubles").status_code == 202
        refused = submit(world, "double-x@production", benchmark="doubles")
        assert refused.status_code == 429 and "(quota : 1)" in refused.json()["message"]

        assert _quotas(world, "nantes-metropole", evaluations=2).status_code == 200
        assert submit(world, "double-x@production", benchmark="doubles").status_code == 202
        third = submit(world, "double-x@production", benchmark="doubles")
        assert third.status_code == 429 and "(quota : 2)" in third.json()["message"]
        # Lille keeps the service's setting
        assert (
            submit(world, "double-x@production", "other_member", benchmark="doubles").status_code
            == 202
        )
        lille = submit(world, "double-x@production", "other_member", benchmark="doubles")
        assert lille.status_code == 429 and "(quota : 1)" in lille.json()["message"]
        # 0 forbids any new evaluation
        assert _quotas(world, "lille", evaluations=0).status_code == 200


def test_bad_quotas_are_refused_in_french_and_change_nothing(
    fast_tmp: Path, ok_model: Path
) -> None:
    with eval_world(fast_tmp, ok_model, register=False) as world:
        for body, fragment in (
            ({"demos": -1}, "quota de démonstrateurs invalide"),
            ({"evaluations": 1001}, "quota d'évaluations invalide"),
            ({"demos": 2, "evaluations": -5}, "quota d'évaluations invalide"),
        ):
            response = _quotas(world, "nantes-metropole", **body)
            assert response.status_code == 400, response.text
            assert fragment in response.json()["message"]
        assert _quotas(world, "inconnue", demos=1).status_code == 404
        assert (
            world.client.put(
                "/api/v1/orgs/nantes-metropole/quotas",
                json={"demos": 1},
                headers=world.headers("expert"),
            ).status_code
            == 403
        )
        audit = world.client.get(
            "/api/v1/audit", params={"action": "org.quotas"}, headers=world.headers("admin")
        ).json()
        assert audit == []
