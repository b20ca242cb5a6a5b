"""What ends tokens besides their own expiry: a refresh family's absolute lifetime, a password
change or reset, and disabling the client (checklist S-40, S-72)."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from tests.conftest import ALICE_PASSWORD
from tests.token_support import client_token, introspect, refresh, stored_token, web_tokens

Client = dict[str, Any]


async def row(db: asyncpg.Connection, token: str) -> asyncpg.Record:
    found = await stored_token(db, token)
    assert found is not None
    return found


async def family_ends_in(db: asyncpg.Connection, token: str, seconds: int) -> None:
    """Make the family's first refresh token expire ``seconds`` from now, as if issued long ago."""
    await db.execute(
        "UPDATE tokens SET expires_at = now() + make_interval(secs => $2) WHERE digest = $1",
        (await row(db, token))["digest"],
        float(seconds),
    )


# S-40a: the family's first issue bounds every token of it


async def test_rotation_keeps_the_familys_end(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, tokens: dict[str, Any]
) -> None:
    """A rotated refresh token expires when the family does, not a full lifetime later."""
    await family_ends_in(db, tokens["refresh_token"], 120)
    before = (await row(db, tokens["refresh_token"]))["expires_at"]
    rotated = await refresh(public, web_client, tokens["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    assert (await row(db, rotated.json()["refresh_token"]))["expires_at"] == before


async def test_access_token_of_a_rotation_ends_with_the_family(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, tokens: dict[str, Any]
) -> None:
    """An access token issued near the family's end expires with it, not an hour later."""
    await family_ends_in(db, tokens["refresh_token"], 60)
    before = (await row(db, tokens["refresh_token"]))["expires_at"]
    rotated = await refresh(public, web_client, tokens["refresh_token"])
    assert (await row(db, rotated.json()["access_token"]))["expires_at"] == before


async def test_rotating_for_ever_does_not_outlive_the_family(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, tokens: dict[str, Any]
) -> None:
    """However often a stolen refresh token keeps rotating, the family's end stays put."""
    await family_ends_in(db, tokens["refresh_token"], 300)
    ends = {(await row(db, tokens["refresh_token"]))["expires_at"]}
    current = tokens["refresh_token"]
    for _ in range(5):
        rotated = await refresh(public, web_client, current)
        assert rotated.status_code == 200, rotated.text
        current = rotated.json()["refresh_token"]
        ends.add((await row(db, current))["expires_at"])
    assert len(ends) == 1


# S-40b: a password change or reset revokes


async def set_password(admin: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await admin.put(
        "/users/alice-1", json={"login": "alice", "email": "alice@example.com", **body}
    )
    assert response.status_code == 200, response.text


async def alice_session(db: asyncpg.Connection) -> None:
    """A signed-in browser session of alice's, as the login page leaves one."""
    await db.execute(
        """INSERT INTO browser_sessions (sid_digest, user_id, expires_at)
           VALUES (sha256('alice-session'), 'alice-1', now() + interval '1 hour')"""
    )


async def test_new_password_revokes_the_users_tokens(
    public: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    introspector: Client,
    web_client: Client,
    tokens: dict[str, Any],
) -> None:
    """After a password reset the user's access token introspects inactive and the refresh
    token no longer refreshes."""
    await set_password(admin, {"password": "a brand new password"})
    assert (await introspect(public, introspector, tokens["access_token"]))["active"] is False
    refused = await refresh(public, web_client, tokens["refresh_token"])
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"


async def test_new_password_ends_browser_sessions(
    admin: httpx.AsyncClient, db: asyncpg.Connection, alice: Client
) -> None:
    """A password reset signs the user out of every browser."""
    await alice_session(db)
    await set_password(admin, {"password": "a brand new password"})
    assert await db.fetchval("SELECT count(*) FROM browser_sessions") == 0


async def test_new_password_hash_revokes_too(
    public: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    introspector: Client,
    tokens: dict[str, Any],
) -> None:
    """A password set as an argon2 hash counts as a change, like a plain password."""
    other = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$Xb7vCFH9pYd3b0PKb3xR2Q"
    await set_password(admin, {"password_hash": other})
    assert (await introspect(public, introspector, tokens["access_token"]))["active"] is False


async def test_removing_the_password_revokes_too(
    public: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    introspector: Client,
    tokens: dict[str, Any],
) -> None:
    """Taking the password away (null) is a change: the account may have been compromised."""
    await set_password(admin, {"password": None})
    assert (await introspect(public, introspector, tokens["access_token"]))["active"] is False


async def test_profile_update_keeps_tokens_and_sessions(
    public: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    db: asyncpg.Connection,
    introspector: Client,
    tokens: dict[str, Any],
) -> None:
    """A PUT that leaves the password alone (no password member) revokes nothing."""
    await alice_session(db)
    await set_password(admin, {"display_name": "Alice A."})
    assert (await introspect(public, introspector, tokens["access_token"]))["active"] is True
    assert await db.fetchval("SELECT count(*) FROM browser_sessions") == 1


async def test_same_password_hash_again_keeps_tokens(
    public: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    db: asyncpg.Connection,
    introspector: Client,
    tokens: dict[str, Any],
) -> None:
    """A platform that re-sends the stored hash unchanged is not changing the password."""
    stored = await db.fetchval("SELECT password_hash FROM users WHERE user_id = 'alice-1'")
    await set_password(admin, {"password_hash": stored})
    assert (await introspect(public, introspector, tokens["access_token"]))["active"] is True


async def test_password_change_is_audited_without_the_password(
    admin: httpx.AsyncClient, db: asyncpg.Connection, alice: Client
) -> None:
    """The change is an audit event that carries no password material."""
    await set_password(admin, {"password": "a brand new password"})
    row = await db.fetchrow(
        "SELECT user_id, detail::text AS detail FROM audit_events "
        "WHERE kind = 'user.password_changed'"
    )
    assert row is not None
    assert row["user_id"] == "alice-1"
    assert "a brand new password" not in row["detail"]
    assert ALICE_PASSWORD not in row["detail"]


# S-72: disabling a client kills its tokens


async def disable(admin: httpx.AsyncClient, client: Client, active: bool = False) -> None:
    response = await admin.patch(f"/clients/{client['client_id']}", json={"active": active})
    assert response.status_code == 200, response.text


async def test_disabling_a_client_revokes_its_tokens(
    admin: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, tokens: dict[str, Any]
) -> None:
    """PATCH active=false revokes every token the client holds."""
    await disable(admin, web_client)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        assert (await row(db, token))["revoked_at"] is not None


async def test_reenabling_brings_no_token_back(
    public: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    introspector: Client,
    web_client: Client,
    tokens: dict[str, Any],
) -> None:
    """A client disabled and enabled again finds its old tokens dead; new ones work."""
    await disable(admin, web_client)
    await disable(admin, web_client, active=True)
    assert (await introspect(public, introspector, tokens["access_token"]))["active"] is False
    refused = await refresh(public, web_client, tokens["refresh_token"])
    assert refused.status_code == 400
    fresh = await client_token(public, web_client)
    assert (await introspect(public, introspector, fresh))["active"] is True


async def test_disabling_kills_unredeemed_codes(
    public: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: Client,
    alice: Client,
) -> None:
    """A code issued before the client was disabled cannot be redeemed after it is enabled."""
    from tests.token_support import redeem, web_code

    code, verifier = await web_code(db, web_client, alice)
    await disable(admin, web_client)
    await disable(admin, web_client, active=True)
    refused = await redeem(public, web_client, code, verifier)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"


async def test_other_clients_tokens_survive(
    public: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    db: asyncpg.Connection,
    introspector: Client,
    web_client: Client,
    alice: Client,
) -> None:
    """Disabling one client leaves the tokens of the others alone."""
    theirs = await client_token(public, introspector)
    await web_tokens(public, db, web_client, alice)
    await disable(admin, web_client)
    assert (await introspect(public, introspector, theirs))["active"] is True
