"""Every request gets an id, a line in the access log and its place in the metrics.

The id comes from ``X-Request-Id`` when the caller (a proxy, the platform) sent a sane one,
and is made up otherwise; it is echoed in the response and attached to every log line written
while the request is served. The access line names the route template, never the query string.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authserver.logs import request_id
from authserver.resources import SharedResources

log = logging.getLogger("authserver.access")

_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class ObserveMiddleware:
    def __init__(self, app: ASGIApp, shared: SharedResources, listener: str) -> None:
        self.app = app
        self.shared = shared
        self.listener = listener

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        rid = given if given is not None and _SANE_ID.fullmatch(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-Id"] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self._record(scope, route, status, elapsed)
            request_id.reset(token)

    def _record(self, scope: Scope, route: str, status: int, elapsed: float) -> None:
        res = self.shared.current
        if res is not None:
            res.metrics.request_done(self.listener, route, status, elapsed)
        state: dict[str, Any] = scope.get("state") or {}
        log.info(
            "%s %s %d",
            scope["method"],
            route,
            status,
            extra={
                "listener": self.listener,
                "route": route,
                "method": scope["method"],
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
                "client_id": state.get("client_id"),
            },
        )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None
