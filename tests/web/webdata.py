"""What the web tests register: a project and two models whose restricted values are easy to look for."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

from tests.conftest import cli

CSRF_INPUT = re.compile(r'<input type="hidden" name="csrftoken" value="([^"]+)">')


def csrf_token(client, page: str = "/connexion") -> str:
    """The CSRF token of ``page``'s first form, as a browser reads it (the ``bibia_csrf`` cookie lands in ``client``)."""
    response = client.get(page, headers={"accept": "text/html"})
    found = CSRF_INPUT.search(response.text)
    assert found, f"no CSRF field on {page}: {response.status_code} {response.text[:300]}"
    return found.group(1)


def sign_in(client, token: str, next_url: str = "/"):
    """Sign in through the form, as a browser does: read the form's CSRF token, then post it."""
    return client.post(
        "/connexion",
        data={"csrftoken": csrf_token(client), "token": token, "next": next_url},
        follow_redirects=False,
    )


PROJECT_SLUG = "eau-nantes"
MODEL = "eau-batiments"
OTHER = "velo-compteurs-test"

PROJECT = {
    "slug": PROJECT_SLUG,
    "title": "Suivi de la consommation d'eau des bâtiments",
    "summary": "Repérer tôt les fuites d'eau dans les bâtiments municipaux.",
    "owners": [{"name": "Nantes Métropole", "siren": "244400404"}],
    "territory": "Nantes Métropole",
    "theme": "transition-ecologique",
    "status": "pilote",
    "keywords": ["eau"],
    "public_contact": "donnees@nantesmetropole.fr",
    "contacts": [{"name": "Chargée de mission eau", "email": "mission-eau@nantesmetropole.fr"}],
    "lessons_learned": "Retex confidentiel du projet : le prestataire a livré en retard.",
    "internal_documents": [
        {"title": "Cahier des charges interne", "url": "https://intranet.example.org/cdc-eau"}
    ],
}

# Values that must never reach a page below their tier.
RESTRICTED = [
    "patrimoine-donnees@nantesmetropole.fr",  # model contact
    "Direction du patrimoine bâti et département données.",  # team
    "les agents ont demandé un seuil d'alerte réglable",  # model retex
    "https://intranet.example.org/note-eau",  # model internal document
    "mission-eau@nantesmetropole.fr",  # project contact
    "Retex confidentiel du projet",  # project retex
    "https://intranet.example.org/cdc-eau",  # project internal document
]
EXPERT = [
    "https://git.example.org/nantes/eau-batiments",  # code link
    "https://docs.example.org/nantes/eau-batiments-interne",  # documentation
    "models:/eau-batiments@production",  # the pull URI
]


def model_card(card_data: dict) -> dict:
    card = json.loads(json.dumps(card_data, default=str))  # YAML dates as JSON text
    card["identification"]["project"] = PROJECT_SLUG
    card["model"]["documentation_url"] = "https://docs.example.org/nantes/eau-batiments-interne"
    card["accountability"]["internal_documents"] = [
        {"title": "Note interne", "url": "https://intranet.example.org/note-eau"}
    ]
    return card


def other_card(card_data: dict) -> dict:
    """A second model: another theme, task and title, no restricted value of its own."""
    card = json.loads(json.dumps(card_data, default=str))
    card["identification"].update(
        title="Détection d'anomalies des compteurs vélo",
        summary="Repère les jours où un compteur vélo mesure mal.",
        theme="mobilites",
        status="pilote",
        keywords=["vélo", "compteurs"],
    )
    card["model"]["task"] = "detection-anomalies"
    card["model"]["evaluation"]["metrics"] = [
        {
            "name": "rappel",
            "value": 0.9,
            "baseline": 0.7,
            "higher_is_better": True,
            "description": "anomalies retrouvées",
        }
    ]
    card["model"].pop("code_url", None)
    for key in ("contacts", "team", "lessons_learned"):
        card["accountability"].pop(key, None)
    return card


def tiny_png() -> bytes:
    """A valid 2×2 PNG, built by hand (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = b"".join(b"\x00" + b"\x00\x00\x91" * 2 for _ in range(2))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def model_with_chart(model_dir: Path, target: Path) -> Path:
    """A copy of ``model_dir`` with ``bibia/evaluation.png`` (and a file that must stay private)."""
    shutil.copytree(model_dir, target)
    (target / "bibia").mkdir(exist_ok=True)
    (target / "bibia" / "evaluation.png").write_bytes(tiny_png())
    (target / "bibia" / "notes-privees.txt").write_text(
        "ne doit jamais être servi par la page", encoding="utf-8"
    )
    return target


def nantes_with_tokens(data_dir: Path, user_suffix: str) -> dict[str, str]:
    """Nantes Métropole created with the real CLI, and an ``expert`` and a ``member`` token: role → value."""

    def ok(result: subprocess.CompletedProcess) -> str:
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    ok(
        cli(
            data_dir,
            "org",
            "create",
            "nantes-metropole",
            "--name",
            "Nantes Métropole",
            "--siren",
            "244400404",
        )
    )
    tokens = {}
    for role in ("expert", "member"):
        out = ok(
            cli(
                data_dir,
                "token",
                "create",
                "--org",
                "nantes-metropole",
                "--role",
                role,
                "--user",
                f"{role}-{user_suffix}",
            )
        )
        tokens[role] = out.strip().splitlines()[-1].strip()
    return tokens
