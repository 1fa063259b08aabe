"""``python -m demos.server`` as a real process, on a real Unix socket."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bs-", dir="/tmp"))  # Unix socket paths are short
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _server(model_dir: Path, socket_path: Path, **env: str) -> subprocess.Popen:
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO),
        "HOME": str(socket_path.parent),
        "BIBIA_MODEL_DIR": str(model_dir),
        "BIBIA_SOCKET": str(socket_path),
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "demos.server"],
        env=environment,
        cwd=str(socket_path.parent),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for_health(
    process: subprocess.Popen, socket_path: Path, timeout: float = 60
) -> httpx.Client:
    client = httpx.Client(
        transport=httpx.HTTPTransport(uds=str(socket_path)), base_url="http://demo", timeout=10
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{process.stdout.read()}")
        if socket_path.exists():
            try:
                if client.get("/health").json().get("status") == "ok":
                    return client
            except httpx.TransportError:
                pass
        time.sleep(0.1)
    pytest.fail("the server did not become healthy")


def test_serves_pages_and_predictions_on_its_unix_socket_only(fixture_model, socket_dir) -> None:
    socket_path = socket_dir / "demo.sock"
    socket_path.touch()  # a stale file is not a socket: the server must refuse to delete it
    stale = _server(fixture_model("ok"), socket_path)
    assert stale.wait(timeout=60) == 4
    socket_path.unlink()

    process = _server(fixture_model("ok"), socket_path)
    try:
        client = _wait_for_health(process, socket_path)
        assert oct(socket_path.stat().st_mode & 0o777) == "0o666"
        answer = client.post(
            "/predict", json={"dataframe_split": {"columns": ["x"], "data": [[4]]}}
        )
        assert answer.json() == {"predictions": [{"y": 8.0}]}
        sent = client.post("/upload", files={"file": ("d.csv", b"x\n3\n", "text/csv")})
        assert sent.status_code == 303 and sent.headers["location"].startswith("resultats/")
        page = client.get(f"/{sent.headers['location']}")
        assert page.status_code == 200 and "Prédictions sur vos données" in page.text
        listening = subprocess.run(["ss", "-lntpH"], capture_output=True, text=True).stdout
        assert f"pid={process.pid}," not in listening  # no TCP port
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 143  # stopped by SIGTERM, after a graceful shutdown
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = process.stdout.read()
    assert "Chargement du modèle depuis" in output and "Démonstrateur prêt" in output
    assert "Finished server process" in output


def test_a_model_that_fails_to_load_exits_3_with_the_error(fixture_model, socket_dir) -> None:
    process = _server(fixture_model("raises_on_load"), socket_dir / "demo.sock")
    assert process.wait(timeout=60) == 3
    output = process.stdout.read()
    assert "Échec du chargement du modèle" in output
    assert "RuntimeError: fixture raises_on_load: échec volontaire au chargement" in output
    assert not (socket_dir / "demo.sock").exists()


def test_a_directory_without_a_model_exits_3(socket_dir) -> None:
    process = _server(socket_dir, socket_dir / "demo.sock")
    assert process.wait(timeout=60) == 3
    assert "aucun fichier MLmodel" in process.stdout.read()


def test_bad_settings_exit_2(fixture_model, socket_dir) -> None:
    process = _server(
        fixture_model("ok"), socket_dir / "demo.sock", BIBIA_MAX_UPLOAD_BYTES="beaucoup"
    )
    assert process.wait(timeout=60) == 2
    assert "BIBIA_MAX_UPLOAD_BYTES doit être un nombre entier positif" in process.stdout.read()


def test_the_server_imports_nothing_of_the_service() -> None:
    code = (
        "import sys, demos.server.app, demos.server.__main__\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & {'bibia', 'registry', 'runners', 'docker'})\n"
        "print(bad)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.stdout.strip() == "[]", result.stderr
