"""Serving: both listeners in one process, one event loop, one shutdown.

The services are opened before the listeners start, so a database that cannot be reached
fails the start with one clear line instead of two lifespan tracebacks. On SIGTERM both
listeners stop accepting, in-flight requests get ``shutdown_grace`` seconds to finish, and
only then is the pool closed. One of several worker processes (``authserver.workers``) serves
the same way, on listening sockets its supervisor bound (a ``WorkerRole``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from starlette.types import ASGIApp

from authserver.config import Address, Settings
from authserver.http.health import Health
from authserver.http.held import HeldAnswers
from authserver.http.protocol import ConnectionLimits, guarded
from authserver.services import admin_app, open_services, public_app

T = TypeVar("T")

log = logging.getLogger("authserver")

# Seconds a connection accepted just before SIGTERM gets to send its request once the listener
# is closed (capped by the shutdown grace).
FIRST_REQUEST_GRACE = 0.5
PARENT_CHECK = 1.0  # seconds between a worker's looks at whether its supervisor is still there


@dataclass(frozen=True)
class WorkerRole:
    """What makes a serving process one of several workers."""

    public: socket.socket  # listening sockets the supervisor bound, shared by every worker
    admin: socket.socket
    metrics_dir: Path  # prometheus-client's multiprocess files, added up by /metrics
    parent: int  # the supervisor's pid: once it is gone, the worker drains and exits
    ready: Callable[[], None]  # called once, when both listeners accept


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


def listener_server(
    app: ASGIApp,
    addr: Address,
    settings: Settings,
    *,
    lifespan: bool = False,
    now: HeldAnswers | None = None,
) -> _Server:
    """One uvicorn server as authserver runs it (the benchmark floor is served the same way,
    with its own lifespan; authserver's services are opened before the listeners instead).
    ``now`` answers the requests memory settles before they reach ``app``."""
    limits = ConnectionLimits(
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
        max_connections=settings.max_connections,
    )
    config = uvicorn.Config(
        app,
        host=addr.host,
        port=addr.port,
        http=guarded(limits, now),
        ws="none",
        lifespan="on" if lifespan else "off",
        log_level=settings.log_level.lower(),
        access_log=False,  # authserver.http.observe writes the access log, without queries
        server_header=False,
        timeout_graceful_shutdown=settings.shutdown_grace,
        log_config=None,
    )
    return _Server(config)


async def serve(settings: Settings, role: WorkerRole | None = None) -> bool:
    """Serve until a signal, or until either listener fails; True if both ran."""
    metrics_dir = role.metrics_dir if role is not None else None
    async with open_services(settings, background=True, metrics_dir=metrics_dir) as services:
        public = public_app(services)
        servers = [
            listener_server(public, settings.public_addr, settings, now=public),
            listener_server(admin_app(services), settings.admin_addr, settings),
        ]
        await _serve_until_stopped(servers, settings, services.health, role)
    return all(server.started for server in servers)


async def _serve_until_stopped(
    servers: list[_Server], settings: Settings, health: Health, role: WorkerRole | None = None
) -> None:
    loop = asyncio.get_running_loop()
    stopping: asyncio.TimerHandle | None = None

    def stop() -> None:
        health.draining = True  # /readyz answers 503 while in-flight requests finish
        for server in servers:
            server.should_exit = True

    def on_signal(signum: int) -> None:
        nonlocal stopping
        for server in servers:
            server.force_exit = server.should_exit  # a second signal while draining means "now"
        if signum == signal.SIGTERM and settings.drain_delay > 0 and stopping is None:
            # Not ready from now on, but still serving for a while: load balancers take some
            # time to notice, and whatever they send meanwhile is answered, not refused.
            health.draining = True
            log.info("draining for %s s before the listeners close", settings.drain_delay)
            stopping = loop.call_later(settings.drain_delay, stop)
            return
        if stopping is not None:
            stopping.cancel()
        stop()

    async def run(server: _Server, sock: socket.socket | None) -> None:
        try:
            await server.serve(sockets=None if sock is None else [sock])
        except SystemExit:
            # uvicorn logs a failed bind and calls sys.exit() inside the event loop; let it
            # count as "did not start" (exit status 1) instead of tearing the loop down.
            pass
        finally:
            stop()  # one listener down (failed start-up, signal) takes the other with it

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    log.debug("event loop: %s.%s", type(loop).__module__, type(loop).__qualname__)
    log.info(
        "public listener on %s, admin listener on %s",
        settings.public_addr,
        settings.admin_addr,
    )
    sockets = [None, None] if role is None else [role.public, role.admin]
    watch = None if role is None else asyncio.create_task(_watch(servers, role, on_signal))
    try:
        await asyncio.gather(
            *(run(server, sock) for server, sock in zip(servers, sockets, strict=True))
        )
    finally:
        if watch is not None:
            watch.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _watch(
    servers: list[_Server], role: WorkerRole, on_signal: Callable[[int], None]
) -> None:
    """Tell the supervisor when both listeners accept; drain as on SIGTERM if it goes away
    (killed outright, it could not pass the signal on)."""
    # uvicorn says "started" with a flag, and only the kernel knows the parent is gone: polled.
    while not all(server.started for server in servers):  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    role.ready()
    while os.getppid() == role.parent:  # noqa: ASYNC110
        await asyncio.sleep(PARENT_CHECK)
    log.warning("the supervisor is gone; draining")
    on_signal(signal.SIGTERM)
