"""The demonstrator's ASGI app: pages, CSV upload and the JSON API.

Routes (all relative to wherever the service mounts the demonstrator):

- ``GET /``: what the model does, the model on its sample data (chart with a
  series picker, ``?serie=``, and a table), the upload form;
- ``GET /modele.csv``: a template CSV (the model's columns, two example
  rows) in French Excel format;
- ``POST /upload``: a multipart CSV (field ``file``); the predictions are
  stored (:class:`ResultStore`) and the answer is ``303 See Other`` to
  ``resultats/<id>``, so that a refresh does not send the file again; a
  refused file gets the home page again with the reason;
- ``GET /resultats/{id}``: that result (chart, ``?serie=``, table);
  ``GET /resultats/{id}.csv``: its download, French Excel format, or
  international with ``?format=international``;
- ``POST /predict``: MLflow scoring-server payloads (``dataframe_records``,
  ``dataframe_split``) answered with ``{"predictions": [...]}``;
- ``GET /health``: ``{"status": "ok", ...}`` (the app only exists once the
  model is loaded);
- ``GET /sample.csv``, ``GET /evaluation.png``: the files beside the model.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from demos.server import formats, pages
from demos.server.card import CardInfo
from demos.server.charts import Chart, build_chart
from demos.server.errors import DemoError
from demos.server.inputs import (
    EXAMPLES,
    SAMPLE_ROW_LIMIT,
    ParsedInput,
    locate,
    parse_csv,
    parse_payload,
    with_sample_hints,
)
from demos.server.model import CARD_FILE, CHART_FILE, SAMPLE_FILE, Column, DemoModel, ModelRefused
from demos.server.settings import Settings
from domain.errors import BibiaError
from evaluation.frames import read_csv

logger = logging.getLogger("demos.server")

MULTIPART_OVERHEAD = 64 * 1024
CSRF_HEADER = (
    "x-bibia-csrf-token"  # set by bibia's proxy: the token its CSRF check expects in our forms
)
ORIGIN_FILE = "bibia/demo.json"  # written by bibia beside the card: the registered model's name
STORE_ENTRIES = 20
STORE_BYTES = 24 * 1024 * 1024  # the sandbox's /tmp is a small tmpfs
SAMPLE_ROWS = 2000  # the sample is shown, not scored in bulk
SAMPLE_BYTES = 50 * 1024 * 1024
RESULT_ID = re.compile(r"[A-Za-z0-9_-]{22}")
TEMPLATE_ROWS = 2


@dataclass(frozen=True)
class Result:
    """One upload's predictions: the file's rows (as shown) and the model's answer."""

    inputs: pd.DataFrame
    predictions: pd.DataFrame
    ignored: list[str]
    defaulted: list[str]
    model_columns: list[str]


class ResultStore:
    """Recent results as files under ``root``, by random id, bounded in count and bytes.

    Each result is one JSON file (pandas' ``table`` orient keeps the column
    types), written whole then renamed, so that a reader never sees half of
    it; the oldest go first when a bound is passed.
    """

    def __init__(
        self, root: Path, max_entries: int = STORE_ENTRIES, max_bytes: int = STORE_BYTES
    ) -> None:
        self.root = root
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def put(self, result: Result) -> str:
        body = json.dumps(
            {
                "inputs": json.loads(result.inputs.to_json(orient="table", date_format="iso")),
                "predictions": json.loads(
                    result.predictions.to_json(orient="table", date_format="iso")
                ),
                "ignored": result.ignored,
                "defaulted": result.defaulted,
                "model_columns": result.model_columns,
            },
            ensure_ascii=False,
        ).encode("utf-8")
        result_id = secrets.token_urlsafe(16)
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            partial = self.root / f".{result_id}.part"
            partial.write_bytes(body)
            os.replace(partial, self.root / f"{result_id}.json")
            self._evict(keep=result_id)
        return result_id

    def get(self, result_id: str) -> Result | None:
        if not RESULT_ID.fullmatch(result_id):
            return None
        try:
            raw = json.loads((self.root / f"{result_id}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return Result(
            inputs=_frame(raw["inputs"]),
            predictions=_frame(raw["predictions"]),
            ignored=list(raw.get("ignored", [])),
            defaulted=list(raw.get("defaulted", [])),
            model_columns=list(raw.get("model_columns", [])),
        )

    def _evict(self, keep: str) -> None:
        entries = []
        for path in self.root.glob("*.json"):
            try:
                stat = path.stat()
            except OSError:
                continue
            entries.append((stat.st_mtime_ns, stat.st_size, path))
        entries.sort()
        total = sum(size for _, size, _ in entries)
        while entries and (len(entries) > self.max_entries or total > self.max_bytes):
            _, size, path = entries.pop(0)
            if path.stem == keep:
                continue
            path.unlink(missing_ok=True)
            total -= size


def _frame(table: dict[str, Any]) -> pd.DataFrame:
    import io

    frame = pd.read_json(io.StringIO(json.dumps(table)), orient="table")
    return frame.reset_index(drop=True)


def create_app(demo: DemoModel, settings: Settings, *, card: CardInfo | None = None) -> FastAPI:
    """Build the demonstrator app around a loaded model.

    Args:
        demo: the loaded model.
        settings: limits and paths (see :mod:`demos.server.settings`).
        card: the card to show; read from ``bibia/card.json`` (and the model's
            name from ``bibia/demo.json``) when omitted.
    """
    card = (
        card
        if card is not None
        else CardInfo.read(demo.model_dir / CARD_FILE, demo.model_dir / ORIGIN_FILE)
    )
    sample_path = demo.model_dir / SAMPLE_FILE
    evaluation_path = demo.model_dir / CHART_FILE
    columns = with_sample_hints(demo.columns, _sample_text(sample_path))
    store = ResultStore(settings.results_dir or Path(tempfile.mkdtemp(prefix="bibia-resultats-")))
    sample_cache: dict[str, Any] = {}
    sample_lock = threading.Lock()
    app = FastAPI(title="Démonstrateur bibia", docs_url=None, redoc_url=None, openapi_url=None)

    def sample_view() -> dict[str, Any]:
        with sample_lock:
            if not sample_cache:
                sample_cache.update(_run_sample(demo, columns, sample_path))
            return sample_cache

    def index(
        csrf_token: str | None,
        error: str | None = None,
        status_code: int = 200,
        series: str | None = None,
    ) -> HTMLResponse:
        view = sample_view()
        result = view.get("result")
        html = pages.index_page(
            card,
            columns,
            chart=_chart(card, result, demo, series) if result is not None else None,
            table=_table(result) if result is not None else None,
            sample_error=view.get("error"),
            has_sample=sample_path.is_file(),
            has_evaluation=evaluation_path.is_file(),
            max_upload_bytes=settings.max_upload_bytes,
            max_rows=settings.max_rows,
            error=error,
            csrf_token=csrf_token,
        )
        return HTMLResponse(html, status_code=status_code)

    def not_found(title: str, message: str, root: str = "") -> HTMLResponse:
        return HTMLResponse(pages.message_page(card, title, message, root=root), 404)

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request, serie: str | None = None) -> HTMLResponse:
        return await run_in_threadpool(index, request.headers.get(CSRF_HEADER), None, 200, serie)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": demo.info,
            "max_upload_bytes": settings.max_upload_bytes,
            "max_rows": settings.max_rows,
        }

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        try:
            body = await _read_body(request, settings.max_upload_bytes * 2)
            try:
                payload = json.loads(body)
            except (UnicodeDecodeError, ValueError) as exc:
                raise DemoError(
                    f"Le corps de la requête n'est pas du JSON valide : {exc}"
                ) from None
            result = await run_in_threadpool(_predict_payload, demo, payload, settings.max_rows)
        except DemoError as exc:
            return JSONResponse(
                {"error_code": _error_code(exc.status_code), "message": exc.message},
                exc.status_code,
            )
        return JSONResponse({"predictions": result})

    @app.post("/upload", response_class=HTMLResponse)
    async def upload(request: Request) -> Response:
        try:
            data = await _read_upload(request, settings.max_upload_bytes)
            result_id = await run_in_threadpool(_upload, demo, columns, store, settings, data)
        except DemoError as exc:
            return await run_in_threadpool(
                index, request.headers.get(CSRF_HEADER), exc.message, exc.status_code
            )
        return RedirectResponse(f"resultats/{result_id}", status_code=303)

    @app.get("/modele.csv")
    async def template() -> Response:
        data = await run_in_threadpool(_template, columns, sample_view().get("result"))
        return _csv_response(data, "modele.csv")

    @app.get("/resultats/{result_id}.csv")
    async def download(result_id: str, format: str | None = None) -> Response:
        result = await run_in_threadpool(store.get, result_id)
        if result is None:
            return _expired(card, not_found)
        international = format == "international"
        frame = _download_frame(result)
        data = formats.csv_bytes(frame, french=not international)
        name = "predictions-international.csv" if international else "predictions.csv"
        return _csv_response(data, name)

    @app.get("/resultats/{result_id}", response_class=HTMLResponse)
    async def result_page(result_id: str, serie: str | None = None) -> HTMLResponse:
        result = await run_in_threadpool(store.get, result_id)
        if result is None:
            return _expired(card, not_found)

        def render() -> str:
            assert result is not None
            return pages.result_page(
                card,
                result_id=result_id,
                chart=_chart(card, result, demo, serie),
                table=_table(result),
                ignored=result.ignored,
                defaulted=result.defaulted,
            )

        return HTMLResponse(await run_in_threadpool(render))

    @app.get("/sample.csv")
    async def sample_csv() -> Response:
        if not sample_path.is_file():
            return not_found("Introuvable", "Ce modèle n'a pas de données d'exemple.")
        return FileResponse(
            sample_path, media_type="text/csv; charset=utf-8", filename="exemple.csv"
        )

    @app.get("/evaluation.png")
    async def evaluation_png() -> Response:
        if not evaluation_path.is_file():
            return not_found("Introuvable", "Ce modèle n'a pas de graphique d'évaluation.")
        return FileResponse(evaluation_path, media_type="image/png")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.endswith("predict"):
            return JSONResponse(
                {"error_code": _error_code(exc.status_code), "message": "Requête refusée."},
                exc.status_code,
            )
        root = "../" * request.url.path.strip("/").count("/")
        if exc.status_code == 404:
            return not_found(
                "Page introuvable",
                "Cette adresse n'existe pas dans le démonstrateur : revenez à son accueil.",
                root,
            )
        return HTMLResponse(
            pages.message_page(
                card,
                "Requête refusée",
                "Cette adresse ne s'utilise pas ainsi : revenez à l'accueil du démonstrateur.",
                root=root,
            ),
            exc.status_code,
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        logger.error("Erreur inattendue sur %s %s", request.method, request.url.path, exc_info=exc)
        message = "Erreur interne du démonstrateur ; le détail est dans ses journaux."
        if request.url.path.endswith("predict"):
            return JSONResponse({"error_code": "INTERNAL_ERROR", "message": message}, 500)
        root = "../" * request.url.path.strip("/").count("/")
        return HTMLResponse(pages.message_page(card, "Erreur", message, root=root), 500)

    return app


def _expired(card: CardInfo, not_found: Any) -> HTMLResponse:
    response: HTMLResponse = not_found(
        "Résultat introuvable",
        "Ces prédictions ne sont plus disponibles (le démonstrateur garde les derniers "
        "résultats seulement, et les oublie à son arrêt) : renvoyez votre fichier.",
        "../",
    )
    return response


def _csv_response(data: bytes, filename: str) -> Response:
    return Response(
        data,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _sample_text(path: Path) -> pd.DataFrame | None:
    """The sample data as text cells (for what it tells of the columns), None without it."""
    if not path.is_file():
        return None
    try:
        return read_csv(path.read_bytes(), max_bytes=SAMPLE_BYTES, max_rows=SAMPLE_ROW_LIMIT)
    except (OSError, BibiaError) as exc:
        logger.warning("Les données d'exemple n'ont pas pu être lues : %s", exc)
        return None


def _error_code(status: int) -> str:
    return {413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE"}.get(
        status, "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR"
    )


async def _read_body(request: Request, limit: int) -> bytes:
    """Read the request body, refusing it past ``limit`` bytes without buffering more."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise DemoError(_too_large(limit), status_code=413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise DemoError(_too_large(limit), status_code=413)
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_upload(request: Request, max_bytes: int) -> bytes:
    """The bytes of the ``file`` field of a bounded multipart body."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise DemoError(
            "Envoyez le fichier avec le formulaire (multipart/form-data, champ « file »).",
            status_code=415,
        )
    body = await _read_body(request, max_bytes + MULTIPART_OVERHEAD)
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.request", "body": b"", "more_body": False}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    buffered = Request(request.scope, replay)
    try:
        form = await buffered.form(max_files=1, max_fields=10)
    except Exception as exc:  # noqa: BLE001 - starlette raises several types for a malformed multipart body
        raise DemoError(f"Le formulaire envoyé est mal formé : {exc}") from None
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise DemoError("Aucun fichier reçu : choisissez un fichier CSV dans le formulaire.")
    data = await upload.read(max_bytes + 1)
    await form.close()
    return data


def _too_large(limit: int) -> str:
    return f"Le fichier est trop volumineux : la limite est de {limit // (1024 * 1024) or 1} Mio. Envoyez un extrait plus court."


def _predict_payload(demo: DemoModel, payload: Any, max_rows: int) -> list[Any]:
    parsed = parse_payload(payload, demo.columns, max_rows=max_rows)
    table, raw = demo.predict(parsed.model_frame)
    if not isinstance(raw, pd.DataFrame) and len(table.columns) == 1:
        return json.loads(
            table.iloc[:, 0].to_json(orient="values", date_format="iso", double_precision=15)
        )
    # 15 significant digits (pandas keeps 10 by default): evaluations score these numbers.
    return json.loads(table.to_json(orient="records", date_format="iso", double_precision=15))


def _upload(
    demo: DemoModel, columns: list[Column], store: ResultStore, settings: Settings, data: bytes
) -> str:
    parsed = parse_csv(
        data, columns, max_rows=settings.max_rows, max_bytes=settings.max_upload_bytes
    )
    return store.put(_predict_rows(demo, columns, parsed))


def _predict_rows(demo: DemoModel, columns: list[Column], parsed: ParsedInput) -> Result:
    """The model's predictions on ``parsed``; a refusal names the lines it is about."""
    try:
        table, _ = demo.predict(parsed.model_frame)
    except ModelRefused as exc:
        where = locate(exc.reason, parsed)
        if where:
            raise DemoError(f"{exc.message} (Valeur concernée : {where}.)") from None
        raise
    return Result(
        inputs=_shown(parsed.frame, columns),
        predictions=table,
        ignored=parsed.ignored,
        defaulted=parsed.defaulted,
        model_columns=parsed.model_columns,
    )


def _shown(frame: pd.DataFrame, columns: list[Column]) -> pd.DataFrame:
    """The rows as a person reads them: dates written as text become dates."""
    shown = frame.reset_index(drop=True).copy()
    for column in columns:
        if column.dates_as_text and column.name in shown.columns:
            shown[column.name] = pd.to_datetime(shown[column.name], errors="coerce")
    return shown


def _download_frame(result: Result) -> pd.DataFrame:
    renamed = result.predictions.rename(
        columns={c: f"prediction_{c}" for c in result.predictions.columns if c in result.inputs}
    )
    return pd.concat([result.inputs.reset_index(drop=True), renamed.reset_index(drop=True)], axis=1)


def _table(result: Result) -> pages.TableView:
    return pages.TableView(result.inputs, result.predictions, len(result.predictions))


def _template(columns: list[Column], sample: Result | None) -> bytes:
    """The template CSV: the model's columns, then two example rows (the sample's, or made up)."""
    names = [c.name for c in columns]
    if not names:
        if sample is None:
            return formats.csv_bytes(pd.DataFrame())
        return formats.csv_bytes(sample.inputs.head(TEMPLATE_ROWS))
    if sample is not None and all(
        n in sample.inputs.columns for n in names if _required(columns, n)
    ):
        present = [n for n in names if n in sample.inputs.columns]
        frame = sample.inputs[present].head(TEMPLATE_ROWS).copy()
        for name in names:
            if name not in frame.columns:  # an optional column the sample leaves out: empty
                frame[name] = None
        return formats.csv_bytes(frame[names])
    rows = [[c.example or EXAMPLES.get(c.type, "") for c in columns]] * TEMPLATE_ROWS
    return formats.csv_bytes(pd.DataFrame(rows, columns=names))


def _required(columns: list[Column], name: str) -> bool:
    return next((c.required for c in columns if c.name == name), False)


def _chart(card: CardInfo, result: Result, demo: DemoModel, series: str | None) -> Chart | None:
    labels = {
        name: card.label(name) for name in [*result.inputs.columns, *result.predictions.columns]
    }
    try:
        return build_chart(
            card.task,
            result.inputs,
            result.predictions,
            [c.name for c in demo.columns],
            series=series,
            labels=labels,
        )
    except Exception:  # a chart is an illustration: its failure must not hide the predictions
        logger.exception("Le graphique n'a pas pu être tracé")
        return None


def _run_sample(demo: DemoModel, columns: list[Column], path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        parsed = parse_csv(
            path.read_bytes(),
            columns,
            max_rows=SAMPLE_ROWS,
            max_bytes=SAMPLE_BYTES,
            truncate=True,
        )
        result = _predict_rows(demo, columns, parsed)
    except DemoError as exc:
        logger.warning("Les données d'exemple n'ont pas pu être utilisées : %s", exc.message)
        return {
            "error": f"Le modèle n'a pas pu être exécuté sur ses données d'exemple : {exc.message}"
        }
    return {"result": result}
