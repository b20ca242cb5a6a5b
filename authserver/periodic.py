"""Background work on a timer: repeated, surviving a database that is away for a while
(``every``), or put off a moment and done once for everything that asked for it meanwhile
(``Soon``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def every(
    interval: float, step: Callable[[], Awaitable[object]], failure: str, *, at_once: bool = False
) -> None:
    """Run ``step`` every ``interval`` seconds until cancelled (first at once if ``at_once``);
    a failed turn logs ``failure`` with the exception's type only, and the next turn tries again."""
    if not at_once:
        await asyncio.sleep(interval)
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database may be away; the next turn looks again
            log.warning("%s: %s", failure, type(exc).__name__)
        await asyncio.sleep(interval)


class Soon:
    """``run``, ``delay`` seconds after the first ``ask`` since it last ran: the hot paths note
    what they did (an access line, a count) and the work is done for a few hundred of them at
    once, which costs far less than one at a time between requests (bench/README.md, step 14).
    Outside an event loop ``ask`` runs it at once; a loop closed before it ran no longer counts.
    """

    __slots__ = ("_delay", "_on", "_run")

    def __init__(self, run: Callable[[], None], delay: float) -> None:
        self._run = run
        self._delay = delay
        self._on: asyncio.AbstractEventLoop | None = None  # the loop it is scheduled on

    def ask(self) -> None:
        on = self._on
        if on is not None and not on.is_closed():
            return  # already due on a loop that will run it
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._run()
            return
        self._on = loop
        loop.call_later(self._delay, self._due)

    def _due(self) -> None:
        self._on = None
        self._run()
