"""Serving: both listeners in one process, one event loop, one shutdown.

The shared resources are opened before the listeners start, so a database that cannot be
reached fails the start with one clear line instead of two lifespan tracebacks. On SIGTERM
both listeners stop accepting, in-flight requests get ``shutdown_grace`` seconds to finish,
and only then is the pool closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

import uvicorn
from starlette.types import ASGIApp

from authserver.app import create_admin_app, create_public_app
from authserver.config import Address, Settings
from authserver.resources import SharedResources

T = TypeVar("T")

log = logging.getLogger("authserver")

# Seconds a connection accepted just before SIGTERM gets to send its request once the listener
# is closed (capped by the shutdown grace).
FIRST_REQUEST_GRACE = 0.5


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to ``serve`` (two servers, one signal)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop accepting, then give connections already accepted a moment to send a request.

        uvicorn closes every connection that has no request in progress the moment it shuts
        down, including one accepted an instant earlier whose request is still on its way (or
        unread in its buffer): that request would be dropped. New connections are refused from
        here on; requests arriving meanwhile on open ones are answered, then uvicorn's own
        shutdown closes idle connections and waits for the rest.
        """
        for server in self.servers:
            server.close()
        grace = min(FIRST_REQUEST_GRACE, float(self.config.timeout_graceful_shutdown or 0))
        if grace > 0 and not self.force_exit:
            await asyncio.sleep(grace)
        await super().shutdown(sockets)


def run_served(main: Coroutine[Any, Any, T]) -> T:
    """Run a server's event loop: uvloop where it is installed (it is a dependency on Linux
    and macOS), asyncio's own loop otherwise. Serving the same requests costs uvloop's loop
    less CPU per request; bench/README.md has the figures."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(main)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def listener_server(app: ASGIApp, addr: Address, settings: Settings) -> _Server:
    """One uvicorn server as authserver runs it (the benchmark floor is served the same way)."""
    config = uvicorn.Config(
        app,
        host=addr.host,
        port=addr.port,
        lifespan="on",
        log_level=settings.log_level.lower(),
        access_log=False,  # authserver.web.observe writes the access log, without query strings
        server_header=False,
        timeout_graceful_shutdown=settings.shutdown_grace,
        log_config=None,
    )
    return _Server(config)


async def serve(settings: Settings) -> bool:
    """Serve until a signal, or until either listener fails; True if both ran."""
    shared = SharedResources(settings)
    servers = [
        listener_server(create_public_app(shared), settings.public_addr, settings),
        listener_server(create_admin_app(shared), settings.admin_addr, settings),
    ]

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    def on_signal() -> None:
        for server in servers:
            server.force_exit = server.should_exit  # a second signal while draining means "now"
        stop()

    async def run(server: _Server) -> None:
        try:
            await server.serve()
        except SystemExit:
            # uvicorn logs a failed bind and calls sys.exit() inside the event loop; let it
            # count as "did not start" (exit status 1) instead of tearing the loop down.
            pass
        finally:
            stop()  # one listener down (failed start-up, signal) takes the other with it

    async with shared.use():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        log.debug("event loop: %s.%s", type(loop).__module__, type(loop).__qualname__)
        log.info(
            "public listener on %s, admin listener on %s",
            settings.public_addr,
            settings.admin_addr,
        )
        try:
            await asyncio.gather(*(run(server) for server in servers))
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
    return all(server.started for server in servers)
