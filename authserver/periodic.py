"""Background work repeated on a timer, surviving a database that is away for a while."""

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
