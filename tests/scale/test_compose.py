"""docker/compose.yaml brought up on this machine's Docker engine, and used through its proxy over HTTPS.

The images are the offline ones (``docker/build-service-images.sh``: reused when
their content hash tag exists), the secrets and the self-signed certificate
``docker/prepare-compose.sh``'s, in a directory of this test's own; the stack is
a compose project of its own (its own network, volumes and published port), torn
down with its volumes afterwards, and the sandboxes its replicas started with it.
Compose is ``docker compose`` where the plugin exists, Debian's ``docker-compose``
elsewhere (``.ci/provision.sh`` installs it). With ``CI`` set, a missing engine or
compose fails the test.

The smoke check, every request through nginx (which alternates between the two
replicas): a token made with the CLI inside a replica signs in through the web form (its CSRF cookie from one
replica accepted by the other: one secret key) and gets a ``Secure`` session
cookie; the token's expert registers a model (upload through the proxy, files
in SeaweedFS) that the anonymous catalogue (API and page) lists; a demonstrator of it is launched, polled until ready, answers
predictions (both replicas' access logs show one: each reaches the sandbox's
socket), and is stopped. The seed is off (training the reference models takes
minutes here; the seed has tests of its own).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, free_port, need

pytestmark = [pytest.mark.docker, pytest.mark.slow]

DOCKER_DIR = ROOT / "docker"
COMPOSE_FILE = DOCKER_DIR / "compose.yaml"
MODEL = "compose-doublement"
READY_WITHIN_S = 900  # a cold first start trains and registers the reference models


def _compose_command() -> list[str] | None:
    """``docker compose`` (the plugin) where it answers, else Debian's ``docker-compose``."""
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if plugin.returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def _engine_answers() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 172.30.0.0/16 that no Docker network of this engine uses."""
    ids = subprocess.run(
        ["docker", "network", "ls", "-q"], capture_output=True, text=True, check=True
    ).stdout.split()
    used: list[ipaddress.IPv4Network] = []
    if ids:
        listing = subprocess.run(
            ["docker", "network", "inspect", *ids], capture_output=True, text=True, check=True
        )
        for network in json.loads(listing.stdout):
            for config in (network.get("IPAM") or {}).get("Config") or []:
                with contextlib.suppress(ValueError, KeyError):
                    used.append(ipaddress.ip_network(config["Subnet"]))
    for third in range(100, 250):
        candidate = ipaddress.IPv4Network(f"172.30.{third}.0/24")
        if not any(candidate.overlaps(net) for net in used if net.version == 4):
            return candidate
    raise AssertionError("no free /24 left in 172.30.0.0/16 for the compose network")


@dataclass
class Deployment:
    url: str
    ca: Path
    command: list[str]
    env: dict[str, str]
    sandboxes: Path

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, "-f", str(COMPOSE_FILE), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def bibia(self, replica: str, *args: str) -> subprocess.CompletedProcess[str]:
        """The CLI inside a replica (``exec``: its settings, secrets and databases)."""
        return self.compose("exec", "-T", replica, "bibia", *args, timeout=120)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=self.tls(), timeout=60)

    def tls(self) -> ssl.SSLContext:
        """Trusts the deployment's self-signed certificate only (and checks the host name)."""
        return ssl.create_default_context(cafile=str(self.ca))


def _ok(result: subprocess.CompletedProcess[str], what: str) -> str:
    assert result.returncode == 0, f"{what}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def _remove_sandboxes(sandboxes: Path) -> None:
    """Remove the containers whose socket directory is under ``sandboxes``, then unmount it all."""
    listing = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=bibia.managed=true"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    for container in listing:
        mounts = subprocess.run(
            ["docker", "inspect", "-f", "{{json .Mounts}}", container],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        if str(sandboxes) in mounts:
            subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
    points = [
        line.split()[1]
        for line in Path("/proc/mounts").read_text().splitlines()
        if line.split()[1] == str(sandboxes) or line.split()[1].startswith(f"{sandboxes}/")
    ]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    need(_engine_answers(), "no Docker engine answers (bash docker/ensure-dockerd.sh)")
    command = _compose_command()
    need(
        command is not None,
        "neither the compose plugin nor docker-compose is installed (apt-get install docker-compose)",
    )
    assert command is not None
    need(os.geteuid() == 0, "bringing the compose deployment up needs root (a shared mount)")

    images = subprocess.run(
        ["bash", str(DOCKER_DIR / "build-service-images.sh")],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    _ok(images, "docker/build-service-images.sh")

    base = tmp_path_factory.mktemp("compose")
    port = free_port()
    subnet = _free_subnet()
    sandboxes = base / "sandboxes"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("BIBIA_", "COMPOSE_"))},
        "COMPOSE_PROJECT_NAME": f"bibiaessai{os.getpid()}",
        "BIBIA_COMPOSE_SECRETS": str(base / "secrets"),
        "BIBIA_COMPOSE_SANDBOXES": str(sandboxes),
        "BIBIA_COMPOSE_HTTPS_PORT": str(port),
        "BIBIA_COMPOSE_PUBLIC_URL": f"https://localhost:{port}",
        "BIBIA_COMPOSE_SUBNET": str(subnet),
        "BIBIA_COMPOSE_PROXY_IP": str(subnet.network_address + 10),
        # Training the reference models takes minutes on 2 cores (the seed has tests of its own).
        "BIBIA_COMPOSE_SEED": "false",
    }
    prepared = subprocess.run(
        ["bash", str(DOCKER_DIR / "prepare-compose.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    _ok(prepared, "docker/prepare-compose.sh")
    deployment = Deployment(
        url=f"https://localhost:{port}",
        ca=base / "secrets" / "tls_certificate",
        command=command,
        env=env,
        sandboxes=sandboxes,
    )
    try:
        _ok(
            deployment.compose("up", "-d", timeout=READY_WITHIN_S),
            f"compose up (the services' logs: {base / 'compose.log'})",
        )
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError), deployment.client() as client:
                if client.get("/healthz").status_code == 200:
                    break
            assert time.monotonic() < deadline, (
                f"the proxy does not answer over HTTPS (the services' logs: {base / 'compose.log'})"
            )
            time.sleep(1)
        yield deployment
    finally:
        logs = deployment.compose("logs", "--no-color", "--tail", "300", timeout=120)
        (base / "compose.log").write_text(logs.stdout + logs.stderr, encoding="utf-8")
        deployment.compose("down", "--volumes", "--remove-orphans", "--timeout", "20")
        _remove_sandboxes(sandboxes)


def _csrf(page: str) -> str:
    match = re.search(r'name="csrftoken"\s+value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"\s+name="csrftoken"', page
    )
    assert match, "no CSRF field on the sign-in page"
    return match.group(1)


def test_compose_deployment_serves_signs_in_launches_predicts_and_stops_through_tls(
    deployment: Deployment, sklearn_model_dir: Path, card_data: dict
) -> None:
    from bibia.client import BibiaClient

    with deployment.client() as web:
        # A token made with the CLI inside the replicas (a new deployment: no organisation yet).
        org = ("org", "create", "nantes-metropole", "--name", "Nantes Métropole")
        _ok(deployment.bibia("replica-1", *org, "--siren", "244400404"), "bibia org create")
        expert = ("--org", "nantes-metropole", "--role", "expert", "--user", "expert-compose")
        created = _ok(
            deployment.bibia("replica-2", "token", "create", *expert), "bibia token create"
        )
        token = created.strip().splitlines()[-1].strip()
        assert token.startswith("bibia_"), created

        # Sign-in through the web form: the CSRF cookie one replica set is accepted by the other.
        for _ in range(2):  # two forms: round robin sends them to both replicas
            form = web.get("/connexion", params={"next": "/compte/sessions"})
            assert form.status_code == 200
            signed = web.post(
                "/connexion",
                data={"token": token, "next": "/compte/sessions", "csrftoken": _csrf(form.text)},
            )
            assert signed.status_code == 303, signed.text
            cookie = next(
                v for v in signed.headers.get_list("set-cookie") if v.startswith("bibia_session=")
            )
            assert "secure" in cookie.lower() and "httponly" in cookie.lower()
        for _ in range(2):
            sessions = web.get("/compte/sessions")
            assert sessions.status_code == 200 and "Mes sessions" in sessions.text

    # A model registered through the proxy (its files in SeaweedFS), in the anonymous catalogue.
    card_data["identification"]["title"] = "Doublement (déploiement compose)"
    transport = httpx.HTTPTransport(verify=deployment.tls())
    with BibiaClient(deployment.url, token, transport=transport) as client:
        client.register(MODEL, sklearn_model_dir, card_data, alias="production")
    with deployment.client() as anonymous:
        for _ in range(2):  # both replicas
            listing = anonymous.get("/api/v1/models", params={"per_page": 50})
            assert listing.status_code == 200, listing.text
            assert MODEL in {m["name"] for m in listing.json()["items"]}
            page = anonymous.get("/catalogue")
            assert page.status_code == 200 and "Doublement (déploiement compose)" in page.text

    # A demonstrator of it: launched, ready, predictions, stopped.
    with BibiaClient(deployment.url, token, transport=transport) as client:
        demo = client.launch_demo(MODEL)
        state = client.wait_demo(demo["id"], timeout=300)
        assert state["state"] == "ready", state
        # The training rows (y = 2 * surface): four requests, so both replicas proxy to the sandbox.
        for surface in (1.0, 2.0, 5.0, 10.0):
            record = {"surface": surface, "occupation": 1.0, "temperature": surface * 30 / 19}
            (prediction,) = client.demo_predict(demo["id"], [record])["predictions"]
            assert abs(float(prediction) - 2 * surface) < 1e-6, prediction
        stopped = client.stop_demo(demo["id"])
        assert stopped["state"] == "stopped", stopped
        assert client.demo(demo["id"])["state"] == "stopped"
    running = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=bibia.demo_id={demo['id']}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert running == [], "the stopped demonstrator's container still runs"
    # nginx alternated: each replica answered predictions from the sandbox one of them launched.
    for replica in ("replica-1", "replica-2"):
        log = deployment.compose("logs", "--no-color", replica).stdout
        assert f'"POST /demos/{demo["id"]}/predict HTTP/1.1" 200' in log, replica
