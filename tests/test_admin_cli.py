"""``bibia org create`` checks the SIREN's key; ``bibia org quota`` shows and sets an organisation's quotas."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import cli
from tests.test_cli import flat, ok, refused


def test_org_create_refuses_a_wrong_siren_key_and_org_quota_sets_quotas(tmp_path: Path) -> None:
    data = tmp_path / "data"
    refused(
        cli(data, "org", "create", "rennes", "--name", "Rennes Métropole", "--siren", "243500138"),
        2,
        "SIREN invalide : 243500138 ; sa clé de contrôle est fausse",
    )
    assert "rennes" not in ok(cli(data, "org", "ls"))
    ok(cli(data, "org", "create", "rennes", "--name", "Rennes Métropole", "--siren", "243500139"))

    shown = flat(ok(cli(data, "org", "quota", "rennes")))
    assert "démonstrateurs actifs 5 (réglage du service)" in shown, shown
    assert "rennes : " in flat(
        ok(cli(data, "org", "quota", "rennes", "--demos", "2", "--evaluations", "7"))
    )
    assert json.loads(ok(cli(data, "org", "quota", "rennes", "--json"))) == {
        "organisation": "rennes",
        "demos": 2,
        "evaluations": 7,
        "demos_applied": 2,
        "evaluations_applied": 7,
    }
    # one option changes one quota; « defaut » gives the service's setting back
    ok(cli(data, "org", "quota", "rennes", "--demos", "defaut"))
    after = json.loads(ok(cli(data, "org", "quota", "rennes", "--json")))
    assert after["demos"] is None and after["demos_applied"] == 5 and after["evaluations"] == 7
    refused(
        cli(data, "org", "quota", "rennes", "--evaluations", "-3"),
        2,
        "quota d'évaluations invalide : '-3'",
    )
    refused(cli(data, "org", "quota", "inconnue", "--demos", "1"), 4, "organisation inconnue")
    audit = json.loads(ok(cli(data, "audit", "--action", "org.quotas", "--json")))
    assert [e["target"] for e in audit] == ["rennes", "rennes"]


def test_token_create_with_an_expiry_and_ls_shows_label_and_expiry(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ok(cli(data, "org", "create", "rennes", "--name", "Rennes Métropole", "--siren", "243500139"))
    refused(
        cli(
            data, "token", "create", "--org", "rennes", "--role", "member", "--expire-le", "demain"
        ),
        2,
        "date d'expiration invalide",
    )
    refused(
        cli(
            data,
            "token",
            "create",
            "--org",
            "rennes",
            "--role",
            "member",
            "--expire-le",
            "2001-01-01",
        ),
        2,
        "la date d'expiration est passée",
    )
    ok(
        cli(
            data,
            "token",
            "create",
            "--org",
            "rennes",
            "--role",
            "member",
            "--label",
            "import",
            "--expire-le",
            "2030-06-30",
        )
    )
    [row] = json.loads(ok(cli(data, "token", "ls", "--json")))
    assert row["label"] == "import" and row["expires_at"].startswith("2030-06-30T22:00:00")
