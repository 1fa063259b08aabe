"""A 200 MB artifact pulled from S3 through bibia's gateway against `mlflow artifacts download` straight from the store.

Needs the SeaweedFS the tests use (`bash .ci/start-seaweedfs.sh`, or
BIBIA_TEST_S3_ENDPOINT):

    .venv/bin/python benchmarks/s3_pull.py [--mb 200] [--rounds 3]

Setup (not measured): a bucket of its own; a service (`bibia serve` in a
subprocess) on it registers a model whose directory holds a file of `--mb`
MB of random bytes, and a small model.

Measured, interleaved round by round (a shared machine's load falls on all alike):

- gateway, cold: a new replica (same databases and bucket, an empty cache),
  warmed up on the small model (its S3 client made, its routes run), then
  the stock client, `mlflow artifacts download -u models:/gros-modele/1`
  with MLFLOW_TRACKING_URI pointing at it: the replica reads the version from
  the store into its cache (chunk by chunk) and streams it to the client;
- gateway, cached: the same command again on that replica (the cache is warm);
- direct: `mlflow artifacts download --artifact-uri s3://…/model` with the
  store's endpoint and credentials, no bibia at all (the baseline).

Each figure: wall time of the client command, the peak resident memory of
the client process (its rusage), and for the gateway the growth of the
service's resident memory during the pull (its /proc VmRSS, sampled every
5 ms, against the figure after the warm-up).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.backends import s3
from tests.backends.test_s3_artifacts import _register, _tar, _token
from tests.conftest import EXAMPLE_CARD, running_service

MLFLOW = str(Path(sys.executable).with_name("mlflow"))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def timed(command: list[str], env: dict[str, str], service_pid: int | None = None):
    """(seconds, client peak RSS MB, service RSS growth MB or None) of one command."""
    before = rss_kb(service_pid) if service_pid else 0
    peak = [before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kb(service_pid))  # type: ignore[arg-type]
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    if service_pid:
        sampler.start()
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    stop.set()
    if service_pid:
        sampler.join()
    if status != 0:
        raise RuntimeError(f"{command} failed: {child.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
    grown = (peak[0] - before) / 1024 if service_pid else None
    return elapsed, usage.ru_maxrss / 1024, grown


def model_dir(root: Path, mb: int) -> Path:
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    frame = pd.DataFrame({"surface": np.arange(20.0), "occupation": 1.0, "temperature": 1.0})
    path = root / f"model-{mb}"
    mlflow.sklearn.save_model(
        LinearRegression().fit(frame, 2 * frame["surface"]),
        path,
        input_example=frame.head(2),
        serialization_format="cloudpickle",
    )
    if mb:
        with (path / "poids.bin").open("wb") as out:
            for _ in range(mb):
                out.write(os.urandom(1 << 20))
    return path


def main() -> None:
    import yaml

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    card = yaml.safe_load(EXAMPLE_CARD.read_text(encoding="utf-8"))
    bucket = s3.new_bucket(s3.endpoint())
    work = Path(tempfile.mkdtemp(prefix="bibia-s3-bench-"))
    data = work / "data"
    rows: dict[str, list[tuple[float, float, float | None]]] = {
        "gateway, cold": [],
        "gateway, cached": [],
        "direct from S3": [],
    }
    try:
        token = _token(data, bucket.env)
        with running_service(data, work / "service.log", bucket.env) as service:
            for name, mb in (("petit-modele", 0), ("gros-modele", args.mb)):
                archive = _tar(model_dir(work, mb), work / f"{name}.tar")
                made = _register(service.url, token, name, archive, card)
                assert made.status_code == 201, made.text
                archive.unlink()
        big_key = next(k for k in bucket.object_keys() if k.endswith("/model/poids.bin"))
        direct_uri = f"s3://{bucket.name}/{big_key.removesuffix('/poids.bin')}"
        shared = {
            **bucket.env,
            "BIBIA_DATABASE_URL": f"sqlite:///{data / 'bibia.db'}",
            "BIBIA_MLFLOW_TRACKING_URI": f"sqlite:///{data / 'mlflow.db'}",
            "BIBIA_SECRET_KEY": "benchmark-" + "x" * 32,
        }
        print(f"{args.mb} MB, {args.rounds} rounds, store {bucket.endpoint}", flush=True)
        for round_ in range(args.rounds):
            replica_dir = work / f"replica-{round_}"
            with running_service(replica_dir, work / f"replica-{round_}.log", shared) as replica:
                client_env = {
                    key: value
                    for key, value in os.environ.items()
                    if not key.startswith(("AWS_", "MLFLOW_S3"))
                }
                client_env |= {"MLFLOW_TRACKING_URI": replica.url, "MLFLOW_TRACKING_TOKEN": token}
                warm = work / "warm"
                timed(
                    [
                        MLFLOW,
                        "artifacts",
                        "download",
                        "-u",
                        "models:/petit-modele/1",
                        "-d",
                        str(warm),
                    ],
                    client_env,
                )
                for label in ("gateway, cold", "gateway, cached"):
                    target = work / "pulled"
                    rows[label].append(
                        timed(
                            [
                                MLFLOW,
                                "artifacts",
                                "download",
                                "-u",
                                "models:/gros-modele/1",
                                "-d",
                                str(target),
                            ],
                            client_env,
                            replica.process.pid,
                        )
                    )
                    shutil.rmtree(target)
            target = work / "direct"
            rows["direct from S3"].append(
                timed(
                    [
                        MLFLOW,
                        "artifacts",
                        "download",
                        "--artifact-uri",
                        direct_uri,
                        "-d",
                        str(target),
                    ],
                    {**os.environ, **bucket.env},
                )
            )
            shutil.rmtree(target)
            shutil.rmtree(replica_dir, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        bucket.drop()

    print(
        f"\n{'':<18} {'time (median, s)':>17} {'MB/s':>7} {'client peak RSS':>16} {'service RSS growth (max)':>25}"
    )
    for label, figures in rows.items():
        seconds = statistics.median(f[0] for f in figures)
        client = statistics.median(f[1] for f in figures)
        grown = [f[2] for f in figures if f[2] is not None]
        service = f"+{max(grown):.1f} MB" if grown else "—"
        print(
            f"{label:<18} {seconds:>17.2f} {args.mb / seconds:>7.0f} {client:>13.0f} MB {service:>25}"
        )


if __name__ == "__main__":
    main()
