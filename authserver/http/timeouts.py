"""The head and body timeouts of one connection (authserver.http.protocol), on one lazy timer.

Every request moves its connection's deadline twice (head, then body) and clears it once; a
timer made and cancelled each time cost more than the rest of the connection's bookkeeping
(bench/README.md, step 13). The deadline is a number instead, and one timer wakes at the
earliest deadline it may have to enforce: there it calls ``expired``, or sleeps again until the
deadline as it is by then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class ClientTimeout:
    __slots__ = ("_deadline", "_expired", "_loop", "_timer", "_timer_at")

    def __init__(self, loop: asyncio.AbstractEventLoop, expired: Callable[[], None]) -> None:
        self._loop = loop
        self._expired = expired
        self._deadline: float | None = None  # on the loop's clock
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    @property
    def armed(self) -> bool:
        return self._deadline is not None

    def arm(self, seconds: float) -> None:
        """``expired`` is called in ``seconds`` unless armed again or disarmed before."""
        deadline = self._loop.time() + seconds
        self._deadline = deadline
        timer = self._timer
        if timer is None or self._timer_at > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = self._loop.call_at(deadline, self._wake)
            self._timer_at = deadline

    def disarm(self) -> None:
        self._deadline = None  # the timer, if any, wakes to nothing

    def close(self) -> None:
        """Disarm, and let go of the timer (the connection is gone)."""
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _wake(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None:
            return
        if self._loop.time() >= deadline:
            self._deadline = None
            self._expired()
        else:
            self._timer = self._loop.call_at(deadline, self._wake)
            self._timer_at = deadline
