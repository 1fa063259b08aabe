"""A real SeaweedFS S3 store for the tests (``.ci/start-seaweedfs.sh``), and a bucket of one's own on it.

``BIBIA_TEST_S3_ENDPOINT`` names the store (default: the one the provisioning
starts, ``http://127.0.0.1:58333``, with its throw-away credentials). With
``CI`` set, a missing store fails the tests instead of skipping them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT, need

DEFAULT_ENDPOINT = "http://127.0.0.1:58333"
ACCESS_KEY, SECRET_KEY = "bibia-test", "bibia-test-secret"


def endpoint() -> str:
    return os.environ.get("BIBIA_TEST_S3_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


def s3_client(url: str):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 2}, connect_timeout=3, read_timeout=30),
    )


def answers(url: str) -> bool:
    try:
        s3_client(url).list_buckets()
    except Exception:
        return False
    return True


@dataclass
class Bucket:
    endpoint: str
    name: str

    @property
    def env(self) -> dict[str, str]:
        """What a service (and the MLflow client) needs to keep its artifacts in this bucket."""
        return {
            "BIBIA_MLFLOW_ARTIFACT_ROOT": f"s3://{self.name}/models",
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def object_keys(self) -> list[str]:
        pages = s3_client(self.endpoint).get_paginator("list_objects_v2")
        return [
            o["Key"] for page in pages.paginate(Bucket=self.name) for o in page.get("Contents", [])
        ]

    def drop(self) -> None:
        """Delete the bucket and everything in it (SeaweedFS frees its volumes): tests leave no data."""
        client = s3_client(self.endpoint)
        try:
            for key in self.object_keys():
                client.delete_object(Bucket=self.name, Key=key)
            client.delete_bucket(Bucket=self.name)
        except Exception:  # a store already gone (the outage test's): nothing left to free
            pass


def new_bucket(url: str) -> Bucket:
    need(
        answers(url),
        f"no S3 store answers at {url}: start one with `bash .ci/start-seaweedfs.sh` "
        "or set BIBIA_TEST_S3_ENDPOINT",
    )
    name = f"bibia-{uuid.uuid4().hex[:12]}"
    s3_client(url).create_bucket(Bucket=name)
    return Bucket(url, name)


def _free_base() -> int:
    """A port P with P..P+7 free on 127.0.0.1 (SeaweedFS's eight listeners)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base > 65000:
            continue
        try:
            for offset in range(8):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        return base
    raise RuntimeError("no eight free ports in a row on 127.0.0.1")


@dataclass
class PrivateStore:
    """A SeaweedFS of one's own (same script, own ports and directory) that a test may stop and start."""

    directory: Path
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "BIBIA_S3_PORT": str(self.port),
            "BIBIA_SEAWEEDFS_DIR": str(self.directory),
        }
        done = subprocess.run(
            ["bash", ".ci/start-seaweedfs.sh"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr

    def stop(self) -> None:
        """Kill -9 (the store just disappears), and wait until nothing answers."""
        pid_file = self.directory / "weed.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text().strip())
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, os.WNOHANG)
        except (ProcessLookupError, ChildProcessError):
            pass
        deadline = time.monotonic() + 20
        while answers(self.endpoint) and time.monotonic() < deadline:
            time.sleep(0.2)
        # the gRPC sockets SeaweedFS also opens in /tmp (not configurable): leave none behind
        for kind, offset in (("master", 2), ("volume", 4), ("filer", 6), ("s3", 7)):
            Path(f"/tmp/seaweedfs-{kind}-grpc-{self.port + offset}.sock").unlink(missing_ok=True)


@contextmanager
def private_store(directory: Path) -> Iterator[PrivateStore]:
    store = PrivateStore(directory, _free_base())
    store.start()
    try:
        yield store
    finally:
        store.stop()
