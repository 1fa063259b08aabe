"""A new build of velo's reference model becomes a new version through ``bibia seed`` (production moves
to it), and the seed's verified evaluation of it, in a sandbox on the reference benchmark, measures the
figures its build recorded."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

import bibia.seed
from registry.refs import ModelRef
from tests.evaluations.conftest import cached_builds, eval_settings, open_world, seed_reference

pytestmark = [pytest.mark.docker, pytest.mark.slow]

NAME = "velo-anomalies-nantes"
PACKAGES = ("demos.velo",)


def test_a_new_build_is_a_new_version_with_a_verified_evaluation(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    short_tmp: Path,
    demo_image: str,
) -> None:
    builds = cached_builds(request, tmp_path_factory, PACKAGES)
    build = builds["demos.velo"]
    directory = Path(tempfile.mkdtemp(dir=short_tmp))
    with open_world(eval_settings(directory, demo_image)) as world:
        registry = world.services.registry
        seed_reference(world.services, builds, PACKAGES)
        seed_reference(world.services, builds, PACKAGES)  # the same code: nothing new
        assert len(registry.versions(NAME)) == 1
        with pytest.MonkeyPatch.context() as patch:  # the code or the data changed
            patch.setattr(bibia.seed, "fingerprint", lambda package: f"{package}-nouveau")
            seed_reference(world.services, builds, PACKAGES)
        assert len(registry.versions(NAME)) == 2
        production = registry.resolve(ModelRef(name=NAME, alias="production"))
        assert str(production.version) == "2"
        assert production.metrics["f1_moyenne"] == pytest.approx(build.metrics["f1_moyenne"])

        queued = bibia.seed.evaluate_references(world.app.state.evaluations, lambda _: None)
        assert len(queued) == 1
        world.app.state.evaluations.run_queued()
        response = world.client.get(
            f"/api/v1/evaluations/{queued[0]}", headers=world.headers("member")
        )
        assert response.status_code == 200, response.text
        job = response.json()
        assert job["state"] == "done", job
        assert str(job["version"]) == "2"
        for metric in ("precision", "recall", "f1", "n_anomalies_injectees"):
            assert job["metrics"][metric] == pytest.approx(build.metrics[metric], rel=1e-6)
        for metric in ("precision", "recall", "f1"):
            assert job["baseline_metrics"][metric] == pytest.approx(
                build.baseline_metrics[metric], rel=1e-6
            )
        assert job["metrics"]["f1"] > job["baseline_metrics"]["f1"]
        # Nothing more to queue: the production version has its verified evaluation.
        assert bibia.seed.evaluate_references(world.app.state.evaluations, lambda _: None) == []
