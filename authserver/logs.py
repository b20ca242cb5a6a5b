"""Logs: one JSON object per line on stdout, each carrying the request id of its request.

Nothing here decides what is logged; callers log ids, routes and outcomes, never tokens,
secrets, codes, passwords or cookies (a test greps a whole run's logs for them).
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("authserver_request_id", default=None)

# Extra attributes a log call may attach (logger.info(..., extra={...})) and the JSON keeps.
_FIELDS = ("route", "method", "status", "duration_ms", "client_id", "listener")


class JsonFormatter(logging.Formatter):
    """One JSON object per record. It runs once per request (the access line): the encoder
    is built once, and the date part of the timestamp is formatted once per second."""

    def __init__(self) -> None:
        super().__init__()
        self._encode = json.JSONEncoder(ensure_ascii=False).encode
        self._second = -1
        self._prefix = ""

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
        return self._encode(entry)

    def _timestamp(self, created: float) -> str:
        """ISO 8601 in UTC with microseconds, as datetime.isoformat() writes it."""
        second = int(created)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((created - second) * 1_000_000):06d}+00:00"


def _where(exc: BaseException) -> str:
    """The exception's type and where it was raised, without its message.

    Messages can quote data: asyncpg's, for one, repeat a query argument that did not fit,
    and an argument may be a token digest's source or a password. The type and the frames are
    what an operator needs to find the fault.
    """
    frames = "".join(traceback.format_tb(exc.__traceback__))
    kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
    return f"Traceback (most recent call last):\n{frames}{kind}"


def configure_logging(level: str) -> None:
    # No record field names a thread, a process or a source line: skip collecting them
    # (the logging HOWTO's "Optimization" section lists these switches).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    handler = logging.StreamHandler(sys.stdout)
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
