"""Growing the tokens table to each scale step's size, fast.

Rows come from generate_series in one statement per million: 32-byte digests from two md5s,
kinds, owners and times spread like a live table's (mostly expired access tokens, live refresh
tokens in their families). The primary key on the digest, the index every lookup uses, is kept
and grows by random insertion as it does in production; the other indexes are dropped for the
load and rebuilt after it (they are not on any lookup path measured here, and keeping them
would triple the time to 10^7 rows). Foreign-key triggers are skipped where the role may, as
every owner referenced exists.
"""

from __future__ import annotations

import contextlib
import sys
import time

import asyncpg

CHUNK = 1_000_000

_FILL = """
INSERT INTO tokens (digest, kind, client_id, user_id, grant_id, family_id, scope, created_at,
                    expires_at)
SELECT decode(md5(i::text) || md5((i + 1)::text), 'hex'),
       CASE WHEN i % 4 = 0 THEN 'refresh' ELSE 'access' END,
       CASE WHEN i % 2 = 0 THEN g.clients[1 + (i / 2) % g.n] ELSE c.ids[1 + i % c.n] END,
       CASE WHEN i % 2 = 0 THEN g.users[1 + (i / 2) % g.n] END,
       CASE WHEN i % 2 = 0 THEN g.ids[1 + (i / 2) % g.n] END,
       CASE WHEN i % 4 = 0 THEN md5(i::text)::uuid END,
       'read write',
       now() - make_interval(secs => ($3 - i) * 0.01),
       now() - make_interval(secs => ($3 - i) * 0.01)
             + CASE WHEN i % 4 = 0 THEN interval '30 days' ELSE interval '1 hour' END
FROM generate_series($1::bigint, $2::bigint - 1) AS i,
     (SELECT array_agg(client_id ORDER BY client_id) AS ids, count(*)::int AS n
      FROM clients) AS c,
     (SELECT array_agg(client_id ORDER BY grant_id) AS clients,
             array_agg(user_id ORDER BY grant_id) AS users,
             array_agg(grant_id ORDER BY grant_id) AS ids, count(*)::int AS n
      FROM grants) AS g
"""


class TokenTable:
    """The tokens table, grown step by step; filler rows never repeat a digest."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self._next = 0  # first generate_series value not used yet

    async def rows(self) -> int:
        count: int = await self._conn.fetchval("SELECT count(*) FROM tokens")
        return count

    async def grow_to(self, target: int) -> float:
        """Add filler rows until the table holds ``target``; seconds spent."""
        started = time.monotonic()
        missing = target - await self.rows()
        if missing > 0:
            await self._fill(missing)
        await settle(self._conn)
        return time.monotonic() - started

    async def _fill(self, count: int) -> None:
        conn = self._conn
        secondary = await conn.fetch(
            """SELECT indexname, indexdef FROM pg_indexes
               WHERE schemaname = current_schema() AND tablename = 'tokens'
                 AND indexname <> 'tokens_pkey'"""
        )
        for index in secondary:
            await conn.execute(f'DROP INDEX "{index["indexname"]}"')
        try:
            await _skip_fk_triggers(conn)
            first, end = self._next, self._next + count
            for start in range(first, end, CHUNK):
                stop = min(start + CHUNK, end)
                await conn.execute(_FILL, start, stop, end)
                _progress(f"tokens: +{stop - first:,} of {count:,} rows")
            self._next = end  # md5(i) alone, the first half, is unique per i
        finally:
            await conn.execute("RESET session_replication_role")
            await conn.execute("SET maintenance_work_mem = '512MB'")
            for index in secondary:
                await conn.execute(index["indexdef"])
            await conn.execute("RESET maintenance_work_mem")


async def settle(conn: asyncpg.Connection) -> None:
    """Fresh statistics and visibility maps, and no dirty pages left for a checkpoint to
    write in the middle of the next measured run."""
    await conn.execute("VACUUM ANALYZE")
    # Not superuser on a given server: then a background checkpoint may add noise.
    with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
        await conn.execute("CHECKPOINT")


async def _skip_fk_triggers(conn: asyncpg.Connection) -> None:
    # Not superuser on a given server: the keys are then checked row by row, slower.
    with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
        await conn.execute("SET session_replication_role = replica")


def _progress(message: str) -> None:
    print(f"bench:   {message}", file=sys.stderr, flush=True)
