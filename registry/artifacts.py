"""A version's artifacts: a local cached copy, its listing, one file's path inside it.

Versions are immutable, so a version's artifacts are downloaded once into
``cache_dir/models/<name>/<version>`` (atomically: into a temporary
directory renamed into place) and read from there afterwards.

From a remote store (S3), every key is hostile: the version is listed
directory by directory, each listed path is checked (no ``..``, ``.``, empty
segment, backslash, control character, absolute path, nor a path outside
the directory listed) before anything is written, and each file is streamed
to disk in chunks (:mod:`registry.object_store`: a file is never held whole
in memory). A store that does not answer is
:class:`~domain.errors.ArtifactStoreUnavailable` (a 503), the catalogue
still answers, and the next read tries the store again.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

from domain.errors import InvalidInput, NotFound
from registry import object_store
from registry.catalogue import Catalogue
from registry.entries import ArtifactFile, VersionInfo
from registry.mlflow_client import translated


class Artifacts:
    """Version artifacts, through a local cache.

    Args:
        catalogue: where a version's artifact location is read.
        cache_dir: local directory for the immutable copies.
    """

    def __init__(self, catalogue: Catalogue, cache_dir: Path) -> None:
        self._catalogue = catalogue
        self.cache_dir = cache_dir
        self._download_lock = threading.Lock()

    def local_copy(self, name: str, version: int) -> Path:
        """A local, read-only-by-convention copy of a version's artifacts (cached: versions are immutable).

        Raises:
            NotFound: no such model or version.
        """
        return self.local_copy_of(self._catalogue.version(name, version))

    def local_copy_of(self, info: VersionInfo) -> Path:
        """The same for a version already read (a launch carries it): no second read of the registry."""
        target = self.cache_dir / "models" / info.name / str(info.version)
        if target.is_dir():
            return target
        with self._download_lock:
            if target.is_dir():
                return target
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{info.version}-", dir=target.parent))
            try:
                with translated(f"artefacts de « {info.name} » version {info.version}"):
                    _download(get_artifact_repository(info.source), tmp)
                os.replace(tmp, target)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return target

    def check_readable(self, info: VersionInfo) -> None:
        """Raise now if a version's artifacts cannot be had: cached, or one listing of the store answers.

        A launch asks before it accepts a demonstrator, so that a store that is
        down is the caller's 503, not a demonstrator failed in the background.

        Raises:
            ArtifactStoreUnavailable: the store does not answer.
        """
        if (self.cache_dir / "models" / info.name / str(info.version)).is_dir():
            return
        with translated(f"artefacts de « {info.name} » version {info.version}"):
            get_artifact_repository(info.source).list_artifacts(None)

    def list_artifacts(self, name: str, version: int, path: str = "") -> list[ArtifactFile]:
        """The files and directories at ``path`` in a version's artifacts (the file itself for a file)."""
        root = self.local_copy(name, version)
        base = _inside(root, path)
        if base.is_file():
            return [ArtifactFile(path=path, is_dir=False, size=base.stat().st_size)]
        if not base.is_dir():
            raise NotFound(f"artefact introuvable : {path}")
        prefix = f"{path.strip('/')}/" if path.strip("/") else ""
        inside = root.resolve()
        return [
            ArtifactFile(
                path=f"{prefix}{child.name}",
                is_dir=child.is_dir(),
                size=None if child.is_dir() else child.stat().st_size,
            )
            for child in sorted(base.iterdir())
            # a link that leads out of the version (or nowhere) is not one of its files
            if not child.is_symlink() or _within(inside, child)
        ]

    def artifact_path(self, name: str, version: int, path: str) -> Path:
        """Local path of one artifact file of a version (inside its cached copy)."""
        target = _inside(self.local_copy(name, version), path)
        if not target.is_file():
            raise NotFound(f"artefact introuvable : {path}")
        return target


#: How many files and how deep a version in a remote store may be before its download stops (hostile keys).
MAX_REMOTE_FILES = 10_000
MAX_REMOTE_DEPTH = 32


def _download(repository: Any, tmp: Path) -> None:
    """Every file of a version's artifacts into ``tmp``; from a remote store, each listed path checked first."""
    if isinstance(repository, LocalArtifactRepository):
        repository.download_artifacts("", dst_path=str(tmp))  # type: ignore[no-untyped-call]
        return
    pending, files = [""], 0
    while pending:
        directory = pending.pop()
        for item in repository.list_artifacts(directory or None):
            path = stored_path(item.path, directory)
            if item.is_dir:
                if path.count("/") >= MAX_REMOTE_DEPTH:
                    raise InvalidInput(
                        f"fichiers de la version trop profonds (plus de {MAX_REMOTE_DEPTH} niveaux)"
                    )
                pending.append(path)
                continue
            files += 1
            if files > MAX_REMOTE_FILES:
                raise InvalidInput(f"trop de fichiers dans la version (plus de {MAX_REMOTE_FILES})")
            if object_store.is_s3(repository.artifact_uri):
                object_store.download(repository.artifact_uri, path, tmp / path)
            else:
                repository.download_artifacts(path, dst_path=str(tmp))


def stored_path(path: Any, directory: str) -> str:
    """A path a remote store listed in ``directory``, if it is one of its children; refused otherwise.

    Raises:
        InvalidInput: not a text, absolute, ``.``/``..`` or empty segments, a backslash,
            a control character, or a path that is not directly inside ``directory``.
    """
    text = path if isinstance(path, str) else ""
    parts = text.split("/")
    if (
        not text
        or len(text) > 1024
        or "\\" in text
        or any(ord(c) < 32 or ord(c) == 127 for c in text)
        or any(part in {"", ".", ".."} for part in parts)
        or "/".join(parts[:-1]) != directory
    ):
        raise InvalidInput(f"chemin refusé dans les fichiers de la version : {str(path)[:200]!r}")
    return text


def _within(root: Path, child: Path) -> bool:
    """Whether ``child`` (a link) leads to an existing file or directory inside ``root`` (resolved)."""
    target = child.resolve()
    return (target == root or root in target.parents) and target.exists()


def _inside(root: Path, path: str) -> Path:
    """``root / path``, refusing anything that would leave ``root``."""
    clean = (path or "").strip("/")
    if "\\" in clean or any(part in {"..", "."} for part in clean.split("/") if part):
        raise InvalidInput(f"chemin d'artefact invalide : {path!r}")
    target = (root / clean).resolve()
    if target != root.resolve() and root.resolve() not in target.parents:
        raise InvalidInput(f"chemin d'artefact invalide : {path!r}")
    return target
