"""Waiting for a demonstrator to answer on its Unix socket.

Shared by every runner's caller: the service (before it marks a
demonstrator ready) and the tests. It only speaks HTTP over the socket file
and asks the runner for the status; it never loads the model.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from runners.base import RunnerError, Runner, RunState

HEALTH_URL = "http://demo/health"


def probe(socket_path: Path, *, timeout: float = 2.0) -> bool:
    """Whether the server on ``socket_path`` answers ``GET /health`` with status ok."""
    if not Path(socket_path).exists():
        return False
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(socket_path)), timeout=timeout) as client:
            response = client.get(HEALTH_URL)
        return response.status_code == 200 and response.json().get("status") == "ok"
    except (httpx.HTTPError, ValueError, OSError):
        return False


def wait_until_healthy(
    runner: Runner, demo_id: str, socket_path: Path, *, timeout: float = 60.0, interval: float = 0.2
) -> None:
    """Wait until the demonstrator answers its health check.

    Raises:
        RunnerError: it exited first (the message has the end of its log),
            disappeared, or did not answer within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        if probe(socket_path):
            return
        status = runner.status(demo_id)
        if status.state is RunState.MISSING:
            raise RunnerError(f"Le démonstrateur {demo_id} a disparu avant d'être prêt.")
        if status.state is RunState.EXITED:
            tail = _tail(runner, demo_id)
            reason = " (mémoire épuisée)" if status.oom_killed else ""
            raise RunnerError(
                f"Le démonstrateur {demo_id} s'est arrêté avant d'être prêt (code {status.exit_code}){reason}.",
                details={"exit_code": status.exit_code, "oom_killed": status.oom_killed, "logs": tail},
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
