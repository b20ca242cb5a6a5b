"""The JSON log formatter and the access log."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
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
    saved = (root.handlers[:], root.level, logs._batch, logging._srcfile)
    recorded = Recorded()
    configure_logging("INFO", recorded)
    yield recorded
    root.handlers[:], level, logs._batch, logging._srcfile = saved
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
    AccessLog("public").write("rid-1", "POST", "/oauth2/token", 200, 0.0015, "client-1")
    assert logs._batch is not None
    logs._batch.drain()
    logged, direct = _lines(stream)
    assert logged.pop("timestamp")
    assert direct.pop("timestamp")
    assert direct == logged
    assert list(direct) == list(logged)


async def test_access_lines_are_written_soon_in_one_write(stream: Recorded) -> None:
    """Lines logged in a burst reach the stream together, within the batch delay."""
    access = AccessLog("public")
    for status in (200, 401, 200):
        access.write("rid", "POST", "/oauth2/introspect", status, 0.001, None)
    assert stream.getvalue() == ""
    assert logs._batch is not None
    await asyncio.sleep(logs._batch.delay * 3)
    assert stream.flushes == 1
    assert [line["status"] for line in _lines(stream)] == [200, 401, 200]


async def test_waiting_line_keeps_the_time_of_its_request(stream: Recorded) -> None:
    """A line written out with its batch carries the time it was logged, not the batch's."""
    logged = time.time()
    AccessLog("public").write("rid", "POST", "/oauth2/introspect", 200, 0.001, None)
    assert logs._batch is not None
    await asyncio.sleep(logs._batch.delay * 3)
    (line,) = _lines(stream)
    stamped = datetime.fromisoformat(str(line["timestamp"])).timestamp()
    assert logged - 0.001 <= stamped < logged + logs._batch.delay / 2


async def test_other_lines_keep_their_place(stream: Recorded) -> None:
    """A line logged after waiting access lines is written after them, at once."""
    AccessLog("public").write("rid", "POST", "/oauth2/token", 200, 0.001, None)
    logging.getLogger("authserver").warning("database unavailable")
    assert [line["level"] for line in _lines(stream)] == ["INFO", "WARNING"]


async def test_a_full_batch_is_written_at_once(stream: Recorded) -> None:
    """Past the batch limit, lines are written without waiting for the delay."""
    assert logs._batch is not None
    access = AccessLog("admin")
    for _ in range(logs._batch.limit):
        access.write("rid", "GET", "/metrics", 200, 0.001, None)
    assert len(_lines(stream)) == logs._batch.limit


async def test_access_line_quotes_what_it_carries(stream: Recorded) -> None:
    """Odd characters in a client id or method stay inside their JSON strings."""
    access = AccessLog("public")
    access.write('r"1', 'PO"ST', "/oauth2/token", 200, 0.001, 'cli"ent\né')
    assert logs._batch is not None
    logs._batch.drain()
    (line,) = _lines(stream)
    assert (line["method"], line["client_id"], line["request_id"]) == (
        'PO"ST',
        'cli"ent\né',
        'r"1',
    )


async def test_no_access_line_above_info(stream: Recorded) -> None:
    """At WARNING the access log writes nothing, not even once its batch is flushed."""
    logging.getLogger().setLevel("WARNING")
    AccessLog("public").write("rid", "GET", "/healthz", 200, 0.001, None)
    for handler in logging.getLogger().handlers:
        handler.flush()  # writes whatever waits in the batch, as logging.shutdown() does
    assert stream.getvalue() == ""


@pytest.mark.parametrize("created", [0.0, 1795871691.2634966, 1795871691.9999996, 1e9 + 0.5])
def test_timestamps_read_as_the_instant(created: float) -> None:
    """Cached-second timestamps are ISO 8601 UTC and name the instant to the microsecond."""
    stamp = logs._Timestamps()(created)
    exact = datetime.fromtimestamp(created, UTC)
    assert abs(datetime.fromisoformat(stamp) - exact) <= timedelta(microseconds=1)
    assert len(stamp) == len("2026-11-28T13:00:20.880391+00:00")


async def test_waiting_lines_are_written_at_shutdown(stream: Recorded) -> None:
    """logging.shutdown(), which runs at exit, writes the lines still waiting."""
    AccessLog("public").write("rid", "POST", "/oauth2/token", 200, 0.001, None)
    for handler in logging.getLogger().handlers:
        handler.flush()  # what logging.shutdown() does to every handler
    assert len(_lines(stream)) == 1
