"""The reference models' builds, trained once per test run and shared by every test that needs them.

A build is kept in pytest's cache (``bibia-reference-models/<package>/<fingerprint>``,
keyed by the fingerprint ``bibia seed`` uses: a change to a model's code or data
builds again), or under the session's base temporary directory when the cache
is off (``-p no:cacheprovider``).

Who builds: each reference model's own tests (``tests/demos/test_<model>.py``)
run its real ``build`` with spies on the choice code, then :func:`keep` its
result here; a test that only needs a built model (a demonstrator, an
evaluation, ``bibia seed``'s registration) takes it from :func:`cached_builds`,
which builds what is missing. The README tour runs the whole seed, builds
included, in a real ``bibia serve``.
"""

from __future__ import annotations

import importlib
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bibia.seed import fingerprint


def _root(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = getattr(config, "cache", None)  # absent with -p no:cacheprovider
    if cache is not None:
        return Path(cache.mkdir("bibia-reference-models"))
    root = tmp_path_factory.getbasetemp() / "bibia-reference-models"
    root.mkdir(exist_ok=True)
    return root


def _slot(root: Path, package: str) -> Path:
    return root / package / fingerprint(package)


def _store(slot: Path, build: Any) -> None:
    """Copy ``build`` (its model directory and the rest) into ``slot``, atomically."""
    if (slot / "build.pickle").is_file():
        return
    shutil.rmtree(slot.parent, ignore_errors=True)  # builds of older code or data go too
    slot.parent.mkdir(parents=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=slot.parent))
    shutil.copytree(build.model_dir, tmp / "model")
    (tmp / "build.pickle").write_bytes(pickle.dumps(replace(build, model_dir=Path("model"))))
    os.replace(tmp, slot)


def keep(request: pytest.FixtureRequest, package: str, build: Any) -> Any:
    """Keep a build a test made for the other tests (when none of this code is kept yet)."""
    tmp_path_factory = request.getfixturevalue("tmp_path_factory")
    _store(_slot(_root(request.config, tmp_path_factory), package), build)
    return build


def cached_builds(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    packages: tuple[str, ...],
) -> dict[str, Any]:
    """``{package: ReferenceBuild}`` of ``packages``, each trained once (cached by fingerprint)."""
    root = _root(request.config, tmp_path_factory)
    builds = {}
    for package in packages:
        slot = _slot(root, package)
        if not (slot / "build.pickle").is_file():
            out = Path(tempfile.mkdtemp(prefix="bibia-build-", dir=root))
            try:
                _store(slot, importlib.import_module(package).build(out / "model"))
            finally:
                shutil.rmtree(out, ignore_errors=True)
        build = pickle.loads((slot / "build.pickle").read_bytes())
        builds[package] = replace(build, model_dir=slot / "model")
    return builds


@contextmanager
def prebuilt(builds: dict[str, Any]) -> Iterator[None]:
    """While the block runs, each package's ``build(out_dir)`` copies its cached build there.

    What ``bibia seed`` does with a build (the projects, the organisations, the cards, the
    metrics, the benchmarks, the version tags) is unchanged; only the training is skipped.
    """

    def copy_of(package: str) -> Callable[[Path], Any]:
        def build(out_dir: Path) -> Any:
            shutil.copytree(builds[package].model_dir, out_dir)
            return replace(builds[package], model_dir=out_dir)

        return build

    with pytest.MonkeyPatch.context() as patch:
        for package in builds:
            patch.setattr(importlib.import_module(package), "build", copy_of(package))
        yield
