"""``python -m demos.server``: load the model, then serve on the Unix socket.

Exit codes: 0 its time to live ran out, 2 bad settings, 3 the model could
not be loaded (the error is in the log, in French, with the exception),
4 the socket could not be prepared, 143 stopped by SIGTERM (after a
graceful shutdown once serving).
"""

from __future__ import annotations

import gc
import logging
import math
import os
import signal
import stat
import sys
import threading
import time

EXIT_SETTINGS = 2
EXIT_MODEL = 3
EXIT_SOCKET = 4

logger = logging.getLogger("demos.server")


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s : %(message)s"
    )
    # As PID 1 in a container, SIGTERM is ignored unless handled: stop at once
    # while loading; uvicorn installs its own graceful handler once serving.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(143))
    # The sandbox is exactly where untrusted (pickled) models may be loaded.
    os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    _limit_native_threads()

    from demos.server.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        logger.error("Configuration invalide : %s", exc)
        return EXIT_SETTINGS

    from demos.server.model import DemoModel, ModelLoadError

    logger.info("Chargement du modèle depuis %s", settings.model_dir)
    started = time.monotonic()
    # Loading imports mlflow, pandas, scikit-learn... and creates only
    # long-lived objects: collecting garbage meanwhile is wasted work (~10 % of
    # the load, benchmarks/demos.py). Frozen afterwards, they are never rescanned.
    gc.disable()
    try:
        demo = DemoModel.load(settings.model_dir)
    except ModelLoadError as exc:
        logger.error(
            "Échec du chargement du modèle depuis %s : %s", settings.model_dir, exc, exc_info=exc.__cause__
        )
        return EXIT_MODEL
    finally:
        gc.enable()
    gc.freeze()
    logger.info("Modèle chargé en %.1f s", time.monotonic() - started)

    try:
        _prepare_socket(settings.socket_path)
    except OSError as exc:
        logger.error("Impossible de préparer le socket %s : %s", settings.socket_path, exc)
        return EXIT_SOCKET

    import uvicorn

    from demos.server.app import create_app

    app = create_app(demo, settings)
    config = uvicorn.Config(
        app, uds=str(settings.socket_path), log_level="info", proxy_headers=False,
        server_header=False, timeout_graceful_shutdown=3, lifespan="off",
    )
    server = uvicorn.Server(config)
    if settings.ttl_seconds > 0:
        _stop_after(server, settings.ttl_seconds)
    logger.info("Démonstrateur prêt sur %s", settings.socket_path)
    server.run()
    return 0


def cpu_budget() -> int | None:
    """Whole CPUs this process may use: its CPU quota (cgroup v2 or v1) and affinity, or None if unlimited."""
    quota = None
    try:
        limit, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]
        if limit != "max":
            quota = int(limit) / int(period)
    except (OSError, ValueError):
        try:
            limit = int(open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read())
            period = int(open("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read())
            if limit > 0 and period > 0:
                quota = limit / period
        except (OSError, ValueError):
            pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if quota is None and cpus >= (os.cpu_count() or 1):
        return None
    return max(1, min(cpus, math.ceil(quota) if quota is not None else cpus))


def _limit_native_threads() -> None:
    """Size OpenMP/BLAS thread pools to the sandbox's CPU quota, before numpy loads.

    They size themselves from the host's cores: with a one-CPU quota, a
    single-row prediction of a tree ensemble otherwise pays an OpenMP barrier
    per tree across threads that the quota throttles (measured: 2 to 4 times
    slower under load, benchmarks/demos.py). An explicit setting wins.
    """
    budget = cpu_budget()
    if budget is None:
        return
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, str(budget))


def _prepare_socket(path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(f"{path} existe et n'est pas un socket")
    path.unlink()  # a stale socket from a previous run


def _stop_after(server, seconds: float) -> None:
    def expire() -> None:
        logger.info("Durée de vie écoulée (%.0f s) : arrêt du démonstrateur", seconds)
        server.should_exit = True

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


if __name__ == "__main__":
    sys.exit(main())
