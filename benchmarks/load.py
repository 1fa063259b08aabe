"""Load benchmark: 50 catalogue clients through nginx, one replica against two, in one run.

Run by hand (not a test)::

    .venv/bin/python benchmarks/load.py [--users 50] [--seconds 60] [--models 200] [--wait 1]
    .venv/bin/python benchmarks/load.py --postgres postgresql+psycopg://postgres@127.0.0.1:54329

Setup (not measured): two ``bibia serve`` replicas on new databases of the
given PostgreSQL server (``.ci/start-postgres.sh`` starts one), started by the
tests' harness (:mod:`tests.scale.cluster`); ``--models`` registered models
with real cards are written straight through ``MlflowClient`` (as
``benchmarks/catalogue.py`` does). Two Debian nginx proxies on loopback ports
front them: one with replica ``r0`` alone, one round-robin over both.

Measured: locust (``benchmarks/locust_catalogue.py``, headless, loopback only,
bounded by ``--seconds``) with ``--users`` simultaneous visitors of the public
catalogue (API listing, search and entries; home, catalogue, model and projects
pages), each waiting about ``--wait`` s between requests; first through the
one-replica proxy (the baseline), then through the two-replica proxy, on the
same databases in the same run (``--rounds`` alternates them again). Printed
side by side: requests, failures, throughput, p50, p95 and p99, and the
two/one ratios.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

import httpx

LOCUSTFILE = ROOT / "benchmarks" / "locust_catalogue.py"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:54329"


def locust_run(url: str, args: argparse.Namespace, prefix: Path) -> dict[str, dict[str, float]]:
    """One headless locust run against ``url``; its statistics by request name (and ``Aggregated``)."""
    locust = shutil.which("locust", path=str(Path(sys.executable).parent)) or "locust"
    env = {
        **os.environ,
        "BIBIA_LOAD_MODELS": str(args.models),
        "BIBIA_LOAD_WAIT_S": str(args.wait),
    }
    done = subprocess.run(
        [
            locust, "-f", str(LOCUSTFILE), "--headless", "--host", url,
            "--users", str(args.users), "--spawn-rate", str(args.users),
            "--run-time", f"{args.seconds}s", "--stop-timeout", "10",
            "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING",
        ],
        env=env, capture_output=True, text=True, timeout=args.seconds + 120,
    )  # fmt: skip
    stats_file = Path(f"{prefix}_stats.csv")
    if not stats_file.exists():
        raise SystemExit(f"locust wrote no statistics:\n{done.stderr[-3000:]}")
    stats: dict[str, dict[str, float]] = {}
    with stats_file.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            stats[row["Name"]] = {
                "requests": float(row["Request Count"]),
                "failures": float(row["Failure Count"]),
                "rps": float(row["Requests/s"]),
                "p50": float(row["50%"] or 0),
                "p95": float(row["95%"] or 0),
                "p99": float(row["99%"] or 0),
            }
    failures = Path(f"{prefix}_failures.csv")
    if failures.exists() and stats.get("Aggregated", {}).get("failures"):
        print(failures.read_text(encoding="utf-8")[:2000])
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--wait", type=float, default=1.0, help="seconds between two requests")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--postgres", default=os.environ.get("BIBIA_TEST_POSTGRES_URL", DEFAULT_POSTGRES)
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bibia-load-"))
    try:
        return run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, workdir: Path) -> int:
    from catalogue import populate

    from bibia.cards import DatabaseCards
    from bibia.db import Database
    from tests.backends.conftest import PostgresServer
    from tests.scale.cluster import cluster, start_proxy

    print(
        f"bibia load benchmark — {args.users} catalogue clients for {args.seconds} s through nginx, "
        f"{args.models} models, ~{args.wait} s between a client's requests, locust headless"
    )
    print(
        f"machine: {platform.node()} · {platform.machine()} · {os.cpu_count()} CPUs · "
        f"Python {platform.python_version()} · load average {os.getloadavg()[0]:.1f}"
    )
    (workdir / "model").mkdir()
    with cluster(workdir / "cluster", PostgresServer(args.postgres), replicas=2) as made:
        db = Database(made.bibia_url)
        seconds = populate(made.mlflow_url, workdir, 0, args.models, DatabaseCards(db))
        db.dispose()
        print(
            f"setup: 2 replicas on PostgreSQL, {args.models} models in {seconds:.1f} s (not measured)"
        )
        one = start_proxy(workdir / "nginx-one", [f"127.0.0.1:{made.replicas[0].port}"])
        assert made.proxy is not None
        targets = {"1 replica": one.url, "2 replicas": made.proxy.url}
        try:
            for url in targets.values():  # warm both replicas' caches and connection pools
                for path in ("/api/v1/models", "/", "/catalogue", "/projets"):
                    for _ in range(4):
                        httpx.get(url + path, headers={"accept": "text/html"}, timeout=60)
            results: dict[str, list[dict[str, dict[str, float]]]] = {k: [] for k in targets}
            for round_ in range(args.rounds):
                for label, url in targets.items():
                    prefix = workdir / f"{label.replace(' ', '-')}-{round_}"
                    results[label].append(locust_run(url, args, prefix))
                    print(f"  round {round_ + 1}: {label} done ({time.strftime('%H:%M:%S')})")
        finally:
            one.stop()
        for proxy in (one, made.proxy):
            errors = proxy.directory / "error.log"
            if errors.exists() and errors.stat().st_size:
                print(f"nginx {proxy.directory.name}: {errors.read_text(errors='replace')[-1500:]}")
    report(results)
    total_failures = sum(r["Aggregated"]["failures"] for runs in results.values() for r in runs)
    return 0 if total_failures == 0 else 1


def report(results: dict[str, list[dict[str, dict[str, float]]]]) -> None:
    def merged(label: str, name: str, key: str) -> float:
        values = [r[name][key] for r in results[label] if name in r]
        if not values:
            return 0.0
        if key in ("requests", "failures"):
            return sum(values)
        return sum(values) / len(values)

    labels = list(results)
    print()
    print(
        f"| {'through nginx':<28} | "
        + " | ".join(f"{label:>12}" for label in labels)
        + " | ratio 2/1 |"
    )
    print(f"|{'-' * 30}|" + "|".join("-" * 14 for _ in labels) + "|-----------|")
    rows = [
        ("requests", "requests", "{:.0f}"),
        ("failures", "failures", "{:.0f}"),
        ("throughput (req/s)", "rps", "{:.1f}"),
        ("p50 (ms)", "p50", "{:.0f}"),
        ("p95 (ms)", "p95", "{:.0f}"),
        ("p99 (ms)", "p99", "{:.0f}"),
    ]
    for title, key, fmt in rows:
        values = [merged(label, "Aggregated", key) for label in labels]
        ratio = f"{values[1] / values[0]:.2f}×" if values[0] else "—"
        print(
            f"| {title:<28} | "
            + " | ".join(f"{fmt.format(v):>12}" for v in values)
            + f" | {ratio:>9} |"
        )
    names = sorted({n for runs in results.values() for r in runs for n in r} - {"Aggregated"})
    print()
    print(
        f"| {'p50 / p95 (ms) by request':<28} | "
        + " | ".join(f"{label:>12}" for label in labels)
        + " |"
    )
    print(f"|{'-' * 30}|" + "|".join("-" * 14 for _ in labels) + "|")
    for name in names:
        cells = [
            f"{merged(label, name, 'p50'):.0f} / {merged(label, name, 'p95'):.0f}"
            for label in labels
        ]
        print(f"| {name:<28} | " + " | ".join(f"{c:>12}" for c in cells) + " |")


if __name__ == "__main__":
    raise SystemExit(main())
