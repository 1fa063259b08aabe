"""Untrusted uploads: a card (JSON or YAML text) and a model archive (.tar.gz).

The archive is checked member by member before anything is written: only
regular files and directories, no absolute paths, no ``..``, no links, no
devices, a bounded total size and file count (no tar bombs). Nothing in it
is ever imported or unpickled here.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import yaml

from registry.card import Card, parse_card
from registry.errors import InvalidCard, InvalidModel, PayloadTooLarge

MAX_MEMBERS = 10_000


def parse_card_text(text: bytes | str, max_bytes: int) -> Card:
    """A card from JSON or YAML text.

    Raises:
        PayloadTooLarge, InvalidCard: with every problem listed.
    """
    raw = text.encode() if isinstance(text, str) else text
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"fiche trop volumineuse : {max_bytes} octets au plus")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidCard("la fiche doit être encodée en UTF-8") from exc
    return parse_card(load_structured(decoded, "fiche"))


def load_structured(text: str, what: str) -> Any:
    """Parse JSON, or YAML (safe loader only)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (ligne {mark.line + 1}, colonne {mark.column + 1})" if mark else ""
        raise InvalidCard(f"{what} illisible : ni JSON ni YAML valide{where}") from exc


def extract_model_archive(fileobj: BinaryIO, dest: Path, max_bytes: int) -> Path:
    """Safely extract a model archive into ``dest``; return the MLflow model directory.

    The archive may hold the model files at its root or inside one top folder.

    Raises:
        InvalidModel: not a tar archive, or a member that is not a plain file/dir.
        PayloadTooLarge: more than ``max_bytes`` once extracted.
    """
    try:
        archive = tarfile.open(fileobj=fileobj, mode="r:*")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InvalidModel("archive du modèle illisible : envoyez un .tar.gz du dossier du modèle MLflow") from exc
    with archive:
        try:
            members = archive.getmembers()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InvalidModel("archive du modèle corrompue ou tronquée") from exc
        if len(members) > MAX_MEMBERS:
            raise InvalidModel(f"archive du modèle : trop de fichiers ({len(members)} pour {MAX_MEMBERS} au plus)")
        total = 0
        for member in members:
            path = PurePosixPath(member.name)
            if path.is_absolute() or ".." in path.parts:
                raise InvalidModel(f"archive du modèle : chemin refusé « {member.name} »")
            if not (member.isfile() or member.isdir()):
                raise InvalidModel(
                    f"archive du modèle : « {member.name} » n'est ni un fichier ni un dossier (liens et périphériques refusés)"
                )
            total += member.size
            if total > max_bytes:
                raise PayloadTooLarge(f"modèle trop volumineux une fois décompressé (plus de {max_bytes} octets)")
        try:
            archive.extractall(dest, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise InvalidModel(f"archive du modèle : extraction impossible ({exc})") from exc
    if (dest / "MLmodel").is_file():
        return dest
    children = [p for p in dest.iterdir() if not p.name.startswith(".")]
    if len(children) == 1 and (children[0] / "MLmodel").is_file():
        return children[0]
    raise InvalidModel("archive du modèle : aucun fichier MLmodel à la racine ni dans un unique dossier")
