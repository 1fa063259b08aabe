"""Reuse reports and reuses over the API, in the tier matrix.

Roles: anonymous, member A (Nantes Métropole, whose evaluations these are),
member B (Lille), expert A, admin. A private evaluation (a member's labelled
CSV) is its organisation's only; published to members, members of every
organisation read it and the public does not; published to everyone, all do.
"""

from __future__ import annotations

from typing import Any

from tests.evaluations_api.conftest import (
    BENCHMARKS,
    MODEL,
    ROLES,
    EvalWorld,
    assert_french_error,
    insert_evaluation,
)

RESULTS = f"/api/v1/models/{MODEL}/evaluations"


def _reports(ev: EvalWorld, role: str | None) -> list[dict[str, Any]]:
    response = ev.client.get(RESULTS, headers=ev.headers(role))
    assert response.status_code == 200, response.text
    return response.json()["reports"]


def _readers(ev: EvalWorld, report_id: int) -> set[str | None]:
    return {role for role in ROLES if any(r["id"] == report_id for r in _reports(ev, role))}


def _audit_actions(ev: EvalWorld) -> list[str]:
    response = ev.client.get("/api/v1/audit?limit=200", headers=ev.headers("admin"))
    assert response.status_code == 200, response.text
    return [event["action"] for event in response.json()]


def test_a_private_evaluation_is_its_organisations_only(eval_world: EvalWorld) -> None:
    ev = eval_world
    evaluation = insert_evaluation(ev.services)
    seen = {
        role: ev.client.get(f"/api/v1/evaluations/{evaluation}", headers=ev.headers(role))
        for role in ROLES
    }
    assert {role for role, r in seen.items() if r.status_code == 200} == {
        "member",
        "expert",
        "admin",
    }
    for role in (None, "other_member"):
        assert_french_error(seen[role], 404, "introuvable")
    listed = {
        role: {
            e["id"] for e in ev.client.get("/api/v1/evaluations", headers=ev.headers(role)).json()
        }
        for role in ROLES
    }
    assert evaluation not in listed[None] and evaluation not in listed["other_member"]
    assert evaluation in listed["member"]
    # an evaluation nobody published is never a report
    assert all(r["evaluation"] != evaluation for role in ROLES for r in _reports(ev, role))


def test_published_to_members_then_to_everyone(eval_world: EvalWorld) -> None:
    ev = eval_world
    evaluation = insert_evaluation(ev.services)
    url = f"/api/v1/evaluations/{evaluation}/report"
    body = {"text": "Essayé sur nos 12 cantines : 6,7 % d'erreur.", "audience": "membres"}

    assert_french_error(ev.client.post(url, json=body), 401)
    # B does not see A's private evaluation: it cannot publish it either
    assert_french_error(ev.client.post(url, json=body, headers=ev.headers("other_member")), 404)

    published = ev.client.post(url, json=body, headers=ev.headers("member"))
    assert published.status_code == 201, published.text
    report = published.json()
    assert report["audience"] == "membres" and report["evaluation"] == evaluation
    assert report["organisation"] == "nantes-metropole"
    assert report["metrics"] == {"mae": 12.5, "wmape": 0.0671}
    assert _readers(ev, report["id"]) == {"member", "other_member", "expert", "admin"}
    # the evaluation itself stays private: publishing shows the report, not the job
    assert ev.client.get(f"/api/v1/evaluations/{evaluation}").status_code == 404

    again = ev.client.post(
        url,
        json={**body, "audience": "public", "text": "Mis à jour."},
        headers=ev.headers("expert"),
    )
    assert again.status_code == 201, again.text
    assert again.json()["id"] == report["id"], "one report per evaluation: publishing updates it"
    assert again.json()["text"] == "Mis à jour."
    assert _readers(ev, report["id"]) == set(ROLES)
    assert sum(r["evaluation"] == evaluation for r in _reports(ev, None)) == 1

    # withdrawing: the publishing organisation only
    delete = f"/api/v1/reports/{report['id']}"
    assert_french_error(ev.client.delete(delete), 401)
    assert_french_error(ev.client.delete(delete, headers=ev.headers("other_member")), 403)
    assert ev.client.delete(delete, headers=ev.headers("member")).status_code == 204
    assert _readers(ev, report["id"]) == set()
    assert_french_error(ev.client.delete(delete, headers=ev.headers("member")), 404)
    actions = _audit_actions(ev)
    assert {"report.publish", "report.update", "report.unpublish"} <= set(actions)


def test_only_a_done_evaluation_is_published(eval_world: EvalWorld) -> None:
    ev = eval_world
    for state in ("queued", "failed"):
        evaluation = insert_evaluation(ev.services, state=state)
        response = ev.client.post(
            f"/api/v1/evaluations/{evaluation}/report",
            json={"text": "Trop tôt.", "audience": "public"},
            headers=ev.headers("member"),
        )
        assert_french_error(response, 409)


def test_a_verified_evaluation_on_a_members_benchmark_is_never_public(
    eval_world: EvalWorld,
) -> None:
    ev = eval_world
    evaluation = insert_evaluation(
        ev.services, kind="benchmark", benchmark_slug=BENCHMARKS["membres"]
    )
    url = f"/api/v1/evaluations/{evaluation}/report"
    refused = ev.client.post(
        url, json={"text": "Résultat.", "audience": "public"}, headers=ev.headers("member")
    )
    assert_french_error(refused, 400)
    ok = ev.client.post(
        url, json={"text": "Résultat.", "audience": "membres"}, headers=ev.headers("member")
    )
    assert ok.status_code == 201, ok.text
    assert _readers(ev, ok.json()["id"]) == {"member", "other_member", "expert", "admin"}


def test_bad_reports_are_refused_in_french(eval_world: EvalWorld) -> None:
    ev = eval_world
    evaluation = insert_evaluation(ev.services)
    url = f"/api/v1/evaluations/{evaluation}/report"
    member = ev.headers("member")
    for body in (
        {"text": "x" * 5001, "audience": "membres"},
        {"text": "   ", "audience": "membres"},
        {"text": "Bien.", "audience": "tout-le-monde"},
        {"text": "Bien.\x00", "audience": "public"},
    ):
        assert_french_error(ev.client.post(url, json=body, headers=member), 400)
    assert_french_error(ev.client.post(url, json={"text": "Bien."}, headers=member), 422)
    assert_french_error(ev.client.post(url, content=b"{pas du json", headers=member), 422)
    assert (
        ev.client.post(
            url, json={"text": "x" * 5000, "audience": "membres"}, headers=member
        ).status_code
        == 201
    )
    unknown = ev.client.post(
        "/api/v1/evaluations/inconnue/report",
        json={"text": "Bien.", "audience": "public"},
        headers=member,
    )
    assert_french_error(unknown, 404)
    for report_id in ("0", "abc", str(2**40)):
        response = ev.client.delete(f"/api/v1/reports/{report_id}", headers=member)
        assert 400 <= response.status_code < 500, (report_id, response.text)


def test_reuses_are_public_and_one_per_organisation(eval_world: EvalWorld) -> None:
    ev = eval_world
    url = f"/api/v1/models/{MODEL}/reuses"
    body = {
        "text": "Lille commande ses repas avec ce modèle.",
        "url": "https://www.lille.fr/cantines",
    }
    assert_french_error(ev.client.post(url, json=body), 401)
    first = ev.client.post(url, json=body, headers=ev.headers("other_member"))
    assert first.status_code == 201, first.text
    assert first.json()["organisation"] == "lille"
    again = ev.client.post(
        url,
        json={"text": "Dans 40 cantines désormais.", "url": None},
        headers=ev.headers("other_expert"),
    )
    assert again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"], "one reuse per organisation and model"
    assert again.json()["url"] is None
    for role in ROLES:
        reuses = ev.client.get(RESULTS, headers=ev.headers(role)).json()["reuses"]
        assert [r["text"] for r in reuses if r["organisation"] == "lille"] == [
            "Dans 40 cantines désormais."
        ], role

    assert_french_error(ev.client.delete(url), 401)
    # Nantes declared nothing: withdrawing is its own declaration only
    assert_french_error(ev.client.delete(url, headers=ev.headers("member")), 404)
    assert ev.client.delete(url, headers=ev.headers("other_member")).status_code == 204
    assert not [r for r in ev.client.get(RESULTS).json()["reuses"] if r["organisation"] == "lille"]
    assert {"reuse.declare", "reuse.update", "reuse.withdraw"} <= set(_audit_actions(ev))


def test_bad_reuses_are_refused_in_french(eval_world: EvalWorld) -> None:
    ev = eval_world
    member = ev.headers("member")
    url = f"/api/v1/models/{MODEL}/reuses"
    for body in (
        {"text": "x" * 5001},
        {"text": ""},
        {"text": "Bien.", "url": "javascript:alert(1)"},
        {"text": "Bien.", "url": "https://exemple.fr/a b"},
        {"text": "Bien.", "url": "https://" + "a" * 600 + ".fr"},
    ):
        assert_french_error(ev.client.post(url, json=body, headers=member), 400)
    assert_french_error(
        ev.client.post(
            "/api/v1/models/modele-inconnu/reuses", json={"text": "Bien."}, headers=member
        ),
        404,
    )
    assert_french_error(
        ev.client.post("/api/v1/models/Pas_Valide/reuses", json={"text": "Bien."}, headers=member),
        400,
    )
