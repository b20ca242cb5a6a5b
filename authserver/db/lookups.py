"""Token lookups by digest, gathered into one query per turn of the event loop.

Introspection is the hottest path there is, and under load many are in flight at once: each
taking a pooled connection for a round trip of its own costs more than the query itself. A
lookup waits instead until the event loop has run what is ready (the other requests that
arrived with it), and every digest asked for meanwhile goes to PostgreSQL in one query.

Nothing is cached: every lookup is answered by a query sent after it was asked, so a token
revoked a moment before is seen revoked, exactly as with a query of its own. At light load a
batch holds one digest and costs what a single lookup did.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress

from authserver.db.store import Store
from authserver.models import TokenRow

MAX_BATCH = 64  # digests per query; more wait for the next one


class TokenLookups:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._waiting: dict[bytes, list[asyncio.Future[TokenRow | None]]] = {}
        self._scheduled: asyncio.Handle | None = None
        self._running: set[asyncio.Task[None]] = set()  # held so none is collected mid-query

    async def get(self, digest: bytes) -> TokenRow | None:
        """The token with this digest, or None."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[TokenRow | None] = loop.create_future()
        self._waiting.setdefault(digest, []).append(future)
        if len(self._waiting) >= MAX_BATCH:
            self._send()
        elif self._scheduled is None:
            self._scheduled = loop.call_soon(self._send)
        return await future

    def _send(self) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        batch, self._waiting = self._waiting, {}
        if batch:
            task = asyncio.get_running_loop().create_task(self._answer(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _answer(self, batch: dict[bytes, list[asyncio.Future[TokenRow | None]]]) -> None:
        try:
            rows = await self._store.tokens_by_digests(list(batch))
        except BaseException as exc:
            # Each waiting request fails as its own query would have (503 when the database
            # is down); a cancelled batch (shutdown) cancels them.
            for futures in batch.values():
                for future in futures:
                    if not future.done():
                        if isinstance(exc, asyncio.CancelledError):
                            future.cancel()
                        else:
                            future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for digest, futures in batch.items():
            row = rows.get(digest)
            for future in futures:
                # A request cancelled while it waited (its client went away) needs no answer.
                with suppress(asyncio.InvalidStateError):
                    future.set_result(row)
