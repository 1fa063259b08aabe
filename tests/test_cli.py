"""The ``bibia`` command line, run for real in a subprocess: messages in French, exit codes, never a traceback."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import EXAMPLE_CARD, LiveServer, cli, free_port


def flat(text: str) -> str:
    """Console output with rich's line wrapping undone."""
    return re.sub(r"\s+", " ", text)


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def refused(result, code: int, *messages: str) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    text = flat(result.stderr)
    for message in messages:
        assert message in text, text
    return text


def test_register_alias_list_and_show_against_a_live_service(
    live_server: LiveServer, sklearn_model_dir: Path, tmp_path: Path
) -> None:
    data = live_server.data_dir
    assert "organisation créée : nantes-metropole — Nantes Métropole (SIREN 244400404)" in ok(
        cli(
            data,
            "org",
            "create",
            "nantes-metropole",
            "--name",
            "Nantes Métropole",
            "--siren",
            "244400404",
        )
    )
    refused(
        cli(data, "org", "create", "nantes-metropole", "--name", "Encore"),
        5,
        "erreur : l'organisation « nantes-metropole » existe déjà",
    )
    refused(
        cli(data, "org", "create", "autre", "--name", "Autre", "--siren", "244400404"),
        5,
        "une organisation porte déjà le SIREN 244400404",
    )

    expert = (
        ok(
            cli(
                data,
                "token",
                "create",
                "--org",
                "nantes-metropole",
                "--role",
                "expert",
                "--user",
                "alice",
            )
        )
        .strip()
        .splitlines()[-1]
    )
    member = (
        ok(cli(data, "token", "create", "--org", "nantes-metropole", "--role", "member"))
        .strip()
        .splitlines()[-1]
    )
    as_expert = {"BIBIA_URL": live_server.url, "BIBIA_TOKEN": expert}
    register = ["model", "register", "eau-batiments", "--card", str(EXAMPLE_CARD)]

    first = ok(
        cli(
            data,
            *register,
            "--model-dir",
            str(sklearn_model_dir),
            "--alias",
            "production",
            env=as_expert,
        )
    )
    assert "eau-batiments version 1 enregistrée (alias : production)" in flat(first)
    second = json.loads(
        ok(cli(data, *register, "--model-dir", str(sklearn_model_dir), "--json", env=as_expert))
    )
    assert second["version"] == 2 and second["aliases"] == []

    moved = ok(cli(data, "model", "alias", "eau-batiments", "production", "2", env=as_expert))
    assert "eau-batiments@production → version 2" in moved
    audit = json.loads(ok(cli(data, "audit", "--json", "--action", "model.alias")))
    assert audit[0]["target"] == "eau-batiments@production"
    assert audit[0]["details"] == {"version": 2, "previous": 1}
    assert audit[0]["actor"].startswith("alice@nantes-metropole (jeton ")
    registrations = json.loads(ok(cli(data, "audit", "--json", "--action", "model.register")))
    assert [e["target"] for e in registrations] == ["eau-batiments/2", "eau-batiments/1"]

    listing = json.loads(
        ok(cli(data, "model", "ls", "--json", "--q", "eau", env={"BIBIA_URL": live_server.url}))
    )
    assert listing["total"] == 1 and listing["items"][0]["aliases"] == {"production": 2}
    assert "contacts" not in listing["items"][0]["card"]["accountability"], (
        "anonymous listing shows no restricted field"
    )
    table = ok(cli(data, "model", "ls", env={"BIBIA_URL": live_server.url, "COLUMNS": "200"}))
    assert "eau-batiments" in table and "production→v2" in table
    shown = json.loads(ok(cli(data, "model", "show", "eau-batiments", env=as_expert)))
    assert [v["version"] for v in shown["versions"]] == [2, 1]
    assert shown["card"]["model"]["code_url"] == "https://git.example.org/nantes/eau-batiments"

    # bad input: a French message, an exit code, never a traceback
    refused(
        cli(data, *register, env=as_expert),
        2,
        "indiquez soit --model-dir DOSSIER, soit --model-uri URI",
    )
    refused(
        cli(
            data,
            *register,
            "--model-dir",
            str(sklearn_model_dir),
            "--model-uri",
            "runs:/abc/model",
            env=as_expert,
        ),
        2,
        "indiquez soit --model-dir DOSSIER, soit --model-uri URI",
    )
    bad = yaml.safe_load(EXAMPLE_CARD.read_text(encoding="utf-8"))
    bad["identification"]["owner"]["siren"] = "12"
    del bad["purpose"]
    bad_card = tmp_path / "mauvaise.yaml"
    bad_card.write_text(yaml.safe_dump(bad, allow_unicode=True), encoding="utf-8")
    refused(
        cli(
            data,
            "model",
            "register",
            "eau-batiments",
            "--card",
            str(bad_card),
            "--model-dir",
            str(sklearn_model_dir),
            env=as_expert,
        ),
        2,
        "fiche invalide : 2 problème(s) à corriger",
        "- identification.owner.siren : format invalide : 9 chiffres, sans espace attendu",
        "- purpose : champ obligatoire manquant",
    )
    as_member = {"BIBIA_URL": live_server.url, "BIBIA_TOKEN": member}
    refused(
        cli(data, *register, "--model-dir", str(sklearn_model_dir), env=as_member),
        3,
        "réservé aux experts",
    )
    refused(
        cli(data, "model", "alias", "eau-batiments", "production", "9", env=as_expert),
        4,
        "introuvable",
    )
    refused(
        cli(data, "model", "show", "inconnu", env=as_expert), 4, "modèle « inconnu » introuvable"
    )
    refused(
        cli(data, "model", "show", "eau-batiments", env={**as_expert, "BIBIA_TOKEN": "faux"}),
        3,
        "jeton mal formé",
    )

    log = live_server.log.read_text(encoding="utf-8", errors="replace")
    assert "POST /api/v1/models/eau-batiments/versions" in log, (
        "the access log is where a leak would show"
    )
    assert expert not in log and member not in log
    assert "Traceback" not in log


@pytest.fixture
def bad_card(tmp_path: Path, card_data: dict) -> Path:
    bad = copy.deepcopy(card_data)
    bad["identification"]["summary"] = "é" * 360
    bad["identification"]["theme"] = "astrologie"
    bad["data"]["dpia"] = {"done": False}
    bad["accountability"]["public_contact"] = "pas-une-adresse"
    bad["model"]["code_url"] = "git@example.org:x.git"
    bad["inconnu"] = 1
    path = tmp_path / "fiche.yaml"
    path.write_text(yaml.safe_dump(bad, allow_unicode=True), encoding="utf-8")
    return path


def test_card_validate_lists_every_problem_on_stderr(tmp_path: Path, bad_card: Path) -> None:
    assert "fiche valide : Prévision de la consommation d'eau" in flat(
        ok(cli(tmp_path, "card", "validate", str(EXAMPLE_CARD)))
    )
    result = cli(tmp_path, "card", "validate", str(bad_card))
    text = refused(
        result,
        2,
        "erreur : fiche invalide : 6 problème(s) à corriger",
        "- identification.summary : texte trop long (349 caractères au plus)",
        "- identification.theme : valeur inconnue ; valeurs possibles : 'transition-ecologique'",
        "- data.dpia : indiquez pourquoi l'AIPD n'a pas été réalisée (champ reason)",
        "- accountability.public_contact : format invalide : une adresse électronique attendu",
        "- model.code_url : format invalide : une adresse http:// ou https:// attendu",
        "- inconnu : champ inconnu (vérifiez l'orthographe)",
    )
    assert result.stdout == "" and text.count(" - ") == 6


@pytest.mark.parametrize(
    "content, message",
    [
        ("identification: [pas fermé", "fiche illisible : ni JSON ni YAML valide (ligne 1"),
        ("- une\n- liste\n", "objet JSON ou YAML"),
        ("", "objet JSON ou YAML"),
    ],
)
def test_card_validate_refuses_unreadable_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "fiche.yaml"
    path.write_text(content, encoding="utf-8")
    refused(cli(tmp_path, "card", "validate", str(path)), 2, message)


def test_card_validate_and_export_refuse_a_missing_file_or_format(tmp_path: Path) -> None:
    refused(
        cli(tmp_path, "card", "validate", str(tmp_path / "absente.yaml")), 2, "fichier introuvable"
    )
    refused(
        cli(tmp_path, "card", "export", str(EXAMPLE_CARD), "--name", "x", "--format", "pdf"),
        2,
        "format inconnu : 'pdf' ; formats possibles : hf, etalab",
    )


def test_card_export_is_public_only(tmp_path: Path) -> None:
    readme = ok(cli(tmp_path, "card", "export", str(EXAMPLE_CARD), "--name", "eau-batiments"))
    front = yaml.safe_load(readme.split("---\n")[1])
    assert front["model-index"][0]["name"] == "eau-batiments"
    etalab = json.loads(
        ok(
            cli(
                tmp_path,
                "card",
                "export",
                str(EXAMPLE_CARD),
                "--name",
                "eau-batiments",
                "--format",
                "etalab",
            )
        )
    )
    assert etalab["siren"] == "244400404"
    for text in (readme, json.dumps(etalab, ensure_ascii=False)):
        assert (
            "Responsable données" not in text
            and "git.example.org" not in text
            and "fuites lentes" not in text
        )


def test_unreachable_service_and_usage_errors(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    refused(
        cli(tmp_path, "model", "ls", env={"BIBIA_URL": url}),
        7,
        f"service bibia injoignable à {url}",
    )
    result = cli(tmp_path, "model", "alias", "eau-batiments", "production", "zéro")
    assert (
        result.returncode == 2 and "Traceback" not in result.stderr and "'version'" in result.stderr
    )
    result = cli(tmp_path, "token", "create", "--org", "x")
    assert result.returncode == 2 and "Traceback" not in result.stderr and "--role" in result.stderr
