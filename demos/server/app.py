"""The demonstrator's ASGI app: pages, CSV upload and the JSON API.

Routes (all relative to wherever the service mounts the demonstrator):

- ``GET /``: what the model does, the model on its sample data (chart and
  table), the upload form;
- ``POST /upload``: a multipart CSV (field ``file``), answered with the
  predictions as a chart, a table and a download link;
- ``GET /predictions/{token}.csv``: that download (kept in a small bounded
  in-memory store);
- ``POST /predict``: MLflow scoring-server payloads (``dataframe_records``,
  ``dataframe_split``) answered with ``{"predictions": [...]}``;
- ``GET /health``: ``{"status": "ok", ...}`` (the app only exists once the
  model is loaded);
- ``GET /sample.csv``, ``GET /evaluation.png``: the files beside the model.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections import OrderedDict
from typing import Any

import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from demos.server import pages
from demos.server.card import CardInfo
from demos.server.charts import Chart, build_chart
from demos.server.errors import DemoError
from demos.server.inputs import ParsedInput, parse_csv, parse_payload
from demos.server.model import CARD_FILE, CHART_FILE, SAMPLE_FILE, DemoModel
from demos.server.settings import Settings

logger = logging.getLogger("demos.server")

MULTIPART_OVERHEAD = 64 * 1024
CSRF_HEADER = (
    "x-bibia-csrf-token"  # set by bibia's proxy: the token its CSRF check expects in our forms
)
STORE_ENTRIES = 32
STORE_BYTES = 64 * 1024 * 1024
SAMPLE_ROWS = 2000  # the sample is shown, not scored in bulk
SAMPLE_BYTES = 50 * 1024 * 1024


class PredictionStore:
    """Recent prediction CSVs by random token, bounded in count and bytes."""

    def __init__(self, max_entries: int = STORE_ENTRIES, max_bytes: int = STORE_BYTES) -> None:
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries
        self.max_bytes = max_bytes

    def put(self, data: bytes) -> str:
        token = secrets.token_urlsafe(16)
        with self._lock:
            self._items[token] = data
            while (
                len(self._items) > self.max_entries
                or sum(map(len, self._items.values())) > self.max_bytes
            ):
                if len(self._items) == 1:
                    break
                self._items.popitem(last=False)
        return token

    def get(self, token: str) -> bytes | None:
        with self._lock:
            return self._items.get(token)


def create_app(demo: DemoModel, settings: Settings, *, card: CardInfo | None = None) -> FastAPI:
    """Build the demonstrator app around a loaded model.

    Args:
        demo: the loaded model.
        settings: limits and paths (see :mod:`demos.server.settings`).
        card: the card to show; read from ``bibia/card.json`` when omitted.
    """
    card = card if card is not None else CardInfo.read(demo.model_dir / CARD_FILE)
    sample_path = demo.model_dir / SAMPLE_FILE
    evaluation_path = demo.model_dir / CHART_FILE
    store = PredictionStore()
    sample_cache: dict[str, Any] = {}
    sample_lock = threading.Lock()
    app = FastAPI(title="Démonstrateur bibia", docs_url=None, redoc_url=None, openapi_url=None)

    def sample_view() -> dict[str, Any]:
        with sample_lock:
            if not sample_cache:
                sample_cache.update(_run_sample(demo, card, settings, sample_path))
            return sample_cache

    def index(
        csrf_token: str | None, error: str | None = None, status_code: int = 200
    ) -> HTMLResponse:
        view = sample_view()
        html = pages.index_page(
            card,
            demo.columns,
            chart=view.get("chart"),
            table=view.get("table"),
            sample_error=view.get("error"),
            has_sample=sample_path.is_file(),
            has_evaluation=evaluation_path.is_file(),
            max_upload_bytes=settings.max_upload_bytes,
            max_rows=settings.max_rows,
            error=error,
            csrf_token=csrf_token,
        )
        return HTMLResponse(html, status_code=status_code)

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> HTMLResponse:
        return await run_in_threadpool(index, request.headers.get(CSRF_HEADER))

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
    async def upload(request: Request) -> HTMLResponse:
        try:
            data = await _read_upload(request, settings.max_upload_bytes)
            return await run_in_threadpool(_upload_result, demo, card, store, settings, data)
        except DemoError as exc:
            return await run_in_threadpool(
                index, request.headers.get(CSRF_HEADER), exc.message, exc.status_code
            )

    @app.get("/predictions/{token}.csv")
    async def download(token: str) -> Response:
        data = store.get(token)
        if data is None:
            return HTMLResponse(
                pages.message_page(
                    card,
                    "Fichier expiré",
                    "Ces prédictions ne sont plus disponibles : renvoyez votre fichier.",
                ),
                status_code=404,
            )
        return Response(
            data,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="predictions.csv"'},
        )

    @app.get("/sample.csv")
    async def sample_csv() -> Response:
        if not sample_path.is_file():
            return HTMLResponse(
                pages.message_page(card, "Introuvable", "Ce modèle n'a pas de données d'exemple."),
                404,
            )
        return FileResponse(
            sample_path, media_type="text/csv; charset=utf-8", filename="exemple.csv"
        )

    @app.get("/evaluation.png")
    async def evaluation_png() -> Response:
        if not evaluation_path.is_file():
            return HTMLResponse(
                pages.message_page(
                    card, "Introuvable", "Ce modèle n'a pas de graphique d'évaluation."
                ),
                404,
            )
        return FileResponse(evaluation_path, media_type="image/png")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        logger.error("Erreur inattendue sur %s %s", request.method, request.url.path, exc_info=exc)
        message = "Erreur interne du démonstrateur ; le détail est dans ses journaux."
        if request.url.path.endswith("predict"):
            return JSONResponse({"error_code": "INTERNAL_ERROR", "message": message}, 500)
        return HTMLResponse(pages.message_page(card, "Erreur", message), 500)

    return app


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


def _upload_result(
    demo: DemoModel, card: CardInfo, store: PredictionStore, settings: Settings, data: bytes
) -> HTMLResponse:
    parsed = parse_csv(
        data, demo.columns, max_rows=settings.max_rows, max_bytes=settings.max_upload_bytes
    )
    table, _ = demo.predict(parsed.model_frame)
    token = store.put(_download_csv(parsed, table))
    chart = _chart(card.task, parsed, table, demo)
    view = pages.TableView(parsed.frame, table, len(table))
    return HTMLResponse(
        pages.result_page(card, chart=chart, table=view, token=token, ignored=parsed.ignored)
    )


def _download_csv(parsed: ParsedInput, table: pd.DataFrame) -> bytes:
    renamed = table.rename(
        columns={c: f"prediction_{c}" for c in table.columns if c in parsed.frame.columns}
    )
    combined = pd.concat(
        [parsed.frame.reset_index(drop=True), renamed.reset_index(drop=True)], axis=1
    )
    return combined.to_csv(index=False, date_format="%Y-%m-%d %H:%M:%S").encode("utf-8")


def _chart(
    task: str | None, parsed: ParsedInput, table: pd.DataFrame, demo: DemoModel
) -> Chart | None:
    try:
        return build_chart(task, parsed.frame, table, [c.name for c in demo.columns])
    except Exception:  # a chart is an illustration: its failure must not hide the predictions
        logger.exception("Le graphique n'a pas pu être tracé")
        return None


def _run_sample(demo: DemoModel, card: CardInfo, settings: Settings, path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        parsed = parse_csv(
            path.read_bytes(),
            demo.columns,
            max_rows=SAMPLE_ROWS,
            max_bytes=SAMPLE_BYTES,
            truncate=True,
        )
        table, _ = demo.predict(parsed.model_frame)
    except DemoError as exc:
        logger.warning("Les données d'exemple n'ont pas pu être utilisées : %s", exc.message)
        return {
            "error": f"Le modèle n'a pas pu être exécuté sur ses données d'exemple : {exc.message}"
        }
    return {
        "chart": _chart(card.task, parsed, table, demo),
        "table": pages.TableView(parsed.frame, table, len(table)),
    }
