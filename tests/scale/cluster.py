"""Several ``bibia serve`` replicas on one PostgreSQL, behind Debian's nginx: a reusable harness.

API (small on purpose)::

    from tests.scale.cluster import cluster

    with cluster(tmp_path, postgres_server, replicas=2, seed_model_dir=sklearn_model_dir) as c:
        c.proxy.url                      # nginx, round-robin over the replicas (loopback port)
        c.proxy.upstreams()              # which replica served each request so far
        c.proxy.request("GET", "/healthz")  # (response, "127.0.0.1:port" of the replica that served it)
        c.replicas[0].url                # one replica straight
        c.token("nantes-metropole")      # a bearer token made with the real CLI (expert by default)
        c.cli("org", "ls")               # the real CLI on the cluster's databases
        c.replicas[1].kill()             # SIGKILL; .stop() SIGTERM; .start() again on the same port
        c.containers()                   # the cluster's sandboxes on Docker (labels: replica, warm)
        c.upkeep_leaders()               # ["r0"]: who holds the upkeep's advisory lock now
        c.bibia_url, c.mlflow_url        # the databases (SQLAlchemy URLs), fresh for this cluster

- ``postgres_server``: :class:`tests.backends.conftest.PostgresServer`; two new
  databases (bibia's, MLflow's) are created for the cluster and dropped after.
- ``seed_model_dir``: an MLflow model directory (the ``sklearn_model_dir``
  fixture); the replicas seed on start with the reference packages stood in by
  :mod:`tests.replica_references` (``cantine-nantes``, ``pics-pollution-lille``,
  trusted reference models, nothing trained). ``None``: an empty catalogue.
- ``s3``: a :class:`tests.backends.s3.Bucket` for the artifacts (``None``: a
  directory shared by the replicas).
- ``env``: more ``BIBIA_*`` settings for every replica (``BIBIA_RUNNER=docker``,
  ``BIBIA_DEMO_IMAGE=...``; see :func:`docker_env`). Each replica is named
  ``r0``, ``r1``... (``BIBIA_REPLICA_ID``), has a data directory of its own and
  shares the sandboxes' directory (``BIBIA_SANDBOXES_DIR``, a short ``/tmp/bsc-*``
  directory: ``Cluster.sandboxes``), the secret key
  and the databases.
- At the end every replica is stopped, the cluster's containers removed
  (``bibia.instance`` label) and its databases dropped.
- ``proxy``: start nginx (``/usr/sbin/nginx``, a plain foreground process with
  its own configuration in a temporary directory, loopback only, default
  round-robin, ``X-Forwarded-*`` believed from 127.0.0.1).

A missing PostgreSQL or nginx skips the test, and fails it under ``CI``
(:func:`tests.conftest.need`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from runners import hostfs
from tests.backends.conftest import PostgresServer, require_postgres
from tests.conftest import ROOT, free_port, need

NGINX = Path("/usr/sbin/nginx")
SECRET = "cle-partagee-par-les-replicas-de-test"
#: ``bibia serve``, the reference packages stood in (as tests/backends/test_replicas_start.py).
SERVE = (
    "import sys, bibia.seed; "
    "bibia.seed.REFERENCE_MODELS = "
    "('tests.replica_references.cantine', 'tests.replica_references.air'); "
    "from bibia.cli import main; main(sys.argv[1:])"
)
START_TIMEOUT_S = 180


def base_environ() -> dict[str, str]:
    """This process's environment without any ``BIBIA_*`` setting (the cluster sets its own)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("BIBIA_")}


@dataclass
class Replica:
    """One ``bibia serve`` process of the cluster."""

    name: str
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the process (appending to its log); :meth:`wait_ready` waits for ``/healthz``."""
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-c", SERVE, "serve", "--port", str(self.port)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )

    def ready(self) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        return False

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if not self.alive:
                raise AssertionError(f"replica {self.name} exited:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"replica {self.name} not ready:\n{self.tail()}")
            time.sleep(0.3)

    def kill(self) -> None:
        """``kill -9``: no shutdown code runs, its connections drop with it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """A clean stop (SIGTERM), killed after 20 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@dataclass
class Proxy:
    """Debian's nginx in front of the replicas (round-robin)."""

    port: int
    directory: Path
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def upstreams(self) -> list[str]:
        """The replica (``127.0.0.1:port``) each request went to, in order (nginx's access log).

        nginx writes a line just after the response: right after a request its line
        may not be there yet (:meth:`request` waits for it).
        """
        log = self.directory / "access.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        return [line.split(" ", 1)[0].rstrip(",") for line in lines]

    def request(self, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, str]:
        """One request through nginx, and the replica (``127.0.0.1:port``) that served it.

        Meant for a test whose proxy traffic is all its own and sequential.
        """
        before = len(self.upstreams())
        kwargs.setdefault("timeout", 60)
        response = httpx.request(method, f"{self.url}{path}", **kwargs)
        deadline = time.monotonic() + 10
        while len(served := self.upstreams()) <= before:
            assert time.monotonic() < deadline, "nginx did not log the request"
            time.sleep(0.02)
        return response, served[-1]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass
class Cluster:
    """The replicas, the proxy and the databases they share."""

    root: Path
    bibia_url: str
    mlflow_url: str
    replicas: list[Replica]
    proxy: Proxy | None
    sandboxes: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Where clients go: the proxy, else the first replica."""
        return self.proxy.url if self.proxy is not None else self.replicas[0].url

    @property
    def instance(self) -> str:
        """The ``bibia.instance`` label of the cluster's sandboxes (its database's)."""
        return hashlib.sha256(self.bibia_url.encode()).hexdigest()[:16]

    def by_upstream(self, upstream: str) -> Replica:
        """The replica behind ``127.0.0.1:port`` (an entry of :meth:`Proxy.upstreams`)."""
        return next(r for r in self.replicas if upstream == f"127.0.0.1:{r.port}")

    def upkeep_leaders(self) -> list[str]:
        """The replicas holding an advisory lock on the cluster's database now (PostgreSQL's view).

        Replicas name their connections ``bibia <replica id>`` (``application_name``);
        once started, the only lock a replica keeps is the demonstrators' upkeep's.
        """
        import sqlalchemy as sa

        engine = sa.create_engine(self.bibia_url)
        try:
            with engine.connect() as conn:
                names = conn.scalars(
                    sa.text(
                        "SELECT DISTINCT a.application_name FROM pg_locks l "
                        "JOIN pg_stat_activity a ON a.pid = l.pid "
                        "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
                        "(SELECT oid FROM pg_database WHERE datname = current_database())"
                    )
                ).all()
        finally:
            engine.dispose()
        return sorted(n.removeprefix("bibia ") for n in names)

    def containers(self) -> list[Container]:
        """The cluster's sandboxes on the Docker engine (any state), from the docker CLI."""
        return containers(self.instance)

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        """The real ``bibia`` CLI on the cluster's databases (its own data directory)."""
        env = {**self.env, "BIBIA_DATA_DIR": str(self.root / "cli"), "BIBIA_REPLICA_ID": "cli"}
        return subprocess.run(
            [sys.executable, "-m", "bibia.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
            input=input,
            timeout=300,
        )

    def token(self, org: str = "nantes-metropole", role: str = "expert") -> str:
        """A bearer token of ``role`` in ``org`` (the organisation made first when missing)."""
        made = self.cli("org", "create", org, "--name", org.replace("-", " ").title())
        assert made.returncode == 0 or "existe" in made.stderr, made.stderr
        token = self.cli("token", "create", "--org", org, "--role", role)
        assert token.returncode == 0, token.stderr
        return token.stdout.strip().splitlines()[-1]


@dataclass(frozen=True)
class Container:
    """A sandbox as the Docker engine lists it, with bibia's labels."""

    id: str
    demo_id: str
    replica: str  # bibia.replica: the replica that started it
    warm: bool  # bibia.pool=warm: started for the warm pool (a member unless a row claims it)
    state: str  # running, exited, created...


def containers(instance: str) -> list[Container]:
    """The containers labelled ``bibia.instance=<instance>`` (any state)."""
    fmt = '{{.ID}} {{.Label "bibia.demo_id"}} {{.Label "bibia.replica"}} {{.Label "bibia.pool"}} {{.State}}'
    out = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label=bibia.instance={instance}", "--format", fmt],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    found = []
    for line in out.splitlines():
        cid, demo_id, replica, pool, state = (line.split(" ") + [""] * 5)[:5]
        found.append(Container(cid, demo_id, replica, pool == "warm", state))
    return found


def docker_env(pool_size: int = 0) -> dict[str, str]:
    """Settings for demonstrators in Docker (the demonstrator image built, or the test skips/fails)."""
    from tests.demos_service.conftest import docker_answers

    problem = docker_answers()
    need(problem is None, f"no Docker engine answers ({problem}); see docker/ensure-dockerd.sh")
    built = subprocess.run(
        ["bash", str(ROOT / "docker" / "build-demo-image.sh")],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return {
        "BIBIA_RUNNER": "docker",
        "BIBIA_DEMO_IMAGE": built.stdout.strip().splitlines()[-1],
        "BIBIA_DEMO_POOL_SIZE": str(pool_size),
    }


def start_proxy(directory: Path, upstreams: list[str]) -> Proxy:
    """nginx on a free loopback port, round-robin over ``upstreams`` (``127.0.0.1:port`` each)."""
    need(NGINX.exists(), f"no nginx at {NGINX}: `apt-get install nginx` (.ci/provision.sh does)")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    servers = "\n".join(f"        server {u} max_fails=0;" for u in upstreams)
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = directory / "nginx.conf"
    conf.write_text(
        f"""{user}daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format upstreams '$upstream_addr $status "$request"';
    access_log {directory}/access.log upstreams;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    client_max_body_size 0;
    upstream bibia {{
{servers}
        keepalive 16;
        # below uvicorn's 5 s: nginx never reuses a connection the replica is closing (a 502)
        keepalive_timeout 4s;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://bibia;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 300s;
            proxy_request_buffering off;
            proxy_buffering off;
        }}
    }}
}}
""",
        encoding="utf-8",
    )
    with open(directory / "stderr.log", "wb") as log:
        process = subprocess.Popen(
            [str(NGINX), "-c", str(conf), "-p", str(directory)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    proxy = Proxy(port, directory, process)
    deadline = time.monotonic() + 20
    while True:
        if process.poll() is not None:
            raise AssertionError(
                "nginx exited:\n" + (directory / "stderr.log").read_text(errors="replace")
            )
        with contextlib.suppress(OSError), socket_to(port):
            return proxy
        if time.monotonic() > deadline:
            proxy.stop()
            raise AssertionError("nginx did not listen")
        time.sleep(0.1)


@contextlib.contextmanager
def socket_to(port: int) -> Iterator[None]:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=1):
        yield


@contextlib.contextmanager
def cluster(
    root: Path,
    postgres: PostgresServer,
    replicas: int = 2,
    *,
    env: dict[str, str] | None = None,
    seed_model_dir: Path | None = None,
    s3: object | None = None,
    proxy: bool = True,
) -> Iterator[Cluster]:
    """Start ``replicas`` replicas (all at once, as a rolling deployment) and nginx; stop all after."""
    require_postgres(postgres)
    root.mkdir(parents=True, exist_ok=True)
    # Short: a socket's path <sandboxes>/<id>/run/demo.sock must stay under 108 bytes.
    sandboxes = Path(tempfile.mkdtemp(prefix="bsc-", dir="/tmp"))
    bibia_url = postgres.create_database("cluster_bibia")
    mlflow_url = postgres.create_database("cluster_mlflow")
    shared = {
        **base_environ(),
        "BIBIA_DATABASE_URL": bibia_url,
        "BIBIA_MLFLOW_TRACKING_URI": mlflow_url,
        "BIBIA_MLFLOW_ARTIFACT_ROOT": (root / "artifacts").as_uri(),
        "BIBIA_SANDBOXES_DIR": str(sandboxes),
        "BIBIA_SECRET_KEY": SECRET,
        "BIBIA_TRUSTED_PROXIES": "127.0.0.1",
        "BIBIA_SEED_ON_START": "true" if seed_model_dir is not None else "false",
        "BIBIA_RUNNER": "none",
        **({"BIBIA_TEST_MODEL_DIR": str(seed_model_dir)} if seed_model_dir else {}),
        **(getattr(s3, "env", None) or {}),
        **(env or {}),
    }
    made = Cluster(root, bibia_url, mlflow_url, [], None, sandboxes, shared)
    try:
        for i in range(replicas):
            name = f"r{i}"
            replica = Replica(
                name,
                free_port(),
                {**shared, "BIBIA_DATA_DIR": str(root / name), "BIBIA_REPLICA_ID": name},
                root / f"{name}.log",
            )
            made.replicas.append(replica)
            replica.start()
        for replica in made.replicas:
            replica.wait_ready()
        if proxy:
            made.proxy = start_proxy(root / "nginx", [f"127.0.0.1:{r.port}" for r in made.replicas])
        yield made
    finally:
        if made.proxy is not None:
            made.proxy.stop()
        for replica in made.replicas:
            replica.stop()
        if shutil.which("docker"):  # the sandboxes outlive the replicas (a restart adopts them)
            left = [c.id for c in containers(made.instance)]
            if left:
                subprocess.run(["docker", "rm", "-f", *left], capture_output=True, check=False)
        postgres.drop_database(bibia_url)
        postgres.drop_database(mlflow_url)
        hostfs.remove_tree(sandboxes)  # unmounts the sockets' tmpfs first
