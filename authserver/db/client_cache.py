"""An in-process cache of what client authentication reads, kept honest by PostgreSQL.

Introspection and client-credentials tokens authenticate a client on every request; reading
its row and secret digests each time would double the database work of the hot paths. Entries
are dropped:

- when PostgreSQL says the client changed: triggers on clients, client_secrets and the client
  pauses NOTIFY every replica, whatever made the change (admin API, CLI, cascades);
- when a secret's overlap window or a pause ends by itself (the row says when);
- after ``ttl`` seconds in any case, and all at once whenever the LISTEN connection is lost,
  since a notification may have been missed meanwhile.

Nothing is kept while no LISTEN connection is up (before the first one, during an outage,
until the reconnection): a row read then could change unheard of, so every request reads the
database until notifications flow again (checklist SC4).

The cache is trusted only to say yes: a caller that gets a negative answer from a cached entry
(wrong secret, paused, inactive) asks again with ``fresh()``, so a secret issued a moment ago
on another replica works at once.
"""

from __future__ import annotations

import time

from authserver.db.notifications import follow
from authserver.db.store import Store
from authserver.models import ClientAuth

CHANNEL = "authserver_client_changed"
MAX_ENTRIES = 10_000  # a bound on memory; past it the cache starts over


class ClientCache:
    def __init__(self, store: Store, ttl: float) -> None:
        self._store = store
        self._ttl = ttl
        self._entries: dict[str, tuple[float, ClientAuth]] = {}
        # Bumped by every invalidation: a load that raced one must not store what it read.
        self._generation = 0
        self._listening = False  # set while notifications of changes can reach us

    async def get(self, client_id: str) -> tuple[ClientAuth | None, bool]:
        """The client's authentication data, and whether it came from the cache."""
        cached = self.peek(client_id)
        if cached is not None:
            return cached, True
        return await self.fresh(client_id), False

    def peek(self, client_id: str) -> ClientAuth | None:
        """The cached entry, without waiting: None means "read the database"."""
        entry = self._entries.get(client_id)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        return None

    async def fresh(self, client_id: str) -> ClientAuth | None:
        """Read the client from the database, and keep it for the next requests."""
        generation = self._generation
        loaded = await self._store.clients.for_auth(client_id)
        if loaded is None:
            self._entries.pop(client_id, None)
        elif self._ttl > 0 and self._listening and generation == self._generation:
            lifetime = self._ttl if loaded.stale_in is None else min(self._ttl, loaded.stale_in)
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[client_id] = (time.monotonic() + lifetime, loaded)
        return loaded

    def invalidate(self, client_id: str | None = None) -> None:
        """Forget one client, or every client when ``client_id`` is None."""
        self._generation += 1
        if client_id is None:
            self._entries.clear()
        else:
            self._entries.pop(client_id, None)

    async def listen(self, database_url: str) -> None:
        """Follow change notifications until cancelled, reconnecting after failures."""
        await follow(database_url, CHANNEL, self.invalidate, self._up, self._down)

    def _up(self) -> None:
        self.invalidate()  # anything may have changed while nobody listened
        self._listening = True

    def _down(self) -> None:
        # Until the listener is back every request reads the database.
        self._listening = False
        self.invalidate()
