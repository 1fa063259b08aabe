"""Tokens: shown once, stored as SHA-256 only, usable, revocable, never listed, logged or audited."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bibia.auth import TOKEN_RE
from tests.conftest import cli


def flat(text: str) -> str:
    """Console output with rich's line wrapping undone."""
    return re.sub(r"\s+", " ", text)


@dataclass
class Operator:
    data_dir: Path
    app: object
    client: object  # fastapi.testclient.TestClient

    def create(self, role: str, user: str) -> tuple[str, str]:
        """``bibia token create``; returns (token, stderr)."""
        result = cli(
            self.data_dir,
            "token",
            "create",
            "--org",
            "nantes-metropole",
            "--role",
            role,
            "--user",
            user,
        )
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        return result.stdout.strip().splitlines()[-1], result.stderr

    def me(self, token: str):
        return self.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    from fastapi.testclient import TestClient

    from bibia.app import create_app
    from bibia.settings import Settings

    data_dir = tmp_path_factory.mktemp("tokens") / "data"
    created = cli(
        data_dir,
        "org",
        "create",
        "nantes-metropole",
        "--name",
        "Nantes Métropole",
        "--siren",
        "244400404",
    )
    assert created.returncode == 0, created.stderr
    app = create_app(Settings(data_dir=data_dir, seed_on_start=False, runner="none"))
    with TestClient(app) as client:
        yield Operator(data_dir=data_dir, app=app, client=client)


def database_text(data_dir: Path) -> str:
    """Every row of bibia's database as SQL text, plus the raw bytes of its files."""
    with sqlite3.connect(data_dir / "bibia.db") as connection:
        dump = "\n".join(connection.iterdump())
    # Raw bytes (WAL included) are read in another process: closing a file descriptor on a
    # SQLite file drops every POSIX lock this process holds on it, under the app's own connections.
    raw = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, glob; [sys.stdout.buffer.write(open(p, 'rb').read()) for p in glob.glob(sys.argv[1])]",
            str(data_dir / "bibia.db*"),
        ],
        capture_output=True,
        check=True,
    ).stdout
    return dump + raw.decode("latin-1")


def test_token_is_printed_once_and_only_its_hash_is_stored(
    op: Operator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    result = cli(
        op.data_dir,
        "token",
        "create",
        "--org",
        "nantes-metropole",
        "--role",
        "expert",
        "--user",
        "alice",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, "stdout holds the token and nothing else"
    token = lines[-1]
    match = TOKEN_RE.match(token)
    assert match, token
    prefix, secret = match.group(1), match.group(2)
    assert token not in result.stderr
    assert f"jeton {prefix} créé pour alice@nantes-metropole (rôle expert)" in flat(result.stderr)
    assert "il ne sera plus jamais affiché" in flat(result.stderr)

    with sqlite3.connect(op.data_dir / "bibia.db") as connection:
        (stored,) = connection.execute(
            "SELECT token_hash FROM api_tokens WHERE prefix = ?", (prefix,)
        ).fetchone()
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    stored_text = database_text(op.data_dir)
    assert stored in stored_text, "the dump must hold the hash, or it proves nothing"
    assert token not in stored_text and secret not in stored_text

    assert op.me(token).json() == {
        "tier": "expert",
        "organisation": "nantes-metropole",
        "user": "alice",
        "token": prefix,
    }

    listed = cli(op.data_dir, "token", "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    row = next(r for r in rows if r["prefix"] == prefix)
    assert row == {
        **row,
        "organisation": "nantes-metropole",
        "user": "alice",
        "role": "expert",
        "revoked": False,
    }
    assert secret not in listed.stdout and "token" not in json.dumps(rows).replace('"prefix"', "")

    audit = cli(op.data_dir, "audit", "--json", "--action", "token.create")
    event = next(e for e in json.loads(audit.stdout) if e["target"] == prefix)
    assert event["details"] == {
        "organisation": "nantes-metropole",
        "user": "alice",
        "role": "expert",
    }
    assert secret not in audit.stdout

    assert secret not in caplog.text and token not in caplog.text


@pytest.mark.parametrize("role, tier", [("member", "restricted"), ("admin", "admin")])
def test_each_role_gets_its_tier(op: Operator, role: str, tier: str) -> None:
    token, _ = op.create(role, f"personne-{role}")
    response = op.me(token)
    assert response.json().get("tier") == tier, response.text


def test_revoked_token_is_refused(op: Operator) -> None:
    token, _ = op.create("expert", "bob")
    prefix = TOKEN_RE.match(token).group(1)
    assert op.me(token).status_code == 200
    revoked = cli(op.data_dir, "token", "revoke", prefix)
    assert revoked.returncode == 0 and f"jeton {prefix} révoqué" in revoked.stdout
    response = op.me(token)
    assert response.status_code == 401
    assert response.json() == {
        "error": "non_authentifie",
        "message": f"jeton {prefix} révoqué : demandez-en un nouveau à votre administrateur",
    }
    rows = json.loads(cli(op.data_dir, "token", "ls", "--json", "--org", "nantes-metropole").stdout)
    assert next(r for r in rows if r["prefix"] == prefix)["revoked"] is True


@pytest.mark.parametrize(
    "args, code, message",
    [
        (
            ["token", "create", "--org", "nantes-metropole", "--role", "chef"],
            2,
            "rôle inconnu : 'chef' ; rôles possibles : member, expert, admin",
        ),
        (
            ["token", "create", "--org", "atlantide", "--role", "member"],
            4,
            "organisation inconnue : « atlantide »",
        ),
        (["token", "revoke", "00000000"], 4, "jeton inconnu : « 00000000 »"),
    ],
)
def test_token_commands_refuse_bad_input_with_a_message(
    op: Operator, args: list[str], code: int, message: str
) -> None:
    result = cli(op.data_dir, *args)
    assert result.returncode == code, result.stderr
    assert message in flat(result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_tokens_through_the_api_are_shown_once(
    op: Operator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    admin, _ = op.create("admin", "administratrice")
    headers = {"Authorization": f"Bearer {admin}"}
    created = op.client.post(
        "/api/v1/tokens",
        json={"organisation": "nantes-metropole", "role": "member", "user": "carla"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    token = created.json()["token"]
    assert op.me(token).json()["tier"] == "restricted"

    listed = op.client.get("/api/v1/tokens", headers=headers)
    assert listed.status_code == 200
    assert all("token" not in row for row in listed.json())
    assert token not in listed.text and TOKEN_RE.match(token).group(2) not in listed.text

    audit = op.client.get("/api/v1/audit", headers=headers)
    assert token not in audit.text and admin not in audit.text
    assert admin not in database_text(op.data_dir) and token not in database_text(op.data_dir)
    assert token not in caplog.text and admin not in caplog.text
