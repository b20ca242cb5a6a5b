"""Introspection of active access tokens from memory, with revocation still reaching every replica.

Resource servers introspect every request's token; most of those tokens were introspected a
moment before. This cache keeps what introspection reads of a token PostgreSQL found *active*
(only positive answers: an unknown, revoked or expired token is asked again every time), so a
hit costs no round trip. Entries are dropped:

- when PostgreSQL says the answer changed: triggers on tokens, users and clients NOTIFY every
  replica (sql/migrations/0013_token_change_notify.sql), whatever made the change;
- when the token expires, by this process's clock: a hit checks it, as the view does;
- all at once whenever the LISTEN connection is lost, and nothing is kept until it is back, as
  a notification may be missed meanwhile (every lookup reads the database until then).

A lookup that raced a notification (it read the row before the change committed, and its
answer came back after the notification) must not store what it read: every notification bumps
a generation, and a row is kept only if the generation did not move while it was read.

Bounds: ``max_entries`` rows and about ``max_bytes`` of memory (an estimate per entry, measured
on CPython 3.11); past either, expired entries go first, then the oldest sixteenth.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from itertools import islice

from authserver.db.notifications import follow
from authserver.models import TokenRow

CHANNEL = "authserver_token_changed"
# Bytes an entry costs beyond its strings (key, tuple, floats, dict slot): 100,000 entries of
# distinct users grew a CPython 3.11 process by 448 bytes each, 73 of them strings.
ENTRY_BYTES = 380

Lookup = Callable[[bytes], Awaitable[TokenRow | None]]
# expires (epoch seconds, inf: never), created, client_id, user_id, scope, username, developer,
# legacy, audience, actors (RFC 8693): what introspection reads, in tuples because 100,000 of
# anything else cost twice as much.
Entry = tuple[
    float, float, str, str | None, str, str | None, bool, bool, str | None, tuple[str, ...]
]


class TokenCache:
    def __init__(
        self, max_entries: int, max_bytes: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.enabled = max_entries > 0 and max_bytes > 0
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._clock = clock
        self._entries: dict[bytes, Entry] = {}  # insertion order is age order
        self.bytes = 0
        self._generation = 0
        self._listening = False
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def cached(self, lookup: Lookup, *, legacy: bool = False) -> Lookup:
        """``lookup`` answered from memory where it can. ``legacy``: only rows imported from
        Phraseanet are served (D9), as ``lookup`` only finds those."""
        if not self.enabled:
            return lookup

        async def cached_lookup(digest: bytes) -> TokenRow | None:
            entry = self.hit(digest, legacy=legacy)
            if entry is not None:
                return _row(digest, entry)
            self.misses += 1
            generation = self._generation
            row = await lookup(digest)
            if row is not None and self._listening and generation == self._generation:
                self._keep(row)
            return row

        return cached_lookup

    def hit(self, digest: bytes, *, legacy: bool = False) -> Entry | None:
        """The token's entry if memory has it and it has not expired (``legacy``: and it was
        imported from Phraseanet), without waiting: None means "ask the database" (not
        counted as a miss here: the lookup that follows is)."""
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[0] <= self._clock() or (legacy and not entry[7]):
            self._drop(digest)
            return None
        self.hits += 1
        return entry

    def invalidate(self, payload: str) -> None:
        """Apply one notification (see the migration for what its payload says)."""
        self._generation += 1
        kind, rest = payload[:1], payload[1:]
        if kind == "t":
            try:
                self._drop(bytes.fromhex(rest))
            except ValueError:
                self.clear()
        elif kind == "u":
            self._drop_where(3, rest)
        elif kind == "c":
            self._drop_where(2, rest)
        else:
            self.clear()

    def forget(self, digest: bytes) -> None:
        """Drop one token at once (revoked through this replica: its notification follows)."""
        self.invalidate("t" + digest.hex())

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()
        self.bytes = 0

    async def listen(self, database_url: str) -> None:
        """Follow change notifications until cancelled, reconnecting after failures."""
        await follow(database_url, CHANNEL, self.invalidate, self._up, self._down)

    def _up(self) -> None:
        self.clear()  # anything may have changed while nobody listened
        self._listening = True

    def _down(self) -> None:
        self._listening = False
        self.clear()

    def _keep(self, row: TokenRow) -> None:
        if not row.active or row.kind != "access":
            return  # only "yes" is cached: anything else is asked again
        expires = math.inf if row.expires_at is None else row.expires_at.timestamp()
        if expires <= self._clock():
            return
        intern = sys.intern
        user_id = None if row.user_id is None else intern(row.user_id)
        username = None if row.username is None else intern(row.username)
        entry: Entry = (
            expires,
            row.created_at.timestamp(),
            intern(row.client_id),
            user_id,
            intern(row.scope),
            username,
            row.developer,
            row.legacy,
            row.audience,
            row.actors,
        )
        size = _size(entry)
        self._drop(row.digest)
        if len(self._entries) >= self._max_entries or self.bytes + size > self._max_bytes:
            self._evict(size)
        self._entries[row.digest] = entry
        self.bytes += size

    def _evict(self, room: int) -> None:
        """Make room: expired entries first, then the oldest sixteenth (evicting one by one
        from the front of a dict would rescan the holes left by the previous evictions)."""
        now = self._clock()
        for digest in [d for d, entry in self._entries.items() if entry[0] <= now]:
            self._drop(digest)
        if len(self._entries) < self._max_entries and self.bytes + room <= self._max_bytes:
            return
        count = len(self._entries) // 16 + 1
        for digest in list(islice(self._entries, count)):
            self._drop(digest)
        while self._entries and self.bytes + room > self._max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, digest: bytes) -> None:
        entry = self._entries.pop(digest, None)
        if entry is not None:
            self.bytes -= _size(entry)

    def _drop_where(self, field: int, value: str) -> None:
        """Drop the entries of one user or client: a scan, for rare events."""
        for digest in [d for d, entry in self._entries.items() if entry[field] == value]:
            self._drop(digest)


def _size(entry: Entry) -> int:
    """What an entry is counted for against ``max_bytes`` (strings counted whole, though
    the same client's, scope's and user's are shared between entries)."""
    return ENTRY_BYTES + len(entry[2]) + len(entry[3] or "") + len(entry[4]) + len(entry[5] or "")


def _row(digest: bytes, entry: Entry) -> TokenRow:
    """The row as the database would read it now, with what introspection looks at (family,
    grant and sign-in time are not kept: only introspection reads from here)."""
    expires, created, client_id, user_id, scope, username, developer, legacy, audience, actors = (
        entry
    )
    return TokenRow(
        digest=digest,
        kind="access",
        client_id=client_id,
        user_id=user_id,
        grant_id=None,
        family_id=None,
        scope=scope,
        developer=developer,
        created_at=datetime.fromtimestamp(created, UTC),
        expires_at=None if expires == math.inf else datetime.fromtimestamp(expires, UTC),
        username=username,
        consumed=False,
        revoked=False,
        live=True,
        client_active=True,
        legacy=legacy,
        audience=audience,
        actors=actors,
    )
