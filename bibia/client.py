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

from domain import errors
from registry.refs import ModelRef

_BY_STATUS: dict[int, type[errors.BibiaError]] = {
    400: errors.InvalidInput,
    401: errors.Unauthorized,
    403: errors.Forbidden,
    404: errors.NotFound,
    409: errors.Conflict,
    413: errors.PayloadTooLarge,
    422: errors.InvalidCard,
    429: errors.QuotaExceeded,
    502: errors.RunnerError,
    503: errors.RegistryUnavailable,
}


def raise_for_error(response: httpx.Response) -> None:
    """Turn an error answer of the service into the matching BibiaError."""
    if response.is_success:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    cls = _BY_STATUS.get(response.status_code, errors.BibiaError)
    if (
        response.status_code == 422
        and isinstance(body, dict)
        and body.get("error") == "modele_invalide"
    ):
        cls = errors.InvalidModel
    raise cls(
        message or f"le service a répondu {response.status_code}",
        details=body.get("details") if isinstance(body, dict) else None,
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

    # ----------------------------------------------------------- catalogue

    def models(self, **filters: Any) -> dict[str, Any]:
        """``GET /api/v1/models`` with ``q``, ``theme``, ``owner``, ``territory``, ``status``, ``task``, ``page``, ``per_page``."""
        params = {k: v for k, v in filters.items() if v is not None}
        return self._request("GET", "/api/v1/models", params=params).json()

    def model(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/models/{ModelRef.parse(name).name}").json()

    def projects(self, **filters: Any) -> dict[str, Any]:
        params = {k: v for k, v in filters.items() if v is not None}
        return self._request("GET", "/api/v1/projects", params=params).json()

    def project(self, slug: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/projects/{slug}").json()

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
            return self._request(
                "POST", f"/api/v1/models/{name}/versions", files=files, data=data
            ).json()

    def set_alias(self, name: str, alias: str, version: int) -> dict[str, Any]:
        return self._request(
            "PUT", f"/api/v1/models/{name}/aliases/{alias}", json={"version": int(version)}
        ).json()

    def delete_alias(self, name: str, alias: str) -> None:
        self._request("DELETE", f"/api/v1/models/{name}/aliases/{alias}")

    def put_project(self, project: dict[str, Any]) -> dict[str, Any]:
        return self._request("PUT", f"/api/v1/projects/{project['slug']}", json=project).json()

    def answer_invitation(self, slug: str, *, accept: bool) -> dict[str, Any]:
        """Accept (or decline) the invitation of the caller's organisation to co-own project ``slug``."""
        verb = "accept" if accept else "decline"
        return self._request("POST", f"/api/v1/projects/{slug}/invitations/{verb}").json()

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
        return self._request("POST", "/api/v1/demos", json=body).json()

    def demo(self, demo_id: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/demos/{demo_id}").json()

    def demos(self, *, include_finished: bool = False) -> list[dict[str, Any]]:
        return self._request(
            "GET", "/api/v1/demos", params={"all": str(include_finished).lower()}
        ).json()

    def stop_demo(self, demo_id: str) -> dict[str, Any]:
        return self._request("DELETE", f"/api/v1/demos/{demo_id}").json()

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
        return self._request(
            "POST", f"/demos/{demo_id}/predict", json={"dataframe_records": records}
        ).json()

    def whoami(self) -> dict[str, Any]:
        return self._request("GET", "/api/v1/me").json()


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
