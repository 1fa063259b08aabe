"""Demonstrator benchmark: bibia's sandboxed demonstrator against ``mlflow models serve``.

Run by hand, on a machine with a Docker engine and the image ``bibia/demo:latest``
(``docker/build-demo-image.sh``)::

    .venv/bin/python benchmarks/demos.py [--model cantine] [--concurrent 20] [--requests 300] [--pool 2]

In one run it builds (or reuses, ``--model-dir``) the reference model, starts a
real bibia service in a subprocess (``BIBIA_RUNNER=docker``) on a free loopback
port with a fresh data directory, registers the model through the API, and
starts ``mlflow models serve --env-manager local`` on the same model directory.
It then measures, for both:

1. launch to first successful prediction (bibia: ``POST /api/v1/demos``,
   polling, ``POST /demos/{id}/predict``; mlflow: process start to the first
   ``POST /invocations`` that answers 200), median of ``--launches`` runs:
   bibia with its warm pool (``--pool`` sandboxes, every one started and
   waiting for a model before each timed launch), and a second bibia
   service with no pool (``BIBIA_DEMO_POOL_SIZE=0``: the cold launch),
   alternated with mlflow;
2. single-row latency, median and p99 (bibia through its proxy with a bearer
   token, and straight on the demonstrator's Unix socket);
3. throughput with 8 concurrent clients;
4. resident memory of one demonstrator;
5. how many demonstrators run at once, each answering a prediction.

Everything it starts is stopped in ``finally``: the demonstrators (through the
API, then any container left with this run's instance label), the service and
mlflow. Only loopback and Unix sockets are used.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# This script is named like the ``demos`` package: keep its own folder off the
# import path, so that ``import demos.cantine`` finds the project's package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
CLIENTS = 8
THROUGHPUT_SECONDS = 30.0
MODEL_PACKAGES = {"cantine": "demos.cantine", "velo": "demos.velo", "air": "demos.air"}
GOALS = {
    "launch": "≤ 1/3 de mlflow serve",
    "latency": "≤ mlflow serve",
    "memory": "≤ 1/2 de mlflow serve",
    "concurrent": "≥ 20 qui répondent",
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


# ------------------------------------------------------------------ memory


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def rss_mib(pids: list[int]) -> float:
    """Summed VmRSS of ``pids``, in MiB."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def process_tree(root: int) -> list[int]:
    tree, found, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(tree.get(pid, []))
    return found


def docker(*args: str, check: bool = True) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def container_of(demo_id: str) -> str:
    found = docker("ps", "-q", "--no-trunc", "--filter", f"label=bibia.demo_id={demo_id}").split()
    if not found:
        raise RuntimeError(f"no running container for demonstrator {demo_id}")
    return found[0]


def container_pids(container_id: str) -> list[int]:
    """The host PIDs of a container's processes (cgroup v1 or v2)."""
    candidates = [
        Path(f"/sys/fs/cgroup/memory/docker/{container_id}/cgroup.procs"),
        Path(f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/cgroup.procs"),
        Path(f"/sys/fs/cgroup/docker/{container_id}/cgroup.procs"),
    ]
    for path in candidates:
        if path.is_file():
            return [int(x) for x in path.read_text().split()]
    return [int(docker("inspect", "-f", "{{.State.Pid}}", container_id).strip())]


def docker_stats_mib(container_ids: list[str]) -> dict[str, float]:
    """``docker stats --no-stream`` memory usage of each container, in MiB."""
    if not container_ids:
        return {}
    out = docker(
        "stats", "--no-stream", "--no-trunc", "--format", "{{.ID}}\t{{.MemUsage}}", *container_ids
    )
    units = {
        "B": 1 / 2**20,
        "KiB": 1 / 1024,
        "kB": 1 / 1024,
        "MiB": 1.0,
        "MB": 1.0,
        "GiB": 1024.0,
        "GB": 1024.0,
    }
    usage = {}
    for line in out.splitlines():
        cid, mem = line.split("\t")
        value = mem.split("/")[0].strip()
        number = value.rstrip("KMGiB kB")
        unit = value[len(number) :].strip()
        usage[cid] = float(number) * units.get(unit, 1.0)
    return usage


# ------------------------------------------------------------------ load


@dataclass
class Latency:
    median_ms: float
    p99_ms: float
    n: int


def latencies(
    targets: dict[str, tuple[httpx.Client, str, dict[str, str] | None]],
    payload: dict[str, Any],
    n: int,
) -> dict[str, Latency]:
    """Sequential single-row predictions, ``n`` per target, interleaved round-robin.

    Each target keeps one keep-alive connection; interleaving spreads any
    change of the machine's load evenly over the targets (after a warm-up).
    """
    for client, url, headers in targets.values():
        for _ in range(min(20, n)):
            client.post(url, json=payload, headers=headers).raise_for_status()
    samples: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(n):
        for name, (client, url, headers) in targets.items():
            started = time.perf_counter()
            client.post(url, json=payload, headers=headers).raise_for_status()
            samples[name].append((time.perf_counter() - started) * 1000)
    return {
        name: Latency(statistics.median(s), quantile(s, 0.99), n) for name, s in samples.items()
    }


def throughput(
    make_client: Callable[[], httpx.Client],
    url: str,
    payload: dict[str, Any],
    total: int,
    headers: dict[str, str] | None = None,
) -> tuple[float, int]:
    """Requests per second of ``CLIENTS`` threads sharing ``total`` requests (bounded by time too)."""
    lock = threading.Lock()
    state = {"left": total, "ok": 0, "errors": 0}
    deadline = time.monotonic() + THROUGHPUT_SECONDS

    def worker() -> None:
        with make_client() as client:
            while time.monotonic() < deadline:
                with lock:
                    if state["left"] <= 0:
                        return
                    state["left"] -= 1
                try:
                    ok = client.post(url, json=payload, headers=headers).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    state["ok" if ok else "errors"] += 1

    threads = [threading.Thread(target=worker) for _ in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return state["ok"] / elapsed, state["errors"]


# ------------------------------------------------------------------ bibia


@dataclass
class Service:
    """A real bibia service in a subprocess, with a Docker runner."""

    data_dir: Path
    quota: int
    pool: int = 0
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    token: str = ""
    launched: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "BIBIA_DATA_DIR": str(self.data_dir),
            "BIBIA_RUNNER": "docker",
            "BIBIA_SEED_ON_START": "false",
            "BIBIA_DEMO_QUOTA_PER_ORG": str(self.quota),
            "BIBIA_DEMO_QUOTA_GLOBAL": str(self.quota),
            "BIBIA_DEMO_START_TIMEOUT_S": "600",
            "BIBIA_DEMO_POOL_SIZE": str(self.pool),
        }

    @property
    def instance(self) -> str:
        from bibia.services import instance_id
        from bibia.settings import Settings

        return instance_id(Settings(data_dir=self.data_dir))

    def wait_pool(self, timeout: float = 300) -> None:
        """Wait until the pool is full and every member has done its imports (not timed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = docker(
                "ps",
                "--filter",
                f"label=bibia.instance={self.instance}",
                "--filter",
                "label=bibia.pool=warm",
                "--format",
                '{{.ID}} {{.Label "bibia.demo_id"}}',
            ).split("\n")
            members = [
                line.split()[0]
                for line in rows
                if line.strip() and line.split()[1] not in self.launched
            ]
            if len(members) == self.pool and all(
                "en attente d'un modèle" in container_logs(m) for m in members
            ):
                return
            time.sleep(0.2)
        raise RuntimeError(f"the warm pool did not fill ({self.pool}) within {timeout:.0f} s")

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [PYTHON, "-m", "bibia.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(f"bibia {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def start(self, siren: str, owner: str) -> None:
        self.cli("org", "create", "bench", "--name", owner, "--siren", siren)
        self.token = (
            self.cli("token", "create", "--org", "bench", "--role", "expert")
            .strip()
            .splitlines()[-1]
        )
        log_file = open(self.data_dir.parent / "service.log", "wb")
        self.process = subprocess.Popen(
            [PYTHON, "-m", "bibia.cli", "serve", "--port", str(self.port)],
            env=self.env,
            cwd=ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        wait_for(
            lambda: httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200,
            120,
            "the bibia service",
            self.process,
        )

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def launch(self, client: httpx.Client, model: str) -> str:
        reply = client.post(
            f"{self.url}/api/v1/demos",
            json={"model": model, "ttl_minutes": 60},
            headers=self.headers,
        )
        if reply.status_code != 202:
            raise RuntimeError(f"launch refused ({reply.status_code}): {reply.text}")
        demo_id = reply.json()["id"]
        self.launched.append(demo_id)
        return demo_id

    def wait_ready(
        self, client: httpx.Client, demo_id: str, timeout: float = 600, interval: float = 0.05
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            demo = client.get(f"{self.url}/api/v1/demos/{demo_id}", headers=self.headers).json()
            if demo["state"] == "ready":
                return
            if demo["state"] not in ("pending", "starting"):
                raise RuntimeError(
                    f"demonstrator {demo_id} is {demo['state']}: {demo.get('error')}"
                )
            time.sleep(interval)
        raise RuntimeError(f"demonstrator {demo_id} not ready after {timeout:.0f} s")

    def predict_url(self, demo_id: str) -> str:
        return f"{self.url}/demos/{demo_id}/predict"

    def socket(self, demo_id: str) -> Path:
        return self.data_dir / "demos" / demo_id / "run" / "demo.sock"

    def stop_demos(self) -> None:
        with httpx.Client(timeout=60) as client:
            for demo_id in self.launched:
                with contextlib.suppress(httpx.HTTPError):
                    client.delete(f"{self.url}/api/v1/demos/{demo_id}", headers=self.headers)
        self.launched.clear()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def container_logs(container: str) -> str:
    result = subprocess.run(
        ["docker", "logs", container], capture_output=True, text=True, timeout=60
    )
    return result.stdout + result.stderr


def wait_for(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    process: subprocess.Popen | None = None,
    interval: float = 0.05,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited early (code {process.returncode})")
        with contextlib.suppress(httpx.HTTPError):
            if check():
                return
        time.sleep(interval)
    raise RuntimeError(f"{what} did not answer within {timeout:.0f} s")


PHASES = (
    ("service: launch request → container created", "created"),
    ("docker: created → started", "started"),
    ("→ server starts loading (cold: Python, imports; warm: model placed, seen)", "loading"),
    ("model loaded", "loaded"),
    ("server listening", "listening"),
    ("service saw it healthy, client saw it ready", "ready"),
    ("first prediction through the proxy", "first"),
)


def bibia_first_prediction(
    service: Service, model: str, payload: dict[str, Any]
) -> tuple[float, str, dict[str, float]]:
    """Seconds from ``POST /api/v1/demos`` to the first successful prediction through the proxy.

    Also returns the wall-clock instants of each phase (see ``PHASES``), read
    from the container's inspect data and its timestamped log.
    """
    with httpx.Client(timeout=60) as client:
        wall, started = time.time(), time.perf_counter()
        demo_id = service.launch(client, model)
        service.wait_ready(client, demo_id)
        ready = time.time()
        while (
            client.post(
                service.predict_url(demo_id), json=payload, headers=service.headers
            ).status_code
            != 200
        ):
            time.sleep(0.05)
        seconds = time.perf_counter() - started
    marks = {"post": wall, "ready": ready, "first": wall + seconds}
    with contextlib.suppress(RuntimeError, ValueError, KeyError, IndexError):
        marks.update(container_marks(container_of(demo_id)))
    return seconds, demo_id, marks


def _instant(stamp: str) -> float:
    head, _, frac = stamp.rstrip("Z").partition(".")
    return dt.datetime.fromisoformat(f"{head}.{(frac or '0')[:6].ljust(6, '0')}+00:00").timestamp()


def container_marks(container_id: str) -> dict[str, float]:
    """When the container was created and started, and when its server logged each start-up step."""
    state = json.loads(docker("inspect", container_id))[0]
    marks = {
        "created": _instant(state["Created"]),
        "started": _instant(state["State"]["StartedAt"]),
    }
    result = subprocess.run(
        ["docker", "logs", "-t", container_id], capture_output=True, text=True, timeout=60
    )
    lines = (result.stdout + result.stderr).splitlines()
    for key, needle in (
        ("loading", "Chargement du modèle"),
        ("loaded", "Modèle chargé"),
        ("listening", "Uvicorn running"),
    ):
        for line in lines:
            if needle in line:
                marks[key] = _instant(line.split(" ", 1)[0])
                break
    return marks


def phases(marks: dict[str, float]) -> list[tuple[str, float]]:
    """Durations of the launch phases that could be timed, in order (a warm sandbox was created before the launch)."""
    out, previous = [], marks["post"]
    for label, key in PHASES:
        if key in marks and marks[key] >= marks["post"]:
            out.append((label, marks[key] - previous))
            previous = marks[key]
    return out


def stop_demo(service: Service, demo_id: str) -> None:
    with httpx.Client(timeout=60) as client:
        client.delete(f"{service.url}/api/v1/demos/{demo_id}", headers=service.headers)
    if demo_id in service.launched:
        service.launched.remove(demo_id)


# ------------------------------------------------------------------ mlflow


@contextlib.contextmanager
def mlflow_serve(model_dir: Path, log_file: Path) -> Iterator[tuple[subprocess.Popen, str, float]]:
    """``mlflow models serve`` from the project's venv; yields (process, url, seconds to first prediction)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    venv_bin = Path(PYTHON).parent  # as with an activated venv: mlflow runs `uvicorn` from PATH
    env = {
        **os.environ,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
    }
    command = [
        str(venv_bin / "mlflow"),
        "models",
        "serve",
        "--env-manager",
        "local",
        "-m",
        str(model_dir),
        "-p",
        str(port),
        "-h",
        "127.0.0.1",
    ]
    with open(log_file, "ab") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        payload = _payload_holder["payload"]
        wait_for(
            lambda: httpx.post(f"{url}/invocations", json=payload, timeout=5).status_code == 200,
            180,
            "mlflow models serve",
            process,
            0.05,
        )
        yield process, url, time.perf_counter() - started
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


_payload_holder: dict[str, Any] = {}


# ------------------------------------------------------------------ the run


@dataclass
class Side:
    launch_s: list[float] = field(default_factory=list)
    launch_phases: list[list[tuple[str, float]]] = field(default_factory=list)
    cold_s: list[float] = field(default_factory=list)
    cold_phases: list[list[tuple[str, float]]] = field(default_factory=list)
    latency: Latency | None = None
    socket_latency: Latency | None = None
    rps: float = 0.0
    socket_rps: float = 0.0
    errors: int = 0
    rss_mib: float = 0.0
    stats_mib: float | None = None


def build_model(package: str, out: Path) -> Any:
    module = importlib.import_module(package)
    log(f"building the reference model {package} into {out}")
    return module.build(out)


def reference_card(package: str, model_dir: Path) -> dict[str, Any]:
    """The card of an already built reference model, from the metrics saved beside it.

    Reference builders take ``card(metrics, baseline, fitted)``; the cards use
    only the metrics (a builder whose card needs the fitted model cannot be
    reused this way: run without ``--model-dir``).
    """
    module = importlib.import_module(f"{package}.builder")
    metrics = json.loads((model_dir / "bibia" / "metrics.json").read_text(encoding="utf-8"))
    return module.card(metrics["model"], metrics["baseline"], None)


def run(args: argparse.Namespace) -> int:
    package = MODEL_PACKAGES.get(args.model, args.model)
    work = Path(tempfile.mkdtemp(prefix="bibia-bench-demos-"))
    service = Service(work / "data", quota=max(args.concurrent + 2, 5), pool=args.pool)
    cold = Service(work / "cold" / "data", quota=5, pool=0)
    side_b, side_m = Side(), Side()
    concurrent = {
        "asked": args.concurrent,
        "ready": 0,
        "answered": 0,
        "rss_mib": 0.0,
        "stats_mib": 0.0,
        "ready_s": 0.0,
        "failures": [],
    }
    try:
        if args.model_dir:
            model_dir = Path(args.model_dir).resolve()
            card = reference_card(package, model_dir)
            name = importlib.import_module(package).MODEL_NAME
        else:
            build = build_model(package, work / "model")
            model_dir, card, name = build.model_dir, build.card, build.name
        card = json.loads(json.dumps(card, default=str))
        card["identification"] = {**card["identification"], "project": None}
        sample = json.loads((model_dir / "input_example.json").read_text(encoding="utf-8"))
        record = dict(zip(sample["columns"], sample["data"][0]))
        payload = {"dataframe_records": [record]}
        _payload_holder["payload"] = payload
        owner = card["identification"]["owner"]

        from bibia.client import BibiaClient

        for each in (service, cold):
            log(
                f"starting a bibia service (docker runner, pool {each.pool}) in {each.data_dir.parent}"
            )
            each.data_dir.parent.mkdir(parents=True, exist_ok=True)
            each.start(owner["siren"], owner["name"])
            with BibiaClient(each.url, each.token) as client:
                client.register(name, model_dir, card, alias="production")
        log(f"{name} registered on both")

        # 1. launch → first prediction, alternating the three
        # Before each timed launch the pool is full and idle: its refill (imports) never competes with a launch.
        for i in range(args.launches):
            service.wait_pool()
            seconds, demo_id, marks = bibia_first_prediction(cold, name, payload)
            side_b.cold_s.append(seconds)
            side_b.cold_phases.append(phases(marks))
            log(f"bibia cold launch {i + 1}: {seconds:.2f} s")
            stop_demo(cold, demo_id)
            service.wait_pool()
            seconds, demo_id, marks = bibia_first_prediction(service, name, payload)
            side_b.launch_s.append(seconds)
            side_b.launch_phases.append(phases(marks))
            log(
                f"bibia launch {i + 1}: {seconds:.2f} s ("
                + ", ".join(f"{k.split(':')[0]} {v:.2f}" for k, v in side_b.launch_phases[-1])
                + ")"
            )
            if i < args.launches - 1:
                stop_demo(service, demo_id)
            service.wait_pool()
            with mlflow_serve(model_dir, work / "mlflow.log") as (process, url, m_seconds):
                side_m.launch_s.append(m_seconds)
                log(f"mlflow serve launch {i + 1}: {m_seconds:.2f} s")
                if i == args.launches - 1:
                    measure_both(args, service, demo_id, url, process, payload, side_b, side_m)
        stop_demo(service, demo_id)

        # 5. many demonstrators at once
        if args.concurrent > 0:
            many(service, name, payload, args.concurrent, concurrent)
    finally:
        log("stopping every demonstrator, the services and mlflow")
        for each in (service, cold):
            each.stop_demos()
            each.stop()
            remove_leftovers(each)
        # A container removed behind the service's back leaves its socket tmpfs mounted.
        from runners import hostfs

        if args.keep:
            for point in hostfs.mounts_under(work):
                hostfs.unmount(point)
        else:
            hostfs.remove_tree(work)
    print_report(args, name, side_b, side_m, concurrent)
    return 0


def measure_both(
    args,
    service: Service,
    demo_id: str,
    url: str,
    process: subprocess.Popen,
    payload,
    side_b: Side,
    side_m: Side,
) -> None:
    n = args.requests
    log(f"latency over {n} sequential requests each, interleaved")
    with (
        httpx.Client(timeout=60) as proxied,
        httpx.Client(
            transport=httpx.HTTPTransport(uds=str(service.socket(demo_id))), timeout=60
        ) as direct,
        httpx.Client(timeout=60) as baseline,
    ):
        found = latencies(
            {
                "proxy": (proxied, service.predict_url(demo_id), service.headers),
                "socket": (direct, "http://demo/predict", None),
                "mlflow": (baseline, f"{url}/invocations", None),
            },
            payload,
            n,
        )
    side_b.latency, side_b.socket_latency, side_m.latency = (
        found["proxy"],
        found["socket"],
        found["mlflow"],
    )

    log(f"throughput: {CLIENTS} clients, {n} requests each side")
    side_b.rps, errors_b = throughput(
        lambda: httpx.Client(timeout=60), service.predict_url(demo_id), payload, n, service.headers
    )
    side_b.socket_rps, _ = throughput(
        lambda: httpx.Client(
            transport=httpx.HTTPTransport(uds=str(service.socket(demo_id))), timeout=60
        ),
        "http://demo/predict",
        payload,
        n,
    )
    side_m.rps, errors_m = throughput(
        lambda: httpx.Client(timeout=60), f"{url}/invocations", payload, n
    )
    side_b.errors, side_m.errors = errors_b, errors_m

    container = container_of(demo_id)
    side_b.rss_mib = rss_mib(container_pids(container))
    side_b.stats_mib = docker_stats_mib([container]).get(container)
    side_m.rss_mib = rss_mib(process_tree(process.pid))


def many(service: Service, name: str, payload, count: int, result: dict[str, Any]) -> None:
    log(f"launching {count} demonstrators at once")
    started = time.perf_counter()
    with httpx.Client(timeout=120) as client:
        ids = [service.launch(client, name) for _ in range(count)]
        deadline = time.monotonic() + 900
        pending = set(ids)
        while pending and time.monotonic() < deadline:
            for demo_id in list(pending):
                state = client.get(
                    f"{service.url}/api/v1/demos/{demo_id}", headers=service.headers
                ).json()
                if state["state"] == "ready":
                    pending.discard(demo_id)
                elif state["state"] not in ("pending", "starting"):
                    pending.discard(demo_id)
                    result["failures"].append(
                        f"{demo_id}: {state['state']} {(state.get('error') or '')[-200:]}"
                    )
            time.sleep(0.5)
        result["ready_s"] = time.perf_counter() - started
        result["ready"] = count - len(pending) - len(result["failures"])
        answered = []
        for demo_id in ids:
            reply = client.post(service.predict_url(demo_id), json=payload, headers=service.headers)
            if reply.status_code == 200 and reply.json().get("predictions"):
                answered.append(demo_id)
            else:
                result["failures"].append(
                    f"{demo_id}: prediction {reply.status_code} {reply.text[:200]}"
                )
        result["answered"] = len(answered)
    containers = [container_of(d) for d in answered]
    result["rss_mib"] = sum(rss_mib(container_pids(c)) for c in containers)
    result["stats_mib"] = sum(docker_stats_mib(containers).values())
    log(f"{len(answered)}/{count} answered; {result['rss_mib']:.0f} MiB RSS in all")


def remove_leftovers(service: Service) -> None:
    """Backstop: remove any container this run's service started (its instance label), never others."""
    instance = service.instance
    with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
        left = docker("ps", "-aq", "--filter", f"label=bibia.instance={instance}").split()
        if left:
            log(f"removing {len(left)} leftover container(s)")
            docker("rm", "-f", *left, check=False)


# ------------------------------------------------------------------ report


def print_report(args, name: str, b: Side, m: Side, many_result: dict[str, Any]) -> None:
    def ratio(x: float | None, y: float | None) -> str:
        return f"{x / y:.2f}" if x and y else "—"

    def verdict(ok: bool) -> str:
        return "atteint" if ok else "MANQUÉ"

    launch_b = statistics.median(b.launch_s) if b.launch_s else None
    launch_m = statistics.median(m.launch_s) if m.launch_s else None
    rows = [("métrique", "bibia", "mlflow models serve", "ratio", "objectif")]
    if launch_b and launch_m:
        rows.append(
            (
                f"lancement → 1re prédiction, réserve chaude de {args.pool} (médiane de {len(b.launch_s)})",
                f"{launch_b:.2f} s",
                f"{launch_m:.2f} s",
                ratio(launch_b, launch_m),
                f"{GOALS['launch']} : {verdict(launch_b <= launch_m / 3)}",
            )
        )
    if b.cold_s and launch_m:
        cold_b = statistics.median(b.cold_s)
        rows.append(
            (
                f"lancement → 1re prédiction, à froid (sans réserve, médiane de {len(b.cold_s)})",
                f"{cold_b:.2f} s",
                f"{launch_m:.2f} s",
                ratio(cold_b, launch_m),
                "",
            )
        )
    if b.latency and m.latency:
        rows.append(
            (
                "latence 1 ligne, médiane (via le proxy)",
                f"{b.latency.median_ms:.1f} ms",
                f"{m.latency.median_ms:.1f} ms",
                ratio(b.latency.median_ms, m.latency.median_ms),
                f"{GOALS['latency']} : {verdict(b.latency.median_ms <= m.latency.median_ms)}",
            )
        )
        rows.append(
            (
                "latence 1 ligne, p99 (via le proxy)",
                f"{b.latency.p99_ms:.1f} ms",
                f"{m.latency.p99_ms:.1f} ms",
                ratio(b.latency.p99_ms, m.latency.p99_ms),
                "",
            )
        )
    if b.socket_latency and m.latency:
        rows.append(
            (
                "latence 1 ligne, médiane / p99 (socket direct)",
                f"{b.socket_latency.median_ms:.1f} / {b.socket_latency.p99_ms:.1f} ms",
                f"{m.latency.median_ms:.1f} / {m.latency.p99_ms:.1f} ms",
                ratio(b.socket_latency.median_ms, m.latency.median_ms),
                "",
            )
        )
    if b.rps and m.rps:
        rows.append(
            (
                f"débit, {CLIENTS} clients (via le proxy)",
                f"{b.rps:.0f} req/s",
                f"{m.rps:.0f} req/s",
                ratio(b.rps, m.rps),
                "",
            )
        )
        rows.append(
            (
                f"débit, {CLIENTS} clients (socket direct)",
                f"{b.socket_rps:.0f} req/s",
                f"{m.rps:.0f} req/s",
                ratio(b.socket_rps, m.rps),
                "",
            )
        )
    if b.rss_mib and m.rss_mib:
        stats = f" (docker stats {b.stats_mib:.0f})" if b.stats_mib else ""
        rows.append(
            (
                "mémoire résidente par démonstrateur (RSS)",
                f"{b.rss_mib:.0f} MiB{stats}",
                f"{m.rss_mib:.0f} MiB",
                ratio(b.rss_mib, m.rss_mib),
                f"{GOALS['memory']} : {verdict(b.rss_mib <= m.rss_mib / 2)}",
            )
        )
    if many_result["asked"]:
        answered = many_result["answered"]
        rows.append(
            (
                f"démonstrateurs simultanés qui répondent (sur {many_result['asked']})",
                f"{answered}",
                "—",
                "—",
                f"{GOALS['concurrent']} : {verdict(answered >= 20)}",
            )
        )
        rows.append(
            (
                "  mémoire totale (RSS / docker stats)",
                f"{many_result['rss_mib']:.0f} / {many_result['stats_mib']:.0f} MiB",
                "—",
                "—",
                "",
            )
        )
        rows.append(
            ("  temps pour que tous soient prêts", f"{many_result['ready_s']:.0f} s", "—", "—", "")
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    print()
    print(
        f"Démonstrateurs — modèle {name}, {dt.date.today().isoformat()}, {platform.node()}, "
        f"{os.cpu_count()} cœurs, {_mem_total_gib():.0f} Gio, Docker {docker('version', '--format', '{{.Server.Version}}', check=False).strip()}"
    )
    for i, row in enumerate(rows):
        print(" | ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)))
        if i == 0:
            print("-+-".join("-" * w for w in widths))
    print(
        f"\nlancements bibia (réserve chaude) : {', '.join(f'{x:.2f}' for x in b.launch_s)} s ; à froid : "
        f"{', '.join(f'{x:.2f}' for x in b.cold_s)} s ; mlflow : {', '.join(f'{x:.2f}' for x in m.launch_s)} s"
    )
    for title, runs in (("réserve chaude", b.launch_phases), ("à froid", b.cold_phases)):
        if runs:
            print(f"\nlancement bibia ({title}), étape par étape (médiane, s) :")
            for label, _ in runs[-1]:
                values = [d for run_phases in runs for name_, d in run_phases if name_ == label]
                print(f"  {label:<72} {statistics.median(values):6.2f}")
    if b.errors or m.errors:
        print(f"erreurs pendant le débit : bibia {b.errors}, mlflow {m.errors}")
    for failure in many_result["failures"][:10]:
        print(f"échec : {failure}")
    print(f"charge moyenne à la fin : {os.getloadavg()[0]:.1f}")


def _mem_total_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 2**20
    return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", default="cantine", help="reference model: cantine, velo, air (or a package name)"
    )
    parser.add_argument(
        "--model-dir", help="reuse an MLflow model directory already built by the model's build()"
    )
    parser.add_argument(
        "--concurrent", type=int, default=20, help="demonstrators launched at once (0 to skip)"
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=300,
        help="sequential requests for latency; requests per throughput run",
    )
    parser.add_argument(
        "--launches", type=int, default=3, help="launches measured on each side (median reported)"
    )
    parser.add_argument(
        "--pool",
        type=int,
        default=2,
        help="warm sandboxes of the measured service (BIBIA_DEMO_POOL_SIZE)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (logs) under /tmp"
    )
    args = parser.parse_args(argv)
    if shutil.which("docker") is None:
        print("docker introuvable : ce banc d'essai lance de vrais conteneurs", file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
