"""What the apps share for their lifetime: settings, the pool and the crypto built from keys.

Built once in the lifespan and handed to routes through ``request.state``; nothing here is a
module global, so two apps (or two tests) never share state by accident.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import asyncpg

from authserver.config import Settings
from authserver.db.migrate import migrate
from authserver.db.store import Store
from authserver.oauth.server import OAuthEndpoints, build_endpoints
from authserver.security.client_secrets import SecretHasher
from authserver.security.keys import Keyring
from authserver.security.passwords import Passwords
from authserver.security.tokens import TokenCodec
from authserver.web.pages import Pages
from authserver.web.session import Signer

log = logging.getLogger("authserver")


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


async def create_pool(settings: Settings) -> asyncpg.Pool:
    if settings.database_url is None:
        raise RuntimeError("no database URL: the embedded database was not started")
    return await asyncpg.create_pool(
        settings.database_url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        command_timeout=10,
        server_settings={"application_name": "authserver"},
    )


@asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    pool = await create_pool(settings)
    try:
        if settings.migrate_on_start:
            async with pool.acquire() as conn:
                applied = await migrate(conn)
            if applied:
                log.info("applied migrations: %s", ", ".join(applied))
        keyring = Keyring(settings.secret_keys)
        codec = TokenCodec(keyring)
        yield Resources(
            settings=settings,
            store=Store(pool),
            secrets=SecretHasher(keyring),
            tokens=codec,
            passwords=Passwords(settings.argon2),
            oauth=build_endpoints(settings, codec),
            signer=Signer(keyring),
            pages=Pages(https=settings.issuer.startswith("https://")),
        )
    finally:
        await pool.close()


class SharedResources:
    """One set of resources for the public and the admin app served by one process.

    Each app's lifespan enters ``use()``; the first opens the pool, the last one out closes it.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = asyncio.Lock()
        self._users = 0
        self._stack: AsyncExitStack | None = None
        self._resources: Resources | None = None

    @asynccontextmanager
    async def use(self) -> AsyncIterator[Resources]:
        async with self._lock:
            if self._resources is None:
                stack = AsyncExitStack()
                self._resources = await stack.enter_async_context(open_resources(self.settings))
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
