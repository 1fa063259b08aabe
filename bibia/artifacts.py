"""A version's files, for the callers who may pull them: the MLflow gateway and the web pages alike.

One tier check (:func:`bibia.policy.may_pull_artifacts`), one listing and one
reading of the registry's cached copy (:meth:`registry.store.Registry.list_artifacts`,
:meth:`~registry.store.Registry.artifact_path`, which refuse any path that
leaves the version), and one way to answer a file: :func:`file_response`.

A registered model's files are hostile: a file is always sent as an
attachment (``application/octet-stream``, ``Content-Disposition: attachment``
with a filename cleaned of anything but letters, digits, dots, dashes and
underscores), with ``X-Content-Type-Options: nosniff`` and a CSP that runs
nothing, so that an HTML or SVG artifact never executes in bibia's origin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from starlette.responses import FileResponse

from bibia import policy
from bibia.auth import Caller
from domain.errors import InvalidInput, NotFound
from registry.entries import ArtifactFile
from registry.store import Registry

#: How deep and how many entries a version's tree may hold before the listing stops (hostile input).
MAX_DEPTH = 32
MAX_ENTRIES = 5_000

EXPERTS_ONLY = "les fichiers des versions sont réservés aux experts"

#: What a downloaded file is answered with: never rendered, never sniffed, nothing run, never cached.
DOWNLOAD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def check_may_pull(caller: Caller, *, how_to_sign_in: str = "") -> None:
    """Raise unless ``caller`` may pull artifacts (experts and above).

    Raises:
        Unauthorized: an anonymous caller (``how_to_sign_in`` says how to sign in).
        Forbidden: a member, with the tier their credentials give.
    """
    if policy.may_pull_artifacts(caller):
        return
    policy.refuse(
        caller,
        f"accès refusé : {EXPERTS_ONLY} ; votre compte a le niveau « {caller.tier.display} »",
        anonymous=f"authentification requise : {EXPERTS_ONLY}{how_to_sign_in}",
    )


def listing(
    registry: Registry, caller: Caller, name: str, version: int, path: str = ""
) -> list[ArtifactFile]:
    """The files and directories at ``path`` in a version's files (the file itself for a file)."""
    check_may_pull(caller)
    return registry.list_artifacts(name, version, path)


@dataclass(frozen=True)
class Entry:
    """One file or directory of a version's tree."""

    path: str  # relative to the version's root, "/"-separated
    name: str
    depth: int  # 0 at the root
    is_dir: bool
    size: int | None  # a file's size; a directory's: the sum of its files'


def tree(registry: Registry, caller: Caller, name: str, version: int) -> list[Entry]:
    """Every file and directory of a version, depth first (directories before their contents).

    Raises:
        InvalidInput: a tree deeper than :data:`MAX_DEPTH` or larger than :data:`MAX_ENTRIES`.
    """
    check_may_pull(caller)
    found: list[Entry] = []

    def walk(path: str, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise InvalidInput(
                f"arborescence des fichiers trop profonde (plus de {MAX_DEPTH} niveaux)"
            )
        total = 0
        for item in registry.list_artifacts(name, version, path):
            if len(found) >= MAX_ENTRIES:
                raise InvalidInput(f"trop de fichiers à afficher (plus de {MAX_ENTRIES})")
            leaf = item.path.rsplit("/", 1)[-1]
            if item.is_dir:
                at = len(found)
                found.append(Entry(item.path, leaf, depth, True, None))
                inside = walk(item.path, depth + 1)
                found[at] = Entry(item.path, leaf, depth, True, inside)
                total += inside
            else:
                found.append(Entry(item.path, leaf, depth, False, item.size))
                total += item.size or 0
        return total

    walk("", 0)
    return found


def file_path(registry: Registry, caller: Caller, name: str, version: int, path: str) -> Path:
    """The local path of one file of a version (the registry refuses any path that leaves it).

    Raises:
        InvalidInput: a path with ``..``, ``.``, a backslash, or one leading out of the version.
        NotFound: no such model, version or file.
    """
    check_may_pull(caller)
    if not path.strip("/"):
        raise NotFound("indiquez un fichier de la version")
    return registry.artifact_path(name, version, path)


def safe_filename(name: str) -> str:
    """A filename a browser saves as is: letters, digits, ``.``, ``-``, ``_`` (« fichier » when nothing is left)."""
    cleaned = _UNSAFE.sub("_", name).strip("._") or "fichier"
    return cleaned[:150]


def file_response(local: Path) -> FileResponse:
    """``local`` streamed as an attachment that no browser renders (see the module docstring)."""
    return FileResponse(
        local,
        media_type="application/octet-stream",
        filename=safe_filename(local.name),
        headers=DOWNLOAD_HEADERS,
    )
