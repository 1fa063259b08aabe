"""Finding 6: an expert could stall the service at registration.

A YAML alias bomb in ``MLmodel`` or in a card, and an archive of 200,000
members read whole before the member limit refused it. Untrusted YAML is now
parsed without anchors or aliases and with size, depth and value bounds;
archives are read header by header and refused at the first bad member;
all of it runs in the threadpool, off the event loop.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bibia import uploads
from bibia.uploads import extract_model_archive, load_structured, parse_card_text
from domain.errors import InvalidCard, InvalidModel, PayloadTooLarge
from registry.mlmodel import MAX_MLMODEL_BYTES, read_mlmodel
from registry.untrusted import MAX_DEPTH, MAX_NODES, load_yaml
from tests.conftest import World, make_world

LOL = ", ".join(['"lol"'] * 9)
# The penetration test's shape: nine levels of nine aliases each, about 500 bytes, 9**9 strings once expanded.
BOMB_LINES = [f"a: &a [{LOL}]"] + [
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi")
]


def mlmodel_bomb() -> str:
    return (
        "flavors:\n  python_function: {loader_module: mlflow.sklearn}\n"
        + "\n".join(BOMB_LINES)
        + "\nsignature: {inputs: *i}\n"
    )


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from bibia.settings import Settings

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("untrusted") / "data", seed_on_start=False, runner="none"
    )
    world = make_world(settings)
    with world.client:
        yield world


def nothing_registered(world: World) -> bool:
    artifacts = world.services.settings.data_dir / "artifacts"
    return world.services.registry.search() == [] and not [
        p for p in artifacts.rglob("*") if p.is_file()
    ]


def tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sklearn_archive(model_dir: Path, **replace: bytes) -> bytes:
    """The fixture model as a tar.gz, with some of its files replaced."""
    members = {
        f"model/{p.relative_to(model_dir)}": p.read_bytes()
        for p in sorted(model_dir.rglob("*"))
        if p.is_file()
    }
    members.update({f"model/{name}": data for name, data in replace.items()})
    return tar_gz(members)


def post(world: World, name: str, card: bytes, archive: bytes):
    return world.client.post(
        f"/api/v1/models/{name}/versions",
        headers=world.headers("expert"),
        files={
            "card": ("fiche.yaml", card, "application/yaml"),
            "model": ("model.tar.gz", archive, "application/gzip"),
        },
    )


def card_bytes(card_data: dict) -> bytes:
    return yaml.safe_dump(card_data, allow_unicode=True).encode()


# ------------------------------------------------------------ YAML: the loader


def test_an_alias_bomb_is_refused_at_its_first_anchor_before_anything_is_built() -> None:
    with pytest.raises(InvalidModel) as caught:
        load_yaml(
            mlmodel_bomb(), what="fichier MLmodel", max_chars=MAX_MLMODEL_BYTES, error=InvalidModel
        )
    # Line 3 holds the first anchor: the walk over the parser's events stopped there.
    assert "ancre YAML « &a » refusée (ligne 3" in caught.value.message
    assert "sans ancres « & » ni alias « * »" in caught.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: *nowhere\n", "alias YAML « *nowhere » refusé"),
        ("a: &x 1\nb: 2\n", "ancre YAML « &x » refusée"),
        (
            "a: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
            f"imbrication trop profonde ({MAX_DEPTH} niveaux au plus)",
        ),
        ("[" * 200_000, "imbrication trop profonde"),
        (
            "a: [" + ",".join(["1"] * (MAX_NODES + 1)) + "]",
            f"trop de valeurs ({MAX_NODES} au plus)",
        ),
        ("created: 2024-02-30\n", "valeur impossible"),
        ("n: " + "1" * 5000 + "\n", "valeur impossible"),
        ("a: !!python/object/apply:os.system [true]\n", "illisible"),
        ("a: [unterminated\n", "illisible : YAML invalide (ligne 1, colonne 4)"),
    ],
)
def test_hostile_yaml_is_a_clear_refusal(text: str, expected: str) -> None:
    with pytest.raises(InvalidCard) as caught:
        load_yaml(text, what="fiche", max_chars=4 * 1024 * 1024, error=InvalidCard)
    assert expected in caught.value.message


def test_plain_yaml_still_loads() -> None:
    text = "flavors:\n  python_function: {loader_module: mlflow.sklearn}\n<<: {merged: true}\ncreated: 2026-03-01\n"
    data = load_yaml(text, what="fichier MLmodel", max_chars=1024, error=InvalidModel)
    assert data["flavors"] == {"python_function": {"loader_module": "mlflow.sklearn"}}
    assert data["merged"] is True


def test_yaml_longer_than_its_bound_is_not_parsed() -> None:
    with pytest.raises(PayloadTooLarge):
        load_yaml("a: 1\n" * 100, what="fiche", max_chars=50)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"keywords": ' + "1" * 5000 + "}",
        "identification: &i {title: x}\nb: *i\n",
    ],
    ids=["json-trop-imbrique", "json-entier-geant", "yaml-alias"],
)
def test_a_hostile_card_is_an_invalid_card(text: str) -> None:
    with pytest.raises(InvalidCard):
        load_structured(text, "fiche")


def test_read_mlmodel_checks_the_size_before_reading(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text(
        "flavors: {python_function: {}}\n# " + "x" * MAX_MLMODEL_BYTES
    )
    with pytest.raises(InvalidModel, match="fichier MLmodel trop volumineux"):
        read_mlmodel(tmp_path)


def test_a_signature_that_is_not_json_is_no_signature(tmp_path: Path) -> None:
    from registry.mlmodel import signature_of

    deep = "[" * 50_000 + "]" * 50_000
    assert signature_of({"signature": {"inputs": deep, "outputs": "1" * 5000}}) == {
        "inputs": None,
        "outputs": None,
        "params": None,
    }


# --------------------------------------------------------- YAML: through the API


def test_an_mlmodel_alias_bomb_registers_nothing(
    w: World, card_data: dict, sklearn_model_dir: Path
) -> None:
    archive = sklearn_archive(sklearn_model_dir, MLmodel=mlmodel_bomb().encode())
    response = post(w, "bombe-mlmodel", card_bytes(card_data), archive)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "modele_invalide"
    assert "ancre YAML « &a » refusée" in body["message"]
    assert nothing_registered(w)


def test_a_card_alias_bomb_registers_nothing(
    w: World, card_data: dict, sklearn_model_dir: Path
) -> None:
    card = card_bytes(card_data) + ("\n".join(BOMB_LINES) + "\n").encode()
    response = post(w, "bombe-fiche", card, sklearn_archive(sklearn_model_dir))
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "fiche_invalide"
    assert "ancre YAML « &a » refusée" in response.json()["message"]
    assert nothing_registered(w)


def test_a_card_with_an_impossible_date_is_a_422_not_a_500(
    w: World, card_data: dict, sklearn_model_dir: Path
) -> None:
    card = card_bytes(card_data).replace(b"created: 2026-03-01", b"created: 2026-02-30")
    assert b"2026-02-30" in card
    response = post(w, "date-impossible", card, sklearn_archive(sklearn_model_dir))
    assert response.status_code == 422, response.text
    assert "valeur impossible" in response.json()["message"]
    assert nothing_registered(w)


def test_card_parsing_runs_off_the_event_loop(
    w: World, card_data: dict, sklearn_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real parser, observed: it must run in a worker thread, where no event loop runs."""
    seen: list[tuple[str, bool]] = []

    def observed(text: bytes, max_bytes: int):
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        seen.append((threading.current_thread().name, on_loop))
        return parse_card_text(text, max_bytes)

    monkeypatch.setattr("bibia.api.models.parse_card_text", observed)
    card_data["identification"]["owner"]["siren"] = (
        "000000000"  # refused after parsing: nothing to clean up
    )
    response = post(w, "hors-boucle", card_bytes(card_data), sklearn_archive(sklearn_model_dir))
    assert response.status_code == 403, response.text
    assert len(seen) == 1 and seen[0][1] is False, seen


# ------------------------------------------------------------------- archives


class ReadCounter(io.BytesIO):
    """An upload that remembers how far into it the service read."""

    furthest = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.furthest = max(self.furthest, self.tell())
        return data


def many_members(count: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        archive.addfile(tarfile.TarInfo("MLmodel"), io.BytesIO(b""))
        for i in range(count):
            archive.addfile(tarfile.TarInfo(f"f{i}"), io.BytesIO(b""))
    return buf.getvalue()


@pytest.fixture(scope="module")
def crowded_archive() -> bytes:
    """Fifty thousand empty members: five times the limit, in a few hundred kilobytes."""
    return many_members(50_000)


def test_members_are_counted_while_streaming(crowded_archive: bytes, tmp_path: Path) -> None:
    upload = ReadCounter(crowded_archive)
    with pytest.raises(InvalidModel, match=rf"trop de fichiers \(plus de {uploads.MAX_MEMBERS}\)"):
        extract_model_archive(upload, tmp_path, max_bytes=10**9)
    # It stopped after the limit (a fifth of the members), far from the end of the upload.
    assert upload.furthest < len(crowded_archive) / 2
    assert list(tmp_path.iterdir()) == []


def test_an_archive_with_too_many_members_registers_nothing(
    w: World, card_data: dict, crowded_archive: bytes
) -> None:
    response = post(w, "trop-de-fichiers", card_bytes(card_data), crowded_archive)
    assert response.status_code == 422, response.text
    assert "trop de fichiers" in response.json()["message"]
    assert nothing_registered(w)


def test_a_member_declaring_too_much_is_refused_on_its_header(tmp_path: Path) -> None:
    # The header claims 10 GB and no data follows: refused on the header, never read as a truncated archive.
    header = tarfile.TarInfo("model/weights.bin")
    header.size = 10 * 1024**3
    raw = gzip.compress(tarfile.TarInfo("model/MLmodel").tobuf() + header.tobuf())
    with pytest.raises(PayloadTooLarge, match="modèle trop volumineux une fois décompressé"):
        extract_model_archive(io.BytesIO(raw), tmp_path, max_bytes=1024 * 1024)
    assert list(tmp_path.iterdir()) == []


def test_a_bomb_in_a_single_header_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """A PAX header declaring 64 MiB (tarfile would read it whole, in memory) from a 64 KiB upload."""
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type = tarfile.XHDTYPE
    pax.size = 64 * 1024 * 1024
    raw = gzip.compress(pax.tobuf() + bytes(pax.size))
    upload = ReadCounter(raw)
    with pytest.raises(PayloadTooLarge):
        extract_model_archive(upload, tmp_path, max_bytes=1024**3)
    assert upload.furthest < len(raw) / 2


def test_a_sparse_member_is_refused(tmp_path: Path) -> None:
    sparse = tarfile.TarInfo("model/creux.bin")
    sparse.type = tarfile.GNUTYPE_SPARSE
    raw = gzip.compress(
        tarfile.TarInfo("model/MLmodel").tobuf() + sparse.tobuf(format=tarfile.GNU_FORMAT)
    )
    with pytest.raises(InvalidModel, match="ni un fichier ni un dossier"):
        extract_model_archive(io.BytesIO(raw), tmp_path, max_bytes=1024 * 1024)


@pytest.mark.parametrize(
    "raw",
    [
        gzip.compress(b"\x00" * 100) + b"garbage",
        b"\x1f\x8b\x08\x00" + b"\xff" * 64,
        b"BZh9" + b"\x00" * 64,
        json.dumps({}).encode(),
    ],
    ids=["gzip-de-zeros", "gzip-corrompu", "bzip2-corrompu", "pas-une-archive"],
)
def test_a_corrupt_archive_is_a_clear_refusal(raw: bytes, tmp_path: Path) -> None:
    with pytest.raises(InvalidModel, match="archive du modèle"):
        extract_model_archive(io.BytesIO(raw), tmp_path, max_bytes=1024 * 1024)


def test_a_model_archive_still_extracts(sklearn_model_dir: Path, tmp_path: Path) -> None:
    model = extract_model_archive(
        io.BytesIO(sklearn_archive(sklearn_model_dir)), tmp_path, max_bytes=10 * 1024 * 1024
    )
    assert read_mlmodel(model)["flavors"]
    assert sorted(p.name for p in model.iterdir()) == sorted(
        p.name for p in sklearn_model_dir.iterdir()
    )


@pytest.mark.parametrize("filters", [True, False], ids=["filtre-data", "python-sans-filtres"])
def test_modes_and_owners_of_an_archive_are_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, filters: bool
) -> None:
    """A setuid, world-writable file owned by root: extracted without those bits, owned by the service.

    Without ``filters``, as on Debian bookworm's Python 3.11.2 (the service image's), which has
    no extraction filters: the member checks alone must give the same result.
    """
    if not filters:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        folder = tarfile.TarInfo("model")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o7777
        archive.addfile(folder)
        for name, mode in (("model/MLmodel", 0o644), ("model/outil", 0o6777)):
            member = tarfile.TarInfo(name)
            member.mode, member.uid, member.gid, member.uname, member.gname = (
                mode,
                0,
                0,
                "root",
                "root",
            )
            member.size = 3
            archive.addfile(member, io.BytesIO(b"abc"))
    model = extract_model_archive(io.BytesIO(buf.getvalue()), tmp_path, max_bytes=1024 * 1024)
    outil = (model / "outil").stat()
    assert outil.st_mode & 0o7777 == 0o755
    assert model.stat().st_mode & 0o7777 == 0o755
    assert (outil.st_uid, outil.st_gid) == (os.geteuid(), os.getegid())
