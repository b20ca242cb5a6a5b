"""Calls made together, sent as one statement: token lookups and token issues."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from authserver.db.batches import Batches
from authserver.db.queries import load_queries
from authserver.db.rows import Issue, IssuedToken
from authserver.db.tokens import TokenQueries
from authserver.models import TokenRow
from authserver.security.keys import Keyring
from authserver.security.tokens import TokenCodec, TokenKind, token_digest
from tests.conftest import SECRET_KEY

CODEC = TokenCodec(Keyring([SECRET_KEY]))


class CountingStore(TokenQueries):
    """The real token queries, counting the statements they run for batches."""

    __slots__ = ("queries",)

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool, load_queries(), None)
        self.queries: list[int] = []

    async def by_digests(self, digests: list[bytes]) -> list[TokenRow | None]:
        self.queries.append(len(digests))
        return await super().by_digests(digests)

    async def issue(self, issues: Sequence[Issue]) -> None:
        self.queries.append(len(issues))
        await super().issue(issues)


class BrokenStore(TokenQueries):
    """Token queries whose database went away mid-query."""

    __slots__ = ()

    async def by_digests(self, digests: list[bytes]) -> list[TokenRow | None]:
        raise ConnectionResetError


def lookups(store: TokenQueries) -> Batches[bytes, TokenRow | None]:
    return Batches(store.by_digests)


def client_issue(client_id: str) -> tuple[str, Issue]:
    """A new access token for the client, and its issue as the token endpoint makes it."""
    token = CODEC.mint(TokenKind.ACCESS)
    issued = IssuedToken(token_digest(token), "access", "read", 3600)
    return token, Issue("client_credentials", client_id, None, None, None, None, (issued,))


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def store(pool: asyncpg.Pool) -> CountingStore:
    return CountingStore(pool)


async def issue(store: CountingStore, client_id: str, count: int) -> list[str]:
    """Live access tokens of the client, stored one by one."""
    tokens = []
    for _ in range(count):
        token, issued = client_issue(client_id)
        await store.issue([issued])
        tokens.append(token)
    store.queries = []
    return tokens


async def test_lookups_in_flight_together_share_one_query(
    store: CountingStore, web_client: dict[str, Any]
) -> None:
    """Ten lookups asked in the same turn of the loop are answered by one query."""
    tokens = await issue(store, web_client["client_id"], 10)
    batched = lookups(store)
    found = await asyncio.gather(*(batched(token_digest(t)) for t in tokens))
    assert store.queries == [10]
    assert [row.digest if row else None for row in found] == [token_digest(t) for t in tokens]


async def test_unknown_and_repeated_digests(
    store: CountingStore, web_client: dict[str, Any]
) -> None:
    """A digest asked twice gets its row twice; one with no row gets None."""
    (token,) = await issue(store, web_client["client_id"], 1)
    batched = lookups(store)
    unknown = token_digest(CODEC.mint(TokenKind.ACCESS))
    first, second, missing = await asyncio.gather(
        batched(token_digest(token)), batched(token_digest(token)), batched(unknown)
    )
    assert first is not None
    assert first == second
    assert missing is None
    assert store.queries == [3]


async def test_a_full_batch_goes_at_once(store: CountingStore, web_client: dict[str, Any]) -> None:
    """Past the batch size, lookups go in more than one query."""
    tokens = await issue(store, web_client["client_id"], 10)
    batched = lookups(store)
    batched.limit = 4
    found = await asyncio.gather(*(batched(token_digest(t)) for t in tokens))
    assert all(row is not None for row in found)
    assert sorted(store.queries) == [2, 4, 4]


async def test_each_lookup_sees_a_revocation_made_before_it(
    store: CountingStore, db: asyncpg.Connection, web_client: dict[str, Any]
) -> None:
    """Nothing is cached: a token revoked between two lookups is seen revoked by the second."""
    (token,) = await issue(store, web_client["client_id"], 1)
    batched = lookups(store)
    before = await batched(token_digest(token))
    await db.execute("UPDATE tokens SET revoked_at = now() WHERE digest = $1", token_digest(token))
    after = await batched(token_digest(token))
    assert before is not None
    assert before.active
    assert after is not None
    assert not after.active


async def test_a_failed_query_fails_every_waiting_lookup(pool: asyncpg.Pool) -> None:
    """When the database fails, every lookup of the batch raises what it raised."""
    batched = lookups(BrokenStore(pool, load_queries(), None))
    results = await asyncio.gather(batched(b"a" * 32), batched(b"b" * 32), return_exceptions=True)
    assert [type(result) for result in results] == [ConnectionResetError] * 2


async def test_a_cancelled_lookup_leaves_the_others_alone(
    store: CountingStore, web_client: dict[str, Any]
) -> None:
    """A request that goes away while its lookup waits does not disturb the rest."""
    tokens = await issue(store, web_client["client_id"], 3)
    batched = lookups(store)
    waiting = [asyncio.create_task(batched(token_digest(t))) for t in tokens]
    await asyncio.sleep(0)  # every lookup is now waiting for the batch
    waiting[0].cancel()
    rest = await asyncio.gather(*waiting[1:])
    assert [row.digest if row else None for row in rest] == [token_digest(t) for t in tokens[1:]]
    assert waiting[0].cancelled()


async def test_issues_made_together_share_one_statement(
    store: CountingStore, db: asyncpg.Connection, web_client: dict[str, Any]
) -> None:
    """Five requests' tokens and their audit events are written by one statement."""
    made = [client_issue(web_client["client_id"]) for _ in range(5)]
    issues = Batches(store.issue_each)
    await asyncio.gather(*(issues(issue) for _, issue in made))
    assert store.queries == [5]
    stored = await db.fetchval(
        "SELECT count(*) FROM tokens WHERE digest = ANY($1)", [token_digest(t) for t, _ in made]
    )
    events = await db.fetchval("SELECT count(*) FROM audit_events WHERE kind = 'token.issued'")
    assert (stored, events) == (5, 5)


async def test_one_refused_issue_leaves_the_others_stored(
    store: CountingStore, db: asyncpg.Connection, web_client: dict[str, Any]
) -> None:
    """An issue PostgreSQL refuses (its client is gone) fails alone; the rest are stored."""
    made = [client_issue(web_client["client_id"]) for _ in range(3)]
    _, orphan = client_issue("no-such-client")
    issues = Batches(store.issue_each)
    results = await asyncio.gather(
        *(issues(issue) for issue in [made[0][1], orphan, made[1][1], made[2][1]]),
        return_exceptions=True,
    )
    assert [type(result) for result in results] == [
        type(None),
        asyncpg.ForeignKeyViolationError,
        type(None),
        type(None),
    ]
    stored = await db.fetch("SELECT digest FROM tokens")
    assert {row["digest"] for row in stored} == {token_digest(t) for t, _ in made}
    issued = "SELECT count(*) FROM audit_events WHERE kind = 'token.issued'"
    assert await db.fetchval(issued) == 3


async def test_a_clients_own_token_is_stored_as_by_the_general_statement(
    store: CountingStore, db: asyncpg.Connection, web_client: dict[str, Any]
) -> None:
    """A client-credentials token stored through the lean statement has the row and audit
    event the general one gives (which a cap far off makes it take)."""
    lean_token, lean = client_issue(web_client["client_id"])
    general_token, plain = client_issue(web_client["client_id"])
    far = datetime.now(UTC) + timedelta(days=365)
    general = replace(plain, tokens=(plain.tokens[0]._replace(not_after=far),))
    assert lean.clients_own
    assert not general.clients_own
    await store.issue([lean])
    await store.issue([general])
    rows = await db.fetch(
        "SELECT *, expires_at - created_at AS lifetime FROM tokens WHERE digest = ANY($1)"
        " ORDER BY digest = $2",
        [token_digest(lean_token), token_digest(general_token)],
        token_digest(general_token),
    )
    varying = {"digest", "created_at", "expires_at"}
    lean_row, general_row = ({k: v for k, v in row.items() if k not in varying} for row in rows)
    assert lean_row == general_row
    assert lean_row["lifetime"] == timedelta(seconds=3600)
    events = await db.fetch(
        "SELECT kind, client_id, user_id, detail FROM audit_events ORDER BY event_id"
    )
    assert [dict(event) for event in events][-2:] == [dict(events[-1])] * 2


class HeldSends:
    """A send that records each batch and holds the first until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()

    async def __call__(self, calls: list[int]) -> list[int]:
        self.batches.append(calls)
        if len(self.batches) == 1:
            await self.release.wait()
        return [call * 10 for call in calls]


async def test_calls_made_while_a_batch_is_out_go_together_when_it_is_back() -> None:
    """Calls made in several turns while a batch is out wait for it, then go as one batch."""
    sends = HeldSends()
    batched: Batches[int, int] = Batches(sends, stall=60)
    first = asyncio.create_task(batched(1))
    await asyncio.sleep(0.001)
    later = []
    for call in (2, 3, 4):
        later.append(asyncio.create_task(batched(call)))
        await asyncio.sleep(0.001)
    assert sends.batches == [[1]]
    sends.release.set()
    assert await asyncio.gather(first, *later) == [10, 20, 30, 40]
    assert sends.batches == [[1], [2, 3, 4]]


async def test_a_stalled_batch_does_not_hold_the_next_past_the_stall() -> None:
    """A batch out longer than ``stall`` lets the next one go, and it is answered first."""
    sends = HeldSends()
    batched: Batches[int, int] = Batches(sends, stall=0.05)
    first = asyncio.create_task(batched(1))
    await asyncio.sleep(0.001)
    second = await asyncio.wait_for(batched(2), timeout=1)
    assert second == 20
    assert not first.done()
    sends.release.set()
    assert await first == 10
