"""A Python client of the bibia service, for experts, agents and scripts.

>>> client = BibiaClient("http://127.0.0.1:8000", token="bibia_...")   # doctest: +SKIP
>>> client.register("eau-batiments", estimator, card="fiche.yaml", input_example=X.head(), alias="production")  # doctest: +SKIP

Errors come back as the same :class:`domain.errors.BibiaError` tree the
service raises, with the service's French message.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
import tempfile
import time
from collections.abc import Callable
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

    # ----------------------------------------------------------- evaluation

    def tasks(self) -> list[dict[str, Any]]:
        """``GET /api/v1/tasks``: the shared tasks (contract, metrics, baseline, benchmarks)."""
        return self._objects("GET", "/api/v1/tasks")

    def task(self, slug: str) -> dict[str, Any]:
        return self._object("GET", f"/api/v1/tasks/{_segment(slug, 'tâche')}")

    def leaderboard(
        self,
        task: str,
        *,
        benchmark: str | None = None,
        sort: str | None = None,
        order: str | None = None,
    ) -> dict[str, Any]:
        """``GET /api/v1/tasks/{task}/leaderboard``: verified scores beside the baseline's.

        Args:
            benchmark: the benchmark's slug (default: the task's reference one).
            sort: a metric of the task (default: its primary metric).
            order: ``asc`` or ``desc`` (default: best first).
        """
        params = _params(benchmark=benchmark, sort=sort, order=order)
        return self._object(
            "GET", f"/api/v1/tasks/{_segment(task, 'tâche')}/leaderboard", params=params
        )

    def benchmarks(self, *, task: str | None = None) -> list[dict[str, Any]]:
        """``GET /api/v1/benchmarks``: the benchmarks the caller may see (provenance, never data)."""
        return self._objects("GET", "/api/v1/benchmarks", params=_params(task=task))

    def benchmark(self, slug: str, version: int | None = None) -> dict[str, Any]:
        return self._object(
            "GET",
            f"/api/v1/benchmarks/{_segment(slug, 'jeu de données')}",
            params=_params(version=version),
        )

    def register_benchmark(
        self,
        file: str | Path,
        *,
        slug: str,
        task: str,
        title: str,
        licence: str,
        visibility: str = "public",
        producer: str | None = None,
        description: str | None = None,
        period_start: str | None = None,
        period_end: str | None = None,
        source_url: str | None = None,
    ) -> dict[str, Any]:
        """Register a benchmark (or its next version) from one CSV of the task's inputs and truth (experts).

        Args:
            file: the CSV (``;`` or ``,``, decimal comma and dd/mm/yyyy dates accepted).
            visibility: ``public``, ``membres`` or ``verite-cachee`` (only the platform reads the truth).

        Raises:
            Forbidden: you are not an expert.
            InvalidData: the CSV does not hold the task's columns (``details`` lists every problem).
            Conflict: the same content as the benchmark's latest version.
        """
        path = _file(file)
        form = _params(
            slug=slug,
            task=task,
            title=title,
            licence=licence,
            visibility=visibility,
            producer=producer,
            description=description,
            period_start=period_start,
            period_end=period_end,
            source_url=source_url,
        )
        files = {"fichier": (path.name, path.read_bytes(), "text/csv")}
        return self._object("POST", "/api/v1/benchmarks", files=files, data=form)

    def evaluate(
        self,
        ref: str,
        *,
        benchmark: str | None = None,
        benchmark_version: int | None = None,
        data: str | Path | None = None,
        truth_column: str | None = None,
        task: str | None = None,
    ) -> dict[str, Any]:
        """Queue an evaluation of ``ref`` (``NAME``, ``NAME@ALIAS``, ``NAME/VERSION``); returns the job at once.

        Either on a registered ``benchmark`` (a verified evaluation; its latest version
        unless ``benchmark_version``), or on ``data``, a
        labelled CSV of your own (inputs and observed values; private to your
        organisation), with ``truth_column`` naming the observed values when the task
        does not, and ``task`` choosing the task when the model's card does not.
        Follow the job with :meth:`wait_evaluation`.

        Raises:
            InvalidInput: neither or both of ``benchmark`` and ``data``; a bad reference.
            Unauthorized / Forbidden: members only.
            QuotaExceeded: your organisation has too many evaluations queued or running.
        """
        parsed = ModelRef.parse(ref)
        if (benchmark is None) == (data is None):
            raise errors.InvalidInput(
                "indiquez soit un jeu de données de référence (benchmark), soit un fichier "
                "de données étiquetées (data), l'un des deux"
            )
        if data is None:
            body = _params(
                model=str(parsed), benchmark=benchmark, benchmark_version=benchmark_version
            )
            return self._object("POST", "/api/v1/evaluations", json=body)
        path = _file(data)
        form = _params(model=str(parsed), truth_column=truth_column, task=task)
        files = {"fichier": (path.name, path.read_bytes(), "text/csv")}
        return self._object("POST", "/api/v1/evaluations", files=files, data=form)

    def evaluation(self, evaluation_id: str) -> dict[str, Any]:
        return self._object("GET", f"/api/v1/evaluations/{_segment(evaluation_id, 'évaluation')}")

    def evaluations(
        self, *, model: str | None = None, benchmark: str | None = None, mine: bool = False
    ) -> list[dict[str, Any]]:
        """``GET /api/v1/evaluations``: the evaluations you may see, newest first."""
        params = _params(model=model, benchmark=benchmark, mine="true" if mine else None)
        return self._objects("GET", "/api/v1/evaluations", params=params)

    def cancel_evaluation(self, evaluation_id: str) -> dict[str, Any]:
        """Cancel a queued or running evaluation of your organisation (a finished one is left as it is)."""
        return self._object(
            "DELETE", f"/api/v1/evaluations/{_segment(evaluation_id, 'évaluation')}"
        )

    def wait_evaluation(
        self,
        evaluation_id: str,
        *,
        timeout: float | None = 1800.0,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        interval: float = 0.25,
        max_interval: float = 3.0,
    ) -> dict[str, Any]:
        """Poll until the evaluation is finished (done, failed or cancelled); returns its last state.

        The delay between polls starts at ``interval`` and grows by half up to
        ``max_interval``; it starts over whenever the job moves (progress or stage).
        ``on_progress`` gets every state read. After ``timeout`` seconds (None:
        no limit) it returns the state as it is, still queued or running.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay, seen = interval, None
        while True:
            job = self.evaluation(evaluation_id)
            if on_progress is not None:
                on_progress(job)
            if job.get("state") in FINISHED or (
                deadline is not None and time.monotonic() >= deadline
            ):
                return job
            moved = (job.get("state"), job.get("progress"), job.get("stage"))
            delay = interval if moved != seen else min(delay * 1.5, max_interval)
            seen = moved
            pause = delay if deadline is None else max(0.0, min(delay, deadline - time.monotonic()))
            time.sleep(pause)

    def compare(
        self,
        refs: list[str],
        *,
        metrics: list[str] | None = None,
        benchmark: str | None = None,
    ) -> dict[str, Any]:
        """``GET /api/v1/compare``: metrics side by side, verified or declared, and why not comparable."""
        parsed = [str(ModelRef.parse(ref)) for ref in refs]
        if len(parsed) < 2:
            raise errors.InvalidInput("indiquez au moins deux modèles à comparer")
        params = _params(
            models=",".join(parsed),
            metrics=",".join(metrics) if metrics else None,
            benchmark=benchmark,
        )
        return self._object("GET", "/api/v1/compare", params=params)

    def model_evaluations(self, name: str) -> dict[str, Any]:
        """``GET /api/v1/models/{name}/evaluations``: verified results, reports, reuses, measured cost."""
        return self._object("GET", f"/api/v1/models/{ModelRef.parse(name).name}/evaluations")

    def set_evaluation_settings(
        self, name: str, *, task: str | None = None, promotion_gate: bool | None = None
    ) -> dict[str, Any]:
        """The model's task and its promotion gate (experts of its owner)."""
        body = {"task": task, "promotion_gate": promotion_gate}
        return self._object(
            "PUT", f"/api/v1/models/{ModelRef.parse(name).name}/evaluation-settings", json=body
        )

    def publish_report(
        self, evaluation_id: str, text: str, *, audience: str = "membres"
    ) -> dict[str, Any]:
        """Publish a done evaluation of your organisation as a « retour d'expérience chiffré»."""
        return self._object(
            "POST",
            f"/api/v1/evaluations/{_segment(evaluation_id, 'évaluation')}/report",
            json={"text": text, "audience": audience},
        )

    def unpublish_report(self, report_id: int) -> None:
        self._request("DELETE", f"/api/v1/reports/{int(report_id)}")

    def declare_reuse(self, name: str, text: str, *, url: str | None = None) -> dict[str, Any]:
        """Declare that your organisation reuses model ``name`` (« nous réutilisons ce modèle »)."""
        return self._object(
            "POST",
            f"/api/v1/models/{ModelRef.parse(name).name}/reuses",
            json={"text": text, "url": url},
        )

    def withdraw_reuse(self, name: str) -> None:
        self._request("DELETE", f"/api/v1/models/{ModelRef.parse(name).name}/reuses")


#: The states an evaluation ends in.
FINISHED = frozenset({"done", "failed", "cancelled"})

_SEGMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def _segment(value: str, what: str) -> str:
    """``value`` if it is a safe path segment (an identifier), else InvalidInput naming ``what``."""
    if not isinstance(value, str) or not _SEGMENT_RE.fullmatch(value):
        raise errors.InvalidInput(f"identifiant de {what} invalide : {value!r}")
    return value


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _file(path: str | Path) -> Path:
    file = Path(path)
    if not file.is_file():
        raise errors.InvalidInput(f"fichier introuvable : {file}")
    return file


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
