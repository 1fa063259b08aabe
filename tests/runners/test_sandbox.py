"""The Docker sandbox holds: its policy as docker reports it, and models that
try to escape (write outside /tmp, reach the network, fork without end,
eat memory) are contained while the host is unaffected.

No test aims at any address but 127.0.0.1 on this machine.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time

import pytest

from runners.base import RunState, RunStatus
from runners.health import wait_until_healthy

pytestmark = [pytest.mark.docker, pytest.mark.timeout(240)]

MiB = 1024 * 1024


def _inspect(container_id: str) -> dict:
    out = subprocess.run(
        ["docker", "inspect", container_id], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)[0]


def _wait_exited(runner, demo_id: str, timeout: float = 120.0) -> RunStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = runner.status(demo_id)
        if status.state is RunState.EXITED:
            return status
        time.sleep(0.3)
    pytest.fail(f"{demo_id} was not contained within {timeout}s; logs:\n{runner.logs(demo_id)}")


def test_docker_reports_the_whole_sandbox_policy(docker_runner, make_spec, demo_image) -> None:
    spec = make_spec(
        "ok",
        image=demo_image,
        memory_bytes=640 * MiB,
        cpus=0.5,
        pids_limit=96,
        tmpfs_bytes=32 * MiB,
    )
    info = docker_runner.start(spec)
    wait_until_healthy(docker_runner, spec.demo_id, spec.socket_dir, timeout=90)
    attrs = _inspect(info.runner_id)
    host = attrs["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["Memory"] == 640 * MiB and host["MemorySwap"] == 640 * MiB
    assert host["NanoCpus"] == 500_000_000
    assert host["PidsLimit"] == 96
    assert host["NetworkMode"] == "none"
    assert host["Privileged"] is False
    assert "size=33554432" in host["Tmpfs"]["/tmp"]
    assert attrs["Config"]["User"] == "10001:10001"
    mounts = {m["Destination"]: m for m in attrs["Mounts"]}
    assert mounts["/model"]["RW"] is False and mounts["/run/bibia"]["RW"] is True
    assert attrs["Config"]["Labels"]["bibia.demo_id"] == spec.demo_id
    # Inside: only loopback, a read-only root, and not root.
    inside = subprocess.run(
        [
            "docker",
            "exec",
            info.runner_id,
            "python",
            "-c",
            "import os, socket; print(sorted(n for _, n in socket.if_nameindex())); print(os.getuid());"
            "open('/x', 'w')",
        ],
        capture_output=True,
        text=True,
    )
    assert inside.stdout.splitlines() == ["['lo']", "10001"]
    assert "Read-only file system" in inside.stderr


def test_writes_outside_tmp_are_refused(docker_runner, make_spec, demo_image) -> None:
    spec = make_spec("escape_fs", image=demo_image)
    docker_runner.start(spec)
    status = _wait_exited(docker_runner, spec.demo_id)
    logs = docker_runner.logs(spec.demo_id)
    assert "BIBIA-ESCAPE escape_fs blocked" in logs, logs
    assert "SUCCEEDED" not in logs
    assert status.exit_code == 3
    assert not (spec.model_dir / "bibia-escape").exists()


def test_no_network_but_loopback_and_the_host_is_unreachable(
    docker_runner, make_spec, demo_image, host_listener
) -> None:
    port, connections = host_listener
    spec = make_spec("escape_net", image=demo_image, model_params={"port": port})
    docker_runner.start(spec)
    status = _wait_exited(docker_runner, spec.demo_id)
    logs = docker_runner.logs(spec.demo_id)
    assert "BIBIA-ESCAPE escape_net blocked: interfaces=['lo']" in logs, logs
    assert status.exit_code == 3
    assert connections == []
    # The listener itself works: the host can reach it, the sandbox could not.
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    deadline = time.monotonic() + 2
    while not connections and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(connections) == 1


def test_fork_bomb_stops_at_the_pid_limit(docker_runner, make_spec, demo_image) -> None:
    spec = make_spec("fork_bomb", image=demo_image, pids_limit=48)
    docker_runner.start(spec)
    status = _wait_exited(docker_runner, spec.demo_id)
    logs = docker_runner.logs(spec.demo_id)
    assert "BIBIA-ESCAPE fork_bomb blocked after" in logs, logs
    children = int(logs.split("blocked after ")[1].split()[0])
    assert children < 48
    assert status.exit_code != 0
    assert subprocess.run(["true"]).returncode == 0  # the host still forks


def test_memory_hog_is_killed_or_refused_at_the_memory_limit(
    docker_runner, make_spec, demo_image
) -> None:
    spec = make_spec(
        "memory_hog", image=demo_image, memory_bytes=384 * MiB, model_params={"max_bytes": 2 << 30}
    )
    docker_runner.start(spec)
    status = _wait_exited(docker_runner, spec.demo_id)
    logs = docker_runner.logs(spec.demo_id)
    assert "SUCCEEDED" not in logs
    assert status.exit_code != 0
    assert status.oom_killed or "BIBIA-ESCAPE memory_hog blocked" in logs, (status, logs)
