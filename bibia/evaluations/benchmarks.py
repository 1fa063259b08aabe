"""Benchmarks: registration (versions, content hash, provenance, visibility) and their data files.

A benchmark is one CSV holding a task's input columns and its truth columns.
At registration the CSV is read with French habits, checked against the
task's contract and split into two canonical CSVs (inputs, truth), whose
SHA-256 is the version's content hash. The files live under
``<benchmarks_dir>/<hash>/`` and are written to a draft directory renamed
into place, so a failed registration leaves nothing half-written; the row
is inserted only once they are complete. Registering the same slug again
makes its next version; the same content as the latest version is refused.

Who reads what is :mod:`bibia.policy`'s ``may_see_benchmark``,
``may_read_benchmark_inputs`` and ``may_read_benchmark_truth``, asked here
and nowhere else.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bibia import policy
from bibia.accounts import audit
from bibia.auth import Caller
from bibia.db import Database
from bibia.db.models import Benchmark, utcnow
from bibia.evaluations.views import BenchmarkView
from bibia.settings import Settings
from domain.errors import Conflict, Forbidden, InvalidData, InvalidInput, NotFound
from evaluation import frames, tasks
from evaluation.benchmark_data import BenchmarkData
from evaluation.task import Task

VISIBILITIES = ("public", "membres", "verite-cachee")
PARTS = {"entrees": "entrees.csv", "verite": "verite.csv"}
SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
LIST_LIMIT = 500


@dataclass(frozen=True)
class Provenance:
    """Who produced the data, when, under which licence, and who may see it."""

    title: str
    licence: str
    visibility: str
    producer: str | None = None
    description: str | None = None
    period_start: str | None = None
    period_end: str | None = None
    source_url: str | None = None
    reference: bool = False

    @classmethod
    def of_reference(cls, data: BenchmarkData) -> Provenance:
        """A reference model's benchmark, public, as its build describes it (``bibia seed``)."""
        return cls(
            title=data.title,
            licence=data.licence,
            visibility="public",
            producer=data.producer,
            description=data.description,
            period_start=data.period_start,
            period_end=data.period_end,
            source_url=data.source_url or None,
            reference=True,
        )

    def checked(self) -> Provenance:
        """The same provenance, validated.

        Raises:
            InvalidInput: a missing title or licence, a bad visibility, date or address.
        """
        problems = []
        if not self.title.strip() or len(self.title) > 300:
            problems.append("titre : obligatoire, 300 caractères au plus")
        if not self.licence.strip() or len(self.licence) > 300:
            problems.append(
                "licence : obligatoire (ex. ODbL, Licence Ouverte 2.0), 300 caractères au plus"
            )
        if self.visibility not in VISIBILITIES:
            problems.append(f"visibilité : {', '.join(VISIBILITIES)}, pas « {self.visibility} »")
        for name, value in (
            ("début de période", self.period_start),
            ("fin de période", self.period_end),
        ):
            if value is not None and not DATE.fullmatch(value):
                problems.append(f"{name} : une date AAAA-MM-JJ, pas « {value} »")
        if self.period_start and self.period_end and self.period_start > self.period_end:
            problems.append("période : le début est après la fin")
        if self.source_url is not None and (
            not re.fullmatch(r"https?://\S{1,490}", self.source_url)
        ):
            problems.append("source : une adresse http(s)")
        if self.producer is not None and len(self.producer) > 300:
            problems.append("producteur : 300 caractères au plus")
        if self.description is not None and len(self.description) > 5000:
            problems.append("description : 5000 caractères au plus")
        if problems:
            raise InvalidInput(
                "jeu d'évaluation invalide : " + " ; ".join(problems), details=problems
            )
        return self


class BenchmarkFiles:
    """The data files of benchmark versions, one directory per content hash."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def directory(self, content_hash: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", content_hash):
            raise NotFound("données du jeu d'évaluation introuvables")
        return self.root / content_hash

    def write(self, content_hash: str, inputs_csv: bytes, truth_csv: bytes) -> None:
        """Write both files into a draft directory, then rename it into place (nothing half-written)."""
        final = self.directory(content_hash)
        if final.is_dir():
            return  # the same content is already stored (the hash names it)
        self.root.mkdir(parents=True, exist_ok=True)
        draft = self.root / f".draft-{secrets.token_hex(8)}"
        draft.mkdir(mode=0o700)
        try:
            for name, data in ((PARTS["entrees"], inputs_csv), (PARTS["verite"], truth_csv)):
                with open(draft / name, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
            try:
                draft.rename(final)
            except OSError:
                if not final.is_dir():  # another registration of the same content won the race
                    raise
        finally:
            shutil.rmtree(draft, ignore_errors=True)

    def read(self, content_hash: str, part: str) -> bytes:
        path = self.directory(content_hash) / PARTS[part]
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFound("données du jeu d'évaluation introuvables sur ce service") from None


def split(task: Task, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The task's inputs and truth of ``frame``, conformed (columns, types, order).

    Raises:
        InvalidData: a column is missing or holds values of the wrong type.
    """
    inputs = frames.conform(frame, task.inputs, "entrées")
    truth = frames.conform(frame, task.truth, "vérité")
    if len(inputs) == 0:
        raise InvalidData("le jeu d'évaluation n'a aucune ligne")
    return inputs, truth


def content_hash(inputs_csv: bytes, truth_csv: bytes) -> str:
    digest = hashlib.sha256()
    for part in (inputs_csv, truth_csv):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class Benchmarks:
    """Registers and reads benchmarks for callers, as the policy allows."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.files = BenchmarkFiles(settings.benchmarks_dir)

    # ------------------------------------------------------------ writes

    def register(
        self,
        caller: Caller,
        *,
        slug: str,
        task: str,
        frame: pd.DataFrame,
        provenance: Provenance,
        truth_column: str | None = None,
    ) -> BenchmarkView:
        """Register the next version of ``slug`` from ``frame`` (the task's inputs and truth).

        Raises:
            Forbidden, Unauthorized: not an expert of an organisation.
            InvalidInput: a bad slug or provenance; InvalidData: the data do not fit the task.
            NotFound: unknown task. Conflict: the same content as the latest version.
        """
        if not policy.may_register_benchmark(caller):
            policy.refuse(
                caller,
                "accès refusé : seuls les experts d'une collectivité enregistrent des jeux d'évaluation",
                anonymous="authentification requise : un jeton d'expert est nécessaire",
            )
        if not isinstance(slug, str) or not SLUG.fullmatch(slug):
            raise InvalidInput(
                f"identifiant de jeu invalide : « {slug} » (minuscules, chiffres et tirets, 64 au plus)"
            )
        provenance = provenance.checked()
        the_task = self.task_for(task, frame, truth_column)
        inputs, truth = split(the_task, frame)
        if len(inputs) > self.settings.evaluation_max_rows:
            raise InvalidData(
                f"le jeu d'évaluation a {len(inputs)} lignes : {self.settings.evaluation_max_rows} au plus"
            )
        inputs_csv, truth_csv = frames.canonical_csv(inputs), frames.canonical_csv(truth)
        digest = content_hash(inputs_csv, truth_csv)
        with self.db.session() as session:
            latest = self._latest(session, slug)
            if latest is not None:
                if latest.content_hash == digest:
                    raise Conflict(
                        f"le jeu {slug} version {latest.version} a déjà exactement ces données"
                    )
                if latest.organisation_id != caller.organisation_id and not policy.may_administer(
                    caller
                ):
                    raise Conflict(
                        f"le jeu {slug} appartient à une autre organisation : choisissez un autre identifiant"
                    )
                if latest.task != the_task.slug:
                    raise Conflict(
                        f"le jeu {slug} est enregistré pour la tâche {latest.task}, pas {the_task.slug}"
                    )
        self.files.write(digest, inputs_csv, truth_csv)
        with self.db.session() as session:
            version = (
                session.scalar(select(func.max(Benchmark.version)).where(Benchmark.slug == slug))
                or 0
            ) + 1
            assert caller.organisation_id is not None  # may_register_benchmark holds it
            row = Benchmark(
                slug=slug,
                version=version,
                task=the_task.slug,
                title=provenance.title.strip(),
                description=provenance.description,
                organisation_id=caller.organisation_id,
                user_id=caller.user_id,
                producer=(provenance.producer or caller.organisation or "").strip()[:300],
                period_start=provenance.period_start,
                period_end=provenance.period_end,
                licence=provenance.licence.strip(),
                source_url=provenance.source_url,
                visibility=provenance.visibility,
                reference=provenance.reference,
                content_hash=digest,
                n_rows=len(inputs),
                columns={"inputs": list(inputs.columns), "truth": list(truth.columns)},
                created_at=utcnow(),
            )
            session.add(row)
            session.flush()
            audit(
                session,
                caller,
                "benchmark.register",
                f"{slug}/{version}",
                task=the_task.slug,
                rows=len(inputs),
                content_hash=digest,
                visibility=provenance.visibility,
            )
            return self.view(caller, row)

    def task_for(self, slug: str, frame: pd.DataFrame, truth_column: str | None) -> Task:
        """The task a benchmark is registered for; a generic one is bound to the CSV's columns."""
        task = tasks.get(slug)
        if not task.generic:
            return task
        if not truth_column:
            raise InvalidInput(
                f"la tâche {slug} est générique : indiquez la colonne qui porte les valeurs observées (colonne_verite)"
            )
        if truth_column not in frame.columns:
            raise InvalidData(f"colonne de vérité absente du fichier : {truth_column}")
        inputs = [
            {"name": str(c), "type": _signature_type(frame[c])}
            for c in frame.columns
            if c != truth_column
        ]
        signature = {
            "inputs": inputs,
            "outputs": [{"name": "prediction", "type": _signature_type(frame[truth_column])}],
        }
        return tasks.bind(task, signature, truth_column)

    # ------------------------------------------------------------ reads

    def visible(self, caller: Caller, *, task: str | None = None) -> list[BenchmarkView]:
        """Every version the caller may see, newest first."""
        with self.db.session() as session:
            query = select(Benchmark).order_by(Benchmark.slug, Benchmark.version.desc())
            if task is not None:
                query = query.where(Benchmark.task == task)
            rows = session.scalars(query.limit(LIST_LIMIT)).all()
            return [
                self.view(caller, r) for r in rows if policy.may_see_benchmark(caller, r.visibility)
            ]

    def get(self, caller: Caller, slug: str, version: int | None = None) -> BenchmarkView:
        with self.db.session() as session:
            return self.view(caller, self.row_for(session, caller, slug, version))

    def row_for(
        self, session: Session, caller: Caller, slug: str, version: int | None = None
    ) -> Benchmark:
        """The version (the latest by default) if the caller may see it, else NotFound."""
        row: Benchmark | None = None
        if isinstance(slug, str) and SLUG.fullmatch(slug):
            if version is None:
                row = self._latest(session, slug)
            else:
                row = session.scalar(
                    select(Benchmark).where(Benchmark.slug == slug, Benchmark.version == version)
                )
        if row is None or not policy.may_see_benchmark(caller, row.visibility):
            which = slug if version is None else f"{slug} version {version}"
            raise NotFound(
                f"jeu d'évaluation introuvable : {which} (GET /api/v1/benchmarks pour la liste)"
            )
        return row

    def csv(self, caller: Caller, slug: str, version: int | None, part: str) -> tuple[str, bytes]:
        """``(filename, bytes)`` of the inputs (``entrees``) or the truth (``verite``).

        Raises:
            NotFound: unknown or invisible; InvalidInput: a bad part.
            Forbidden, Unauthorized: the policy refuses this part to the caller.
        """
        if part not in PARTS:
            raise InvalidInput("partie inconnue : entrees ou verite")
        with self.db.session() as session:
            row = self.row_for(session, caller, slug, version)
            visibility, digest, label = (
                row.visibility,
                row.content_hash,
                f"{row.slug}-v{row.version}",
            )
        allowed = (
            policy.may_read_benchmark_inputs(caller, visibility)
            if part == "entrees"
            else policy.may_read_benchmark_truth(caller, visibility)
        )
        if not allowed:
            if part == "verite" and visibility == "verite-cachee":
                raise Forbidden(
                    "accès refusé : la vérité de ce jeu est cachée ; seule la plateforme la lit pour noter les modèles"
                )
            policy.refuse(
                caller,
                "accès refusé : les données de ce jeu sont réservées aux membres d'une collectivité",
                anonymous="authentification requise : les données de ce jeu sont réservées aux membres",
            )
        return f"{label}-{part}.csv", self.files.read(digest, part)

    def frames_of(self, row: Benchmark, task: Task) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The version's inputs and truth as the platform reads them (the truth stays outside sandboxes)."""
        inputs = _read_canonical(self.files.read(row.content_hash, "entrees"))
        truth = _read_canonical(self.files.read(row.content_hash, "verite"))
        return frames.conform(inputs, task.inputs, "entrées"), frames.conform(
            truth, task.truth, "vérité"
        )

    def view(self, caller: Caller, row: Benchmark) -> BenchmarkView:
        columns = row.columns or {}
        return BenchmarkView(
            slug=row.slug,
            version=row.version,
            task=row.task,
            title=row.title,
            description=row.description,
            organisation=row.organisation.slug,
            organisation_name=row.organisation.name,
            producer=row.producer,
            period_start=row.period_start,
            period_end=row.period_end,
            licence=row.licence,
            source_url=row.source_url,
            visibility=row.visibility,
            reference=row.reference,
            content_hash=row.content_hash,
            n_rows=row.n_rows,
            input_columns=list(columns.get("inputs", [])),
            truth_columns=list(columns.get("truth", [])),
            created_at=row.created_at.isoformat(),
            data_readable=policy.may_read_benchmark_inputs(caller, row.visibility),
            truth_readable=policy.may_read_benchmark_truth(caller, row.visibility),
        )

    def reference_of(self, session: Session, task: str) -> Benchmark | None:
        """The task's reference benchmark (latest version), if one is registered."""
        return session.scalar(
            select(Benchmark)
            .where(Benchmark.task == task, Benchmark.reference.is_(True))
            .order_by(Benchmark.created_at.desc(), Benchmark.version.desc())
            .limit(1)
        )

    def _latest(self, session: Session, slug: str) -> Benchmark | None:
        return session.scalar(
            select(Benchmark)
            .where(Benchmark.slug == slug)
            .order_by(Benchmark.version.desc())
            .limit(1)
        )


def _read_canonical(data: bytes) -> pd.DataFrame:
    """A canonical CSV this service wrote, every cell as text (:func:`frames.conform` types it)."""
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_values=[""])


def _signature_type(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "long"
    if pd.api.types.is_numeric_dtype(series):
        return "double"
    return "string"
