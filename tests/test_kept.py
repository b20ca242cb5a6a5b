"""A batch sender's kept connection: one pool connection while statements follow each other."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from authserver.db.kept import KeptConnection

PID = "SELECT pg_backend_pid()"
IDLE = 0.2


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=4, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def kept(pool: asyncpg.Pool) -> AsyncIterator[KeptConnection]:
    conn = KeptConnection(pool, idle=IDLE)
    yield conn
    await conn.close()


async def test_statements_in_a_row_share_one_connection(
    pool: asyncpg.Pool, kept: KeptConnection
) -> None:
    """Statements one after another run on one connection, which stays out of the pool."""
    pids = {await kept.fetchval(PID) for _ in range(5)}
    assert len(pids) == 1
    assert pool.get_idle_size() == 3


async def test_the_connection_goes_back_once_idle(pool: asyncpg.Pool) -> None:
    """Past ``idle`` seconds without a statement, the pool has its connection back."""
    kept = KeptConnection(pool, idle=1.0)
    await kept.execute("SELECT 1")
    await asyncio.sleep(0.5)
    await kept.execute("SELECT 1")  # a statement in between puts the return off
    await asyncio.sleep(0.75)
    assert pool.get_idle_size() == 3
    await asyncio.sleep(1.0)
    assert pool.get_idle_size() == 4


async def test_a_statement_while_it_is_busy_goes_through_the_pool(kept: KeptConnection) -> None:
    """A statement made while the kept connection runs another takes a pool connection."""
    slow = asyncio.create_task(kept.fetchval("SELECT pg_backend_pid() FROM pg_sleep(0.2)"))
    await asyncio.sleep(0.05)
    meanwhile = await kept.fetchval(PID)
    assert meanwhile != await slow


async def test_a_failed_statement_gives_its_connection_back(
    pool: asyncpg.Pool, kept: KeptConnection
) -> None:
    """After a statement fails, its connection is back in the pool, and the next one works."""
    await kept.execute("SELECT 1")
    with pytest.raises(asyncpg.DivisionByZeroError):
        await kept.fetchval("SELECT 1 / 0")
    await asyncio.sleep(0.05)
    assert pool.get_idle_size() == 4
    assert await kept.fetchval("SELECT 2") == 2


async def test_after_close_statements_go_through_the_pool(
    pool: asyncpg.Pool, kept: KeptConnection
) -> None:
    """``close`` gives the connection back at once; later statements keep none."""
    await kept.execute("SELECT 1")
    await kept.close()
    assert pool.get_idle_size() == 4
    assert await kept.fetchval("SELECT 3") == 3
    assert pool.get_idle_size() == 4
