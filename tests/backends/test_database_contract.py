"""bibia's own database contract, on SQLite and on PostgreSQL (migrated with Alembic)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import inspect

from bibia import accounts, catalogue
from bibia.auth import ANONYMOUS, SYSTEM, authenticate
from bibia.db import Database
from bibia.db.models import ApiToken
from domain.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from registry.card import Project
from registry.store import Registry
from registry.tiers import Tier


def test_upgrade_creates_every_table_and_is_idempotent(db: Database) -> None:
    db.upgrade()  # a second time: nothing to do, no error
    tables = set(inspect(db.engine).get_table_names())
    assert {
        "organisations",
        "users",
        "api_tokens",
        "projects",
        "demo_sessions",
        "audit_events",
        "alembic_version",
    } <= tables


def test_the_migrations_build_exactly_the_models_tables(db: Database) -> None:
    """Alembic's autogenerate finds nothing to add: every model change has its migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from bibia.db.models import Base

    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_organisations(db: Database) -> None:
    with db.session() as session:
        org = accounts.create_organisation(
            session, SYSTEM, "rennes", "Rennes Métropole", "243500139"
        )
        assert org.id is not None
    with db.session() as session:
        assert accounts.get_organisation(session, "rennes").name == "Rennes Métropole"
        assert accounts.organisation_by_siren(session, "243500139").slug == "rennes"
        assert "rennes" in [o.slug for o in accounts.list_organisations(session)]
    with pytest.raises(Conflict), db.session() as session:
        accounts.create_organisation(session, SYSTEM, "rennes", "Autre", None)
    with pytest.raises(Conflict), db.session() as session:
        accounts.create_organisation(session, SYSTEM, "rennes-bis", "Doublon", "243500139")
    with pytest.raises(InvalidInput), db.session() as session:
        accounts.create_organisation(session, SYSTEM, "Rennes Métropole", "Rennes", "1234")
    with pytest.raises(NotFound), db.session() as session:
        accounts.get_organisation(session, "absente")


def test_tokens_authenticate_until_revoked(db: Database) -> None:
    with db.session() as session:
        accounts.create_organisation(session, SYSTEM, "brest", "Brest Métropole", "242900314")
        issued = accounts.create_token(
            session, SYSTEM, "brest", "expert", "data-brest", label="portable"
        )
    assert issued.token.startswith(f"bibia_{issued.prefix}_")

    with db.session() as session:
        caller = authenticate(session, issued.token)
        assert (caller.tier, caller.organisation, caller.organisation_siren, caller.user) == (
            Tier.EXPERT,
            "brest",
            "242900314",
            "data-brest",
        )
    with db.session() as session:
        row = session.query(ApiToken).filter_by(prefix=issued.prefix).one()
        assert row.token_hash != issued.token and issued.token not in row.token_hash
        assert row.last_used_at is not None  # timezone-aware round trip on both backends
        assert [t.prefix for t in accounts.list_tokens(session, "brest")] == [issued.prefix]

    with pytest.raises(Conflict), db.session() as session:  # one user, one role
        accounts.create_token(session, SYSTEM, "brest", "member", "data-brest")

    with db.session() as session:
        accounts.revoke_token(session, SYSTEM, issued.prefix)
    with pytest.raises(Unauthorized, match="révoqué"), db.session() as session:
        authenticate(session, issued.token)
    with pytest.raises(Unauthorized, match="inconnu"), db.session() as session:
        authenticate(session, issued.token[:-4] + "AAAA")
    with pytest.raises(Unauthorized, match="mal formé"), db.session() as session:
        authenticate(session, "pas-un-jeton")


def test_expired_token_is_refused(db: Database) -> None:
    with db.session() as session:
        accounts.create_organisation(
            session, SYSTEM, "lorient", "Lorient Agglomération", "200042174"
        )
        issued = accounts.create_token(session, SYSTEM, "lorient", "member", "agent")
        session.query(ApiToken).filter_by(prefix=issued.prefix).one().expires_at = dt.datetime.now(
            dt.UTC
        ) - dt.timedelta(minutes=1)
    with pytest.raises(Unauthorized, match="expiré"), db.session() as session:
        authenticate(session, issued.token)


def _project(slug: str, **changes) -> Project:
    data = {
        "slug": slug,
        "title": "Tri des biodéchets",
        "summary": "Prévoir les volumes de biodéchets collectés par quartier.",
        "owners": [{"name": "Angers Loire Métropole", "siren": "244900015"}],
        "territory": "Angers Loire Métropole (Maine-et-Loire)",
        "theme": "transition-ecologique",
        "status": "experimentation",
        "keywords": ["déchets", "collecte"],
        "lessons_learned": "Les tournées changent souvent.",
    }
    return Project.model_validate({**data, **changes})


def test_projects_upsert_and_list(db: Database, registry: Registry) -> None:
    with db.session() as session:
        # A project's owners are organisations on record (finding 5 of issue 7).
        accounts.create_organisation(
            session, SYSTEM, "angers", "Angers Loire Métropole", "244900015"
        )
        _, created = catalogue.upsert_project(session, SYSTEM, _project("biodechets-angers"))
        assert created
        catalogue.upsert_project(
            session,
            SYSTEM,
            _project(
                "voirie-angers",
                title="Nids-de-poule",
                summary="Repérer les nids-de-poule.",
                theme="maintenance",
                keywords=["chaussée"],
            ),
        )
    with db.session() as session:
        row, created = catalogue.upsert_project(
            session, SYSTEM, _project("biodechets-angers", status="pilote")
        )
        assert not created and row.status == "pilote"

    def listed(**filters) -> dict:
        args = {
            "q": None,
            "theme": None,
            "status": None,
            "owner": None,
            "territory": None,
            "page": 1,
            "per_page": 10,
        }
        with db.session() as session:
            return catalogue.list_projects(session, registry, ANONYMOUS, **{**args, **filters})

    def slugs(**filters) -> list[str]:
        return [p["slug"] for p in listed(**filters)["items"] if p["slug"].endswith("-angers")]

    assert slugs() == ["biodechets-angers", "voirie-angers"]
    assert slugs(q="DÉCHETS") == ["biodechets-angers"]  # accent- and case-insensitive
    assert slugs(theme="maintenance") == ["voirie-angers"]
    assert slugs(status="pilote") == ["biodechets-angers"]
    assert slugs(owner="244900015") == ["biodechets-angers", "voirie-angers"]
    assert slugs(territory="maine-et-loire") == ["biodechets-angers", "voirie-angers"]
    page = listed(q="angers", per_page=1)
    assert page["total"] >= 2 and len(page["items"]) == 1
    assert "lessons_learned" not in page["items"][0]  # restricted field, public caller
    with db.session() as session:
        detail = catalogue.project_detail(session, registry, SYSTEM, "biodechets-angers")
        assert (
            detail["status"] == "pilote"
            and detail["lessons_learned"] == "Les tournées changent souvent."
        )
        with pytest.raises(NotFound):
            catalogue.project_detail(session, registry, SYSTEM, "absent")
        with pytest.raises(Forbidden):
            catalogue.upsert_project(session, ANONYMOUS, _project("biodechets-angers"))


def test_audit_events_record_who_did_what(db: Database) -> None:
    with db.session() as session:
        accounts.create_organisation(
            session, SYSTEM, "quimper", "Quimper Bretagne Occidentale", "200068120"
        )
        issued = accounts.create_token(session, SYSTEM, "quimper", "admin", "admin-quimper")
        accounts.revoke_token(session, SYSTEM, issued.prefix)
    with db.session() as session:
        events, _ = accounts.search_audit(session, accounts.AuditQuery(), limit=500)
        mine = [(e.action, e.target) for e in events if e.target in {"quimper", issued.prefix}]
        assert mine == [
            ("token.revoke", issued.prefix),
            ("token.create", issued.prefix),
            ("org.create", "quimper"),
        ]
        created = next(e for e in events if e.action == "org.create" and e.target == "quimper")
        assert created.details == {"name": "Quimper Bretagne Occidentale", "siren": "200068120"}
        assert created.actor == SYSTEM.actor
        at = (
            created.at if created.at.tzinfo else created.at.replace(tzinfo=dt.UTC)
        )  # SQLite keeps no zone
        assert abs(dt.datetime.now(dt.UTC) - at) < dt.timedelta(minutes=5)
        revoked, total = accounts.search_audit(session, accounts.AuditQuery(action="token.revoke"))
        assert total >= 1 and all(e.action == "token.revoke" for e in revoked)
        # the API's and the CLI's filters, the same on both backends: case-blind object and
        # actor, a period, and a control character that matches nothing (PostgreSQL refuses NUL)
        paris = ZoneInfo("Europe/Paris")
        today = dt.datetime.now(paris).date().isoformat()
        query = accounts.audit_query(paris, target="QUIMPER", actor="SYSTEME", since=today)
        found, total = accounts.search_audit(session, query)
        assert [(e.action, e.target) for e in found] == [("org.create", "quimper")] and total == 1
        past = accounts.audit_query(paris, target="quimper", until="2001-01-01")
        assert accounts.search_audit(session, past) == ([], 0)
        for nul in ({"actor": "a\x00"}, {"action": "org.create\x00"}, {"target": "\x00"}):
            assert accounts.search_audit(session, accounts.audit_query(paris, **nul)) == ([], 0)
        assert issued.token not in str([(e.target, e.details) for e in events])  # never a secret
