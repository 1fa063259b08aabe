"""A model whose files are on S3 (SeaweedFS) runs in Docker: a demonstrator and an evaluation.

One ``bibia serve`` (Docker runner, no warm pool) keeps its artifacts in a
bucket of its own: the sandbox gets the model from the service's copy of
the store's files, like any other.
"""

from __future__ import annotations

import io
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml

from tests.backends import s3
from tests.backends.test_s3_artifacts import _register, _tar, _token
from tests.conftest import EXAMPLE_CARD, ROOT, LiveServer, need, running_service
from tests.demos_service.conftest import docker_answers

pytestmark = [pytest.mark.slow, pytest.mark.docker]

MODEL = "eau-batiments"


@pytest.fixture(scope="module")
def image() -> str:
    problem = docker_answers()
    need(problem is None, f"no Docker engine answers ({problem}); see docker/ensure-dockerd.sh")
    built = subprocess.run(
        ["bash", str(ROOT / "docker" / "build-demo-image.sh")],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return built.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def served(
    image: str, tmp_path_factory: pytest.TempPathFactory, sklearn_model_dir: Path
) -> Iterator[tuple[LiveServer, s3.Bucket, dict[str, str]]]:
    root = tmp_path_factory.mktemp("s3-docker")
    bucket = s3.new_bucket(s3.endpoint())
    env = {
        **bucket.env,
        "BIBIA_RUNNER": "docker",
        "BIBIA_DEMO_IMAGE": image,
        "BIBIA_DEMO_POOL_SIZE": "0",
    }
    token = _token(root / "data", env)
    with running_service(root / "data", root / "server.log", env) as server:
        card = yaml.safe_load(EXAMPLE_CARD.read_text(encoding="utf-8"))
        made = _register(server.url, token, MODEL, _tar(sklearn_model_dir, root / "m.tar"), card)
        assert made.status_code == 201, made.text
        assert any(k.endswith("/model/MLmodel") for k in bucket.object_keys())
        yield server, bucket, {"Authorization": f"Bearer {token}"}
    bucket.drop()


def _poll(url: str, headers: dict[str, str], done: set[str], timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.get(url, headers=headers, timeout=30).json()
        if body["state"] in done or time.monotonic() > deadline:
            return body
        time.sleep(0.5)


def test_a_demonstrator_of_a_model_on_s3_answers_in_docker(served) -> None:
    server, _, headers = served
    launched = httpx.post(
        f"{server.url}/api/v1/demos", json={"model": MODEL}, headers=headers, timeout=60
    )
    assert launched.status_code == 202, launched.text
    demo_id = launched.json()["id"]
    try:
        ready = _poll(
            f"{server.url}/api/v1/demos/{demo_id}", headers, {"ready", "failed", "stopped"}
        )
        assert ready["state"] == "ready", ready
        rows = [{"surface": 3.0, "occupation": 1.0, "temperature": 5.0}]
        answer = httpx.post(
            f"{server.url}{ready['url']}predict",
            headers=headers,
            json={"dataframe_records": rows},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["predictions"]) == 1
    finally:
        httpx.delete(f"{server.url}/api/v1/demos/{demo_id}", headers=headers, timeout=60)


def test_an_evaluation_of_a_model_on_s3_runs_in_docker(served) -> None:
    server, _, headers = served
    frame = pd.DataFrame({"surface": [float(i) for i in range(20)], "occupation": 1.0})
    frame["temperature"] = [30.0 * i / 19 for i in range(20)]
    frame["observe"] = 2.0 * frame["surface"]
    csv = io.StringIO()
    frame.to_csv(csv, sep=";", decimal=",", index=False)
    submitted = httpx.post(
        f"{server.url}/api/v1/evaluations",
        headers=headers,
        data={"model": f"{MODEL}@production", "truth_column": "observe", "task": "regression"},
        files={"fichier": ("eau.csv", csv.getvalue().encode(), "text/csv")},
        timeout=60,
    )
    assert submitted.status_code == 202, submitted.text
    done = _poll(
        f"{server.url}/api/v1/evaluations/{submitted.json()['id']}",
        headers,
        {"done", "failed", "cancelled"},
    )
    assert done["state"] == "done", done
