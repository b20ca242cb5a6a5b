"""Codes and tokens that matched nothing, counted against the client that sent them.

A client that sends hundreds of unknown codes, refresh tokens or tokens is scanning for values
(checklist S-23, S-41, S-50); like one that guesses secrets, it is paused. Counting happens on
the hot paths, so it costs a dictionary update per failure: the counts go to PostgreSQL (where
every replica sees them, and the client cache hears of a pause) in one statement per batch, a
fraction of a second later. Every failure is also counted in the metrics, by endpoint and
reason, whether or not pauses are on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from authserver.db.store import Store
from authserver.db.throttles import ClientFailures
from authserver.models import FailureKind

log = logging.getLogger("authserver.oauth")

FLUSH_DELAY = 0.2  # seconds counts wait, so a burst of failures is one statement


@dataclass(frozen=True)
class GuessLimits:
    guesses: int  # failures at the token and revocation endpoints; 0: never pause
    introspection: int  # failures at the introspection endpoint; 0: never pause
    window: int  # seconds: the counting window, and how long a pause lasts


class Guesses:
    def __init__(
        self,
        store: Store,
        limits: GuessLimits,
        on_guess: Callable[[str, str], None],
        delay: float = FLUSH_DELAY,
    ) -> None:
        self._store = store
        self._limits = limits
        self._on_guess = on_guess
        self._delay = delay
        self._pending: dict[tuple[str, FailureKind, str], int] = {}
        self._scheduled: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()

    def note(
        self, client_id: str, kind: FailureKind, address: str, endpoint: str, reason: str
    ) -> None:
        """One failed guess of ``client_id`` (``address``: "" for the client as a whole)."""
        self._on_guess(endpoint, reason)
        if self._limit(kind) <= 0:
            return
        key = (client_id, kind, address)
        self._pending[key] = self._pending.get(key, 0) + 1
        if self._scheduled is None:
            self._scheduled = asyncio.get_running_loop().call_later(self._delay, self._flush)

    def _limit(self, kind: FailureKind) -> int:
        return self._limits.introspection if kind == "introspection" else self._limits.guesses

    def _flush(self) -> None:
        self._scheduled = None
        pending, self._pending = self._pending, {}
        counted = [
            ClientFailures(client_id, kind, address, count, self._limit(kind))
            for (client_id, kind, address), count in pending.items()
        ]
        if counted:
            task = asyncio.get_running_loop().create_task(self._write(counted))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _write(self, counted: list[ClientFailures]) -> None:
        try:
            await self._store.throttles.record_client_failures(counted, window=self._limits.window)
        except Exception as exc:  # the database may be away; these counts are lost, no more
            log.warning("could not record failed guesses: %s", type(exc).__name__)
