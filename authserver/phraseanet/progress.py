"""The import's progress on a terminal: rows per stage, their rate and the time left.

Only when the stream is a terminal, rewritten in place at most a few times a second; piped or
redirected output gets nothing here (the summary at the end says what happened).
"""

from __future__ import annotations

import time
from typing import TextIO

_EVERY = 0.25  # seconds between two redraws


class Progress:
    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream if stream is not None and stream.isatty() else None
        self._name = ""
        self._total = 0
        self._done = 0
        self._started = 0.0
        self._drawn = 0.0

    def stage(self, name: str, total: int) -> None:
        self._end_line()
        self._name, self._total, self._done = name, total, 0
        self._started = time.monotonic()
        self._draw(force=True)

    def advance(self, rows: int) -> None:
        self._done += rows
        self._draw(force=False)

    def finish(self) -> None:
        self._end_line()

    def line(self) -> str:
        """What the terminal shows for the current stage."""
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = self._done / elapsed
        share = f"{100 * self._done / self._total:5.1f}%" if self._total else "  -  "
        left = (self._total - self._done) / rate if rate > 0 and self._total else None
        eta = "--:--" if left is None else time.strftime("%H:%M:%S", time.gmtime(left))
        return (
            f"{self._name:<8} {self._done:>10,}/{self._total:<10,} {share}"
            f" {rate:>9,.0f} rows/s  ETA {eta}"
        )

    def _draw(self, *, force: bool) -> None:
        now = time.monotonic()
        if self._stream is None or (not force and now - self._drawn < _EVERY):
            return
        self._drawn = now
        self._stream.write("\r\x1b[2K" + self.line())
        self._stream.flush()

    def _end_line(self) -> None:
        if self._stream is not None and self._name:
            self._draw(force=True)
            self._stream.write("\n")
            self._stream.flush()
