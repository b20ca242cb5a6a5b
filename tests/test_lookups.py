"""Introspection's token lookups, gathered into one query per turn of the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import pytest

from authserver.db import lookups
from authserver.db.lookups import TokenLookups
from authserver.db.store import Issue, IssuedToken, Store
from authserver.models import TokenRow
from authserver.security.keys import Keyring
from authserver.security.tokens import TokenCodec, TokenKind, token_digest
from tests.conftest import SECRET_KEY

CODEC = TokenCodec(Keyring([SECRET_KEY]))


class CountingStore(Store):
    """The real store, counting the batched queries it runs."""

    queries: list[int]

    async def tokens_by_digests(self, digests: Sequence[bytes]) -> dict[bytes, TokenRow]:
        self.queries.append(len(digests))
        return await super().tokens_by_digests(digests)


class BrokenStore(Store):
    """A store whose database went away mid-query."""

    async def tokens_by_digests(self, digests: Sequence[bytes]) -> dict[bytes, TokenRow]:
        raise ConnectionResetError


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def store(pool: asyncpg.Pool) -> CountingStore:
    store = CountingStore(pool)
    store.queries = []
    return store


async def issue(store: Store, client_id: str, count: int) -> list[str]:
    """Live access tokens of the client, stored as the token endpoint stores them."""
    tokens = [CODEC.mint(TokenKind.ACCESS) for _ in range(count)]
    for token in tokens:
        issued = IssuedToken(token_digest(token), "access", "read", 3600)
        await store.issue_tokens(
            Issue("client_credentials", client_id, None, None, None, None, (issued,))
        )
    return tokens


async def test_lookups_in_flight_together_share_one_query(
    store: CountingStore, web_client: dict[str, Any]
) -> None:
    """Ten lookups asked in the same turn of the loop are answered by one query."""
    tokens = await issue(store, web_client["client_id"], 10)
    batched = TokenLookups(store)
    found = await asyncio.gather(*(batched.get(token_digest(t)) for t in tokens))
    assert store.queries == [10]
    assert [row.digest if row else None for row in found] == [token_digest(t) for t in tokens]


async def test_unknown_and_repeated_digests(
    store: CountingStore, web_client: dict[str, Any]
) -> None:
    """A digest asked twice gets its row twice; one with no row gets None."""
    (token,) = await issue(store, web_client["client_id"], 1)
    batched = TokenLookups(store)
    unknown = token_digest(CODEC.mint(TokenKind.ACCESS))
    first, second, missing = await asyncio.gather(
        batched.get(token_digest(token)), batched.get(token_digest(token)), batched.get(unknown)
    )
    assert first is not None
    assert first == second
    assert missing is None
    assert store.queries == [2]


async def test_a_full_batch_goes_at_once(
    store: CountingStore, web_client: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the batch size, lookups go in more than one query."""
    monkeypatch.setattr(lookups, "MAX_BATCH", 4)
    tokens = await issue(store, web_client["client_id"], 10)
    batched = TokenLookups(store)
    found = await asyncio.gather(*(batched.get(token_digest(t)) for t in tokens))
    assert all(row is not None for row in found)
    assert sorted(store.queries) == [2, 4, 4]


async def test_each_lookup_sees_a_revocation_made_before_it(
    store: CountingStore, db: asyncpg.Connection, web_client: dict[str, Any]
) -> None:
    """Nothing is cached: a token revoked between two lookups is seen revoked by the second."""
    (token,) = await issue(store, web_client["client_id"], 1)
    batched = TokenLookups(store)
    before = await batched.get(token_digest(token))
    await db.execute("UPDATE tokens SET revoked_at = now() WHERE digest = $1", token_digest(token))
    after = await batched.get(token_digest(token))
    assert before is not None
    assert before.active
    assert after is not None
    assert not after.active


async def test_a_failed_query_fails_every_waiting_lookup(pool: asyncpg.Pool) -> None:
    """When the database fails, every lookup of the batch raises what it raised."""
    batched = TokenLookups(BrokenStore(pool))
    results = await asyncio.gather(
        batched.get(b"a" * 32), batched.get(b"b" * 32), return_exceptions=True
    )
    assert [type(result) for result in results] == [ConnectionResetError] * 2


async def test_a_cancelled_lookup_leaves_the_others_alone(
    store: CountingStore, web_client: dict[str, Any]
) -> None:
    """A request that goes away while its lookup waits does not disturb the rest."""
    tokens = await issue(store, web_client["client_id"], 3)
    batched = TokenLookups(store)
    waiting = [asyncio.create_task(batched.get(token_digest(t))) for t in tokens]
    await asyncio.sleep(0)  # every lookup is now waiting for the batch
    waiting[0].cancel()
    rest = await asyncio.gather(*waiting[1:])
    assert [row.digest if row else None for row in rest] == [token_digest(t) for t in tokens[1:]]
    assert waiting[0].cancelled()
