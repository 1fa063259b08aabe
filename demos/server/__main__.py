"""``python -m demos.server``: load the model, then serve on the Unix socket.

With ``BIBIA_WAIT_FOR_MODEL=1`` (a warm sandbox of the service's pool) it
first imports what loading a model needs, then waits for the service to
place a model in its model directory (``.bibia-ready`` written last), and
only then loads and serves it as usual.

Exit codes: 0 its time to live ran out, 2 bad settings, 3 the model could
not be loaded (the error is in the log, in French, with the exception),
4 the socket could not be prepared, 5 a warm sandbox received no model
within its idle limit, 143 stopped by SIGTERM (after a graceful shutdown
once serving).
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import math
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
from pathlib import Path

EXIT_SETTINGS = 2
EXIT_MODEL = 3
EXIT_SOCKET = 4
EXIT_IDLE = 5
MODEL_POLL_SECONDS = 0.02

logger = logging.getLogger("demos.server")


def main() -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s : %(message)s",
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

    # Loading imports mlflow, pandas, scikit-learn... and creates only
    # long-lived objects: collecting garbage meanwhile is wasted work (~10 % of
    # the load, benchmarks/demos.py). Frozen afterwards, they are never rescanned.
    gc.disable()
    waited = 0.0
    if settings.wait_for_model:
        started = time.monotonic()
        warm_up()
        logger.info(
            "Bac à sable préparé en %.1f s : en attente d'un modèle", time.monotonic() - started
        )
        if not wait_for_model(settings):
            logger.info(
                "Aucun modèle reçu en %d s : arrêt du bac à sable inoccupé",
                settings.pool_idle_seconds,
            )
            return EXIT_IDLE
        waited = time.monotonic() - started
    logger.info("Chargement du modèle depuis %s", settings.model_dir)
    started = time.monotonic()
    try:
        demo = DemoModel.load(settings.model_dir)
    except ModelLoadError as exc:
        logger.error(
            "Échec du chargement du modèle depuis %s : %s",
            settings.model_dir,
            exc,
            exc_info=exc.__cause__,
        )
        return EXIT_MODEL
    finally:
        gc.enable()
    gc.freeze()
    logger.info("Modèle chargé en %.1f s", time.monotonic() - started)

    if settings.port is None:
        try:
            _prepare_socket(settings.socket_path)
        except OSError as exc:
            logger.error("Impossible de préparer le socket %s : %s", settings.socket_path, exc)
            return EXIT_SOCKET

    import uvicorn

    from demos.server.app import create_app

    results = settings.results_dir or Path(tempfile.mkdtemp(prefix="bibia-resultats-"))
    app = create_app(demo, dataclasses.replace(settings, results_dir=results))
    # A Kubernetes pod listens on its own address (BIBIA_PORT), behind its NetworkPolicy.
    where: dict[str, object] = (
        {"uds": str(settings.socket_path)}
        if settings.port is None
        else {"host": "0.0.0.0", "port": settings.port}
    )
    config = uvicorn.Config(
        app,
        **where,  # type: ignore[arg-type]
        log_level="info",
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=3,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    if settings.ttl_seconds > 0:
        # A warm sandbox's time to live counts from its start, waiting included:
        # it then ends when its runner's label says (the service gives it its
        # idle limit on top of a demonstrator's time to live).
        _stop_after(server, max(1.0, settings.ttl_seconds - waited))
    logger.info(
        "Démonstrateur prêt sur %s",
        settings.socket_path if settings.port is None else f"le port {settings.port}",
    )
    try:
        server.run()
    finally:
        if settings.results_dir is None:  # the results go with the server
            shutil.rmtree(results, ignore_errors=True)
    return 0


def warm_up() -> None:
    """Import, before any model is there, what loading and serving one costs.

    ``mlflow.pyfunc`` imports scikit-learn and scipy; the sklearn flavour
    loads skops files, and ``import skops.io`` walks every scikit-learn
    estimator (``all_estimators``): about 2 s of a cold start, paid here
    instead. The app and uvicorn follow; not matplotlib (the page's charts,
    imported at the first page view as on a cold start): it would add about
    60 MiB to every warm sandbox (173 MiB without it, docker stats).
    Nothing here runs a model's code.
    """
    import mlflow.pyfunc
    import mlflow.sklearn  # noqa: F401
    import numpy  # noqa: F401
    import pandas  # noqa: F401

    try:
        import skops.io  # noqa: F401
        from sklearn.utils import all_estimators

        all_estimators()
    except ImportError:  # an image without skops still serves pickled models
        pass
    import uvicorn  # noqa: F401

    import demos.server.app  # noqa: F401


def wait_for_model(settings) -> bool:
    """Wait until the service marks the model directory complete; False after the idle limit.

    The limit is the idle limit, or the time to live when that is shorter.
    """
    limit = settings.pool_idle_seconds
    if settings.ttl_seconds > 0:
        limit = min(limit, settings.ttl_seconds)
    deadline = time.monotonic() + limit
    while not _exists(settings.ready_marker):
        if time.monotonic() >= deadline:
            return False
        time.sleep(MODEL_POLL_SECONDS)
    return True


def _exists(path) -> bool:
    try:
        return path.exists()
    except OSError:  # the service is still setting the directory's permissions
        return False


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
    cpus = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
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
