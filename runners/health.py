"""Whether a demonstrator answers on its Unix socket: the one health probe.

Shared by every runner's caller: the service (:func:`poll`, while it waits
before marking a demonstrator ready) and the tests (:func:`wait_until_healthy`). It only speaks HTTP over
the socket, connecting through :mod:`runners.sockets` (never following what
the sandbox put in its socket directory), and asks the runner for the
status; it never loads the model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from domain.errors import RunnerError
from runners.base import Runner, RunState, RunStatus
from runners.sockets import SandboxTransport

HEALTH_URL = "http://demo/health"


def probe(socket_dir: Path, owner_uid: int, *, timeout: float = 2.0) -> bool:
    """Whether the server in ``socket_dir`` answers ``GET /health`` with status ok.

    Raises:
        SandboxTampered: the socket was replaced (a symlink, a file, another
            user's socket): the caller fails the demonstrator.
    """
    try:
        with httpx.Client(
            transport=SandboxTransport(socket_dir, owner_uid), timeout=timeout
        ) as client:
            response = client.get(HEALTH_URL)
        return response.status_code == 200 and response.json().get("status") == "ok"
    except (httpx.HTTPError, ValueError, OSError, AttributeError):
        # AttributeError: a JSON body that is not an object
        return False


@dataclass(frozen=True)
class Health:
    """One look at a demonstrator: ready, or ended (its status), or neither yet."""

    ready: bool
    ended: RunStatus | None = None  # set when the runner says it no longer runs


def poll(runner: Runner, demo_id: str, socket_dir: Path, *, timeout: float = 2.0) -> Health:
    """The runner's status, then (while it runs) the health check over the socket.

    A runner that cannot tell the status now (its engine hiccuped) does not
    end the demonstrator: the socket still answers for it.

    Raises:
        SandboxTampered: the socket was replaced.
    """
    try:
        status = runner.status(demo_id)
    except RunnerError:
        status = None
    if status is not None and status.state is not RunState.RUNNING:
        return Health(ready=False, ended=status)
    return Health(ready=probe(socket_dir, runner.socket_owner, timeout=timeout))


def wait_until_healthy(
    runner: Runner, demo_id: str, socket_dir: Path, *, timeout: float = 60.0, interval: float = 0.2
) -> None:
    """Wait until the demonstrator answers its health check.

    Raises:
        SandboxTampered: its socket was replaced.
        RunnerError: it exited first (the message has the end of its log),
            disappeared, or did not answer within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        health = poll(runner, demo_id, socket_dir)
        if health.ready:
            return
        status = health.ended
        if status is not None and status.state is RunState.MISSING:
            raise RunnerError(f"Le démonstrateur {demo_id} a disparu avant d'être prêt.")
        if status is not None:
            tail = _tail(runner, demo_id)
            reason = " (mémoire épuisée)" if status.oom_killed else ""
            raise RunnerError(
                f"Le démonstrateur {demo_id} s'est arrêté avant d'être prêt (code {status.exit_code}){reason}.",
                details={
                    "exit_code": status.exit_code,
                    "oom_killed": status.oom_killed,
                    "logs": tail,
                },
            )
        if time.monotonic() >= deadline:
            raise RunnerError(
                f"Le démonstrateur {demo_id} n'a pas répondu dans les {timeout:.0f} s.",
                details={"logs": _tail(runner, demo_id)},
            )
        time.sleep(interval)


def _tail(runner: Runner, demo_id: str) -> str:
    try:
        return runner.logs(demo_id, tail=40)
    except RunnerError:
        return ""
