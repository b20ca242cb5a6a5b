"""Introspection answered from memory: hits cost no query, and every way a token stops being
active reaches the cache (issue: introspection from memory, revocation still instant)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from authserver.config import Settings
from authserver.db.notifications import PING
from authserver.security.tokens import TokenKind
from authserver.services import create_apps
from tests.conftest import ADMIN_TOKEN, server_environ
from tests.oauth_support import CODEC
from tests.token_support import (
    INTROSPECT,
    expire,
    introspect,
    post_form,
    refresh,
    web_auth,
)

PROPAGATION = 1.0  # seconds a revocation may take to read inactive on a caching replica
HIT = re.compile(r'^authserver_introspection_cache_lookups_total\{result="hit"\} (\S+)$', re.M)


@dataclass
class Replica:
    public: httpx.AsyncClient
    admin: httpx.AsyncClient

    async def hits(self) -> float:
        """Introspection lookups answered from memory so far (the admin /metrics)."""
        text = (await self.admin.get("/metrics")).text
        match = HIT.search(text)
        return 0.0 if match is None else float(match.group(1))


@pytest.fixture
async def replica(database_url: str) -> AsyncIterator[Replica]:
    """The public and admin apps of one server with both caches on, as in production."""
    environ = server_environ(
        database_url, client_cache_ttl="30", introspection_cache_entries="1000"
    )
    public_app, admin_app = create_apps(Settings.from_env(environ))
    async with (
        LifespanManager(public_app) as public,
        LifespanManager(admin_app) as admin,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=public.app), base_url="https://auth.example.test"
        ) as public_client,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=admin.app),
            base_url="http://admin.test",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as admin_client,
    ):
        yield Replica(public_client, admin_client)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 3.0) -> bool:
    """True as soon as ``check`` holds, False if it never does within ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if await check():
            return True
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)


async def warm(replica: Replica, introspector: dict[str, Any], token: str) -> None:
    """Introspect ``token`` until an answer came from memory (the listener may still be
    connecting when the server starts)."""
    before = await replica.hits()

    async def hit() -> bool:
        assert (await introspect(replica.public, introspector, token))["active"] is True
        return await replica.hits() > before

    assert await eventually(hit)


async def goes_inactive(replica: Replica, introspector: dict[str, Any], token: str) -> bool:
    async def inactive() -> bool:
        return (await introspect(replica.public, introspector, token))["active"] is False

    return await eventually(inactive, PROPAGATION)


# The cache in a server, over PostgreSQL


async def test_hit_needs_no_database(
    replica: Replica,
    db: asyncpg.Connection,
    tokens: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """A warmed token is answered while the tokens table is locked against any read."""
    await warm(replica, introspector, tokens["access_token"])
    async with db.transaction():
        await db.execute("LOCK TABLE tokens IN ACCESS EXCLUSIVE MODE")
        answer = await asyncio.wait_for(
            introspect(replica.public, introspector, tokens["access_token"]), 3
        )
    assert answer["active"] is True
    assert answer["username"] == "alice"


async def test_cache_off_reads_every_time(
    database_url: str, db: asyncpg.Connection, introspector: dict[str, Any], tokens: dict[str, Any]
) -> None:
    """AUTHSERVER_INTROSPECTION_CACHE_ENTRIES=0: no hit, and no cache metrics at all."""
    environ = server_environ(database_url, introspection_cache_entries="0")
    public_app, admin_app = create_apps(Settings.from_env(environ))
    async with (
        LifespanManager(public_app) as public,
        LifespanManager(admin_app) as admin,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=public.app), base_url="https://auth.example.test"
        ) as public_client,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=admin.app),
            base_url="http://admin.test",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as admin_client,
    ):
        for _ in range(3):
            answer = await introspect(public_client, introspector, tokens["access_token"])
            assert answer["active"] is True
        await expire(db, tokens["access_token"])  # no notification needed: nothing is kept
        answer = await introspect(public_client, introspector, tokens["access_token"])
        metrics = (await admin_client.get("/metrics")).text
    assert answer == {"active": False}
    assert "authserver_introspection_cache" not in metrics


async def test_expiry_is_respected(
    database_url: str, db: asyncpg.Connection, introspector: dict[str, Any], tokens: dict[str, Any]
) -> None:
    """A cached token reads inactive once its expires_at has passed (no notification sent:
    the row is changed with the trigger switched off, as only time would change it)."""
    environ = server_environ(database_url, introspection_cache_entries="1000")
    public_app, admin_app = create_apps(Settings.from_env(environ))
    async with (
        LifespanManager(public_app) as public,
        LifespanManager(admin_app) as admin,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=public.app), base_url="https://auth.example.test"
        ) as public_client,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=admin.app),
            base_url="http://admin.test",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as admin_client,
    ):
        replica = Replica(public_client, admin_client)
        token = tokens["access_token"]
        await db.execute("ALTER TABLE tokens DISABLE TRIGGER tokens_changed")
        await db.execute(
            "UPDATE tokens SET expires_at = now() + interval '2 seconds' WHERE kind = 'access'"
        )
        await warm(replica, introspector, token)
        await asyncio.sleep(2.1)
        answer = await introspect(public_client, introspector, token)
    assert answer == {"active": False}


async def test_admin_introspection_uses_the_cache(
    replica: Replica, tokens: dict[str, Any], introspector: dict[str, Any]
) -> None:
    """The admin listener's POST /introspect is answered from memory too."""
    await warm(replica, introspector, tokens["access_token"])
    before = await replica.hits()
    response = await replica.admin.post("/introspect", data={"token": tokens["access_token"]})
    assert response.json()["active"] is True
    assert await replica.hits() == before + 1


async def test_lost_listener_drops_and_bypasses_the_cache(
    replica: Replica,
    db: asyncpg.Connection,
    cluster_url: str,
    tokens: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """With its LISTEN connection killed (and kept from coming back), a replica forgets what it
    cached and reads the database for every answer, until it listens again."""
    token = tokens["access_token"]
    await warm(replica, introspector, token)
    name = await db.fetchval("SELECT current_database()")
    cluster = await asyncpg.connect(cluster_url)
    await cluster.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    try:
        killed = await db.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'authserver-listen-authserver_token_changed'"
        )
        assert killed == 1
        await asyncio.sleep(0.3)  # the listener's reconnection attempts fail meanwhile
        hits = await replica.hits()
        for _ in range(3):
            assert (await introspect(replica.public, introspector, token))["active"] is True
        assert await replica.hits() == hits
        # A revocation nobody hears of reads inactive at once.
        await db.execute("ALTER TABLE tokens DISABLE TRIGGER tokens_changed")
        await db.execute("UPDATE tokens SET revoked_at = now() WHERE kind = 'access'")
        assert (await introspect(replica.public, introspector, token))["active"] is False
    finally:
        await cluster.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await cluster.close()
    await db.execute("UPDATE tokens SET revoked_at = NULL WHERE kind = 'access'")
    await warm(replica, introspector, token)  # back to caching once it listens again


async def test_silent_listener_is_given_up(
    replica: Replica, db: asyncpg.Connection, tokens: dict[str, Any], introspector: dict[str, Any]
) -> None:
    """A LISTEN connection that stops answering without closing (its backend frozen, as in a
    network partition) is given up within a few seconds: a revocation sent to it alone is
    then read from the database."""
    token = tokens["access_token"]
    await warm(replica, introspector, token)
    pid = await db.fetchval(
        "SELECT pid FROM pg_stat_activity "
        "WHERE application_name = 'authserver-listen-authserver_token_changed'"
    )
    os.kill(pid, signal.SIGSTOP)
    try:
        await db.execute("UPDATE tokens SET revoked_at = now() WHERE kind = 'access'")

        async def inactive() -> bool:
            return (await introspect(replica.public, introspector, token))["active"] is False

        assert await eventually(inactive, 4 * PING)
    finally:
        os.kill(pid, signal.SIGCONT)


# Every way a token stops being active, heard by a caching replica within a second


async def revoke_access(replica: Replica, client: dict[str, Any], tokens: dict[str, Any]) -> None:
    response = await post_form(
        replica.public, "/oauth2/revoke", {"token": tokens["access_token"]}, web_auth(client)
    )
    assert response.status_code == 200


async def revoke_refresh(replica: Replica, client: dict[str, Any], tokens: dict[str, Any]) -> None:
    response = await post_form(
        replica.public, "/oauth2/revoke", {"token": tokens["refresh_token"]}, web_auth(client)
    )
    assert response.status_code == 200


async def reuse_refresh(replica: Replica, client: dict[str, Any], tokens: dict[str, Any]) -> None:
    assert (await refresh(replica.public, client, tokens["refresh_token"])).status_code == 200
    assert (await refresh(replica.public, client, tokens["refresh_token"])).status_code == 400


async def revoke_grant(replica: Replica, client: dict[str, Any], tokens: dict[str, Any]) -> None:
    response = await replica.admin.delete(f"/users/alice-1/grants/{client['client_id']}")
    assert response.status_code == 204


async def change_password(replica: Replica, client: dict[str, Any], tokens: dict[str, Any]) -> None:
    response = await replica.admin.put(
        "/users/alice-1", json={"login": "alice", "password": "another horse battery staple"}
    )
    assert response.status_code == 200


async def delete_user(replica: Replica, client: dict[str, Any], tokens: dict[str, Any]) -> None:
    assert (await replica.admin.delete("/users/alice-1")).status_code == 204


async def disable_client(replica: Replica, client: dict[str, Any], tokens: dict[str, Any]) -> None:
    response = await replica.admin.patch(f"/clients/{client['client_id']}", json={"active": False})
    assert response.status_code == 200


async def delete_client(replica: Replica, client: dict[str, Any], tokens: dict[str, Any]) -> None:
    assert (await replica.admin.delete(f"/clients/{client['client_id']}")).status_code == 204


@pytest.mark.parametrize(
    "revocation",
    [
        revoke_access,
        revoke_refresh,
        reuse_refresh,
        revoke_grant,
        change_password,
        delete_user,
        disable_client,
        delete_client,
    ],
)
async def test_revocation_reaches_the_cache(
    replica: Replica,
    tokens: dict[str, Any],
    web_client: dict[str, Any],
    introspector: dict[str, Any],
    revocation: Callable[[Replica, dict[str, Any], dict[str, Any]], Awaitable[None]],
) -> None:
    """A cached access token reads inactive within a second of being revoked, however."""
    await warm(replica, introspector, tokens["access_token"])
    await revocation(replica, web_client, tokens)
    assert await goes_inactive(replica, introspector, tokens["access_token"])


async def test_revocation_through_this_replica_is_seen_at_once(
    replica: Replica,
    db: asyncpg.Connection,
    tokens: dict[str, Any],
    web_client: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """RFC 7009 on the replica that cached the token: inactive on the very next request, before
    (here: without) PostgreSQL's notification."""
    await warm(replica, introspector, tokens["access_token"])
    await db.execute("ALTER TABLE tokens DISABLE TRIGGER tokens_changed")
    await revoke_access(replica, web_client, tokens)
    answer = await introspect(replica.public, introspector, tokens["access_token"])
    assert answer == {"active": False}


async def test_regenerated_developer_token_leaves_the_cache(
    replica: Replica, web_client: dict[str, Any], introspector: dict[str, Any]
) -> None:
    """Regenerating a developer token kills the cached old one within a second."""
    path = f"/clients/{web_client['client_id']}/developer-token"
    old = (await replica.admin.post(path)).json()["access_token"]
    await warm(replica, introspector, old)
    assert (await replica.admin.post(path)).status_code == 201
    assert await goes_inactive(replica, introspector, old)


async def test_new_login_reaches_the_cache(
    replica: Replica, tokens: dict[str, Any], introspector: dict[str, Any]
) -> None:
    """A user's new login is what introspection answers as "username" within a second."""
    await warm(replica, introspector, tokens["access_token"])
    response = await replica.admin.put("/users/alice-1", json={"login": "alicia"})
    assert response.status_code == 200

    async def renamed() -> bool:
        answer = await introspect(replica.public, introspector, tokens["access_token"])
        return bool(answer.get("username") == "alicia")

    assert await eventually(renamed, PROPAGATION)


async def test_forged_token_costs_no_entry(replica: Replica, introspector: dict[str, Any]) -> None:
    """Unknown tokens are never cached: a negative answer is asked again each time."""
    unknown = CODEC.mint(TokenKind.ACCESS)
    for _ in range(2):
        response = await post_form(
            replica.public, INTROSPECT, {"token": unknown}, web_auth(introspector)
        )
        assert response.json() == {"active": False}
    assert await replica.hits() == 0
