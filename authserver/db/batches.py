"""Database calls made together, sent as one: group commit for the hot paths.

The hot paths run many requests at once, and each taking a pooled connection for a round trip
of its own costs more than its statement: the pool's acquire and release, the system calls,
PostgreSQL's wake-up and, for writes, a commit. A call through ``Batches`` waits instead until
the event loop has run what is ready (the other requests that arrived with it), and every call
made meanwhile goes to PostgreSQL in one statement (at most ``limit``).

While a batch is out, the next one waits for it to come back, gathering every call made in
the meantime: under load the round trips stay one at a time and the batches grow to what the
load is, instead of many small ones each paying a round trip and a commit (bench/README.md,
step 15). A batch out longer than ``stall`` (a lock wait, say) no longer holds the next: at
worst a call waits that long more than its own statement would.

Nothing is cached: each call is answered by a statement sent after it was made, so it sees
every change committed before it, as its own statement would. At light load a batch is one
call, sent at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Sends a batch; answers one result per call, in order, or an exception for a call that
# failed on its own. An exception raised fails every call of the batch.
Send = Callable[[list[T]], Awaitable[Sequence[R | Exception]]]

STALL = 0.02  # seconds a batch out holds the next one back, at most


class Batches(Generic[T, R]):
    def __init__(self, send: Send[T, R], limit: int = 64, stall: float = STALL) -> None:
        self._send = send
        self.limit = limit
        self._stall = stall
        self._calls: list[T] = []
        self._futures: list[asyncio.Future[R]] = []
        self._scheduled: asyncio.Handle | None = None
        self._running: set[asyncio.Task[None]] = set()  # held so none is collected mid-flight
        self._last_sent = 0.0  # loop time the youngest batch out was sent

    async def __call__(self, call: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._calls.append(call)
        self._futures.append(future)
        if len(self._calls) >= self.limit:
            self._send_now()
        elif self._scheduled is None:
            self._scheduled = loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = None
        if self._running:
            loop = asyncio.get_running_loop()
            held_until = self._last_sent + self._stall
            if loop.time() < held_until:
                # Sent when the batch out comes back (_landed), or when it has stalled.
                self._scheduled = loop.call_at(held_until, self._flush)
                return
        self._send_now()

    def _send_now(self) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        calls, futures = self._calls, self._futures
        self._calls, self._futures = [], []
        if calls:
            loop = asyncio.get_running_loop()
            self._last_sent = loop.time()
            task = loop.create_task(self._run(calls, futures))
            self._running.add(task)
            task.add_done_callback(self._landed)

    def _landed(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._calls:
            self._send_now()

    async def _run(self, calls: list[T], futures: list[asyncio.Future[R]]) -> None:
        try:
            results = await self._send(calls)
        except BaseException as exc:
            # Every call fails as its own statement would have (503 when the database is
            # down); a batch cancelled at shutdown cancels its calls.
            for future in futures:
                if not future.done():
                    if isinstance(exc, asyncio.CancelledError):
                        future.cancel()
                    else:
                        future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for future, result in zip(futures, results, strict=True):
            # A request cancelled while it waited (its client went away) needs no answer.
            with suppress(asyncio.InvalidStateError):
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
