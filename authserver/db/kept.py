"""A pool connection kept by a caller that sends one statement after another: the batch
senders of authserver.db.batches.

Through the pool, every statement pays an acquire and a release: about 26 µs of the event
loop's time, a task and three timers (bench/README.md, step 16). Under load a batch sender
sends its statements one after another, so ``KeptConnection`` keeps the connection it took
while they follow each other, and gives it back to the pool once ``IDLE`` seconds pass without
one. A statement made while the kept connection is busy (a batch sent past a stalled one) goes
through the pool; so does every statement once ``close`` was called. A statement that fails
gives its connection back (asyncpg rolls back or closes it there): the next takes another.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

T = TypeVar("T")
Pooled: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"  # generic to the checker only

IDLE = 0.1  # seconds without a statement after which the connection goes back to the pool
# The smallest pool whose two batch senders keep connections: two are left to everything else.
KEEP_FROM = 4


class KeptConnection:
    def __init__(self, pool: asyncpg.Pool, idle: float = IDLE) -> None:
        self._pool = pool
        self._idle = idle
        self._conn: Pooled | None = None
        self._busy = False
        self._closed = False
        self._last_used = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._giving_back: set[asyncio.Task[None]] = set()

    async def execute(self, query: str, *args: Any) -> str:
        return await self._run(lambda conn: conn.execute(query, *args))

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return await self._run(lambda conn: conn.fetch(query, *args))

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        return await self._run(lambda conn: conn.fetchrow(query, *args))

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self._run(lambda conn: conn.fetchval(query, *args))

    async def close(self) -> None:
        """Give the connection back now (before the pool closes); later statements go
        through the pool."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._conn is not None and not self._busy:
            conn, self._conn = self._conn, None
            await self._pool.release(conn)
        if self._giving_back:
            await asyncio.gather(*self._giving_back, return_exceptions=True)

    async def _run(self, statement: Callable[[Pooled], Awaitable[T]]) -> T:
        if self._busy or self._closed:
            async with self._pool.acquire() as conn:
                return await statement(conn)
        self._busy = True
        try:
            if self._conn is None:
                self._conn = await self._pool.acquire()
            try:
                return await statement(self._conn)
            except BaseException:
                self._give_back()
                raise
        finally:
            self._busy = False
            if self._conn is not None:
                if self._closed:
                    self._give_back()
                else:
                    self._last_used = asyncio.get_running_loop().time()
                    if self._timer is None:
                        self._timer = asyncio.get_running_loop().call_at(
                            self._last_used + self._idle, self._expire
                        )

    def _expire(self) -> None:
        """Give the connection back if it was idle ``IDLE`` seconds, else look again then:
        one timer while statements follow each other, not one per statement."""
        self._timer = None
        if self._conn is None:
            return
        loop = asyncio.get_running_loop()
        due = self._last_used + self._idle
        if self._busy or loop.time() < due:
            self._timer = loop.call_at(max(due, loop.time() + self._idle / 10), self._expire)
            return
        self._give_back()

    def _give_back(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        task = asyncio.get_running_loop().create_task(self._pool.release(conn))
        self._giving_back.add(task)
        task.add_done_callback(self._giving_back.discard)
