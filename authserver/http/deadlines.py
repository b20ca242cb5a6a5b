"""Every request answered within a bound, whatever it waits for (a frozen database, a lock, a
full pool): past ``seconds`` it is cut off and answered 503 with Retry-After (checklist R-09).

The database's own bounds (acquire, statement and lock timeouts) come first; this is the last
word. A request cut off while its connection is stuck may take up to the pool's acquire
timeout more, while asyncpg gives the connection up.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authserver.answer import Answer, error_json

log = logging.getLogger("authserver")

TOO_SLOW: Answer = error_json(
    503,
    "temporarily_unavailable",
    "the request took too long; retry later",
    [(b"retry-after", b"1")],
)
_TICK = 0.25  # seconds between the watchdog's looks


class Deadlines:
    """One watchdog for the hot paths' requests: entering and leaving cost a dictionary update,
    not a timer per request (the raw endpoints answer in a tenth of a millisecond)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._running: dict[asyncio.Task[object], float] = {}
        self._overdue: set[asyncio.Task[object]] = set()
        self._watching: asyncio.TimerHandle | None = None

    def enter(self) -> asyncio.Task[object]:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        self._running[task] = loop.time() + self.seconds
        if self._watching is None:
            self._watching = loop.call_later(_TICK, self._watch)
        return task

    def leave(self, task: asyncio.Task[object]) -> None:
        self._running.pop(task, None)
        self._overdue.discard(task)

    def cut_off(self, task: asyncio.Task[object]) -> bool:
        """Was ``task`` cancelled by this watchdog? If so, it goes on to answer 503."""
        if task not in self._overdue:
            return False
        task.uncancel()
        return True

    def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for task, ends in list(self._running.items()):
            if ends < now and task not in self._overdue:
                self._overdue.add(task)
                task.cancel()
        self._watching = loop.call_later(_TICK, self._watch) if self._running else None


class Deadline:
    """The same bound around an ASGI app (the pages and the admin API), with a timer each."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def noting_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            async with asyncio.timeout(self.seconds):
                await self.app(scope, receive, noting_send)
        except TimeoutError:
            log.warning("request cut off after %s s", self.seconds)
            if not started:
                await send(
                    {"type": "http.response.start", "status": 503, "headers": TOO_SLOW.headers}
                )
                await send({"type": "http.response.body", "body": TOO_SLOW.body})
