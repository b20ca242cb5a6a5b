"""The token endpoint's other grants: client credentials, password and refresh token
(RFC 6749 §4.3, §4.4, §6; RFC 9700 §4.14)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx
import pytest

from authserver.security.tokens import TokenKind
from tests.conftest import ALICE_PASSWORD
from tests.oauth_support import CODEC
from tests.token_support import (
    audit_kinds,
    desktop_tokens,
    expire,
    introspect,
    post_token,
    refresh,
    stored_token,
    web_auth,
    web_tokens,
)

Client = dict[str, Any]


async def family_rows(db: asyncpg.Connection, token: str) -> list[asyncpg.Record]:
    """Every token of the family the given token belongs to."""
    row = await stored_token(db, token)
    assert row is not None
    assert row["family_id"] is not None
    rows: list[asyncpg.Record] = await db.fetch(
        "SELECT * FROM tokens WHERE family_id = $1", row["family_id"]
    )
    return rows


# Client credentials (RFC 6749 §4.4)


async def test_client_credentials_issues_access_token_only(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client
) -> None:
    """S-31: a confidential client gets an access token for itself and no refresh token."""
    response = await post_token(
        public, {"grant_type": "client_credentials"}, headers=web_auth(web_client)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["access_token"].startswith("phrat_")
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert "refresh_token" not in body
    row = await stored_token(db, body["access_token"])
    assert row is not None
    assert row["client_id"] == web_client["client_id"]
    assert row["user_id"] is None
    assert await db.fetchval("SELECT count(*) FROM tokens WHERE kind = 'refresh'") == 0


async def test_client_credentials_issue_is_audited_with_its_token(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client
) -> None:
    """The token issued without a transaction is stored with its token.issued event."""
    response = await post_token(
        public, {"grant_type": "client_credentials"}, headers=web_auth(web_client)
    )
    assert response.status_code == 200, response.text
    row = await stored_token(db, response.json()["access_token"])
    assert row is not None
    assert (row["kind"], row["client_id"], row["user_id"]) == (
        "access",
        web_client["client_id"],
        None,
    )
    assert row["expires_at"] is not None
    events = await db.fetch(
        "SELECT client_id, user_id, detail FROM audit_events WHERE kind = 'token.issued'"
    )
    assert [(e["client_id"], e["user_id"], json.loads(e["detail"])) for e in events] == [
        (web_client["client_id"], None, {"grant_type": "client_credentials"})
    ]


async def test_client_credentials_narrows_scope(
    public: httpx.AsyncClient, web_client: Client
) -> None:
    """S-34: a client credentials request for a known scope gets exactly that scope."""
    response = await post_token(
        public, {"grant_type": "client_credentials", "scope": "read"}, headers=web_auth(web_client)
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "read"


async def test_client_credentials_refuses_public_client(
    public: httpx.AsyncClient, db: asyncpg.Connection, desktop_client: Client
) -> None:
    """S-31: a public desktop client cannot authenticate for client credentials: invalid_client."""
    response = await post_token(
        public, {"grant_type": "client_credentials", "client_id": desktop_client["client_id"]}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")
    assert await db.fetchval("SELECT count(*) FROM tokens") == 0


@pytest.mark.parametrize(
    "scope",
    [
        pytest.param("admin", id="unknown"),
        pytest.param("read admin", id="known-and-unknown"),
        pytest.param("READ", id="wrong-case"),
    ],
)
async def test_client_credentials_unknown_scope_is_invalid_scope(
    public: httpx.AsyncClient, web_client: Client, scope: str
) -> None:
    """S-34: a scope the server does not know is invalid_scope."""
    response = await post_token(
        public, {"grant_type": "client_credentials", "scope": scope}, headers=web_auth(web_client)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


# Password grant (RFC 6749 §4.3)


def password_params(username: str = "alice", password: str = ALICE_PASSWORD) -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password}


@pytest.fixture
async def password_client(admin: httpx.AsyncClient, web_client: Client) -> Client:
    """The web client with the password grant enabled by its owner."""
    response = await admin.patch(
        f"/clients/{web_client['client_id']}", json={"password_grant": True}
    )
    assert response.status_code == 200
    assert response.json()["password_grant"] is True
    return web_client


async def test_password_grant_is_disabled_by_default(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-05: with the password grant not enabled, right credentials get unauthorized_client."""
    response = await post_token(public, password_params(), headers=web_auth(web_client))
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"
    assert await db.fetchval("SELECT count(*) FROM tokens") == 0


async def test_password_grant_issues_tokens_when_enabled(
    public: httpx.AsyncClient, password_client: Client, alice: Client
) -> None:
    """RFC 6749 §4.3.3: an enabled client exchanging right credentials gets a refresh pair."""
    response = await post_token(public, password_params(), headers=web_auth(password_client))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["access_token"].startswith("phrat_")
    assert body["refresh_token"].startswith("phrrt_")
    assert body["token_type"] == "Bearer"


async def test_password_grant_matches_login_without_case(
    public: httpx.AsyncClient, db: asyncpg.Connection, password_client: Client, alice: Client
) -> None:
    """The password grant finds the user by login whatever its case."""
    response = await post_token(
        public, password_params(username="ALICE"), headers=web_auth(password_client)
    )
    assert response.status_code == 200, response.text
    row = await stored_token(db, response.json()["access_token"])
    assert row is not None
    assert row["user_id"] == alice["user_id"]


async def test_wrong_password_and_unknown_user_answer_alike(
    public: httpx.AsyncClient, password_client: Client, alice: Client
) -> None:
    """S-62: a wrong password and an unknown user get the same 400 invalid_grant body."""
    wrong = await post_token(
        public, password_params(password="wrong password"), headers=web_auth(password_client)
    )
    unknown = await post_token(
        public, password_params(username="mallory"), headers=web_auth(password_client)
    )
    assert wrong.status_code == unknown.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    assert wrong.content == unknown.content


async def test_user_without_password_is_invalid_grant(
    public: httpx.AsyncClient, admin: httpx.AsyncClient, password_client: Client
) -> None:
    """A user provisioned without a password cannot use the password grant."""
    created = await admin.put("/users/bob-1", json={"login": "bob", "email": "bob@example.com"})
    assert created.status_code == 201
    for password in ("x", ALICE_PASSWORD):
        response = await post_token(
            public, password_params("bob", password), headers=web_auth(password_client)
        )
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"


async def test_password_grant_records_a_grant(
    public: httpx.AsyncClient, admin: httpx.AsyncClient, password_client: Client, alice: Client
) -> None:
    """The password grant leaves a grant the user sees among their authorized apps."""
    before = await admin.get(f"/users/{alice['user_id']}/grants")
    assert before.json()["grants"] == []
    response = await post_token(public, password_params(), headers=web_auth(password_client))
    assert response.status_code == 200
    after = await admin.get(f"/users/{alice['user_id']}/grants")
    assert after.status_code == 200
    assert [grant["client_id"] for grant in after.json()["grants"]] == [
        password_client["client_id"]
    ]


async def test_password_grant_needs_client_authentication(
    public: httpx.AsyncClient, password_client: Client, alice: Client
) -> None:
    """S-31: a confidential client using the password grant must authenticate."""
    params = {**password_params(), "client_id": password_client["client_id"]}
    response = await post_token(public, params)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


# Refresh token (RFC 6749 §6, RFC 9700 §4.14.2)


async def test_refresh_rotates_the_refresh_token(
    public: httpx.AsyncClient, tokens: dict[str, Any], web_client: Client
) -> None:
    """S-37: each refresh returns a new access and refresh token."""
    seen = {tokens["access_token"], tokens["refresh_token"]}
    current = tokens["refresh_token"]
    for _ in range(3):
        response = await refresh(public, web_client, current)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["refresh_token"].startswith("phrrt_")
        assert body["access_token"] not in seen
        assert body["refresh_token"] not in seen
        seen |= {body["access_token"], body["refresh_token"]}
        current = body["refresh_token"]


@pytest.mark.parametrize(
    "replayed", [pytest.param(0, id="first-generation"), pytest.param(1, id="second-generation")]
)
async def test_refresh_reuse_revokes_the_whole_family(
    public: httpx.AsyncClient,
    tokens: dict[str, Any],
    db: asyncpg.Connection,
    web_client: Client,
    introspector: Client,
    replayed: int,
) -> None:
    """S-37, S-38: replaying any rotated-out refresh token revokes every token of its family."""
    chain = [tokens]
    for _ in range(2):
        response = await refresh(public, web_client, chain[-1]["refresh_token"])
        assert response.status_code == 200
        chain.append(response.json())
    newest = chain[-1]
    reuse = await refresh(public, web_client, chain[replayed]["refresh_token"])
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"
    rows = await family_rows(db, newest["refresh_token"])
    assert len(rows) == 6
    assert all(row["revoked_at"] is not None for row in rows)
    assert (await introspect(public, introspector, newest["access_token"]))["active"] is False
    after = await refresh(public, web_client, newest["refresh_token"])
    assert after.status_code == 400
    assert after.json()["error"] == "invalid_grant"


async def test_refresh_reuse_is_audited(
    public: httpx.AsyncClient, tokens: dict[str, Any], db: asyncpg.Connection, web_client: Client
) -> None:
    """S-37: refresh-token reuse leaves a refresh.reuse_detected audit event."""
    await refresh(public, web_client, tokens["refresh_token"])
    assert "refresh.reuse_detected" not in await audit_kinds(db)
    await refresh(public, web_client, tokens["refresh_token"])
    assert "refresh.reuse_detected" in await audit_kinds(db)


async def test_refresh_leaves_other_families_alone(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-37: reuse in one family does not revoke another authorization's tokens."""
    victim = await web_tokens(public, db, web_client, alice)
    other = await web_tokens(public, db, web_client, alice)
    await refresh(public, web_client, victim["refresh_token"])
    await refresh(public, web_client, victim["refresh_token"])
    response = await refresh(public, web_client, other["refresh_token"])
    assert response.status_code == 200, response.text


async def test_refresh_may_narrow_scope(
    public: httpx.AsyncClient, tokens: dict[str, Any], db: asyncpg.Connection, web_client: Client
) -> None:
    """S-36: a refresh asking for a subset of the original scope gets that subset."""
    response = await refresh(public, web_client, tokens["refresh_token"], scope="read")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "read"
    row = await stored_token(db, body["access_token"])
    assert row is not None
    assert row["scope"] == "read"


async def test_narrowed_refresh_keeps_the_original_scope(
    public: httpx.AsyncClient, tokens: dict[str, Any], web_client: Client
) -> None:
    """S-36: after a narrowed refresh, the rotated refresh token still carries the full scope."""
    narrowed = await refresh(public, web_client, tokens["refresh_token"], scope="read")
    assert narrowed.status_code == 200
    response = await refresh(
        public, web_client, narrowed.json()["refresh_token"], scope="read write"
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "read write"


@pytest.mark.parametrize(
    "scope",
    [
        pytest.param("read write", id="wider"),
        pytest.param("write", id="disjoint"),
        pytest.param("admin", id="unknown"),
    ],
)
async def test_refresh_cannot_widen_scope(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: Client,
    alice: Client,
    scope: str,
) -> None:
    """S-36: a refresh asking for more than the original scope is invalid_scope."""
    tokens = await web_tokens(public, db, web_client, alice, scope="read")
    response = await refresh(public, web_client, tokens["refresh_token"], scope=scope)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


async def test_another_clients_refresh_token_is_invalid_grant(
    public: httpx.AsyncClient, tokens: dict[str, Any], introspector: Client
) -> None:
    """S-35: a client authenticated as itself cannot use another client's refresh token."""
    response = await refresh(public, introspector, tokens["refresh_token"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_refresh_token_survives_another_clients_attempt(
    public: httpx.AsyncClient, tokens: dict[str, Any], web_client: Client, introspector: Client
) -> None:
    """S-35: another client's refused attempt neither consumes nor revokes the refresh token."""
    await refresh(public, introspector, tokens["refresh_token"])
    response = await refresh(public, web_client, tokens["refresh_token"])
    assert response.status_code == 200, response.text


async def test_refresh_needs_client_authentication(
    public: httpx.AsyncClient, tokens: dict[str, Any], web_client: Client
) -> None:
    """S-35: a confidential client refreshing without authentication is 401 invalid_client."""
    params = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "client_id": web_client["client_id"],
    }
    response = await post_token(public, params)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_access_token_as_refresh_token_is_invalid_grant(
    public: httpx.AsyncClient, tokens: dict[str, Any], web_client: Client
) -> None:
    """S-41: an access token presented as a refresh token is invalid_grant."""
    response = await refresh(public, web_client, tokens["access_token"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "forged",
    [
        pytest.param(CODEC.mint(TokenKind.REFRESH), id="never-issued"),
        pytest.param("phrrt_" + "A" * 59, id="bad-mac"),
        pytest.param("garbage", id="garbage"),
    ],
)
async def test_forged_refresh_token_is_invalid_grant(
    public: httpx.AsyncClient, web_client: Client, forged: str
) -> None:
    """S-41: a refresh token the server never issued is invalid_grant."""
    response = await refresh(public, web_client, forged)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_expired_refresh_token_is_invalid_grant(
    public: httpx.AsyncClient, tokens: dict[str, Any], db: asyncpg.Connection, web_client: Client
) -> None:
    """S-40: a refresh token past its expiry is invalid_grant."""
    row = await stored_token(db, tokens["refresh_token"])
    assert row is not None
    await expire(db, tokens["refresh_token"])
    response = await refresh(public, web_client, tokens["refresh_token"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_public_client_refreshes_with_client_id(
    public: httpx.AsyncClient, db: asyncpg.Connection, desktop_client: Client, alice: Client
) -> None:
    """S-37: a desktop client refreshes by naming itself, and the token is rotated."""
    old = (await desktop_tokens(public, db, desktop_client, alice))["refresh_token"]
    params = {
        "grant_type": "refresh_token",
        "refresh_token": old,
        "client_id": desktop_client["client_id"],
    }
    response = await post_token(public, params)
    assert response.status_code == 200, response.text
    assert response.json()["refresh_token"] != old
    assert (await post_token(public, params)).json()["error"] == "invalid_grant"
