"""Artifacts on a real S3 store (SeaweedFS): register, pull with the stock MLflow client, stream, survive an outage.

One service (``bibia serve`` in a subprocess) on a bucket of its own serves the
module; the 200 MB version is made once; the outage test runs a SeaweedFS of
its own, killed and started again under a running service.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.backends import s3
from tests.conftest import LiveServer, cli, running_service

pytestmark = pytest.mark.slow

BIG_MB = 200
RSS_BOUND_MB = 50


def _token(data_dir: Path, env: dict[str, str]) -> str:
    org = cli(
        data_dir, "org", "create", "nantes-metropole", "--name", "Nantes Métropole",
        "--siren", "244400404", env=env,
    )  # fmt: skip
    assert org.returncode == 0 or "existe" in org.stderr, org.stderr
    made = cli(
        data_dir, "token", "create", "--org", "nantes-metropole", "--role", "expert", env=env
    )
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1]


def _tar(model_dir: Path, target: Path) -> Path:
    with tarfile.open(target, "w") as archive:  # a plain tar: the 200 MB are random anyway
        archive.add(model_dir, arcname="model")
    return target


def _register(url: str, token: str, name: str, archive: Path, card: dict) -> httpx.Response:
    with archive.open("rb") as model:
        return httpx.post(
            f"{url}/api/v1/models/{name}/versions",
            headers={"Authorization": f"Bearer {token}"},
            files={
                "card": (
                    "fiche.yaml",
                    yaml.safe_dump(card, allow_unicode=True),
                    "application/yaml",
                ),
                "model": ("model.tar", model, "application/x-tar"),
            },
            data={"alias": "production"},
            timeout=300,
        )


class Site:
    def __init__(self, server: LiveServer, bucket: s3.Bucket, token: str, env: dict) -> None:
        self.server, self.bucket, self.token, self.env = server, bucket, token, env

    @property
    def url(self) -> str:
        return self.server.url

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def bucket() -> Iterator[s3.Bucket]:
    made = s3.new_bucket(s3.endpoint())
    yield made
    made.drop()


@pytest.fixture(scope="module")
def site(
    bucket: s3.Bucket, tmp_path_factory: pytest.TempPathFactory, sklearn_model_dir: Path
) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("s3-site")
    env = bucket.env
    token = _token(root / "data", env)
    with running_service(root / "data", root / "server.log", env) as server:
        yield Site(server, bucket, token, env)


@pytest.fixture(scope="module")
def card() -> dict:
    from tests.conftest import EXAMPLE_CARD

    return yaml.safe_load(EXAMPLE_CARD.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def registered(site: Site, sklearn_model_dir: Path, card: dict, tmp_path_factory) -> Site:
    archive = _tar(sklearn_model_dir, tmp_path_factory.mktemp("tar") / "model.tar")
    created = _register(site.url, site.token, "eau-batiments", archive, card)
    assert created.status_code == 201, created.text
    return site


@pytest.fixture
def mlflow_env(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stock MLflow client pointed at bibia (and nothing of the store: it goes through the gateway)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", site.url)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", site.token)
    for key in ("MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key, raising=False)


def test_a_registration_lands_in_the_bucket_and_the_stock_client_pulls_it(
    registered: Site, mlflow_env: None, sklearn_model_dir: Path
) -> None:
    import mlflow.pyfunc
    import pandas as pd

    keys = registered.bucket.object_keys()
    assert any(k.startswith("models/") and k.endswith("/model/MLmodel") for k in keys), keys
    assert not (registered.server.data_dir / "artifacts").exists() or not any(
        (registered.server.data_dir / "artifacts").rglob("MLmodel")
    )

    model = mlflow.pyfunc.load_model("models:/eau-batiments@production")
    frame = pd.DataFrame(
        {"surface": [3.0, 10.0], "occupation": [1.0, 1.0], "temperature": [5.0, 20.0]}
    )
    expected = mlflow.pyfunc.load_model(str(sklearn_model_dir)).predict(frame)
    assert [round(float(v), 6) for v in model.predict(frame)] == [
        round(float(v), 6) for v in expected
    ]

    # the version's files on the web and the gateway's listing come from the store too
    listing = httpx.get(
        f"{registered.url}/api/2.0/mlflow-artifacts/artifacts",
        params={"path": "bibia-models/eau-batiments/1"},
        headers=registered.headers(),
    )
    assert listing.status_code == 200 and "MLmodel" in {f["path"] for f in listing.json()["files"]}


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class RssSampler:
    """The peak resident memory of a process, sampled from /proc every few milliseconds."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_kb, self._stop = pid, _rss_kb(pid), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, _rss_kb(self.pid))
            time.sleep(0.005)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def big_version(
    registered: Site, sklearn_model_dir: Path, card: dict, tmp_path_factory
) -> tuple[str, int]:
    """A version with a 200 MB file (random bytes), registered once."""
    work = tmp_path_factory.mktemp("big")
    model = work / "model"
    shutil.copytree(sklearn_model_dir, model)
    with (model / "poids.bin").open("wb") as out:
        for _ in range(BIG_MB):
            out.write(os.urandom(1 << 20))
    archive = _tar(model, work / "model.tar")
    shutil.rmtree(model)
    created = _register(registered.url, registered.token, "gros-modele", archive, card)
    archive.unlink()
    assert created.status_code == 201, created.text
    return "gros-modele", created.json()["version"]


def test_a_200_mb_artifact_streams_through_the_gateway_in_bounded_memory(
    registered: Site, big_version: tuple[str, int], tmp_path: Path
) -> None:
    """A fresh service (no cache, nothing read yet) pulls 200 MB from S3 and serves them: RSS grows < 50 MB."""
    name, version = big_version
    with running_service(
        tmp_path / "replica-data", tmp_path / "replica.log", {
            **registered.env,
            # the same stores as the module's service: a second replica
            "BIBIA_DATABASE_URL": f"sqlite:///{registered.server.data_dir / 'bibia.db'}",
            "BIBIA_MLFLOW_TRACKING_URI": f"sqlite:///{registered.server.data_dir / 'mlflow.db'}",
            "BIBIA_SECRET_KEY": "s3-test-" + "x" * 32,
        },
    ) as replica:  # fmt: skip
        headers = registered.headers()
        base = f"{replica.url}/api/2.0/mlflow-artifacts/artifacts/bibia-models"
        # warm up: the S3 client, the gateway's route, the small model's copy
        warm = httpx.get(f"{base}/eau-batiments/1/MLmodel", headers=headers, timeout=60)
        assert warm.status_code == 200, warm.text
        before = _rss_kb(replica.process.pid)
        received = 0
        started = time.monotonic()
        with (
            RssSampler(replica.process.pid) as sampler,
            httpx.stream(
                "GET", f"{base}/{name}/{version}/poids.bin", headers=headers, timeout=300
            ) as response,
        ):
            assert response.status_code == 200, response.read()
            for chunk in response.iter_bytes(1 << 20):
                received += len(chunk)
        elapsed = time.monotonic() - started
        grown_mb = (sampler.peak_kb - before) / 1024
        print(f"\n200 MB pulled through the gateway in {elapsed:.1f} s, RSS +{grown_mb:.1f} MB")
        assert received == BIG_MB << 20
        assert grown_mb < RSS_BOUND_MB, f"the service grew by {grown_mb:.1f} MB"


@pytest.mark.parametrize(
    ("listed", "directory"),
    [
        ("../x", ""),
        ("model/../../x", "model"),
        ("/etc/passwd", ""),
        ("model\\..\\x", "model"),
        ("model/a\x00b", "model"),
        ("model/a\x1bb", "model"),
        ("other/x", "model"),
        ("model/sub/x", "model"),
        ("model//x", "model"),
        ("model/./x", "model"),
        ("model/", "model"),
        ("", ""),
        (None, ""),
        ("model/" + "a" * 2000, "model"),
    ],
)
def test_a_listed_key_that_could_leave_the_version_is_refused(listed, directory) -> None:
    from domain.errors import InvalidInput
    from registry.artifacts import stored_path

    with pytest.raises(InvalidInput, match="chemin refusé dans les fichiers de la version"):
        stored_path(listed, directory)
    assert stored_path("model/c..", "model") == "model/c.."
    assert stored_path("model", "") == "model"


def test_a_hostile_key_in_the_store_is_a_french_400_and_nothing_is_cached(
    registered: Site, sklearn_model_dir: Path, card: dict, tmp_path: Path
) -> None:
    before = set(registered.bucket.object_keys())
    made = _register(
        registered.url,
        registered.token,
        "eau-hostile",
        _tar(sklearn_model_dir, tmp_path / "m.tar"),
        card,
    )
    assert made.status_code == 201, made.text
    mlmodel = next(
        k for k in set(registered.bucket.object_keys()) - before if k.endswith("/model/MLmodel")
    )
    # a key no sane registration writes, planted straight in the store (SeaweedFS refuses '..' itself)
    evil = mlmodel.removesuffix("MLmodel") + "piege\x1b[31m.txt"
    s3.s3_client(registered.bucket.endpoint).put_object(
        Bucket=registered.bucket.name, Key=evil, Body=b"x"
    )
    answer = httpx.get(
        f"{registered.url}/api/2.0/mlflow-artifacts/artifacts/bibia-models/eau-hostile/1/MLmodel",
        headers=registered.headers(),
        timeout=60,
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "chemin refusé dans les fichiers de la version" in answer.json()["message"]
    cache = registered.server.data_dir / "cache" / "models" / "eau-hostile"
    assert not cache.exists() or not any(p.name == "1" for p in cache.iterdir())
