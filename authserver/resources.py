"""What the apps share for their lifetime: settings, the pool and the crypto built from keys.

Built once and handed to routes through ``request.state``; nothing here is a module global,
so two apps (or two tests) never share state by accident.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass

import asyncpg

from authserver import janitor
from authserver.config import Settings
from authserver.db.batches import Batches
from authserver.db.client_cache import ClientCache
from authserver.db.migrate import migrate
from authserver.db.store import Issue, Store
from authserver.metrics import Metrics
from authserver.models import TokenRow
from authserver.oauth.server import OAuthEndpoints, build_endpoints
from authserver.security.client_secrets import SecretHasher
from authserver.security.keys import Keyring
from authserver.security.passwords import Passwords
from authserver.security.tokens import TokenCodec
from authserver.web.errors import DATABASE_DOWN, NOT_AN_OUTAGE
from authserver.web.pages import Pages
from authserver.web.session import Signer

log = logging.getLogger("authserver")

CONNECT_TIMEOUT = 5  # seconds for one connection attempt
COMMAND_TIMEOUT = 5  # seconds any one query may take before the request fails with 503


class DatabaseUnavailable(Exception):
    """PostgreSQL could not be reached within the start-up timeout."""


@dataclass(frozen=True)
class Resources:
    settings: Settings
    store: Store
    secrets: SecretHasher
    tokens: TokenCodec
    passwords: Passwords
    oauth: OAuthEndpoints
    signer: Signer
    pages: Pages
    metrics: Metrics
    clients: ClientCache
    # Introspection's token lookups, and issues that write nothing else: batched.
    lookups: Batches[bytes, TokenRow | None]
    issues: Batches[Issue, None]


async def create_pool(settings: Settings) -> asyncpg.Pool:
    """A connection pool, waiting up to ``startup_timeout`` for PostgreSQL to come up."""
    if settings.database_url is None:
        raise RuntimeError("no database URL: the embedded database was not started")
    deadline = time.monotonic() + settings.startup_timeout
    delay = 0.5
    while True:
        try:
            return await asyncpg.create_pool(
                settings.database_url,
                min_size=settings.pool_min_size,
                max_size=settings.pool_max_size,
                timeout=CONNECT_TIMEOUT,
                command_timeout=COMMAND_TIMEOUT,
                reset=_keep_session,
                server_settings={"application_name": "authserver"},
            )
        except NOT_AN_OUTAGE:
            raise  # a bad connection option does not get better with waiting
        except DATABASE_DOWN as exc:
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
    (Store.connection, the migration below). asyncpg still rolls back an open transaction.
    """


@asynccontextmanager
async def open_resources(
    settings: Settings, *, background: bool = False
) -> AsyncIterator[Resources]:
    """Everything a server or a command needs; ``background`` also runs the janitor."""
    pool = await create_pool(settings)
    tasks: list[asyncio.Task[None]] = []
    try:
        if settings.migrate_on_start:
            async with pool.acquire() as conn:
                try:
                    applied = await migrate(conn)
                finally:
                    await conn.reset()  # the migration lock is session state
            if applied:
                log.info("applied migrations: %s", ", ".join(applied))
        keyring = Keyring(settings.secret_keys)
        codec = TokenCodec(keyring)
        metrics = Metrics()
        metrics.watch_pool(lambda: (pool.get_size(), pool.get_idle_size()))
        store = Store(pool, on_audit=metrics.observe_audit)
        clients = ClientCache(store, settings.client_cache_ttl if background else 0)
        if background and settings.client_cache_ttl > 0:
            assert settings.database_url is not None  # create_pool needed it
            tasks.append(asyncio.create_task(clients.listen(settings.database_url)))
        if background and settings.janitor_interval > 0:
            tasks.append(
                asyncio.create_task(janitor.run_forever(store, settings, metrics.observe_janitor))
            )
        yield Resources(
            settings=settings,
            store=store,
            secrets=SecretHasher(keyring),
            tokens=codec,
            passwords=Passwords(settings.argon2),
            oauth=build_endpoints(settings, codec),
            signer=Signer(keyring),
            pages=Pages(https=settings.issuer.startswith("https://")),
            metrics=metrics,
            clients=clients,
            lookups=Batches(store.tokens_by_digests),
            issues=Batches(store.issue_each),
        )
    finally:
        for task in tasks:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        await pool.close()


class SharedResources:
    """One set of resources for the public and the admin app served by one process.

    Each user enters ``use()``; the first opens the pool (and starts the janitor), the last one
    out closes it.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = asyncio.Lock()
        self._users = 0
        self._stack: AsyncExitStack | None = None
        self._resources: Resources | None = None

    @property
    def current(self) -> Resources | None:
        """The open resources, if any (the access log counts requests with their metrics)."""
        return self._resources

    @asynccontextmanager
    async def use(self) -> AsyncIterator[Resources]:
        async with self._lock:
            if self._resources is None:
                stack = AsyncExitStack()
                self._resources = await stack.enter_async_context(
                    open_resources(self.settings, background=True)
                )
                self._stack = stack
            self._users += 1
            resources = self._resources
        try:
            yield resources
        finally:
            async with self._lock:
                self._users -= 1
                if self._users == 0 and self._stack is not None:
                    stack, self._stack, self._resources = self._stack, None, None
                    await stack.aclose()
