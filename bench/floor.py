"""The floor: the least an introspection endpoint on this stack can do.

A bare Starlette app with one POST route: read the form body, SHA-256 the token, one indexed
lookup in the real tokens table through one asyncpg pool, a JSON answer. No client
authentication, no MAC check, no oauthlib. Every authserver figure is a ratio to this one.

It is served the way authserver serves: the same settings, the pool from authserver's
create_pool, the event loop and the uvicorn server from authserver.serve and the logging from
authserver.logs (so the event loop, HTTP parser, log handling and pool size follow whatever
authserver uses). What authserver's apps add on top (its middleware, its own access log) is
authserver's cost.
Run as ``python -m bench.floor`` with the AUTHSERVER_* environment authserver gets.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authserver.config import Settings
from authserver.db.pool import create_pool
from authserver.logs import configure_logging
from authserver.serve import listener_server, run_served
from bench.config import INTROSPECT_PATH

_LOOKUP = "SELECT kind, client_id, scope, expires_at FROM tokens WHERE digest = $1"


async def introspect(request: Request) -> Response:
    form = dict(parse_qsl((await request.body()).decode("latin-1")))
    digest = hashlib.sha256(form.get("token", "").encode()).digest()
    pool: asyncpg.Pool = request.state.pool
    row = await pool.fetchrow(_LOOKUP, digest)
    if row is None:
        return JSONResponse({"active": False})
    expires = row["expires_at"]
    return JSONResponse(
        {
            "active": True,
            "client_id": row["client_id"],
            "scope": row["scope"],
            "exp": None if expires is None else int(expires.timestamp()),
        }
    )


def create_app(settings: Settings) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        pool = await create_pool(settings)
        try:
            yield {"pool": pool}
        finally:
            await pool.close()

    return Starlette(
        routes=[Route(INTROSPECT_PATH, introspect, methods=["POST"])], lifespan=lifespan
    )


async def serve(settings: Settings) -> None:
    server = listener_server(create_app(settings), settings.public_addr, settings, lifespan=True)

    def stop() -> None:
        server.should_exit = True

    # authserver's server class leaves signals to its caller; so must we.
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    await server.serve()


def main() -> None:
    settings = Settings.from_env(os.environ)
    configure_logging(settings.log_level)
    run_served(serve(settings))


if __name__ == "__main__":
    main()
