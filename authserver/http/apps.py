"""The two ASGI apps one process serves, assembled from their parts: public (OAuth and the pages)
and admin (the platform's API).

Each is observed as a whole (request id, access log, metrics). On the public one, the hot
OAuth endpoints are raw ASGI in front of the Starlette app that serves everything else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from authserver.answer import error_json
from authserver.http.admin import AdminApi
from authserver.http.admin_auth import AdminAuthMiddleware, AdminTokens
from authserver.http.authorize import AuthorizePages
from authserver.http.deadlines import Deadline, Deadlines
from authserver.http.device import DevicePages
from authserver.http.errors import EXCEPTION_HANDLERS
from authserver.http.health import Health
from authserver.http.logout import LogoutPages
from authserver.http.oauth_posts import OAuthPosts, send_answer
from authserver.http.observe import ObserveMiddleware, Observer
from authserver.http.openid import OpenIDRoutes
from authserver.metrics import Metrics
from authserver.oauth.bridge import Bridge
from authserver.oauth.memory import MemoryIntrospection

log = logging.getLogger("authserver")

# What the admin listener serves besides the API, open to probes and scrapers (admin_auth).
ADMIN_OPEN_ROUTES = (("/healthz", "GET"), ("/readyz", "GET"), ("/metrics", "GET"))


def public_app(
    *,
    bridge: Bridge,
    observer: Observer,
    health: Health,
    authorize: AuthorizePages,
    device: DevicePages,
    logout: LogoutPages,
    openid: OpenIDRoutes,
    deadline: float,
    memory: MemoryIntrospection | None = None,
) -> OAuthPosts:
    routes: list[BaseRoute] = [
        *health.routes(),
        *openid.routes(),
        *authorize.routes(),
        *device.routes(),
        *logout.routes(),
    ]
    pages = Deadline(Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS), deadline)
    return OAuthPosts(
        ObserveMiddleware(pages, observer),
        bridge,
        observer,
        deadlines=Deadlines(deadline),
        memory=memory,
    )


def admin_app(
    *,
    api: AdminApi,
    health: Health,
    metrics: Metrics,
    tokens: AdminTokens,
    observer: Observer,
    deadline: float,
) -> ASGIApp:
    async def exposition(request: Request) -> Response:
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")

    routes: list[BaseRoute] = [
        *health.routes(),
        Route("/metrics", exposition, methods=["GET"]),
        *api.routes(),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(AdminAuthMiddleware, tokens=tokens)],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    return ObserveMiddleware(Deadline(app, deadline), observer)


_NOT_STARTED = error_json(503, "temporarily_unavailable", "the server is starting or stopping")
_TOO_SLOW = error_json(
    503,
    "temporarily_unavailable",
    "the request took too long; retry later",
    [(b"retry-after", b"1")],
)


class Started:
    """An ASGI app built when its server starts (the ASGI lifespan), from what is opened then,
    and closed when it stops. Requests before the start, or after the stop, get a 503."""

    def __init__(self, start: Callable[[], AbstractAsyncContextManager[ASGIApp]]) -> None:
        self._start = start
        self._app: ASGIApp | None = None
        self._stack: AsyncExitStack | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app
        if app is not None and scope["type"] != "lifespan":
            await app(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await send_answer(send, _NOT_STARTED)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                stack = AsyncExitStack()
                try:
                    self._app = await stack.enter_async_context(self._start())
                except Exception as exc:
                    log.error("start-up failed: %s", type(exc).__name__)
                    await stack.aclose()
                    await send({"type": "lifespan.startup.failed", "message": type(exc).__name__})
                    return
                self._stack = stack
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self._app = None
                if self._stack is not None:
                    await self._stack.aclose()
                    self._stack = None
                await send({"type": "lifespan.shutdown.complete"})
                return
