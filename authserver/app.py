"""The two ASGI apps one process serves: public (OAuth) and admin (platform API).

Both share one ``SharedResources``: the pool is opened by whichever lifespan starts first and
closed by the last to stop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from authserver.admin import routes as admin_routes
from authserver.admin.auth import AdminAuthMiddleware, AdminTokens
from authserver.config import Settings
from authserver.oauth import authorize
from authserver.oauth import routes as oauth_routes
from authserver.resources import SharedResources
from authserver.web import health
from authserver.web.errors import EXCEPTION_HANDLERS


def _app(
    shared: SharedResources, routes: Sequence[BaseRoute], middleware: Sequence[Middleware] = ()
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


def create_public_app(shared: SharedResources) -> Starlette:
    return _app(shared, [*health.ROUTES, *oauth_routes.ROUTES, *authorize.ROUTES])


def create_admin_app(shared: SharedResources) -> Starlette:
    tokens = AdminTokens(shared.settings.admin_tokens)
    return _app(
        shared,
        [*health.ROUTES, *admin_routes.ROUTES],
        [Middleware(AdminAuthMiddleware, tokens=tokens)],
    )


def create_apps(settings: Settings) -> tuple[Starlette, Starlette]:
    shared = SharedResources(settings)
    return create_public_app(shared), create_admin_app(shared)
