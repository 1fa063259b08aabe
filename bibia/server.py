"""How ``bibia serve`` runs the app: uvicorn, with a header deadline and the trusted proxies.

uvicorn bounds idle keep-alive connections but not the time a client takes
to send its request headers: a client that opens connections and trickles
headers (or nothing) holds them open. :class:`HeaderDeadlineProtocol` closes
a connection whose request headers are not complete ``header_timeout_s``
after it opened (first request) or after the request's first byte (later
requests on a kept-alive connection). Stalled bodies are the ASGI guard's
business (:class:`bibia.guards.BodyReadTimeout`).

Forwarded headers (``X-Forwarded-For``, ``X-Forwarded-Proto``) are believed
only from the peers listed in ``trusted_proxies``; with none listed, they
are ignored, so the client is always the socket peer.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bibia.settings import Settings

log = logging.getLogger("bibia.server")


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing connections whose request headers come too slowly."""

    header_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.debug(
                "closing %s: request headers incomplete after %s s",
                self.client,
                self.header_timeout,
            )
            self.transport.close()


def protocol_class(header_timeout: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class uvicorn instantiates per connection, with this deadline."""
    return type("HeaderDeadline", (HeaderDeadlineProtocol,), {"header_timeout": header_timeout})


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration, with bibia's own loggers on its standard-error handler.

    Without it, bibia's messages below WARNING (a replica taking the lead of the upkeep,
    the warm sandboxes of a dead replica removed, a job queued again) went nowhere.
    """
    configured = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    configured["loggers"]["bibia"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return configured


def config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration of ``bibia serve``."""
    trusted = settings.trusted_proxy_list
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "info",
        "log_config": log_config(settings.log_level),
        "http": protocol_class(settings.header_timeout_s),
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or [],
        **overrides,
    }
    return uvicorn.Config(app, **options)


def run(app: Any, settings: Settings) -> None:
    """Serve ``app`` until interrupted."""
    uvicorn.Server(config(app, settings)).run()
