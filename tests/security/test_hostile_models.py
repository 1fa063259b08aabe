"""Hostile models on the real Docker engine: each attempt must be contained.

Every model here is registered through the API like any expert's upload and
launched by a member, as an attacker would. Contained means: the attempt
fails or is refused (the demonstrator is failed, or keeps serving within its
limits), the host is untouched (no connection to a host socket or port, no
host file read, nothing on the host's disk beyond the socket, nothing left
after teardown), and the service and a bystander demonstrator keep
answering. The run prints the figure (tests/security/conftest.py).

The socket-swap fixture points at a Unix socket THIS test listens on, never
at the Docker engine's.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bibia.db.models import DemoSession
from bibia.demos import TAMPERED
from bibia.web.csrf import CSRF_COOKIE
from runners import hostfs
from tests.conftest import World
from tests.demos_service.conftest import (
    container_ids,
    docker_settings,
    launch,
    open_world,
    register_model,
    wait_demo,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.hostile]

# kind -> (registered name, fixture parameters); the bystander is an ordinary model
LOADING = {
    "ok": ("temoin", {}),
    "swap_socket": ("echange-socket", {"trigger": True}),
    "swap_early": ("echange-socket-tot", {}),
    "fill_dirs": ("remplit-dossiers", {}),
    "read_host": ("lit-hote", {}),
    "hostile_headers": ("entetes-hostiles", {}),
    "escape_fs": ("escape-fs", {}),
    "escape_net": ("escape-net", {}),
    "fork_bomb": ("fork-bomb", {}),
    "memory_hog": ("memory-hog", {"max_bytes": 2 << 30}),
}
LATER = {
    "cpu_spin": ("boucle-cpu", {}),
    "stdout_flood": ("deluge-stdout", {"total_bytes": 1 << 30}),
}
MEMORY_MB = 256


@pytest.fixture(scope="module")
def host_socket(short_tmp: Path) -> Iterator[tuple[Path, list[str]]]:
    """A Unix socket on the host (root-only directory) recording every connection: a sandbox must reach none."""
    directory = Path(tempfile.mkdtemp(prefix="hs-", dir=short_tmp))
    path = directory / "host.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(16)
    server.settimeout(0.2)
    connections: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.settimeout(1)
            try:
                connections.append(conn.recv(200).decode("latin-1"))
            except OSError:
                connections.append("")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path, connections
    stop.set()
    thread.join(timeout=2)
    server.close()


@pytest.fixture(scope="module")
def host_secret(short_tmp: Path) -> tuple[Path, str]:
    """A host file holding a secret, readable by anyone on the host: no sandbox may read it."""
    value = secrets.token_hex(16)
    path = Path(tempfile.mkdtemp(prefix="hsec-", dir=short_tmp)) / "secret.txt"
    path.write_text(value)
    path.chmod(0o644)
    path.parent.chmod(0o755)
    return path, value


@pytest.fixture(scope="module")
def world(
    demo_image, fixture_models, host_listener, host_socket, host_secret, short_tmp
) -> Iterator[World]:
    data = Path(tempfile.mkdtemp(prefix="bds-host-", dir=short_tmp))
    settings = docker_settings(
        data,
        demo_image,
        demo_memory_mb=MEMORY_MB,
        demo_pids=64,
        demo_cpus=0.5,
        demo_start_timeout_s=240.0,
        demo_quota_per_org=20,
        demo_quota_global=30,
    )
    params = {
        "swap_socket": {"target": str(host_socket[0])},
        "swap_early": {"target": str(host_socket[0])},
        "escape_net": {"port": host_listener[0]},
        "read_host": {"path": str(host_secret[0])},
    }
    with open_world(settings) as w:
        for kind, (name, extra) in {**LOADING, **LATER}.items():
            code = "swap_socket" if kind == "swap_early" else kind
            model = fixture_models(code, **extra, **params.get(kind, {}))
            register_model(w, name, model, f"Modèle hostile « {kind} »")
        yield w


@pytest.fixture(scope="module")
def outcomes(world: World) -> dict[str, dict]:
    """Launch the loading-time attempts in waves of five (2 cores), waiting for each: ``{kind: last answer}``."""
    kinds, out = list(LOADING), {}
    for wave in (kinds[:5], kinds[5:]):
        ids = {}
        for kind in wave:
            response = launch(world, LOADING[kind][0])
            assert response.status_code == 202, response.text
            ids[kind] = response.json()["id"]
        out.update(
            {kind: wait_demo(world, demo_id, timeout=300)[0] for kind, demo_id in ids.items()}
        )
    return out


def _service_and_bystander_fine(world: World, outcomes: dict[str, dict]) -> None:
    health = world.client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    bystander = outcomes["ok"]
    response = world.client.post(
        f"{bystander['url']}predict",
        headers=world.headers("member"),
        json={"dataframe_records": [{"x": 3}]},
    )
    assert response.status_code == 200 and response.json() == {"predictions": [{"y": 6.0}]}, (
        response.text
    )


def _expert_logs(world: World, demo_id: str, tail: int = 200) -> str:
    response = world.client.get(
        f"/api/v1/demos/{demo_id}/logs?tail={tail}", headers=world.headers("expert")
    )
    assert response.status_code == 200, response.text
    return response.text


def _gone(world: World, demo_id: str) -> None:
    """Nothing of the demonstrator is left: no container, no directory, no mount (teardown follows the failed state)."""
    demo_dir = world.app.state.demos.demo_dir(demo_id)
    deadline = time.monotonic() + 30
    while (container_ids(demo_id) or demo_dir.exists()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert container_ids(demo_id) == []
    assert not demo_dir.exists(), list(demo_dir.rglob("*"))
    assert hostfs.mounts_under(demo_dir) == []


def _wait_state(world: World, demo_id: str, state: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        demo = world.client.get(f"/api/v1/demos/{demo_id}", headers=world.headers("member")).json()
        if demo["state"] == state or time.monotonic() > deadline:
            return demo
        time.sleep(0.2)


# ------------------------------------------------------------ the socket


def test_a_socket_swapped_for_a_symlink_mid_life_is_caught_and_the_host_never_reached(
    world: World, outcomes: dict[str, dict], host_socket
) -> None:
    demo = outcomes["swap_socket"]
    assert demo["state"] == "ready", demo
    headers = world.headers("member")
    assert (
        world.client.get(f"{demo['url']}health", headers=headers).status_code == 200
    )  # a pooled connection now
    manager = world.app.state.demos
    entry = manager.socket_dir(demo["id"]) / "demo.sock"
    (manager.demo_dir(demo["id"]) / "model" / "bibia-swap-now").write_text("")
    deadline = time.monotonic() + 30
    while not entry.is_symlink():
        assert time.monotonic() < deadline, "the fixture never swapped its socket"
        time.sleep(0.05)

    response = world.client.get(f"{demo['url']}health", headers=headers)
    assert response.status_code == 502, response.text
    assert response.json()["error"] == "bac_a_sable_compromis"
    assert "socket remplacé" in response.json()["message"]
    after = world.client.get(f"/api/v1/demos/{demo['id']}", headers=headers).json()
    assert after["state"] == "failed" and after["error"] == TAMPERED
    assert world.client.get(f"{demo['url']}health", headers=headers).status_code == 409
    assert host_socket[1] == [], f"the service connected to the host socket: {host_socket[1]}"
    _gone(world, demo["id"])
    _service_and_bystander_fine(world, outcomes)


def test_a_socket_swapped_as_soon_as_it_exists_fails_the_demonstrator(
    world: World, outcomes: dict[str, dict], host_socket
) -> None:
    demo = outcomes["swap_early"]
    if (
        demo["state"] == "ready"
    ):  # the health check won the race: the reaper's pass must catch the swap
        world.app.state.demos.reap()
        demo = _wait_state(world, demo["id"], "failed")
    assert demo["state"] == "failed" and demo["error"] == TAMPERED, demo
    assert host_socket[1] == []
    _gone(world, demo["id"])
    audit = world.client.get("/api/v1/audit?action=demo.tampered", headers=world.headers("admin"))
    assert audit.status_code == 200, audit.text
    assert any(e["target"] == demo["id"] for e in audit.json())


def test_writes_beside_the_socket_and_in_tmp_stay_in_small_tmpfs_and_leave_nothing(
    world: World, outcomes: dict[str, dict]
) -> None:
    demo = outcomes["fill_dirs"]
    assert demo["state"] == "ready", demo
    line = next(
        l for l in _expert_logs(world, demo["id"]).splitlines() if "BIBIA-ESCAPE fill_dirs" in l
    )
    figures = dict(part.split("=") for part in line.split()[-2:])
    assert int(figures["socket_dir"]) <= hostfs.SOCKET_TMPFS_BYTES, line
    assert int(figures["tmp"]) <= 64 * 1024 * 1024, line
    run = world.app.state.demos.socket_dir(demo["id"])
    on_host = sum(p.lstat().st_size for p in run.rglob("*"))
    assert on_host <= hostfs.SOCKET_TMPFS_BYTES, on_host
    assert hostfs.mounts_under(run) == [
        run
    ]  # what the sandbox wrote is in its tmpfs, not on the host's disk
    response = world.client.post(
        f"{demo['url']}predict",
        headers=world.headers("member"),
        json={"dataframe_records": [{"x": 1}]},
    )
    assert response.json() == {"predictions": [{"y": 2.0}]}
    assert (
        world.client.delete(
            f"/api/v1/demos/{demo['id']}", headers=world.headers("member")
        ).status_code
        == 200
    )
    _gone(world, demo["id"])


# ------------------------------------------------------------ host files and network


def test_host_files_are_not_readable_through_the_mounts(
    world: World, outcomes: dict[str, dict], host_secret
) -> None:
    demo = outcomes["read_host"]
    assert demo["state"] == "failed", demo
    logs = _expert_logs(world, demo["id"])
    assert "BIBIA-ESCAPE read_host blocked" in logs, logs[-2000:]
    assert host_secret[1] not in logs and host_secret[1] not in (demo["error"] or "")
    _gone(world, demo["id"])


@pytest.mark.parametrize("kind", ["escape_fs", "escape_net", "fork_bomb", "memory_hog"])
def test_escape_attempts_while_loading_are_contained(
    world: World, outcomes: dict[str, dict], host_listener, kind: str
) -> None:
    demo = outcomes[kind]
    assert demo["state"] == "failed", demo
    logs = _expert_logs(world, demo["id"])
    assert "SUCCEEDED" not in logs
    if kind == "memory_hog":
        assert (
            f"dépassé sa limite de mémoire ({MEMORY_MB} Mio)" in demo["error"]
            or "BIBIA-ESCAPE memory_hog blocked" in logs
        ), logs[-2000:]
    else:
        assert f"BIBIA-ESCAPE {kind} blocked" in logs, logs[-2000:]
    assert host_listener[1] == [], "the sandbox reached the host's loopback"
    assert not list(world.services.settings.data_dir.rglob("bibia-escape")), (
        "a file appeared outside the sandbox"
    )
    for target in ("/bibia-escape", "/etc/bibia-escape", "/usr/lib/bibia-escape"):
        assert not Path(target).exists()
    _gone(world, demo["id"])
    _service_and_bystander_fine(world, outcomes)


def test_members_read_a_fixed_message_never_what_the_sandbox_printed(
    world: World, outcomes: dict[str, dict]
) -> None:
    demo = outcomes["escape_fs"]
    assert "BIBIA-ESCAPE" not in (demo["error"] or "") and "Traceback" not in (demo["error"] or "")
    assert "les experts en lisent le détail" in demo["error"]
    assert (
        world.client.get(
            f"/api/v1/demos/{demo['id']}/logs", headers=world.headers("member")
        ).status_code
        == 403
    )
    page = world.client.get(f"/demonstrateurs/{demo['id']}", headers=world.headers("member"))
    assert "BIBIA-ESCAPE" not in page.text


# ------------------------------------------------------------ answers aimed at users


def test_hostile_response_headers_never_reach_users(
    world: World, outcomes: dict[str, dict]
) -> None:
    demo = outcomes["hostile_headers"]
    assert demo["state"] == "ready", demo
    response = world.client.get(
        demo["url"], headers=world.headers("member"), follow_redirects=False
    )
    assert response.status_code == 200, response.text
    for name in (
        "location",
        "refresh",
        "clear-site-data",
        "strict-transport-security",
        "link",
        "set-cookie",
        "access-control-allow-origin",
        "x-demo",
    ):
        assert name not in response.headers, f"{name}: {response.headers.get(name)}"
    assert response.headers.get_list("x-frame-options") == ["DENY"]
    assert response.headers.get_list("cache-control") == ["no-store"]
    assert response.headers.get_list("content-security-policy")[0].startswith(
        "default-src 'self'; script-src 'none'"
    )
    assert set(world.client.cookies.keys()) <= {CSRF_COOKIE}, (
        world.client.cookies
    )  # bibia's own, never the sandbox's


@pytest.mark.parametrize("path", ["go-out", "go-up"])
def test_a_redirect_out_of_the_demonstrator_is_refused(
    world: World, outcomes: dict[str, dict], path: str
) -> None:
    demo = outcomes["hostile_headers"]
    response = world.client.get(
        f"{demo['url']}{path}", headers=world.headers("member"), follow_redirects=False
    )
    assert response.status_code == 502, response.text
    assert "location" not in response.headers
    assert "redirection hors de son adresse" in response.json()["message"]


def test_a_redirect_inside_the_demonstrator_is_kept_as_a_local_path(
    world: World, outcomes: dict[str, dict]
) -> None:
    demo = outcomes["hostile_headers"]
    response = world.client.get(
        f"{demo['url']}go-in", headers=world.headers("member"), follow_redirects=False
    )
    assert response.status_code == 302
    assert response.headers["location"] == f"/demos/{demo['id']}/"


# ------------------------------------------------------------ resources


def test_a_cpu_spinning_model_is_capped_and_reaped_at_its_time_to_live(
    world: World, outcomes: dict[str, dict]
) -> None:
    demo = wait_demo(world, launch(world, LATER["cpu_spin"][0]).json()["id"], timeout=240)[0]
    assert demo["state"] == "ready", demo
    inspect = subprocess.run(
        ["docker", "inspect", "-f", "{{.HostConfig.NanoCpus}}", *container_ids(demo["id"])],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(inspect.stdout.strip()) == 500_000_000
    _service_and_bystander_fine(world, outcomes)
    with world.services.db.session() as session:
        session.get(DemoSession, demo["id"]).expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(
            seconds=1
        )
    assert demo["id"] in world.app.state.demos.reap()
    assert (
        world.client.get(f"/api/v1/demos/{demo['id']}", headers=world.headers("member")).json()[
            "state"
        ]
        == "expired"
    )
    _gone(world, demo["id"])


def test_gigabytes_of_stdout_stay_bounded_on_the_host(
    world: World, outcomes: dict[str, dict]
) -> None:
    demo = wait_demo(world, launch(world, LATER["stdout_flood"][0]).json()["id"], timeout=240)[0]
    assert demo["state"] == "ready", demo
    (container,) = container_ids(demo["id"])
    deadline = time.monotonic() + 300
    while "stdout_flood done" not in _expert_logs(world, demo["id"], tail=3):
        assert time.monotonic() < deadline, "the flood did not finish"
        time.sleep(1)
    log_path = subprocess.run(
        ["docker", "inspect", "-f", "{{.LogPath}}", container],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert os.path.getsize(log_path) <= 6 * 1024 * 1024  # json-file, max-size 5m, one file
    logs = _expert_logs(world, demo["id"], tail=200)
    assert len(logs) <= 200 * 1100
    _service_and_bystander_fine(world, outcomes)
    assert (
        world.client.delete(
            f"/api/v1/demos/{demo['id']}", headers=world.headers("member")
        ).status_code
        == 200
    )
    _gone(world, demo["id"])


def test_a_model_that_never_gets_healthy_is_failed_at_the_start_timeout(
    demo_image, fixture_models, short_tmp
) -> None:
    data = Path(tempfile.mkdtemp(prefix="bds-never-", dir=short_tmp))
    with open_world(docker_settings(data, demo_image, demo_start_timeout_s=8.0)) as world:
        register_model(
            world,
            "jamais-pret",
            fixture_models("slow_load", delay=3600),
            "Modèle qui ne répond jamais",
        )
        demo = wait_demo(world, launch(world, "jamais-pret").json()["id"], timeout=120)[0]
        assert demo["state"] == "failed", demo
        assert "n'a pas répondu en 8 s" in demo["error"]
        _gone(world, demo["id"])
        assert world.client.get("/healthz").status_code == 200
