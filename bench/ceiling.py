"""The HTTP stack's ceiling: a raw ASGI app that answers every request with one fixed JSON body.

No routing, no parsing beyond reading the body, no database. Served exactly as authserver and
the floor are (authserver.serve's uvicorn server with httptools, on uvloop), it is the most
requests per second this stack gives on this machine: what is left between it and authserver is
the work of answering. Run as ``python -m bench.ceiling`` with the AUTHSERVER_* environment.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

from starlette.types import Receive, Scope, Send

from authserver.config import Settings
from authserver.logs import configure_logging
from authserver.serve import listener_server, run_served

_BODY = b'{"active": true}'
_START: dict[str, Any] = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(_BODY)).encode()),
    ],
}
_END: dict[str, Any] = {"type": "http.response.body", "body": _BODY}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    # Read the request body to its end, as any endpoint that answers a form must.
    while (await receive()).get("more_body", False):
        pass
    await send(_START)
    await send(_END)


async def serve(settings: Settings) -> None:
    server = listener_server(app, settings.public_addr, settings)

    def stop() -> None:
        server.should_exit = True

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
