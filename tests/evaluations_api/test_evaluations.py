"""Evaluation jobs over the API: submit (a benchmark, or a member's labelled CSV), follow, cancel,
compare, leaderboard; bad input is a French 4xx, never a 500.

Finished evaluations come from the real worker, run in the test thread
(``app.state.evaluations.run_queued()``) on the fake runner, whose sandbox
answers 185 meals a day and checks that the truth never reaches it.
"""

from __future__ import annotations

from typing import Any

from tests.evaluations_api.conftest import (
    BENCHMARKS,
    MODEL,
    ROLES,
    TASK,
    EvalWorld,
    assert_french_error,
    cantine_csv,
)


def _submit(ev: EvalWorld, role: str | None, **body: Any) -> Any:
    return ev.client.post("/api/v1/evaluations", json=body, headers=ev.headers(role))


def _upload(ev: EvalWorld, role: str | None, data: bytes, **fields: str) -> Any:
    return ev.client.post(
        "/api/v1/evaluations",
        headers=ev.headers(role),
        files={"fichier": ("mes-cantines.csv", data, "text/csv")},
        data={"model": f"{MODEL}@production", **fields},
    )


def _run(ev: EvalWorld) -> None:
    ev.world.app.state.evaluations.run_queued()


def _seen_by(ev: EvalWorld, evaluation_id: str) -> set[str | None]:
    return {
        role
        for role in ROLES
        if ev.client.get(
            f"/api/v1/evaluations/{evaluation_id}", headers=ev.headers(role)
        ).status_code
        == 200
    }


def test_a_verified_evaluation_runs_and_is_seen_as_its_benchmark(eval_world: EvalWorld) -> None:
    ev = eval_world
    for visibility, seen in (
        ("public", set(ROLES)),
        ("membres", {"member", "other_member", "expert", "admin"}),
        ("verite-cachee", set(ROLES)),
    ):
        submitted = _submit(
            ev, "member", model=f"{MODEL}@production", benchmark=BENCHMARKS[visibility]
        )
        assert submitted.status_code == 202, submitted.text
        job = submitted.json()
        assert job["state"] == "queued" and job["kind"] == "benchmark"
        assert submitted.headers["location"] == f"/api/v1/evaluations/{job['id']}"
        _run(ev)
        done = ev.client.get(submitted.headers["location"], headers=ev.headers("member")).json()
        assert done["state"] == "done", done
        assert done["verified"] is True and done["version"] == 1
        assert set(done["metrics"]) >= {"mae", "wmape"} and done["baseline_metrics"]
        assert done["benchmark"].startswith(BENCHMARKS[visibility] + "/")
        assert _seen_by(ev, job["id"]) == seen, visibility

    board = ev.client.get(
        f"/api/v1/tasks/{TASK}/leaderboard?benchmark={BENCHMARKS['public']}&sort=mae&order=asc"
    )
    assert board.status_code == 200, board.text
    rows = board.json()["rows"]
    assert any(r["model"] == MODEL and not r["is_baseline"] for r in rows)
    assert any(r["is_baseline"] for r in rows)
    compared = ev.client.get(f"/api/v1/compare?models={MODEL}@production,{MODEL}/1&metrics=mae")
    assert compared.status_code == 200, compared.text
    assert [m["model"] for m in compared.json()["models"]] == [MODEL, MODEL]
    results = ev.client.get(f"/api/v1/models/{MODEL}/evaluations").json()
    assert results["verified"] and all(e["verified"] for e in results["verified"])
    assert all(
        not (e["benchmark"] or "").startswith(BENCHMARKS["membres"] + "/")
        for e in results["verified"]
    ), "an anonymous caller sees no result on a members-only benchmark"


def test_my_data_is_private_to_my_organisation(eval_world: EvalWorld) -> None:
    ev = eval_world
    submitted = _upload(ev, "other_member", cantine_csv(weeks=5))
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    assert job["kind"] == "donnees" and job["verified"] is False
    assert job["data_name"] == "mes-cantines.csv"
    _run(ev)
    done = ev.client.get(f"/api/v1/evaluations/{job['id']}", headers=ev.headers("other_member"))
    assert done.json()["state"] == "done", done.text
    assert _seen_by(ev, job["id"]) == {"other_member", "admin"}
    mine = ev.client.get("/api/v1/evaluations?mine=true", headers=ev.headers("other_member"))
    assert job["id"] in {e["id"] for e in mine.json()}
    # B publishes it to members: A's member reads the figures, the public does not
    report = ev.client.post(
        f"/api/v1/evaluations/{job['id']}/report",
        json={"text": "Testé à Lille sur 5 semaines.", "audience": "membres"},
        headers=ev.headers("other_member"),
    )
    assert report.status_code == 201, report.text
    for role, sees in ((None, False), ("member", True), ("other_member", True)):
        reports = ev.client.get(
            f"/api/v1/models/{MODEL}/evaluations", headers=ev.headers(role)
        ).json()["reports"]
        assert any(r["evaluation"] == job["id"] for r in reports) is sees, role


def test_a_queued_evaluation_is_cancelled_by_its_organisation(eval_world: EvalWorld) -> None:
    ev = eval_world
    job = _submit(ev, "member", model=f"{MODEL}@production", benchmark=BENCHMARKS["public"]).json()
    url = f"/api/v1/evaluations/{job['id']}"
    assert_french_error(ev.client.delete(url), 401)
    refused = ev.client.delete(url, headers=ev.headers("other_member"))
    assert refused.status_code in (403, 404), refused.text
    cancelled = ev.client.delete(url, headers=ev.headers("member"))
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    again = ev.client.delete(url, headers=ev.headers("member"))
    assert again.status_code == 200 and again.json()["state"] == "cancelled"


def test_bad_submissions_are_refused_in_french(eval_world: EvalWorld) -> None:
    ev = eval_world
    ref = f"{MODEL}@production"
    public = BENCHMARKS["public"]
    assert_french_error(_submit(ev, None, model=ref, benchmark=public), 401)
    assert_french_error(_submit(ev, "member", model="Pas Valide@@", benchmark=public), 400)
    assert_french_error(_submit(ev, "member", model="cantine-essai/zero", benchmark=public), 400)
    assert_french_error(
        _submit(ev, "member", model="modele-inconnu@production", benchmark=public), 404
    )
    assert_french_error(_submit(ev, "member", model=f"{MODEL}@inexistant", benchmark=public), 404)
    assert_french_error(_submit(ev, "member", model=f"{MODEL}/9", benchmark=public), 404)
    assert_french_error(_submit(ev, "member", model=ref, benchmark="jeu-inconnu"), 404)
    assert_french_error(_submit(ev, "member", model=ref), 422)
    assert_french_error(
        _submit(ev, "member", model=ref, benchmark=public, benchmark_version=0), 422
    )
    raw = ev.client.post(
        "/api/v1/evaluations",
        content=b"{pas du json",
        headers={**ev.headers("member"), "content-type": "application/json"},
    )
    assert_french_error(raw, 422)
    # a member's labelled CSV
    assert_french_error(_upload(ev, "member", b"\x00\xff\xfe" * 200), 422)
    assert_french_error(_upload(ev, "member", b"date;cantine_nom\n04/09/2023;A\n"), 422)
    assert_french_error(_upload(ev, "member", b""), 400)
    assert_french_error(_upload(ev, "member", cantine_csv() + b"#" * (1024 * 1024 + 10)), 413)
    assert_french_error(_upload(ev, "member", cantine_csv(), task="tache-inconnue"), 404)
    assert_french_error(_upload(ev, "member", cantine_csv(), benchmark=public), 400)
    no_file = ev.client.post(
        "/api/v1/evaluations",
        headers=ev.headers("member"),
        files={"autre": ("x.csv", b"a\n1\n", "text/csv")},
        data={"model": ref},
    )
    assert_french_error(no_file, 400)
    no_model = ev.client.post(
        "/api/v1/evaluations",
        headers=ev.headers("member"),
        files={"fichier": ("x.csv", cantine_csv(), "text/csv")},
    )
    assert_french_error(no_model, 400)
    # reads
    assert_french_error(ev.client.get("/api/v1/evaluations/" + "x" * 65), 422)
    assert_french_error(ev.client.get("/api/v1/evaluations/inconnue"), 404)
    assert_french_error(ev.client.get("/api/v1/compare?models="), 400)
    assert_french_error(ev.client.get("/api/v1/compare?models=Pas Valide"), 400)
    many = ",".join(f"{MODEL}/{i}" for i in range(1, 30))
    assert_french_error(ev.client.get(f"/api/v1/compare?models={many}"), 400)
    assert_french_error(ev.client.get(f"/api/v1/tasks/{TASK}/leaderboard?order=haut"), 422)
    assert_french_error(ev.client.get("/api/v1/tasks/tache-inconnue/leaderboard"), 404)


def test_model_settings_are_the_owners(eval_world: EvalWorld) -> None:
    ev = eval_world
    url = f"/api/v1/models/{MODEL}/evaluation-settings"
    assert_french_error(ev.client.put(url, json={"task": TASK}), 401)
    assert_french_error(ev.client.put(url, json={"task": TASK}, headers=ev.headers("member")), 403)
    assert_french_error(
        ev.client.put(url, json={"task": TASK}, headers=ev.headers("other_expert")), 403
    )
    ok = ev.client.put(
        url, json={"task": TASK, "promotion_gate": False}, headers=ev.headers("expert")
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["task"] == TASK and ok.json()["promotion_gate"] is False
    assert_french_error(
        ev.client.put(url, json={"task": "tache-inconnue"}, headers=ev.headers("expert")), 404
    )


def test_identifiers_and_control_characters_are_a_4xx(eval_world: EvalWorld) -> None:
    ev = eval_world
    member = ev.headers("member")
    for path in (
        "/api/v1/evaluations?model=%00",
        "/api/v1/evaluations?benchmark=a%00b",
        "/api/v1/benchmarks?task=%00",
        "/api/v1/evaluations/ab%00cd",
        f"/api/v1/tasks/{TASK}/leaderboard?benchmark=%00",
        f"/api/v1/tasks/{TASK}/leaderboard?sort=%00",
        f"/api/v1/compare?models={MODEL}@production&benchmark=%00",
        "/api/v1/benchmarks/Pas%20Valide",
    ):
        response = ev.client.get(path, headers=member)
        assert 400 <= response.status_code < 500, (path, response.text)
        assert response.json()["message"], path
    assert_french_error(_upload(ev, "member", cantine_csv(), truth_column="re\x00el"), 400)
    assert_french_error(_submit(ev, "member", model=f"{MODEL}@production", benchmark="a\x00b"), 422)


def test_the_chart_of_a_hidden_truth_benchmark_shows_no_truth(eval_world: EvalWorld) -> None:
    ev = eval_world
    submitted = _submit(
        ev, "member", model=f"{MODEL}@production", benchmark=BENCHMARKS["verite-cachee"]
    )
    assert submitted.status_code == 202, submitted.text
    _run(ev)
    for role in ROLES:
        done = ev.client.get(submitted.headers["location"], headers=ev.headers(role)).json()
        assert done["state"] == "done", done
        chart = done["chart"] or {}
        assert not chart.get("observed"), f"{role}: the hidden truth in the chart"
        assert not chart.get("baseline"), f"{role}: the baseline, made of the hidden truth"
