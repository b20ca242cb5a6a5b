"""Every request gets an id, a line in the access log and its place in the metrics.

The id comes from ``X-Request-Id`` when the caller (a proxy, the platform) sent a sane one,
and is made up otherwise; it is echoed in the response and attached to every log line written
while the request is served. The access line names the route template, never the query string.

``Observer`` does this for one listener; ``ObserveMiddleware`` applies it to an ASGI app, and
the raw OAuth endpoints (authserver.http.oauth_posts) call it themselves.
"""

from __future__ import annotations

import random
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authserver.logs import AccessLog, request_id
from authserver.metrics import Metrics

_SANE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
REQUEST_ID = b"x-request-id"
CLIENT_CLOSED = 499  # nginx's word for a request whose client left before it was answered


class Observer:
    def __init__(self, metrics: Metrics, listener: str) -> None:
        self.metrics = metrics
        self.listener = listener
        self.access = AccessLog(listener)

    @staticmethod
    def request_id(scope: Scope) -> tuple[str, bytes]:
        """The request's id, as text and as the header value to echo."""
        for key, value in scope["headers"]:
            if key == REQUEST_ID:
                if _SANE_ID.fullmatch(value):
                    return value.decode(), bytes(value)
                break
        # A correlation id, not a secret: no need to ask the OS for randomness per request.
        made = f"{random.getrandbits(128):032x}"
        return made, made.encode()

    def done(
        self,
        scope: Scope,
        rid: str,
        route: str,
        status: int,
        started: float,
        client_id: str | None = None,
    ) -> None:
        elapsed = time.perf_counter() - started
        self.metrics.request_done(self.listener, route, status, elapsed)
        self.access.write(rid, scope["method"], route, status, elapsed, client_id)


class ObserveMiddleware:
    def __init__(self, app: ASGIApp, observer: Observer) -> None:
        self.app = app
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid, raw = self.observer.request_id(scope)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        answered = left = False

        async def noting_receive() -> Message:
            nonlocal left
            message = await receive()
            if message["type"] == "http.disconnect" and not answered:
                left = True
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                answered = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID, raw)]
            await send(message)

        try:
            await self.app(scope, noting_receive, send_with_id)
        finally:
            if left and status >= 500:
                # Nobody was there to receive it: a vanished client is not a server error.
                status = CLIENT_CLOSED
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.observer.done(scope, rid, route, status, started)
            request_id.reset(token)
