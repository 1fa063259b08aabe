"""`bibia seed`: the shared projects and the reference models, idempotently, with honest metrics."""

from __future__ import annotations

import json

import pytest

from bibia.seed import REFERENCE_MODELS, seed
from bibia.services import Services
from demos.projects import load_projects
from registry.entries import CatalogueQuery
from registry.refs import ModelRef
from tests.backends import s3
from tests.backends.conftest import PostgresServer, postgres_server_url, require_postgres
from tests.reference_builds import cached_builds, prebuilt

pytestmark = pytest.mark.slow

REFERENCE = {"cantine-nantes", "velo-anomalies-nantes", "pics-pollution-lille"}
#: Each reference model's versions by alias: cantine-nantes has a calendar-only version and a
#: variant that corrects the staff's order (demos.cantine.commande).
ALIASES = {
    "cantine-nantes": {"correction-commande": 1, "production": 2},
    "velo-anomalies-nantes": {"production": 1},
    "pics-pollution-lille": {"production": 1},
}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def seeded(request, tmp_path_factory):
    """The seed run twice, on the embedded default and on the scale configuration (both
    databases on PostgreSQL, where MLflow limits a tag to 5,000 characters: the real cards
    are longer; the artifacts in a bucket of the tests' SeaweedFS), with the reference
    models' real builds (:mod:`tests.reference_builds`)."""
    from bibia.settings import Settings

    server = PostgresServer(postgres_server_url())
    databases = {}
    bucket = None
    env = pytest.MonkeyPatch()
    if request.param == "postgres":
        require_postgres(server)
        bucket = s3.new_bucket(s3.endpoint())
        for key, value in bucket.env.items():  # MLflow's S3 client reads its settings there
            env.setenv(key, value)
        databases = {
            "database_url": server.create_database("seed_bibia"),
            "mlflow_tracking_uri": server.create_database("seed_mlflow"),
            "mlflow_artifact_root": bucket.env["BIBIA_MLFLOW_ARTIFACT_ROOT"],
        }
    services = Services.build(
        Settings(data_dir=tmp_path_factory.mktemp("seed") / "data", runner="none", **databases)
    )
    # the builds themselves are the reference models' own tests (tests/demos); the README
    # tour runs this seed with its builds in a real ``bibia serve``
    with prebuilt(cached_builds(request, tmp_path_factory, REFERENCE_MODELS)):
        first = seed(services)
        second = seed(services)
    yield services, first, second
    services.db.dispose()
    env.undo()
    if bucket is not None:
        bucket.drop()
    for key in ("database_url", "mlflow_tracking_uri"):
        if key in databases:
            server.drop_database(databases[key])


def test_first_run_populates_projects_and_models(seeded):
    services, first, _ = seeded
    assert set(first.models_registered) == REFERENCE
    assert len(first.projects_created) == len(load_projects()) == 8
    names = {m.name for m in services.registry.search(CatalogueQuery())}
    assert names == REFERENCE


def test_the_scale_configuration_keeps_the_artifacts_in_its_bucket(seeded):
    services, _, _ = seeded
    root = services.settings.artifact_root
    if not root.startswith("s3://"):
        return  # the embedded default: a directory
    bucket = s3.Bucket(s3.endpoint(), root.removeprefix("s3://").split("/")[0])
    versions = sum(len(aliases) for aliases in ALIASES.values())
    assert sum(k.endswith("/model/MLmodel") for k in bucket.object_keys()) == versions
    assert not (services.settings.data_dir / "artifacts").exists()


def test_second_run_changes_nothing(seeded):
    services, _, second = seeded
    assert second.models_registered == []
    assert set(second.models_unchanged) == REFERENCE
    assert second.projects_created == second.projects_updated == second.organisations_created == []
    for name in REFERENCE:
        assert len(services.registry.versions(name)) == len(ALIASES[name])


def test_models_are_attached_to_their_projects(seeded):
    services, _, _ = seeded
    wanted = {m: p["slug"] for p in load_projects() for m in p.get("models") or []}
    assert set(wanted) == REFERENCE
    for name, slug in wanted.items():
        summary = services.registry.get(name)
        assert summary.card.identification.project == slug
        assert summary.aliases == ALIASES[name]


def test_recorded_metrics_are_the_evaluation_ones(seeded):
    """What MLflow holds (run metrics and version tags) is what the evaluation wrote in metrics.json."""
    services, _, _ = seeded
    registry = services.registry
    for ref in (f"{name}@{alias}" for name in REFERENCE for alias in ALIASES[name]):
        info = registry.resolve(ModelRef.parse(ref))
        name = info.name
        computed = json.loads(
            registry.artifact_path(name, info.version, "bibia/metrics.json").read_text()
        )
        assert info.metrics == pytest.approx(computed["model"])
        assert info.baseline_metrics == pytest.approx(computed["baseline"])
        run = registry._client.get_run(info.run_id)  # the MLflow run itself
        for key, value in computed["model"].items():
            assert run.data.metrics[key] == pytest.approx(value)
        for key, value in computed["baseline"].items():
            assert run.data.metrics[f"baseline.{key}"] == pytest.approx(value)


def test_each_version_carries_card_chart_sample_and_signature(seeded):
    services, _, _ = seeded
    registry = services.registry
    for name in REFERENCE:
        info = registry.resolve(ModelRef.parse(f"{name}@production"))
        files = {f.path for f in registry.list_artifacts(name, info.version, "bibia")}
        assert {
            "bibia/card.json",
            "bibia/evaluation.png",
            "bibia/sample.csv",
            "bibia/metrics.json",
        } <= files
        assert info.signature and info.signature["inputs"]
        assert registry.artifact_path(name, info.version, "README.md").read_text().startswith("---")
        card = registry.get(name).card
        assert card.accountability.public_contact
        assert card.model.evaluation.metrics, f"{name}: the card lists no metric"
