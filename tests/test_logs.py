"""The JSON log formatter."""

from __future__ import annotations

import json
import logging

from authserver.logs import JsonFormatter


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
