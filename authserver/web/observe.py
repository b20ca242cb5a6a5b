"""Every request gets an id, a line in the access log and its place in the metrics.

The id comes from ``X-Request-Id`` when the caller (a proxy, the platform) sent a sane one,
and is made up otherwise; it is echoed in the response and attached to every log line written
while the request is served. The access line names the route template, never the query string.
"""

from __future__ import annotations

import random
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authserver.logs import AccessLog, request_id
from authserver.resources import SharedResources

_SANE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_REQUEST_ID = b"x-request-id"


class ObserveMiddleware:
    def __init__(self, app: ASGIApp, shared: SharedResources, listener: str) -> None:
        self.app = app
        self.shared = shared
        self.listener = listener
        self.access = AccessLog(listener)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = _given_id(scope)
        if raw is None:
            # A correlation id, not a secret: no need to ask the OS for randomness per request.
            rid = f"{random.getrandbits(128):032x}"
            raw = rid.encode()
        else:
            rid = raw.decode()
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (_REQUEST_ID, raw)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            res = self.shared.current
            if res is not None:
                res.metrics.request_done(self.listener, route, status, elapsed)
            state = scope.get("state")
            client_id = state.get("client_id") if state else None
            self.access.write(rid, scope["method"], route, status, elapsed, client_id)
            request_id.reset(token)


def _given_id(scope: Scope) -> bytes | None:
    for key, value in scope["headers"]:
        if key == _REQUEST_ID:
            return bytes(value) if _SANE_ID.fullmatch(value) else None
    return None
