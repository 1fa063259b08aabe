"""Untrusted uploads: a card (JSON or YAML text) and a model archive (.tar.gz).

The archive is checked member by member before anything is written: only
regular files and directories, no absolute paths, no ``..``, no links, no
devices, a bounded total size and file count (no tar bombs). Nothing in it
is ever imported or unpickled here.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from domain.errors import InvalidCard, InvalidModel, PayloadTooLarge
from registry.card import Card, parse_card
from registry.untrusted import load_yaml

MAX_MEMBERS = 10_000
MAX_STRUCTURED_CHARS = (
    1024 * 1024
)  # a card or a project record: hundreds of times what a real one needs


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


def load_structured(text: str, what: str, max_chars: int = MAX_STRUCTURED_CHARS) -> Any:
    """Parse untrusted JSON, or YAML without anchors or aliases (see :func:`registry.untrusted.load_yaml`).

    Raises:
        PayloadTooLarge: more than ``max_chars`` characters.
        InvalidCard: neither JSON nor acceptable YAML, saying where.
    """
    if len(text) > max_chars:
        raise PayloadTooLarge(f"{what} : contenu trop volumineux ({max_chars} caractères au plus)")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass  # not JSON: perhaps YAML
    except (
        ValueError,
        RecursionError,
    ) as exc:  # JSON, but an integer of thousands of digits or nested too deep
        raise InvalidCard(
            f"{what} illisible : JSON aux valeurs impossibles ou trop imbriqué"
        ) from exc
    return load_yaml(
        text, what=what, max_chars=max_chars, error=InvalidCard, syntax="ni JSON ni YAML valide"
    )


def extract_model_archive(
    fileobj: BinaryIO, dest: Path, max_bytes: int, *, max_members: int = MAX_MEMBERS
) -> Path:
    """Safely extract a model archive into ``dest``; return the MLflow model directory.

    The archive may hold the model files at its root or inside one top folder.
    Members are checked one header at a time as the archive is read, and the
    first bad one (or the one past a limit) stops the reading: nothing is
    written before every member passed. ``dest`` is the caller's temporary
    directory; the caller removes it.

    Raises:
        InvalidModel: not a tar archive, a member that is not a plain file/dir, too many members.
        PayloadTooLarge: more than ``max_bytes`` once extracted.
    """
    with _decompressed(fileobj, max_bytes + (max_members + 2) * _HEADER_ALLOWANCE) as stream:
        try:
            archive = tarfile.open(fileobj=stream, mode="r:")
        except _ArchiveTooLarge as exc:
            raise PayloadTooLarge(
                f"modèle trop volumineux une fois décompressé (plus de {max_bytes} octets)"
            ) from exc
        except _ARCHIVE_ERRORS as exc:
            raise InvalidModel(
                "archive du modèle illisible : envoyez un .tar.gz du dossier du modèle MLflow"
            ) from exc
        with archive:
            members = _checked_members(archive, max_bytes, max_members)
            try:
                # Python 3.11.4+ applies the "data" filter too; Debian bookworm's 3.11.2 (the
                # service image's, docker/service.Dockerfile) has none: the checked and normalised
                # members (_check_member) are then the whole protection.
                safe: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                archive.extractall(dest, members=members, **safe)
            except _ArchiveTooLarge as exc:
                raise PayloadTooLarge(
                    f"modèle trop volumineux une fois décompressé (plus de {max_bytes} octets)"
                ) from exc
            except _ARCHIVE_ERRORS as exc:  # includes tarfile.FilterError, a TarError
                raise InvalidModel(f"archive du modèle : extraction impossible ({exc})") from exc
    if (dest / "MLmodel").is_file():
        return dest
    children = [p for p in dest.iterdir() if not p.name.startswith(".")]
    if len(children) == 1 and (children[0] / "MLmodel").is_file():
        return children[0]
    raise InvalidModel(
        "archive du modèle : aucun fichier MLmodel à la racine ni dans un unique dossier"
    )


def _checked_members(
    archive: tarfile.TarFile, max_bytes: int, max_members: int
) -> list[tarfile.TarInfo]:
    """Every member of ``archive``, read header by header (never ``getmembers()`` on a whole bomb).

    Raises:
        InvalidModel: at the first member that is not a plain file or directory, or past ``max_members``.
        PayloadTooLarge: as soon as the declared sizes add up to more than ``max_bytes``.
    """
    members: list[tarfile.TarInfo] = []
    total = 0
    while True:
        try:
            member = archive.next()
        except _ArchiveTooLarge as exc:
            raise PayloadTooLarge(
                f"modèle trop volumineux une fois décompressé (plus de {max_bytes} octets)"
            ) from exc
        except _ARCHIVE_ERRORS as exc:
            raise InvalidModel("archive du modèle corrompue ou tronquée") from exc
        if member is None:
            return members
        if len(members) == max_members:
            raise InvalidModel(f"archive du modèle : trop de fichiers (plus de {max_members})")
        _check_member(member)
        total += member.size
        if total > max_bytes:
            raise PayloadTooLarge(
                f"modèle trop volumineux une fois décompressé (plus de {max_bytes} octets)"
            )
        members.append(member)


def _check_member(member: tarfile.TarInfo) -> None:
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts:
        raise InvalidModel(f"archive du modèle : chemin refusé « {member.name[:200]} »")
    # Sparse files are refused too: their declared size is not what they take once written.
    if not (member.isdir() or (member.isfile() and not member.issparse())):
        raise InvalidModel(
            f"archive du modèle : « {member.name[:200]} » n'est ni un fichier ni un dossier (liens et périphériques refusés)"
        )
    # What the "data" filter does, done here too for Pythons without filters (Debian bookworm's
    # 3.11.2, the service image's): no setuid/setgid/sticky bit, no group or other write, the
    # owner may read (and enter) what it extracted, and nothing chowned to the archive's owners.
    member.mode = (member.mode & 0o755) | (0o700 if member.isdir() else 0o600)
    member.uid, member.gid = os.geteuid(), os.getegid()
    member.uname = member.gname = ""


# ---------------------------------------------------------- decompression


# tarfile reads a member's header whole (a PAX or GNU long-name header can declare any size)
# and seeks over its data; each header gets this allowance on top of the declared data.
_HEADER_ALLOWANCE = 4 * 1024
# tarfile reads file data in 16 KiB blocks and headers in one read: a read larger than this
# is a header far beyond any real one, refused before anything is decompressed for it.
_MAX_READ = 1024 * 1024

_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError, ValueError)

_MAGIC: list[tuple[bytes, Callable[[BinaryIO], io.BufferedIOBase]]] = [
    (b"\x1f\x8b", lambda raw: gzip.GzipFile(fileobj=raw, mode="rb")),
    (b"BZh", lambda raw: bz2.BZ2File(raw, mode="rb")),
    (b"\xfd7zXZ\x00", lambda raw: lzma.LZMAFile(raw, mode="rb")),
]


class _ArchiveTooLarge(Exception):
    """The decompressed archive went past its bound."""


class _Bounded(io.RawIOBase):
    """A decompressed archive, readable and seekable up to ``limit`` bytes only.

    A tar.gz of a few kilobytes can expand to gigabytes; bounding the
    decompressed stream itself (not only the sizes members declare) also
    stops a bomb hidden in a single header.
    """

    def __init__(self, inner: BinaryIO | io.BufferedIOBase, limit: int, *, owns: bool) -> None:
        super().__init__()
        self._inner = inner
        self._limit = limit
        self._owns = (
            owns  # a decompressor opened here (closed with this); never the caller's upload
        )

    def close(self) -> None:
        if self._owns and not self.closed:
            self._inner.close()
        super().close()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._inner.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if (whence == io.SEEK_SET and offset > self._limit) or (
            whence != io.SEEK_SET and self._inner.tell() + offset > self._limit
        ):
            raise _ArchiveTooLarge()
        return self._inner.seek(offset, whence)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > _MAX_READ or self._inner.tell() + size > self._limit:
            raise _ArchiveTooLarge()
        return self._inner.read(size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _decompressed(fileobj: BinaryIO, limit: int) -> _Bounded:
    """``fileobj`` decompressed (gzip, bzip2, xz, or a plain tar), bounded to ``limit`` bytes."""
    start = fileobj.tell()
    magic = fileobj.read(6)
    fileobj.seek(start)
    for prefix, opener in _MAGIC:
        if magic.startswith(prefix):
            return _Bounded(opener(fileobj), limit, owns=True)
    return _Bounded(fileobj, limit, owns=False)
