"""Logs: one JSON object per line on stdout, each carrying the request id of its request.

Nothing here decides what is logged; callers log ids, routes and outcomes, never tokens,
secrets, codes, passwords or cookies (a test greps a whole run's logs for them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
import traceback
from contextvars import ContextVar
from typing import TextIO

request_id: ContextVar[str | None] = ContextVar("authserver_request_id", default=None)

# Extra attributes a log call may attach (logger.info(..., extra={...})) and the JSON keeps.
_FIELDS = ("route", "method", "status", "duration_ms", "client_id", "listener")


_encode = json.JSONEncoder(ensure_ascii=False).encode


class _Timestamps:
    """ISO 8601 in UTC with microseconds, as datetime.isoformat() writes it; the part down to
    the second is formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((created - second) * 1_000_000):06d}+00:00"


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._timestamp = _Timestamps()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "timestamp": self._timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid is not None:
            entry["request_id"] = rid
        fields = record.__dict__
        for name in _FIELDS:
            value = fields.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info and record.exc_info[1] is not None:
            entry["exception"] = _where(record.exc_info[1])
        return _encode(entry)


class AccessLog:
    """The access log: one line per request, in the shape of every other line (logger
    ``authserver.access``, level INFO) and, once ``configure_logging`` ran, on the same stream.

    It is written on every request, so it goes around the logging machinery (a LogRecord,
    handler lookups and locks, a flush per line): through it, the line cost more than the rest
    of an introspection with a forged token. Lines are flushed in batches, at most
    ``FLUSH_DELAY`` seconds after they were written (a log line at WARNING or above flushes at
    once, with them); a process killed outright loses that much. Without ``configure_logging``
    (an app embedded in tests) the lines go through logging as usual.
    """

    FLUSH_DELAY = 0.05  # seconds

    def __init__(self) -> None:
        self._logger = logging.getLogger("authserver.access")
        self._timestamp = _Timestamps()
        # The loop a flush is scheduled on; a loop closed before it ran no longer counts.
        self._flush_on: asyncio.AbstractEventLoop | None = None

    def write(
        self,
        rid: str,
        listener: str,
        method: str,
        route: str,
        status: int,
        seconds: float,
        client_id: str | None,
    ) -> None:
        if not self._logger.isEnabledFor(logging.INFO):
            return
        fields: dict[str, object] = {
            "route": route,
            "method": method,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
        }
        if client_id is not None:
            fields["client_id"] = client_id
        fields["listener"] = listener
        message = f"{method} {route} {status}"
        stream = _stream
        if stream is None:
            self._logger.info(message, extra=fields)
            return
        entry = {
            "timestamp": self._timestamp(time.time()),
            "level": "INFO",
            "logger": "authserver.access",
            "message": message,
            "request_id": rid,
            **fields,
        }
        stream.write(_encode(entry) + "\n")
        loop = asyncio.get_running_loop()
        if self._flush_on is not loop:  # no flush pending on this loop yet
            self._flush_on = loop
            loop.call_later(self.FLUSH_DELAY, self._flush, stream)

    def _flush(self, stream: TextIO) -> None:
        self._flush_on = None
        with contextlib.suppress(OSError, ValueError):  # a closed or broken stdout
            stream.flush()


# Where configure_logging sends every line; the access log writes there directly.
_stream: TextIO | None = None


def _where(exc: BaseException) -> str:
    """The exception's type and where it was raised, without its message.

    Messages can quote data: asyncpg's, for one, repeat a query argument that did not fit,
    and an argument may be a token digest's source or a password. The type and the frames are
    what an operator needs to find the fault.
    """
    frames = "".join(traceback.format_tb(exc.__traceback__))
    kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
    return f"Traceback (most recent call last):\n{frames}{kind}"


def configure_logging(level: str, stream: TextIO | None = None) -> None:
    """JSON lines at ``level`` and above on ``stream`` (stdout), for the whole process."""
    # No record field names a thread, a process or a source line: skip collecting them
    # (the logging HOWTO's "Optimization" section lists these switches).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    global _stream
    _stream = sys.stdout if stream is None else stream
    handler = logging.StreamHandler(_stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Our own access line replaces uvicorn's, which would log query strings.
    logging.getLogger("uvicorn.access").disabled = True
    # oauthlib logs tokens and codes at DEBUG; it never goes below INFO here.
    logging.getLogger("oauthlib").setLevel(max(logging.INFO, logging.getLevelName(level)))
