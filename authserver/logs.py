"""Logs: one JSON object per line on stdout, each carrying the request id of its request.

Nothing here decides what is logged; callers log ids, routes and outcomes, never tokens,
secrets, codes, passwords or cookies (a test greps a whole run's logs for them).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
import traceback
from contextvars import ContextVar
from typing import TextIO

from authserver.periodic import Soon

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


# An access line waiting in the batch: its AccessLog, the time, the request's id, method, route,
# status, seconds taken and client id.
_Waiting = tuple["AccessLog", float, str, str, str, int, float, "str | None"]


class _Batch:
    """Access lines waiting to be written to the log stream, in one write per batch.

    stdout is usually unbuffered in containers (PYTHONUNBUFFERED), so every write is a system
    call; on the hot paths one per request cost more than the rest of an introspection with a
    forged token. Lines wait at most ``delay`` seconds, or until ``limit`` of them are waiting,
    or until any other line is logged (the handler below writes them first, so the order of
    lines is kept). A process killed outright loses what was waiting.

    A line waits as its fields, and is written out with the others of its batch: formatting
    a few hundred lines in one go costs far less than one at a time between requests, each
    finding the code and data it needs gone from the processor's caches (bench/README.md,
    step 14).
    """

    def __init__(self, stream: TextIO, delay: float = 0.05, limit: int = 512) -> None:
        self.stream = stream
        self.delay = delay
        self.limit = limit
        self._lines: list[_Waiting] = []
        self._soon = Soon(self.drain, delay)

    def add(self, line: _Waiting) -> None:
        self._lines.append(line)
        if len(self._lines) >= self.limit:
            self.drain()
        else:
            self._soon.ask()

    def drain(self) -> None:
        lines, self._lines = self._lines, []  # one swap: no line is written twice or lost
        if lines:
            text = "".join([line[0].line(line) for line in lines])
            with contextlib.suppress(OSError, ValueError):  # a closed or broken stdout
                self.stream.write(text)
                self.stream.flush()


class _Handler(logging.StreamHandler[TextIO]):
    """stdout, after the access lines logged before this record."""

    def __init__(self, batch: _Batch) -> None:
        super().__init__(batch.stream)
        self.batch = batch

    def emit(self, record: logging.LogRecord) -> None:
        self.batch.drain()
        super().emit(record)

    def flush(self) -> None:
        # logging.shutdown() flushes every handler at exit: the last batch goes out then.
        self.batch.drain()
        super().flush()


# Set by configure_logging; without it (an app embedded in tests) access lines go through
# logging like any other.
_batch: _Batch | None = None

_quote = json.encoder.encode_basestring


class AccessLog:
    """The access log: one line per request, in the shape of every other line (logger
    ``authserver.access``, level INFO, the request's id) and on the same stream.

    It runs on every request, so it goes around the logging machinery (a LogRecord, handler
    lookups and locks) and waits in a batch for its write (see ``_Batch``).
    """

    def __init__(self, listener: str) -> None:
        self._logger = logging.getLogger("authserver.access")
        self._timestamp = _Timestamps()
        self._listener = f', "listener": {_quote(listener)}}}\n'
        self._parts: dict[tuple[str, str, int], tuple[str, str]] = {}
        self._listener_name = listener

    def write(
        self,
        rid: str,
        method: str,
        route: str,
        status: int,
        seconds: float,
        client_id: str | None,
    ) -> None:
        if not self._logger.isEnabledFor(logging.INFO):
            return
        batch = _batch
        if batch is None:
            self._logged(rid, method, route, status, seconds, client_id)
            return
        batch.add((self, time.time(), rid, method, route, status, seconds, client_id))

    def line(self, waiting: _Waiting) -> str:
        """The JSON line of a request that waited in the batch as its fields."""
        _, when, rid, method, route, status, seconds, client_id = waiting
        # JsonFormatter's keys, in its order; every string is quoted by json's own encoder.
        key = (method, route, status)
        parts = self._parts.get(key)
        if parts is None:
            parts = self._parts_of(method, route, status)
        client = "" if client_id is None else f', "client_id": {_quote(client_id)}'
        return (
            f'{{"timestamp": "{self._timestamp(when)}"{parts[0]}{_quote(rid)}'
            f"{parts[1]}{round(seconds * 1000, 2)!r}{client}{self._listener}"
        )

    def _parts_of(self, method: str, route: str, status: int) -> tuple[str, str]:
        """The line's text around the request id for one method, route and status: the same
        for most requests, so quoted once (methods come from clients: the memo is bounded)."""
        if len(self._parts) >= 256:
            self._parts.clear()
        parts = (
            ', "level": "INFO", "logger": "authserver.access", '
            f'"message": {_quote(f"{method} {route} {status}")}, "request_id": ',
            f', "route": {_quote(route)}, "method": {_quote(method)}, "status": {status}, '
            '"duration_ms": ',
        )
        self._parts[(method, route, status)] = parts
        return parts

    def _logged(
        self,
        rid: str,
        method: str,
        route: str,
        status: int,
        seconds: float,
        client_id: str | None,
    ) -> None:
        token = request_id.set(rid)
        try:
            self._logger.info(
                "%s %s %d",
                method,
                route,
                status,
                extra={
                    "listener": self._listener_name,
                    "route": route,
                    "method": method,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                    "client_id": client_id,
                },
            )
        finally:
            request_id.reset(token)


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
    global _batch
    _batch = _Batch(sys.stdout if stream is None else stream)
    handler = _Handler(_batch)
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
