"""Signing in with a wrapped Phraseanet hash (D1): verified as Phraseanet does, then upgraded to a
plain argon2id, through the one sign-in policy that the login page and the password grant share.

The rows here are made legacy straight in the database; tests/test_phraseanet_signin.py signs in
users that went through the real import.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from argon2 import PasswordHasher

from authserver.models import LegacyScheme
from authserver.security.legacy import HMAC_SHA512, SHA256, legacy_hex, source_digest
from tests.authorize_support import login_form, public_app, query, sign_in, submit_login
from tests.token_support import post_token, web_auth

SITE_KEY = "Zk3+u/9QxWb0nT7e"  # a 4.x main.key: 16 characters of RandomLib's alphabet
NONCE = "x" * 16
PASSWORD = "Phraseanet pass 42"
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


async def make_legacy(
    db: asyncpg.Connection, user_id: str, scheme: LegacyScheme, password: str, salt: str | None
) -> bytes:
    """Give a user the wrapped Phraseanet hash of ``password``, as the import leaves it."""
    stored = legacy_hex(scheme, password, salt, SITE_KEY)
    assert stored is not None
    source = source_digest(scheme, salt, stored)
    await db.execute(
        """UPDATE users SET password_hash = $2, legacy_scheme = $3, legacy_salt = $4,
                            legacy_source = $5
           WHERE user_id = $1""",
        user_id,
        CHEAP.hash(stored),
        scheme,
        salt,
        source,
    )
    return source


async def legacy_state(db: asyncpg.Connection, user_id: str) -> asyncpg.Record:
    row = await db.fetchrow(
        "SELECT password_hash, legacy_scheme, legacy_salt, legacy_source FROM users"
        " WHERE user_id = $1",
        user_id,
    )
    assert row is not None
    return row


@pytest.fixture
async def keyed(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The public app of a server that has Phraseanet's site key."""
    async with public_app(database_url, phraseanet_site_key=SITE_KEY) as client:
        yield client


@pytest.fixture
async def unkeyed(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The public app of a server without the site key."""
    async with public_app(database_url) as client:
        yield client


@pytest.fixture
async def password_client(admin: httpx.AsyncClient, web_client: dict[str, Any]) -> dict[str, Any]:
    """The web client, with the password grant enabled."""
    response = await admin.patch(
        f"/clients/{web_client['client_id']}", json={"password_grant": True}
    )
    assert response.status_code == 200
    return web_client


async def password_grant(
    client: httpx.AsyncClient, app: dict[str, Any], username: str, password: str
) -> httpx.Response:
    params = {"grant_type": "password", "username": username, "password": password}
    return await post_token(client, params, headers=web_auth(app))


async def test_hmac_password_signs_in_on_the_login_page(
    keyed: httpx.AsyncClient, db: asyncpg.Connection, web_client: Any, alice: Any
) -> None:
    """An HMAC-SHA512 row signs in with its Phraseanet password on the login page."""
    await make_legacy(db, alice["user_id"], HMAC_SHA512, PASSWORD, NONCE)
    await sign_in(keyed, query(web_client), "alice", PASSWORD)


async def test_sign_in_upgrades_to_plain_argon2(
    keyed: httpx.AsyncClient, db: asyncpg.Connection, web_client: Any, alice: Any
) -> None:
    """After a verified sign-in the legacy columns are gone and argon2 holds the password."""
    await make_legacy(db, alice["user_id"], HMAC_SHA512, PASSWORD, NONCE)
    await sign_in(keyed, query(web_client), "alice", PASSWORD)
    row = await legacy_state(db, alice["user_id"])
    assert (row["legacy_scheme"], row["legacy_salt"], row["legacy_source"]) == (None, None, None)
    assert CHEAP.verify(row["password_hash"], PASSWORD)


async def test_upgrade_is_audited(
    keyed: httpx.AsyncClient, db: asyncpg.Connection, web_client: Any, alice: Any
) -> None:
    """The upgrade leaves an audit event saying through which door it came."""
    await make_legacy(db, alice["user_id"], SHA256, PASSWORD, None)
    await sign_in(keyed, query(web_client), "alice", PASSWORD)
    detail = await db.fetchval(
        "SELECT detail->>'via' FROM audit_events WHERE kind = 'user.legacy_password_upgraded'"
    )
    assert detail == "login_page"


async def test_sha256_password_signs_in_through_the_password_grant(
    unkeyed: httpx.AsyncClient, db: asyncpg.Connection, password_client: Any, alice: Any
) -> None:
    """An old unsalted SHA-256 row needs no site key, and works at the token endpoint."""
    await make_legacy(db, alice["user_id"], SHA256, PASSWORD, "0123456789abcdef")
    response = await password_grant(unkeyed, password_client, "alice", PASSWORD)
    assert response.status_code == 200, response.text
    assert (await legacy_state(db, alice["user_id"]))["legacy_scheme"] is None


async def test_hmac_password_without_site_key_is_refused(
    unkeyed: httpx.AsyncClient, db: asyncpg.Connection, password_client: Any, alice: Any
) -> None:
    """Without the site key an HMAC row cannot verify, and stays as it was."""
    source = await make_legacy(db, alice["user_id"], HMAC_SHA512, PASSWORD, NONCE)
    response = await password_grant(unkeyed, password_client, "alice", PASSWORD)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert (await legacy_state(db, alice["user_id"]))["legacy_source"] == source


async def test_upgraded_user_needs_no_site_key(
    keyed: httpx.AsyncClient,
    unkeyed: httpx.AsyncClient,
    db: asyncpg.Connection,
    password_client: Any,
    alice: Any,
) -> None:
    """Once upgraded, the password works on a server that no longer has the key."""
    await make_legacy(db, alice["user_id"], HMAC_SHA512, PASSWORD, NONCE)
    assert (await password_grant(keyed, password_client, "alice", PASSWORD)).status_code == 200
    assert (await password_grant(unkeyed, password_client, "alice", PASSWORD)).status_code == 200


async def test_wrong_password_keeps_the_legacy_hash(
    keyed: httpx.AsyncClient, db: asyncpg.Connection, web_client: Any, alice: Any
) -> None:
    """A wrong password is refused on the login page and upgrades nothing."""
    source = await make_legacy(db, alice["user_id"], HMAC_SHA512, PASSWORD, NONCE)
    page = await login_form(keyed, query(web_client))
    response = await submit_login(keyed, page, "alice", PASSWORD + "!")
    assert response.status_code == 400
    assert (await legacy_state(db, alice["user_id"]))["legacy_source"] == source


async def test_the_hex_itself_is_not_a_password(
    keyed: httpx.AsyncClient, db: asyncpg.Connection, password_client: Any, alice: Any
) -> None:
    """Someone holding the stolen Phraseanet hash cannot sign in by sending it."""
    await make_legacy(db, alice["user_id"], HMAC_SHA512, PASSWORD, NONCE)
    stolen = legacy_hex(HMAC_SHA512, PASSWORD, NONCE, SITE_KEY)
    assert stolen is not None
    assert (await password_grant(keyed, password_client, "alice", stolen)).status_code == 400


async def test_hard_coded_password_is_refused_even_if_it_verifies(
    keyed: httpx.AsyncClient, db: asyncpg.Connection, password_client: Any, alice: Any
) -> None:
    """D3: a row whose hash is of user_tmp_pwd does not sign in with it."""
    await make_legacy(db, alice["user_id"], HMAC_SHA512, "user_tmp_pwd", NONCE)
    response = await password_grant(keyed, password_client, "alice", "user_tmp_pwd")
    assert response.status_code == 400
    assert (await legacy_state(db, alice["user_id"]))["legacy_scheme"] == HMAC_SHA512


async def test_platform_password_replaces_the_legacy_hash(
    admin: httpx.AsyncClient, db: asyncpg.Connection, alice: Any
) -> None:
    """A password the platform sets replaces the wrapped hash and clears the legacy columns."""
    await make_legacy(db, alice["user_id"], HMAC_SHA512, PASSWORD, NONCE)
    response = await admin.put(
        f"/users/{alice['user_id']}", json={"login": "alice", "password": "a brand new one"}
    )
    assert response.status_code == 200
    row = await legacy_state(db, alice["user_id"])
    assert row["legacy_scheme"] is None
    assert CHEAP.verify(row["password_hash"], "a brand new one")


async def test_profile_update_keeps_the_legacy_hash(
    admin: httpx.AsyncClient, db: asyncpg.Connection, alice: Any
) -> None:
    """A profile update without a password keeps the wrapped hash and its columns."""
    source = await make_legacy(db, alice["user_id"], HMAC_SHA512, PASSWORD, NONCE)
    response = await admin.put(f"/users/{alice['user_id']}", json={"login": "alice2"})
    assert response.status_code == 200
    assert (await legacy_state(db, alice["user_id"]))["legacy_source"] == source
