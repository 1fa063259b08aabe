"""An S3 object store, as the artifact cache reads it: one object streamed to disk, and the store's errors.

MLflow's S3 artifact repository lists a version's files; reading them is
done here, with boto3's ``get_object`` read in chunks of
:data:`CHUNK_BYTES` straight into the file (MLflow's ``download_file`` runs
ten ranged reads of 8 MB at once and queues their buffers: tens of MB in
memory for a large file). The endpoint and the credentials are MLflow's and
boto3's own settings (``MLFLOW_S3_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``...).

MLflow lets boto3's errors through (a store that does not answer is
botocore's ``EndpointConnectionError``, a failed upload boto3's
``S3UploadFailedError``), and they are no ``OSError``: :data:`STORE_ERRORS`
names them for :func:`registry.mlflow_client.translated`. This is the one
module of bibia that imports boto3 or botocore.
"""

from __future__ import annotations

import os
import posixpath
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3  # type: ignore[import-untyped]
from boto3.exceptions import Boto3Error  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

#: What reading or writing an S3 artifact store can raise when the store fails (never the caller's fault).
STORE_ERRORS: tuple[type[Exception], ...] = (Boto3Error, BotoCoreError, ClientError, OSError)

#: How much of an object is in memory at once while it is copied to disk.
CHUNK_BYTES = 1 << 20

_clients: dict[str | None, Any] = {}
_lock = threading.Lock()


def is_s3(uri: str) -> bool:
    """Whether ``uri`` is in an S3 store (``s3://bucket/prefix``)."""
    return uri.startswith("s3://")


def _client() -> Any:
    """One client per endpoint (boto3's clients are thread-safe; creating one is not)."""
    endpoint = os.environ.get("MLFLOW_S3_ENDPOINT_URL") or None
    with _lock:
        if endpoint not in _clients:
            _clients[endpoint] = boto3.client(
                "s3",
                endpoint_url=endpoint,
                config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3}),
            )
        return _clients[endpoint]


def download(root_uri: str, path: str, target: Path) -> None:
    """The object ``path`` under ``root_uri`` (``s3://bucket/prefix``) into a new file ``target``, chunk by chunk.

    ``path`` must already be checked (a relative, clean path): it is joined to the prefix as is.
    """
    parsed = urlparse(root_uri)
    key = posixpath.join(parsed.path.lstrip("/"), path)
    body = _client().get_object(Bucket=parsed.netloc, Key=key)["Body"]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("xb") as out:
            for chunk in body.iter_chunks(CHUNK_BYTES):
                out.write(chunk)
    finally:
        body.close()
