"""Labelled CSVs a member uploaded for an evaluation, kept only until it is scored.

The CSV is read (French habits), checked against the task and split into
canonical inputs and truth at submission, before the job is queued; the two
files go to ``<evaluations_dir>/<job id>/`` through a draft directory
renamed into place, and are removed once the job has ended (done, failed
or cancelled). A job that a restart queues again still finds them.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from pathlib import Path

from domain.errors import NotFound

NAMES = ("entrees.csv", "verite.csv")
DRAFT_GRACE_S = 3600  # a draft younger than this may belong to a submission in progress
JOB_ID = re.compile(r"[0-9a-f]{32}")


class UploadFiles:
    """One directory per evaluation job, written whole or not at all."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, job_id: str) -> Path:
        if not JOB_ID.fullmatch(job_id):
            raise NotFound(f"évaluation introuvable : {job_id}")
        return self.root / job_id

    def write(self, job_id: str, inputs_csv: bytes, truth_csv: bytes) -> None:
        final = self._dir(job_id)
        self.root.mkdir(parents=True, exist_ok=True)
        draft = self.root / f".draft-{secrets.token_hex(8)}"
        draft.mkdir(mode=0o700)
        try:
            for name, data in zip(NAMES, (inputs_csv, truth_csv), strict=True):
                with open(draft / name, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
            draft.rename(final)
        finally:
            shutil.rmtree(draft, ignore_errors=True)

    def read(self, job_id: str) -> tuple[bytes, bytes]:
        directory = self._dir(job_id)
        try:
            return (directory / NAMES[0]).read_bytes(), (directory / NAMES[1]).read_bytes()
        except FileNotFoundError:
            raise NotFound(
                "les données envoyées pour cette évaluation ne sont plus sur le service : renvoyez-les"
            ) from None

    def remove(self, job_id: str) -> None:
        if JOB_ID.fullmatch(job_id):
            shutil.rmtree(self.root / job_id, ignore_errors=True)

    def sweep(self, active: set[str]) -> list[str]:
        """Remove the directories of jobs that are not active (and stale drafts); their names."""
        removed: list[str] = []
        if not self.root.is_dir():
            return removed
        fresh = time.time() - DRAFT_GRACE_S
        for entry in self.root.iterdir():
            if entry.name in active:
                continue
            if entry.name.startswith(".draft-") and _mtime(entry) > fresh:
                continue  # another submission may be writing it right now
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
        return removed


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
