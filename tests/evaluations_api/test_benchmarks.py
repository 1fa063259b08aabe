"""Benchmarks over the API: who sees them, who downloads their inputs and truth, what an upload must be."""

from __future__ import annotations

import pytest

from tests.evaluations_api.conftest import (
    BENCHMARKS,
    ROLES,
    TASK,
    EvalWorld,
    assert_french_error,
    cantine_csv,
    register_benchmark,
)

MEMBERS = {"member", "other_member", "expert", "admin"}


def _ok(ev: EvalWorld, path: str) -> set[str | None]:
    """The roles answered 200 on ``path`` (every other answer must be a French 4xx)."""
    allowed = set()
    for role in ROLES:
        response = ev.client.get(path, headers=ev.headers(role))
        if response.status_code == 200:
            allowed.add(role)
        else:
            assert 400 <= response.status_code < 500, (path, role, response.text)
            assert response.json()["message"], response.text
    return allowed


def test_tasks_are_listed_with_their_benchmarks(eval_world: EvalWorld) -> None:
    ev = eval_world
    tasks = {t["slug"]: t for t in ev.client.get("/api/v1/tasks").json()}
    assert TASK in tasks
    assert BENCHMARKS["public"] in tasks[TASK]["benchmarks"]
    assert BENCHMARKS["membres"] not in tasks[TASK]["benchmarks"]
    one = ev.client.get(f"/api/v1/tasks/{TASK}", headers=ev.headers("member")).json()
    assert BENCHMARKS["membres"] in one["benchmarks"]
    assert one["primary"] == "wmape"
    assert_french_error(ev.client.get("/api/v1/tasks/tache-inconnue"), 404, "introuvable")


@pytest.mark.parametrize(
    ("visibility", "metadata", "inputs", "truth"),
    [
        ("public", set(ROLES), set(ROLES), set(ROLES)),
        ("membres", MEMBERS, MEMBERS, MEMBERS),
        ("verite-cachee", set(ROLES), MEMBERS, set()),
    ],
)
def test_who_reads_a_benchmark(
    eval_world: EvalWorld,
    visibility: str,
    metadata: set[str | None],
    inputs: set[str | None],
    truth: set[str | None],
) -> None:
    ev = eval_world
    slug = BENCHMARKS[visibility]
    assert _ok(ev, f"/api/v1/benchmarks/{slug}") == metadata
    assert _ok(ev, f"/api/v1/benchmarks/{slug}/entrees.csv") == inputs
    assert _ok(ev, f"/api/v1/benchmarks/{slug}/verite.csv") == truth
    listed = {
        role
        for role in ROLES
        if slug
        in {b["slug"] for b in ev.client.get("/api/v1/benchmarks", headers=ev.headers(role)).json()}
    }
    assert listed == metadata


def test_the_hidden_truth_is_refused_to_everyone(eval_world: EvalWorld) -> None:
    ev = eval_world
    slug = BENCHMARKS["verite-cachee"]
    for role in ROLES:
        response = ev.client.get(f"/api/v1/benchmarks/{slug}/verite.csv", headers=ev.headers(role))
        assert_french_error(response, 403, "acces_refuse")
        assert "reel" not in response.text
        view = ev.client.get(f"/api/v1/benchmarks/{slug}", headers=ev.headers(role)).json()
        assert view["truth_readable"] is False and view["visibility"] == "verite-cachee"
    inputs = ev.client.get(f"/api/v1/benchmarks/{slug}/entrees.csv", headers=ev.headers("member"))
    assert inputs.status_code == 200 and inputs.headers["content-type"].startswith("text/csv")
    header = inputs.text.splitlines()[0]
    assert "cantine_nom" in header and "reel" not in header


def test_a_registered_benchmark_has_its_provenance_and_versions(eval_world: EvalWorld) -> None:
    ev = eval_world
    public = ev.benchmarks["public"]
    assert public["version"] == 1 and public["organisation"] == "nantes-metropole"
    assert public["n_rows"] == 60 and len(public["content_hash"]) == 64
    assert public["truth_columns"] == ["reel"]
    # the same content again is refused; other content is the next version
    same = register_benchmark(ev.world, BENCHMARKS["public"], "public")
    assert_french_error(same, 409)
    second = register_benchmark(
        ev.world, BENCHMARKS["public"], "public", data=cantine_csv(weeks=7, sep=",")
    )
    assert second.status_code == 201, second.text
    assert second.json()["version"] == 2
    assert second.headers["location"].endswith("version=2")
    first = ev.client.get(f"/api/v1/benchmarks/{BENCHMARKS['public']}?version=1").json()
    assert first["content_hash"] == public["content_hash"]


def test_only_experts_register_benchmarks(eval_world: EvalWorld) -> None:
    ev = eval_world
    assert_french_error(register_benchmark(ev.world, "refuse-anonyme", "public", role=None), 401)
    assert_french_error(register_benchmark(ev.world, "refuse-membre", "public", role="member"), 403)


def test_bad_benchmarks_are_refused_in_french(eval_world: EvalWorld) -> None:
    ev = eval_world
    w = ev.world
    assert_french_error(register_benchmark(w, "mauvais-1", "public", task="inconnue"), 404)
    assert_french_error(register_benchmark(w, "mauvais-2", "tout-le-monde"), 400)
    assert_french_error(register_benchmark(w, "Mauvais Slug", "public"), 400)
    # bad CSVs: binary junk, the truth column missing, a non-number where meals are counted
    assert_french_error(
        register_benchmark(w, "mauvais-3", "public", data=b"\x00\xff\xfe" * 100), 422
    )
    no_truth = b"date;cantine_nom\n04/09/2023;Cantine Chantenay\n"
    body = assert_french_error(register_benchmark(w, "mauvais-4", "public", data=no_truth), 422)
    assert "reel" in body["message"] or "reel" in str(body.get("details"))
    junk = cantine_csv().replace(b";180\n", b";beaucoup\n", 1)
    if junk != cantine_csv():
        assert_french_error(register_benchmark(w, "mauvais-5", "public", data=junk), 422)
    oversized = cantine_csv() + b"#" * (1024 * 1024 + 10)
    assert_french_error(register_benchmark(w, "mauvais-6", "public", data=oversized), 413)
    assert_french_error(register_benchmark(w, "mauvais-7", "public", data=b""), 400)
    missing_file = w.client.post(
        "/api/v1/benchmarks",
        headers=w.headers("expert"),
        data={"slug": "mauvais-8", "task": TASK, "title": "T", "licence": "L"},
    )
    assert_french_error(missing_file, 422)
    for path in ("/api/v1/benchmarks/inconnu", "/api/v1/benchmarks/inconnu/entrees.csv"):
        assert_french_error(w.client.get(path, headers=w.headers("member")), 404)
    assert_french_error(w.client.get(f"/api/v1/benchmarks/{BENCHMARKS['public']}?version=99"), 404)
