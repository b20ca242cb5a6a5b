"""TokenCache alone, over a lookup that stands for the database: what it keeps, for how
long, and what a notification drops."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from authserver.db.token_cache import TokenCache
from authserver.models import TokenRow
from authserver.security.tokens import TokenKind
from tests.oauth_support import CODEC
from tests.rows import NOW, token_row


class Table:
    """Rows by digest, as the database would answer them; counts the lookups that reach it."""

    def __init__(self, *rows: TokenRow) -> None:
        self.rows = {row.digest: row for row in rows}
        self.reads = 0

    async def __call__(self, digest: bytes) -> TokenRow | None:
        self.reads += 1
        return self.rows.get(digest)


def access_row(**changes: Any) -> TokenRow:
    return token_row(CODEC.mint(TokenKind.ACCESS), kind="access", **changes)


def listening(cache: TokenCache) -> TokenCache:
    cache._up()  # as when the LISTEN connection is established
    return cache


async def test_second_lookup_is_answered_from_memory() -> None:
    """An active access token is read once; the next lookup is a hit with the same claims."""
    row = access_row()
    table = Table(row)
    lookup = listening(TokenCache(10, 10**6)).cached(table)
    await lookup(row.digest)
    cached = await lookup(row.digest)
    assert table.reads == 1
    assert cached is not None
    assert cached.active
    assert (cached.scope, cached.username, cached.expires_at) == (
        row.scope,
        row.username,
        row.expires_at,
    )


async def test_exchanged_token_keeps_its_audience_and_actors() -> None:
    """A hit on an RFC 8693 token still says whom it is for and who acted (act, aud)."""
    row = access_row(audience="resource-1", actors=("client-b", "client-a"))
    lookup = listening(TokenCache(10, 10**6)).cached(Table(row))
    await lookup(row.digest)
    cached = await lookup(row.digest)
    assert cached is not None
    assert (cached.audience, cached.actors) == ("resource-1", ("client-b", "client-a"))


@pytest.mark.parametrize(
    "changes",
    [{"revoked": True}, {"live": False}, {"client_active": False}, {"kind": "refresh"}],
    ids=["revoked", "expired", "client-inactive", "refresh"],
)
async def test_only_active_access_tokens_are_kept(changes: dict[str, Any]) -> None:
    """Anything but "active" is asked of the database every time."""
    row = replace(access_row(), **changes)
    table = Table(row)
    lookup = listening(TokenCache(10, 10**6)).cached(table)
    await lookup(row.digest)
    await lookup(row.digest)
    assert table.reads == 2


async def test_expired_entry_is_not_served() -> None:
    """Past the token's expiry by the local clock, the database is asked again."""
    now = [NOW.timestamp()]
    row = access_row(expires_at=NOW + timedelta(seconds=10))
    table = Table(row)
    lookup = listening(TokenCache(10, 10**6, clock=lambda: now[0])).cached(table)
    await lookup(row.digest)
    now[0] += 10
    table.rows[row.digest] = replace(row, live=False)
    answer = await lookup(row.digest)
    assert table.reads == 2
    assert answer is not None
    assert not answer.active


async def test_nothing_is_kept_before_the_listener_is_up() -> None:
    """Without a LISTEN connection, every lookup reads the database."""
    row = access_row()
    table = Table(row)
    lookup = TokenCache(10, 10**6).cached(table)
    await lookup(row.digest)
    await lookup(row.digest)
    assert table.reads == 2


async def test_load_that_raced_a_notification_is_not_kept() -> None:
    """A row read while a change notification arrived is not stored."""
    row = access_row()
    cache = listening(TokenCache(10, 10**6))

    async def racing(digest: bytes) -> TokenRow | None:
        cache.invalidate("t" + digest.hex())  # the revocation is heard mid-read
        return row

    await cache.cached(racing)(row.digest)
    assert len(cache) == 0


@pytest.mark.parametrize(
    ("payload", "left"),
    [("t{digest}", 1), ("ualice-1", 0), ("cclient-1", 0), ("cother", 2), ("*", 0)],
    ids=["token", "user", "client", "other-client", "everything"],
)
async def test_notifications_drop_what_they_name(payload: str, left: int) -> None:
    """A token, a user's or a client's tokens, or everything, as the payload says."""
    rows = [access_row(), access_row()]
    cache = listening(TokenCache(10, 10**6))
    lookup = cache.cached(Table(*rows))
    for row in rows:
        await lookup(row.digest)
    cache.invalidate(payload.format(digest=rows[0].digest.hex()))
    assert len(cache) == left


async def test_entry_bound_evicts_the_oldest() -> None:
    """Past ``max_entries``, the oldest entries go and the newest stays."""
    rows = [access_row() for _ in range(40)]
    cache = listening(TokenCache(32, 10**6))
    lookup = cache.cached(Table(*rows))
    for row in rows:
        await lookup(row.digest)
    assert len(cache) <= 32
    assert rows[-1].digest in cache._entries
    assert rows[0].digest not in cache._entries


async def test_byte_bound_evicts() -> None:
    """Past ``max_bytes`` (estimated), entries are evicted."""
    rows = [access_row() for _ in range(40)]
    cache = listening(TokenCache(1000, 10_000))
    lookup = cache.cached(Table(*rows))
    for row in rows:
        await lookup(row.digest)
    assert 0 < cache.bytes <= 10_000
    assert len(cache) < 40


async def test_legacy_lookup_serves_only_legacy_rows() -> None:
    """A row cached by the ordinary lookup is not answered to the Phraseanet-token lookup (D9)."""
    row = access_row()
    cache = listening(TokenCache(10, 10**6))
    await cache.cached(Table(row))(row.digest)
    legacy = Table()
    assert await cache.cached(legacy, legacy=True)(row.digest) is None
    assert legacy.reads == 1
