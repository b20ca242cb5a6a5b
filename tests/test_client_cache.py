"""The client cache: served from memory, yet every change reaches it (issue 6 design)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from authserver.config import Settings
from authserver.services import create_apps
from tests.conftest import server_environ
from tests.token_support import basic, post_token, web_auth

CLIENT_CREDENTIALS = {"grant_type": "client_credentials"}
PROPAGATION = 3.0  # seconds a change may take to reach the cache through NOTIFY


@pytest.fixture
async def cached_public(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The public app with the client cache switched on, as in production."""
    settings = Settings.from_env(server_environ(database_url, client_cache_ttl="30"))
    app, _ = create_apps(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="https://auth.example.test"
        ) as client,
    ):
        yield client


async def eventually(check: Callable[[], Awaitable[bool]]) -> bool:
    """True as soon as ``check`` holds, False if it never does within PROPAGATION."""
    deadline = asyncio.get_running_loop().time() + PROPAGATION
    while asyncio.get_running_loop().time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.05)
    return False


async def status_of(public: httpx.AsyncClient, headers: dict[str, str]) -> int:
    return (await post_token(public, CLIENT_CREDENTIALS, headers=headers)).status_code


async def test_cached_client_authenticates_without_a_query(
    cached_public: httpx.AsyncClient, web_client: dict[str, Any], db: asyncpg.Connection
) -> None:
    """After the first request, authenticating the client does not read its secrets again."""
    assert await status_of(cached_public, web_auth(web_client)) == 200
    async with db.transaction():
        # Anything that reads client_secrets now waits for this lock; the cache does not.
        await db.execute("LOCK TABLE client_secrets IN ACCESS EXCLUSIVE MODE")
        status = await asyncio.wait_for(status_of(cached_public, web_auth(web_client)), 3)
    assert status == 200


async def test_deactivation_reaches_the_cache(
    cached_public: httpx.AsyncClient, admin: httpx.AsyncClient, web_client: dict[str, Any]
) -> None:
    """A client deactivated through the admin API stops authenticating on a caching replica."""
    assert await status_of(cached_public, web_auth(web_client)) == 200
    await admin.patch(f"/clients/{web_client['client_id']}", json={"active": False})

    async def refused() -> bool:
        return await status_of(cached_public, web_auth(web_client)) == 401

    assert await eventually(refused)


async def test_deleted_client_leaves_the_cache(
    cached_public: httpx.AsyncClient, admin: httpx.AsyncClient, web_client: dict[str, Any]
) -> None:
    """A deleted client stops authenticating on a caching replica."""
    assert await status_of(cached_public, web_auth(web_client)) == 200
    await admin.delete(f"/clients/{web_client['client_id']}")

    async def refused() -> bool:
        return await status_of(cached_public, web_auth(web_client)) == 401

    assert await eventually(refused)


async def test_retired_secret_leaves_the_cache(
    database_url: str, cached_public: httpx.AsyncClient, web_client: dict[str, Any]
) -> None:
    """A secret rotated out with no overlap stops working on a caching replica."""
    assert await status_of(cached_public, web_auth(web_client)) == 200
    settings = Settings.from_env(server_environ(database_url, secret_overlap="0"))
    _, admin_app = create_apps(settings)
    async with (
        LifespanManager(admin_app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app),
            base_url="http://admin.test",
            headers={"Authorization": f"Bearer {settings.admin_tokens[0]}"},
        ) as admin,
    ):
        rotated = await admin.post(f"/clients/{web_client['client_id']}/secret")
    new = basic(web_client["client_id"], rotated.json()["client_secret"])
    assert await status_of(cached_public, new) == 200  # the new one works at once

    async def refused() -> bool:
        return await status_of(cached_public, web_auth(web_client)) == 401

    assert await eventually(refused)


async def test_pause_ends_at_once(
    database_url: str, web_client: dict[str, Any], db: asyncpg.Connection
) -> None:
    """S-29 with the cache on: the right secret is refused once the pause is heard of (the
    cached client is dropped by PostgreSQL's notification, milliseconds later) and works as
    soon as the pause ends."""
    settings = Settings.from_env(
        server_environ(database_url, client_cache_ttl="30", client_max_failures="2")
    )
    app, _ = create_apps(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="https://auth.example.test"
        ) as public,
    ):
        assert await status_of(public, web_auth(web_client)) == 200
        wrong = basic(web_client["client_id"], "phrcs_wrong")
        for _ in range(2):
            assert await status_of(public, wrong) == 401

        async def paused() -> bool:
            return await status_of(public, web_auth(web_client)) == 429

        assert await eventually(paused)
        await db.execute("UPDATE client_failures SET locked_until = now() - interval '1 second'")
        assert await status_of(public, web_auth(web_client)) == 200
