"""The two ASGI apps one process serves: public (OAuth) and admin (platform API).

Each is observed as a whole (request id, access log, metrics). On the public one, the hot
OAuth endpoints are raw ASGI in front of the Starlette app that serves the pages.

Both share one ``SharedResources``: the pool is opened by whichever user starts first and
closed by the last to stop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from authserver.admin import routes as admin_routes
from authserver.admin.auth import AdminAuthMiddleware, AdminTokens
from authserver.config import Settings
from authserver.oauth import authorize
from authserver.oauth import routes as oauth_routes
from authserver.oauth.asgi import OAuthPosts
from authserver.resources import Resources, SharedResources
from authserver.web import health
from authserver.web.errors import EXCEPTION_HANDLERS
from authserver.web.observe import ObserveMiddleware, Observer


def _app(
    shared: SharedResources,
    routes: Sequence[BaseRoute],
    middleware: Sequence[Middleware] = (),
) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with shared.use() as res:
            yield {"res": res}

    return Starlette(
        routes=list(routes),
        middleware=list(middleware),
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )


async def metrics(request: Request) -> Response:
    res: Resources = request.state.res
    return Response(res.metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")


def create_public_app(shared: SharedResources) -> ASGIApp:
    observer = Observer(shared, "public")
    pages = _app(shared, [*health.ROUTES, *oauth_routes.ROUTES, *authorize.ROUTES])
    return OAuthPosts(ObserveMiddleware(pages, observer), observer)


ADMIN_ROUTES = [*health.ROUTES, Route("/metrics", metrics, methods=["GET"]), *admin_routes.ROUTES]


def create_admin_app(shared: SharedResources) -> ASGIApp:
    tokens = AdminTokens(shared.settings.admin_tokens)
    api = _app(shared, ADMIN_ROUTES, [Middleware(AdminAuthMiddleware, tokens=tokens)])
    return ObserveMiddleware(api, Observer(shared, "admin"))


def create_apps(settings: Settings) -> tuple[ASGIApp, ASGIApp]:
    shared = SharedResources(settings)
    return create_public_app(shared), create_admin_app(shared)
