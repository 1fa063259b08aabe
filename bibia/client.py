"""A Python client of the bibia service, for experts, agents and scripts.

>>> client = BibiaClient("http://127.0.0.1:8000", token="bibia_...")   # doctest: +SKIP
>>> client.register("eau-batiments", estimator, card="fiche.yaml", input_example=X.head(), alias="production")  # doctest: +SKIP

Errors come back as the same :class:`domain.errors.BibiaError` tree the
service raises, with the service's French message.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import httpx
import yaml

from bibia.errors import class_for_status
from domain import errors
from registry.refs import ModelRef


def raise_for_error(response: httpx.Response) -> None:
    """Raise the error an error answer of the service carries, as the service raised it.

    The class comes from the body's wire code (``execution_indisponible`` is
    :class:`~domain.errors.RunnerUnavailable`); an answer without a code this
    client knows (another version of the service, a reverse proxy's own page)
    gets one from its status (:func:`bibia.errors.class_for_status`).
    """
    if response.is_success:
        return
    try:
        parsed = response.json()
    except ValueError:
        parsed = None
    body: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
    code = body.get("error")
    known = errors.error_class(code) if isinstance(code, str) else None
    cls = known or class_for_status(response.status_code)
    raise cls(
        body.get("message") or f"le service a répondu {response.status_code}",
        details=body.get("details"),
    )


class BibiaClient:
    """Talks to a bibia service over HTTP.

    Args:
        url: base URL of the service (default ``$BIBIA_URL`` or http://127.0.0.1:8000).
        token: API token (default ``$BIBIA_TOKEN``); anonymous without one.
        timeout: seconds per request.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 300.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = (url or os.environ.get("BIBIA_URL") or "http://127.0.0.1:8000").rstrip("/")
        self.token = token if token is not None else os.environ.get("BIBIA_TOKEN")
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BibiaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise errors.RegistryUnavailable(
                f"service bibia injoignable à {self.url} : {exc}"
            ) from exc
        raise_for_error(response)
        return response

    def _object(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """The JSON object the service answers ``method path`` with."""
        body = self._request(method, path, **kwargs).json()
        if not isinstance(body, dict):
            raise errors.BibiaError(f"réponse inattendue du service à {method} {path}")
        return body

    def _objects(self, method: str, path: str, **kwargs: Any) -> list[dict[str, Any]]:
        """The JSON list of objects the service answers ``method path`` with."""
        body = self._request(method, path, **kwargs).json()
        if not isinstance(body, list):
            raise errors.BibiaError(f"réponse inattendue du service à {method} {path}")
        return body

    # ----------------------------------------------------------- catalogue

    def models(self, **filters: Any) -> dict[str, Any]:
        """``GET /api/v1/models`` with ``q``, ``theme``, ``owner``, ``territory``, ``status``, ``task``, ``page``, ``per_page``."""
        params = {k: v for k, v in filters.items() if v is not None}
        return self._object("GET", "/api/v1/models", params=params)

    def model(self, name: str) -> dict[str, Any]:
        return self._object("GET", f"/api/v1/models/{ModelRef.parse(name).name}")

    def projects(self, **filters: Any) -> dict[str, Any]:
        params = {k: v for k, v in filters.items() if v is not None}
        return self._object("GET", "/api/v1/projects", params=params)

    def project(self, slug: str) -> dict[str, Any]:
        return self._object("GET", f"/api/v1/projects/{slug}")

    # -------------------------------------------------------------- writes

    def register(
        self,
        name: str,
        model: Any,
        card: dict[str, Any] | str | Path,
        *,
        input_example: Any = None,
        alias: str | None = None,
    ) -> dict[str, Any]:
        """Register ``model`` with its ``card`` as a new version of ``name``, in one call.

        Args:
            name: registered model name (``cantine-nantes``).
            model: a scikit-learn estimator or pipeline (then ``input_example`` is required
                to infer the signature), an MLflow model URI (``runs:/…``, ``models:/…``,
                resolved with your own ``MLFLOW_TRACKING_URI``), or a local MLflow model directory.
            card: the card as a dict, or the path of a YAML/JSON file.
            input_example: a sample of inputs (DataFrame) for estimators.
            alias: an alias to point at the new version.

        Returns:
            The new version, as the service describes it.

        Raises:
            InvalidCard: the card does not validate (``details`` lists every problem).
            Forbidden: you are not an expert of the owning collectivité.
        """
        from registry.packaging import package_model  # imports MLflow: only when registering

        card_bytes = _card_bytes(card)
        with tempfile.TemporaryDirectory(prefix="bibia-register-") as tmp:
            model_dir = package_model(model, Path(tmp) / "model", input_example=input_example)
            archive = _tar(model_dir)
            files = {
                "card": ("fiche.yaml", card_bytes, "application/yaml"),
                "model": ("model.tar.gz", archive, "application/gzip"),
            }
            data = {"alias": alias} if alias else {}
            return self._object("POST", f"/api/v1/models/{name}/versions", files=files, data=data)

    def set_alias(self, name: str, alias: str, version: int) -> dict[str, Any]:
        return self._object(
            "PUT", f"/api/v1/models/{name}/aliases/{alias}", json={"version": int(version)}
        )

    def delete_alias(self, name: str, alias: str) -> None:
        self._request("DELETE", f"/api/v1/models/{name}/aliases/{alias}")

    def put_project(self, project: dict[str, Any]) -> dict[str, Any]:
        return self._object("PUT", f"/api/v1/projects/{project['slug']}", json=project)

    def answer_invitation(self, slug: str, *, accept: bool) -> dict[str, Any]:
        """Accept (or decline) the invitation of the caller's organisation to co-own project ``slug``."""
        verb = "accept" if accept else "decline"
        return self._object("POST", f"/api/v1/projects/{slug}/invitations/{verb}")

    # -------------------------------------------------------- demonstrators

    def launch_demo(self, ref: str, *, ttl_minutes: int | None = None) -> dict[str, Any]:
        """Launch a demonstrator of ``NAME``, ``NAME@ALIAS`` or ``NAME/VERSION`` (returns at once)."""
        parsed = ModelRef.parse(ref)
        body: dict[str, Any] = {"model": parsed.name}
        if parsed.alias:
            body["alias"] = parsed.alias
        if parsed.version:
            body["version"] = parsed.version
        if ttl_minutes:
            body["ttl_minutes"] = ttl_minutes
        return self._object("POST", "/api/v1/demos", json=body)

    def demo(self, demo_id: str) -> dict[str, Any]:
        return self._object("GET", f"/api/v1/demos/{demo_id}")

    def demos(self, *, include_finished: bool = False) -> list[dict[str, Any]]:
        return self._objects("GET", "/api/v1/demos", params={"all": str(include_finished).lower()})

    def stop_demo(self, demo_id: str) -> dict[str, Any]:
        return self._object("DELETE", f"/api/v1/demos/{demo_id}")

    def demo_logs(self, demo_id: str, tail: int = 200) -> str:
        return self._request("GET", f"/api/v1/demos/{demo_id}/logs", params={"tail": tail}).text

    def wait_demo(
        self, demo_id: str, *, timeout: float = 180.0, on_state: Any = None
    ) -> dict[str, Any]:
        """Poll until the demonstrator is ready or finished; returns its last state."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            demo = self.demo(demo_id)
            if on_state is not None:
                on_state(demo)
            if demo["state"] not in {"pending", "starting"} or time.monotonic() > deadline:
                return demo
            time.sleep(0.5)

    def demo_predict(self, demo_id: str, records: list[dict[str, Any]]) -> dict[str, Any]:
        """JSON predictions of a ready demonstrator (MLflow scoring-server payload)."""
        return self._object(
            "POST", f"/demos/{demo_id}/predict", json={"dataframe_records": records}
        )

    def whoami(self) -> dict[str, Any]:
        return self._object("GET", "/api/v1/me")


def _card_bytes(card: dict[str, Any] | str | Path) -> bytes:
    if isinstance(card, dict):
        return yaml.safe_dump(card, allow_unicode=True, sort_keys=False).encode("utf-8")
    path = Path(card)
    if not path.is_file():
        raise errors.InvalidInput(f"fiche introuvable : {path}")
    return path.read_bytes()


def _tar(model_dir: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        archive.add(model_dir, arcname="model")
    return buf.getvalue()
