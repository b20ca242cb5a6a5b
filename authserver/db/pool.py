"""The connection pool, and what counts as the database being away rather than a bug."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import asyncpg

from authserver.config import Settings
from authserver.errors import DatabaseUnavailable

log = logging.getLogger("authserver")

CONNECT_TIMEOUT = 5  # seconds for one connection attempt at start-up

# What asyncpg raises while PostgreSQL is away, restarting, overloaded, frozen (a statement or
# a wait for a lock or a connection timed out) or read-only (a replica after a failover), or
# when it rolled a transaction back to break a deadlock or a serialization conflict (nothing
# was written; sent again, the request may pass): a clean 503 with Retry-After, so load
# balancers and clients retry, never a 500.
DATABASE_DOWN: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # statement_timeout is a QueryCanceledError
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.LockNotAvailableError,
    asyncpg.exceptions.ReadOnlySQLTransactionError,
    asyncpg.exceptions.IdleInTransactionSessionTimeoutError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
)

# asyncpg's client-side errors that are InterfaceErrors but no outage: an argument a query
# cannot encode, a bad connection option. They are bugs: a 500 with the traceback logged, not a
# 503 telling clients to retry. (asyncpg.DataError is the SQLSTATE 22 class; the client-side
# one only has this name in asyncpg.exceptions._base.)
NOT_AN_OUTAGE: tuple[type[Exception], ...] = (
    asyncpg.exceptions._base.DataError,
    asyncpg.exceptions.ClientConfigurationError,
)


def is_outage(exc: BaseException) -> bool:
    """Did this come from the database being away (503), rather than from a bug (500)?"""
    return isinstance(exc, DATABASE_DOWN) and not isinstance(exc, NOT_AN_OUTAGE)


class BoundedPool(asyncpg.Pool):
    """asyncpg's pool, where every acquire waits at most ``acquire_timeout`` seconds for a
    connection (asyncpg's own default is for ever): a request queued behind slow ones is
    answered 503 instead of waiting for them (checklist R-12)."""

    def __init__(self, *args: Any, acquire_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acquire_timeout = acquire_timeout

    def acquire(self, *, timeout: float | None = None) -> Any:
        return super().acquire(timeout=self.acquire_timeout if timeout is None else timeout)


def server_settings(settings: Settings) -> dict[str, str]:
    """Bounds PostgreSQL itself enforces on every session (checklist R-09, R-12, R-13)."""
    return {
        "application_name": "authserver",
        "statement_timeout": f"{settings.db_statement_timeout}s",
        "lock_timeout": f"{settings.db_lock_timeout}s",
        # A session left inside a transaction (a request cut off mid-way) holds its locks
        # no longer than this.
        "idle_in_transaction_session_timeout": f"{max(10, settings.request_timeout)}s",
    }


async def create_pool(settings: Settings) -> asyncpg.Pool:
    """A connection pool, waiting up to ``startup_timeout`` for PostgreSQL to come up."""
    if settings.database_url is None:
        raise RuntimeError("no database URL: the embedded database was not started")
    deadline = time.monotonic() + settings.startup_timeout
    delay = 0.5
    while True:
        pool = BoundedPool(
            settings.database_url,
            acquire_timeout=settings.db_acquire_timeout,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            max_queries=50000,
            max_inactive_connection_lifetime=300.0,
            connect=None,
            setup=None,
            init=None,
            reset=_keep_session,
            loop=None,
            connection_class=asyncpg.Connection,
            record_class=asyncpg.Record,
            timeout=min(CONNECT_TIMEOUT, settings.db_acquire_timeout),
            # The client's own bound, a second past PostgreSQL's: the server cancels first, with
            # a clear error; this one covers a server that cannot even answer (frozen).
            command_timeout=settings.db_statement_timeout + 1,
            server_settings=server_settings(settings),
        )
        try:
            return await pool
        except Exception as exc:
            pool.terminate()  # whatever connections it opened before failing
            if not is_outage(exc):
                raise  # a bad connection option does not get better with waiting
            if time.monotonic() + delay > deadline:
                raise DatabaseUnavailable(
                    f"cannot reach the database ({type(exc).__name__})"
                ) from None
            log.warning("database not reachable yet (%s), retrying", type(exc).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's session reset (RESET ALL, UNLISTEN, unlocking...) on every release.

    It costs a round trip per query and nothing here changes session state, except the few
    places that take advisory locks: those reset their connection themselves
    (Store.connection, the migration). asyncpg still rolls back an open transaction.
    """
