"""Tokens imported from Phraseanet (D9, D12): 32 alphanumerics without a MAC, found by digest
among the imported rows only, and only while there are any; both introspection listeners.

Rows are made legacy straight in the database here; tests/test_phraseanet_live.py uses tokens
that went through the real import, against a running server.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from authserver.config import Settings
from authserver.models import TokenRow
from authserver.oauth.legacy import LegacyTokens
from authserver.security.tokens import is_legacy_shaped, token_digest
from authserver.services import create_apps
from tests import conftest
from tests.token_support import INTROSPECT, post_form, web_auth

ALPHANUMERIC = string.ascii_letters + string.digits


def legacy_value() -> str:
    """A Phraseanet developer token: 32 characters of [0-9A-Za-z]."""
    return "".join(secrets.choice(ALPHANUMERIC) for _ in range(32))


async def store_legacy(
    db: asyncpg.Connection,
    client: dict[str, Any],
    user: dict[str, Any],
    token: str,
    *,
    developer: bool = False,
    expires: str = "now() + interval '90 days'",
    legacy: bool = True,
) -> None:
    """Store ``token`` as the import does: its digest, flagged legacy, under the user's grant."""
    grant_id = await db.fetchval(
        """INSERT INTO grants (user_id, client_id, scopes) VALUES ($1, $2, '{read,write}')
           ON CONFLICT (user_id, client_id) DO UPDATE SET updated_at = now()
           RETURNING grant_id""",
        user["user_id"],
        client["client_id"],
    )
    await db.execute(
        f"""INSERT INTO tokens (digest, kind, client_id, user_id, grant_id, scope, developer,
                                expires_at, legacy)
            VALUES ($1, 'access', $2, $3, $4, 'read write', $5,
                    {"NULL" if developer else expires}, $6)""",
        token_digest(token),
        client["client_id"],
        user["user_id"],
        grant_id,
        developer,
        legacy,
    )


@asynccontextmanager
async def started(database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """A server started now, so it sees the legacy rows the test stored: (public, admin)."""
    settings = Settings.from_env(conftest.server_environ(database_url))
    public_app, admin_app = create_apps(settings)
    async with (
        LifespanManager(public_app) as public,
        LifespanManager(admin_app) as admin,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=public.app), base_url="https://auth.example.test"
        ) as public_client,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=admin.app),
            base_url="http://admin.test",
            headers={"Authorization": f"Bearer {conftest.ADMIN_TOKEN}"},
        ) as admin_client,
    ):
        yield public_client, admin_client


@pytest.fixture
async def token(db: asyncpg.Connection, web_client: dict[str, Any], alice: dict[str, Any]) -> str:
    """A legacy flow token of the web client for alice, stored before the server starts."""
    value = legacy_value()
    await store_legacy(db, web_client, alice, value)
    return value


async def introspected(
    public: httpx.AsyncClient, introspector: dict[str, Any], token: str
) -> dict[str, Any]:
    response = await post_form(public, INTROSPECT, {"token": token}, web_auth(introspector))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_legacy_token_is_active_at_public_introspection(
    database_url: str, token: str, introspector: dict[str, Any], web_client: dict[str, Any]
) -> None:
    """An imported token introspects as active, for its user and client."""
    async with started(database_url) as (public, _):
        body = await introspected(public, introspector, token)
    assert body["active"] is True
    assert body["sub"] == "alice-1"
    assert body["client_id"] == web_client["client_id"]
    assert body["scope"] == "read write"
    assert "exp" in body


async def test_developer_token_never_expires(
    database_url: str,
    db: asyncpg.Connection,
    introspector: dict[str, Any],
    web_client: dict[str, Any],
    owner: dict[str, Any],
) -> None:
    """An imported developer token is active and carries no exp."""
    value = legacy_value()
    await store_legacy(db, web_client, owner, value, developer=True)
    async with started(database_url) as (public, _):
        body = await introspected(public, introspector, value)
    assert body["active"] is True
    assert "exp" not in body


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(lambda token: {"authorization": f"OAuth {token}"}, id="oauth-header"),
        pytest.param(lambda token: {"oauth_token": token}, id="oauth_token"),
        pytest.param(lambda token: {"token": token}, id="token"),
    ],
)
async def test_legacy_token_is_active_at_admin_introspection(
    database_url: str, token: str, body: Any
) -> None:
    """The platform's introspection takes Phraseanet's ways of sending the token."""
    async with started(database_url) as (_, admin):
        response = await admin.post("/introspect", json=body(token))
    assert response.status_code == 200, response.text
    assert response.json()["active"] is True
    assert response.json()["sub"] == "alice-1"


async def test_oauth_token_form_at_admin_introspection(database_url: str, token: str) -> None:
    """A form-encoded oauth_token, as Phraseanet's PHP SDK sends it, is introspected too."""
    async with started(database_url) as (_, admin):
        response = await admin.post(
            "/introspect",
            content=f"oauth_token={token}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.json()["active"] is True


@pytest.mark.parametrize(
    "change",
    [str.swapcase, lambda token: token[:-1], lambda token: token[1:] + token[0]],
    ids=["other-case", "shorter", "rotated"],
)
async def test_matching_is_exact(
    database_url: str, token: str, introspector: dict[str, Any], change: Any
) -> None:
    """D12: MySQL's case- and space-insensitive lookup is gone; only the exact value works."""
    async with started(database_url) as (public, admin):
        assert (await introspected(public, introspector, change(token)))["active"] is False
        response = await admin.post("/introspect", json={"token": change(token)})
        assert response.json() == {"active": False}


async def test_trailing_space_does_not_match(
    database_url: str, token: str, introspector: dict[str, Any]
) -> None:
    """D12: MySQL ignored trailing spaces in its lookup; the public endpoint does not."""
    async with started(database_url) as (public, _):
        assert (await introspected(public, introspector, token + " "))["active"] is False


async def test_expired_legacy_token_is_inactive(
    database_url: str,
    db: asyncpg.Connection,
    introspector: dict[str, Any],
    web_client: dict[str, Any],
    alice: dict[str, Any],
) -> None:
    """A flow token past its import grace period is inactive."""
    value = legacy_value()
    await store_legacy(db, web_client, alice, value, expires="now() - interval '1 second'")
    async with started(database_url) as (public, _):
        assert (await introspected(public, introspector, value))["active"] is False


async def test_only_legacy_rows_are_looked_at(
    database_url: str,
    db: asyncpg.Connection,
    token: str,
    introspector: dict[str, Any],
    web_client: dict[str, Any],
    alice: dict[str, Any],
) -> None:
    """A MAC-less value never reaches a row that was not imported, whatever its digest."""
    other = legacy_value()
    await store_legacy(db, web_client, alice, other, legacy=False)
    async with started(database_url) as (public, admin):
        assert (await introspected(public, introspector, other))["active"] is False
        assert (await admin.post("/introspect", json={"token": other})).json()["active"] is False


async def test_client_revokes_its_legacy_token(
    database_url: str, token: str, introspector: dict[str, Any], web_client: dict[str, Any]
) -> None:
    """RFC 7009: the app revokes its imported token, which is inactive from then on."""
    async with started(database_url) as (public, _):
        response = await post_form(public, "/oauth2/revoke", {"token": token}, web_auth(web_client))
        assert response.status_code == 200
        assert (await introspected(public, introspector, token))["active"] is False


async def guesses(admin: httpx.AsyncClient, reason: str) -> float:
    """How many introspection guesses the metrics counted for ``reason``."""
    text = (await admin.get("/metrics")).text
    prefix = f'authserver_failed_guesses_total{{endpoint="introspect",reason="{reason}"}} '
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(lines[0][len(prefix) :]) if lines else 0.0


async def test_without_legacy_rows_a_legacy_shape_is_forged(
    database_url: str, introspector: dict[str, Any]
) -> None:
    """With no imported token stored, a 32-character value is refused as forged: no query."""
    async with started(database_url) as (public, admin):
        assert (await introspected(public, introspector, legacy_value()))["active"] is False
        assert await guesses(admin, "forged") == 1
        assert await guesses(admin, "unknown") == 0


async def test_with_legacy_rows_an_unknown_value_is_a_guess(
    database_url: str, token: str, introspector: dict[str, Any]
) -> None:
    """While imported tokens exist, an unknown value of their shape is looked up, and counted
    as an unknown token like any other."""
    async with started(database_url) as (public, admin):
        assert (await introspected(public, introspector, legacy_value()))["active"] is False
        assert await guesses(admin, "unknown") == 1


# the presence flag, alone


def test_legacy_shape() -> None:
    """32 characters of [0-9A-Za-z] and nothing else is Phraseanet's shape."""
    assert is_legacy_shaped("0123456789abcdefABCDEF0123456789")
    for other in ("a" * 31, "a" * 33, "a" * 31 + "_", "é" + "a" * 31, "phrat_" + "a" * 26):
        assert not is_legacy_shaped(other), other


async def test_flag_follows_the_database() -> None:
    """recognises() is true only while the last look found imported rows; find() is asked
    only then."""
    stored = {"present": False}
    asked: list[bytes] = []

    async def exists() -> bool:
        return stored["present"]

    async def lookup(digest: bytes) -> TokenRow | None:
        asked.append(digest)
        return None

    legacy = LegacyTokens(lookup, exists)
    assert legacy.recognises("a" * 32)  # not known yet: look
    await legacy.refresh()
    assert not legacy.recognises("a" * 32)
    stored["present"] = True
    await legacy.refresh()
    assert legacy.recognises("a" * 32)
    assert not legacy.recognises("phrat_" + "a" * 26)
    assert asked == []
