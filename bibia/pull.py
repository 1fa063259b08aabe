"""Pull a model version's files through the service's MLflow-compatible gateway, without MLflow.

>>> pull("http://127.0.0.1:8000", token, "cantine-nantes@production", Path("cantine"))  # doctest: +SKIP
PosixPath('cantine')

The gateway (:mod:`bibia.gateway`) is reserved to experts; this module
speaks its REST routes with httpx, so pulling needs neither MLflow nor
scikit-learn, and nothing is ever loaded: it only writes files. Files land
in a hidden temporary directory beside ``out_dir`` that is renamed into
place at the end, so a failed pull leaves nothing half-written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bibia.client import raise_for_error
from domain import errors
from registry.refs import ModelRef

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
ARTIFACTS_SCHEME = "mlflow-artifacts:/"
MAX_DEPTH = 32


@dataclass(frozen=True)
class _File:
    path: str  # relative to the version's root, "/"-separated
    size: int | None


def pull(
    url: str,
    token: str | None,
    ref: str,
    out_dir: Path,
    *,
    progress: bool = True,
    transport: httpx.BaseTransport | None = None,
) -> Path:
    """Download the files of the version ``ref`` points at into ``out_dir``.

    Args:
        url: base URL of the bibia service (``http://127.0.0.1:8000``).
        token: an expert's API token (the gateway is reserved to experts); None for anonymous.
        ref: ``NAME@ALIAS``, ``NAME/VERSION``, or ``NAME`` (its newest version).
        out_dir: the directory to create; it must not exist, or be empty. It receives the
            MLflow model directory itself (``MLmodel``, ``bibia/card.json``, ...).
        progress: show a progress bar on stderr.
        transport: an httpx transport to use instead of the network (tests, proxies).

    Returns:
        ``out_dir``, complete.

    Raises:
        InvalidInput: a malformed ``ref``.
        Unauthorized: no token, or an unknown, expired or revoked one.
        Forbidden: the token is not an expert's.
        NotFound: unknown model, alias or version.
        Conflict: ``out_dir`` exists and is not empty.
        RegistryUnavailable: the service cannot be reached, or the download broke off.
    """
    model_ref = ModelRef.parse(ref)
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise errors.Conflict(
            f"le dossier de destination {out_dir} existe déjà et n'est pas vide ; choisissez-en un autre"
        )
    base = url.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = httpx.Timeout(30.0, read=300.0)
    with httpx.Client(base_url=base, headers=headers, timeout=timeout, transport=transport) as http:
        gateway = _Gateway(http, base, str(model_ref))
        version = gateway.resolve(model_ref)
        root = gateway.download_root(model_ref.name, version)
        files = gateway.walk(root)
        if not files:
            raise errors.NotFound(f"la version {version} de « {model_ref.name} » n'a aucun fichier")
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partiel-", dir=out_dir.parent))
        try:
            with _bar(
                progress, sum(f.size or 0 for f in files), f"{model_ref.name} v{version}"
            ) as advance:
                for item in files:
                    gateway.download(root, item, tmp, advance)
            if out_dir.exists():
                out_dir.rmdir()  # empty, checked above; os.replace cannot replace a directory everywhere
            os.replace(tmp, out_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return out_dir


class _Gateway:
    """The few gateway calls a pull needs, with errors turned into bibia errors."""

    def __init__(self, http: httpx.Client, base: str, what: str) -> None:
        self.http = http
        self.base = base
        self.what = what

    def _get(self, route: str, **params: Any) -> dict[str, Any]:
        try:
            response = self.http.get(route, params=params)
        except httpx.HTTPError as exc:
            raise errors.RegistryUnavailable(
                f"service bibia injoignable à {self.base} : {exc}"
            ) from exc
        self._check(response)
        try:
            body: dict[str, Any] = response.json()
            return body
        except ValueError as exc:
            raise errors.RegistryUnavailable(
                f"réponse illisible du service pour {route} (est-ce bien bibia ?)"
            ) from exc

    def _check(self, response: httpx.Response) -> None:
        if response.is_success:
            return
        if response.status_code == 404 and "error_code" not in response.text:
            raise errors.NotFound(
                f"{self.base} ne sert pas la passerelle MLflow de bibia ({response.request.url.path}) : "
                "vérifiez l'adresse du service"
            )
        try:
            raise_for_error(response)
        except (errors.Unauthorized, errors.Forbidden) as exc:
            raise type(exc)(f"récupération de « {self.what} » refusée : {exc.message}") from None

    def resolve(self, ref: ModelRef) -> int:
        if ref.version is not None:
            return ref.version
        if ref.alias is not None:
            body = self._get(f"{API}/registered-models/alias", name=ref.name, alias=ref.alias)
            return int(body["model_version"]["version"])
        body = self._get(f"{API}/registered-models/get", name=ref.name)
        versions = [int(v["version"]) for v in body["registered_model"].get("latest_versions", [])]
        if not versions:
            raise errors.NotFound(f"le modèle « {ref.name} » n'a encore aucune version")
        return max(versions)

    def download_root(self, name: str, version: int) -> str:
        uri: str = self._get(
            f"{API}/model-versions/get-download-uri", name=name, version=str(version)
        )["artifact_uri"]
        if not uri.startswith(ARTIFACTS_SCHEME):
            raise errors.RegistryUnavailable(
                f"URI de téléchargement inattendue : {uri!r} (attendu {ARTIFACTS_SCHEME}...)"
            )
        return uri[len(ARTIFACTS_SCHEME) :].strip("/")

    def walk(self, root: str, rel: str = "", depth: int = 0) -> list[_File]:
        """Every file under ``root`` (recursively), as paths relative to it."""
        if depth > MAX_DEPTH:
            raise errors.RegistryUnavailable(f"arborescence d'artefacts trop profonde sous {root}")
        listing = self._get(ARTIFACTS, path=f"{root}/{rel}".rstrip("/"))
        found: list[_File] = []
        for entry in listing.get("files", []):
            name = _safe_name(str(entry.get("path", "")))
            path = f"{rel}/{name}" if rel else name
            if entry.get("is_dir"):
                found.extend(self.walk(root, path, depth + 1))
            else:
                size = entry.get("file_size")
                found.append(_File(path=path, size=int(size) if size is not None else None))
        return found

    def download(self, root: str, item: _File, into: Path, advance: Any) -> None:
        target = into.joinpath(*item.path.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        try:
            with self.http.stream("GET", f"{ARTIFACTS}/{root}/{item.path}") as response:
                if not response.is_success:
                    response.read()
                    self._check(response)
                with open(target, "wb") as out:
                    for chunk in response.iter_bytes(1024 * 1024):
                        out.write(chunk)
                        written += len(chunk)
                        advance(len(chunk))
        except httpx.HTTPError as exc:
            raise errors.RegistryUnavailable(
                f"téléchargement de {item.path} interrompu : {exc}"
            ) from exc
        if item.size is not None and written != item.size:
            raise errors.RegistryUnavailable(
                f"téléchargement incomplet de {item.path} : {written} octets sur {item.size}"
            )


def _safe_name(name: str) -> str:
    """One path segment as the service lists it; refuse anything that could leave the target."""
    if name in {"", ".", ".."} or "/" in name or "\\" in name or "\0" in name:
        raise errors.RegistryUnavailable(
            f"nom d'artefact refusé dans la réponse du service : {name!r}"
        )
    return name


@contextmanager
def _bar(show: bool, total: int, label: str) -> Iterator[Any]:
    """A rich progress bar on stderr (or nothing); yields ``advance(n_bytes)``."""
    if not show:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(f"Téléchargement de {label}", total=total or None)
        yield lambda n: bar.advance(task, n)
