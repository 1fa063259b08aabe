"""What the checked socket costs: a request over the sandbox transport against plain httpx over the same socket.

Run as root (the socket is chowned to the sandbox uid, as a sandbox's is):

    .venv/bin/python benchmarks/sockets.py [--requests 3000]

One HTTP server (uvicorn, a one-route ASGI app) on a Unix socket. Measured,
interleaved round by round so that a shared machine's load falls on all
alike, each over ``--requests`` sequential GETs:

- baseline: ``httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=path))``
  (what the proxy did before: it followed whatever the path pointed to);
- pooled: ``AsyncSandboxTransport`` plus ``check_socket`` before each request,
  exactly what the proxy does now (keep-alive connections reused);
- new connection each time, plain and checked: a fresh client per request,
  the worst case (the checked one pays the O_PATH open, fstat and /proc
  connect on top of a new connection).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runners.base import SANDBOX_UID, SOCKET_NAME
from runners.sockets import AsyncSandboxTransport, check_socket


async def app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"status": "ok"}'})


def serve(path: Path) -> None:
    import uvicorn

    config = uvicorn.Config(app, uds=str(path), log_level="warning", lifespan="off")
    uvicorn.Server(config).run()


async def measure(socket_dir: Path, owner: int, requests: int) -> dict[str, list[float]]:
    path = socket_dir / SOCKET_NAME
    samples: dict[str, list[float]] = {
        "baseline (plain uds)": [],
        "checked, pooled": [],
        "plain, new connection": [],
        "checked, new connection": [],
    }
    plain = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(path)))
    checked = httpx.AsyncClient(transport=AsyncSandboxTransport(socket_dir, owner))
    for _ in range(requests):
        start = time.perf_counter()
        await plain.get("http://demo/health")
        samples["baseline (plain uds)"].append(time.perf_counter() - start)

        start = time.perf_counter()
        check_socket(socket_dir, owner)
        await checked.get("http://demo/health")
        samples["checked, pooled"].append(time.perf_counter() - start)

        start = time.perf_counter()
        async with httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(path), verify=False)
        ) as fresh:
            await fresh.get("http://demo/health")
        samples["plain, new connection"].append(time.perf_counter() - start)

        start = time.perf_counter()
        async with httpx.AsyncClient(transport=AsyncSandboxTransport(socket_dir, owner)) as fresh:
            await fresh.get("http://demo/health")
        samples["checked, new connection"].append(time.perf_counter() - start)
    await plain.aclose()
    await checked.aclose()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    socket_dir = Path(tempfile.mkdtemp(prefix="bench-sock-"))
    path = socket_dir / SOCKET_NAME
    threading.Thread(target=serve, args=(path,), daemon=True).start()
    while not path.exists():
        time.sleep(0.05)
    owner = SANDBOX_UID
    try:
        os.chown(path, SANDBOX_UID, -1)
    except PermissionError:
        owner = os.getuid()  # not root: the socket stays ours, the check is the same
    samples = asyncio.run(measure(socket_dir, owner, args.requests))
    base = statistics.median(samples["baseline (plain uds)"])
    print(f"{args.requests} sequential GET /health per client, interleaved")
    print(f"{'client':<28}{'median µs':>12}{'p95 µs':>10}{'÷ baseline':>12}")
    for name, values in samples.items():
        values.sort()
        median, p95 = statistics.median(values), values[int(0.95 * len(values))]
        print(f"{name:<28}{median * 1e6:>12.0f}{p95 * 1e6:>10.0f}{median / base:>12.2f}")


if __name__ == "__main__":
    main()
