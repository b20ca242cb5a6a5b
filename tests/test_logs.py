"""The JSON log formatter and the access log."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from authserver import logs
from authserver.logs import AccessLog, JsonFormatter, configure_logging, request_id


def _record_with(exc: BaseException) -> logging.LogRecord:
    try:
        raise exc
    except type(exc) as raised:
        return logging.LogRecord(
            "t",
            logging.ERROR,
            __file__,
            1,
            "failed",
            None,
            (
                type(raised),
                raised,
                raised.__traceback__,
            ),
        )


def test_exception_message_stays_out_of_logs() -> None:
    """A logged exception keeps its type and frames but not its message, which may hold data."""
    line = JsonFormatter().format(_record_with(ValueError("argument phrat_secret123")))
    entry = json.loads(line)
    assert "phrat_secret123" not in line
    assert entry["exception"].endswith("builtins.ValueError")
    assert "test_logs.py" in entry["exception"]


class Recorded(io.StringIO):
    """A stream that counts its flushes."""

    flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


@pytest.fixture
def stream() -> Iterator[Recorded]:
    """Process logging configured onto a fresh stream, and put back as it was afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logs._stream, logging._srcfile)
    recorded = Recorded()
    configure_logging("INFO", recorded)
    yield recorded
    root.handlers[:], level, logs._stream, logging._srcfile = saved
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_access_line_has_the_shape_of_a_logged_line(stream: Recorded) -> None:
    """An access line carries the same fields, and values, as one written through logging."""
    token = request_id.set("rid-1")
    try:
        logging.getLogger("authserver.access").info(
            "POST /oauth2/token 200",
            extra={
                "listener": "public",
                "route": "/oauth2/token",
                "method": "POST",
                "status": 200,
                "duration_ms": 1.5,
                "client_id": "client-1",
            },
        )
    finally:
        request_id.reset(token)
    AccessLog().write("rid-1", "public", "POST", "/oauth2/token", 200, 0.0015, "client-1")
    logged, direct = _lines(stream)
    assert logged.pop("timestamp")
    assert direct.pop("timestamp")
    assert direct == logged
    assert list(direct) == list(logged)


async def test_access_lines_are_flushed_soon(stream: Recorded) -> None:
    """Lines written in a burst reach the stream with one flush, within the flush delay."""
    access = AccessLog()
    for status in (200, 401, 200):
        access.write("rid", "public", "POST", "/oauth2/introspect", status, 0.001, None)
    assert stream.flushes == 0
    await asyncio.sleep(AccessLog.FLUSH_DELAY * 3)
    assert stream.flushes == 1
    assert [line["status"] for line in _lines(stream)] == [200, 401, 200]


async def test_no_access_line_above_info(stream: Recorded) -> None:
    """At WARNING the access log writes nothing."""
    logging.getLogger().setLevel("WARNING")
    AccessLog().write("rid", "public", "GET", "/healthz", 200, 0.001, None)
    assert stream.getvalue() == ""


@pytest.mark.parametrize("created", [0.0, 1795871691.2634966, 1795871691.9999996, 1e9 + 0.5])
def test_timestamps_read_as_the_instant(created: float) -> None:
    """Cached-second timestamps are ISO 8601 UTC and name the instant to the microsecond."""
    stamp = logs._Timestamps()(created)
    exact = datetime.fromtimestamp(created, UTC)
    assert abs(datetime.fromisoformat(stamp) - exact) <= timedelta(microseconds=1)
    assert len(stamp) == len("2026-11-28T13:00:20.880391+00:00")
