"""The token, revocation and introspection endpoints, served as raw ASGI.

They are the hot paths: every Phraseanet API request is introspected, and service clients
fetch tokens constantly. So they skip Starlette's router, middleware, request and response
objects: a dict lookup on the exact path, the four headers they read, and two ASGI messages
with the answer. Everything else on the public listener goes on to the Starlette app.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from authserver.logs import request_id
from authserver.oauth import bridge
from authserver.oauth.flow import Endpoint
from authserver.oauth.responses import Answer, Headers, oauth_error
from authserver.resources import Resources
from authserver.web.errors import ErrorAnswer, failure
from authserver.web.observe import REQUEST_ID, Observer


@dataclass(frozen=True, slots=True)
class Route:
    """The matched path template, as the access log and the metrics name it."""

    path: str
    endpoint: Endpoint


ROUTES = {
    route.path: route
    for route in (
        Route("/oauth2/token", "token"),
        Route("/api/oauthv2/token", "token"),  # Phraseanet's path for old clients
        Route("/oauth2/revoke", "revoke"),
        Route("/oauth2/introspect", "introspect"),
    )
}

_READ = frozenset({b"content-type", b"content-length", b"authorization"})

_METHOD_NOT_ALLOWED = oauth_error(
    405, "method_not_allowed", "Method Not Allowed", [(b"allow", b"POST")]
)


class OAuthPosts:
    def __init__(self, app: ASGIApp, observer: Observer) -> None:
        self.app = app  # everything else
        self.observer = observer  # what ObserveMiddleware does, done here without wrapping send

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = ROUTES.get(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route
        rid, raw_id = self.observer.request_id(scope)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        try:
            answer = await self._answer(scope, receive, route.endpoint)
            if answer is not None:
                status = answer.status
                await answer.send(send, (REQUEST_ID, raw_id))
        finally:
            self.observer.done(scope, rid, route.path, status, started)
            request_id.reset(token)

    async def _answer(self, scope: Scope, receive: Receive, endpoint: Endpoint) -> Answer | None:
        if scope["method"] != "POST":
            return _METHOD_NOT_ALLOWED
        try:
            return await _serve(scope, receive, endpoint)
        except ClientDisconnect:
            return None  # nobody to answer; nothing was stored for a request not fully read
        except Exception as exc:
            return _error(failure(scope["method"], scope["path"], exc))


async def _serve(scope: Scope, receive: Receive, endpoint: Endpoint) -> Answer:
    wanted: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        # The first of a repeated header counts, as with Starlette's Headers.get.
        if name in _READ and name not in wanted:
            wanted[name] = value.decode("latin-1")
    get = wanted.get
    state = scope["state"]
    res: Resources = state["res"]
    inbound = bridge.Inbound(
        scope["query_string"],
        get(b"content-type"),
        get(b"content-length"),
        get(b"authorization"),
        receive,
        state,
    )
    return await bridge.handle(res, inbound, endpoint)


def _error(error: ErrorAnswer) -> Answer:
    status, code, description, headers = error
    extra: Headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return oauth_error(status, code, description, extra)
