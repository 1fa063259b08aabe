"""The audit log's filters on the API and the CLI: the web journal's query (who, what, which
object, between which moments), one definition (:func:`bibia.accounts.audit_query`)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bibia import accounts
from bibia.db.models import AuditEvent
from domain.errors import InvalidInput
from tests.conftest import World, cli
from tests.test_cli import ok, refused

PARIS = dt.timezone(dt.timedelta(hours=1))  # winter in Paris


def _events(world: World) -> None:
    """Three events at known moments (1 March 2026, Paris time), besides the world's own."""
    with world.services.db.session() as session:  # type: ignore[attr-defined]
        for hour, actor, action, target in (
            (9, "alice (nantes-metropole)", "model.alias", "cantine-nantes"),
            (12, "bob (lille)", "model.register", "pollution-lille"),
            (23, "alice (nantes-metropole)", "model.card", "cantine-nantes"),
        ):
            session.add(
                AuditEvent(
                    at=dt.datetime(2026, 3, 1, hour, tzinfo=PARIS).astimezone(dt.UTC),
                    actor=actor,
                    organisation=None,
                    action=action,
                    target=target,
                    details=None,
                )
            )


def _api(world: World, **params: str) -> tuple[int, list[str] | dict, str | None]:
    answer = world.client.get("/api/v1/audit", params=params, headers=world.headers("admin"))
    body = answer.json()
    shown = [e["action"] for e in body] if answer.status_code == 200 else body
    return answer.status_code, shown, answer.headers.get("x-total-count")


def test_the_api_filters_by_actor_action_object_and_moments(world: World) -> None:
    _events(world)
    assert _api(world, actor="ALICE") == (200, ["model.card", "model.alias"], "2")
    assert _api(world, target="cantine", action="model.alias") == (200, ["model.alias"], "1")
    # days are Paris days, both ends included (23:00 in Paris is 22:00 UTC: the same day)
    assert _api(world, since="2026-03-01", until="2026-03-01")[1] == [
        "model.card",
        "model.register",
        "model.alias",
    ]
    assert _api(world, since="2026-03-01T10:00", until="2026-03-01T23:00")[1] == ["model.register"]
    assert _api(world, since="2026-03-01T10:00:00+01:00", until="2026-03-02", limit="1") == (
        200,
        ["model.card"],
        "2",
    )
    assert _api(world, since="2026-03-01", offset="1", until="2026-03-01")[1] == [
        "model.register",
        "model.alias",
    ]
    # nothing matches: an empty list, never an error
    assert _api(world, actor="personne") == (200, [], "0")
    assert _api(world, action="a\x00b") == (200, [], "0")
    assert _api(world, target="x\x00") == (200, [], "0")
    # a date that is not one: a French 400
    status, body, _ = _api(world, since="2026-02-30")
    assert status == 400 and "date de début invalide" in body["message"]  # type: ignore[index]
    status, body, _ = _api(world, since="2026-03-02", until="2026-03-01")
    assert status == 400 and body["message"] == "la date de fin est avant la date de début"  # type: ignore[index]
    # members and experts do not read it
    assert world.client.get("/api/v1/audit", headers=world.headers("expert")).status_code == 403


def test_the_cli_filters_the_same_way(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ok(cli(data, "org", "create", "rennes", "--name", "Rennes Métropole", "--siren", "243500139"))
    ok(cli(data, "org", "quota", "rennes", "--demos", "2"))
    ok(cli(data, "token", "create", "--org", "rennes", "--role", "member", "--user", "agent"))
    shown = json.loads(ok(cli(data, "audit", "--target", "RENNES", "--json")))
    assert [e["action"] for e in shown] == ["org.quotas", "org.create"]
    today = dt.date.today().isoformat()
    since = json.loads(ok(cli(data, "audit", "--since", "2000-01-01", "--until", today, "--json")))
    assert [e["action"] for e in since] == ["token.create", "org.quotas", "org.create"]
    assert json.loads(ok(cli(data, "audit", "--until", "2001-01-01", "--json"))) == []
    mine = json.loads(
        ok(cli(data, "audit", "--actor", "SYSTEME", "--action", "org.quotas", "--json"))
    )
    assert mine == shown[:1]
    assert json.loads(ok(cli(data, "audit", "--actor", "quelqu'un", "--json"))) == []
    refused(cli(data, "audit", "--since", "hier"), 2, "date de début invalide")
    refused(
        cli(data, "audit", "--since", "2026-03-02", "--until", "2026-03-01"),
        2,
        "la date de fin est avant la date de début",
    )


def test_days_are_the_zones_and_moments_say_their_offset() -> None:
    paris = ZoneInfo("Europe/Paris")
    query = accounts.audit_query(paris, actor="alice", since="2026-03-01", until="2026-07-01")
    assert query.start == dt.datetime(2026, 2, 28, 23, tzinfo=dt.UTC)  # winter: UTC+1
    assert query.end == dt.datetime(2026, 7, 1, 22, tzinfo=dt.UTC)  # the day after, summer: UTC+2
    assert query.actor == "alice" and query.action is None and query.target is None
    exact = accounts.audit_query(paris, since="2026-03-01T10:00:00+00:00")
    assert exact.start == dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC) and exact.end is None


@pytest.mark.parametrize(
    "since,until",
    [
        (None, "9999-12-31"),
        ("0001-01-01", None),
        (None, "9999-12-31T23:59:59"),
        ("2026-03-01\x00", None),
        ("2026-02-30", None),
        ("demain", None),
        (None, "2026-03-01T25:00"),
        ("2026-03-01T10:00+99:00", None),
    ],
)
def test_a_date_that_is_not_one_is_a_french_error_never_a_crash(since, until) -> None:
    with pytest.raises(InvalidInput, match="date de (début|fin) invalide"):
        accounts.audit_query(ZoneInfo("Europe/Paris"), since=since, until=until)
