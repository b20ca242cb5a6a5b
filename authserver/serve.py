"""Serving: both listeners in one process, one event loop, one shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Generator

import uvicorn

from authserver.app import create_apps
from authserver.config import Address, Settings


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to ``serve`` (two servers, one signal)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _server(app: object, addr: Address, settings: Settings) -> _Server:
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=addr.host,
        port=addr.port,
        lifespan="on",
        log_level=settings.log_level.lower(),
        server_header=False,
        timeout_graceful_shutdown=20,
        log_config=None,
    )
    return _Server(config)


async def serve(settings: Settings) -> bool:
    """Serve until a signal, or until either listener fails; True if both ran."""
    public, admin = create_apps(settings)
    servers = [
        _server(public, settings.public_addr, settings),
        _server(admin, settings.admin_addr, settings),
    ]

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    def on_signal() -> None:
        for server in servers:
            server.force_exit = server.should_exit  # a second signal while draining means "now"
        stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    logging.getLogger("authserver").info(
        "public listener on %s, admin listener on %s", settings.public_addr, settings.admin_addr
    )

    async def run(server: _Server) -> None:
        try:
            await server.serve()
        except SystemExit:
            # uvicorn logs a failed bind and calls sys.exit() inside the event loop; let it
            # count as "did not start" (exit status 1) instead of tearing the loop down.
            pass
        finally:
            stop()  # one listener down (failed start-up, signal) takes the other with it

    try:
        await asyncio.gather(*(run(server) for server in servers))
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return all(server.started for server in servers)
