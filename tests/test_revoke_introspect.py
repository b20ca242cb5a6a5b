"""Revocation (RFC 7009), introspection (RFC 7662, public and admin) and metadata (RFC 8414)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import pytest

from authserver.config import Settings
from authserver.security.tokens import TokenKind, token_digest
from tests.oauth_support import CODEC, issue_code
from tests.token_support import (
    FORM,
    INTROSPECT,
    basic,
    client_token,
    desktop_tokens,
    expire,
    introspect,
    post_form,
    refresh,
    web_auth,
    web_tokens,
)

REVOKE = "/oauth2/revoke"
METADATA = "/.well-known/oauth-authorization-server"
INACTIVE = {"active": False}
UNKNOWN_TOKENS = pytest.mark.parametrize(
    "token",
    [
        CODEC.mint(TokenKind.ACCESS),  # well formed, correctly signed, never issued
        CODEC.mint(TokenKind.REFRESH),
        "phrat_" + "A" * 59,  # the right shape with a forged MAC
        "garbage",
        "x" * 4000,
    ],
    ids=["unknown-access", "unknown-refresh", "forged-mac", "garbage", "long"],
)


async def revoke(
    public: httpx.AsyncClient, client: Mapping[str, Any], token: str, **extra: str
) -> httpx.Response:
    """Revoke a token as a confidential client authenticating with HTTP Basic."""
    return await post_form(public, REVOKE, {"token": token, **extra}, web_auth(client))


async def is_dead(db: asyncpg.Connection, token: str) -> bool:
    """The stored token is revoked or gone (refresh tokens never introspect as active)."""
    alive = await db.fetchval(
        "SELECT revoked_at IS NULL FROM tokens WHERE digest = $1", token_digest(token)
    )
    return alive is None or not alive


# Revocation (RFC 7009)


async def test_revoke_without_client_authentication_is_401(
    public: httpx.AsyncClient, web_client: dict[str, Any]
) -> None:
    """S-42: revocation without any client credentials answers 401 invalid_client."""
    token = await client_token(public, web_client)
    response = await post_form(public, REVOKE, {"token": token}, {})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_revoke_with_wrong_secret_is_401(
    public: httpx.AsyncClient, web_client: dict[str, Any], introspector: dict[str, Any]
) -> None:
    """S-42: a wrong client secret is refused and the token stays active."""
    token = await client_token(public, web_client)
    headers = basic(web_client["client_id"], "not-the-secret")
    response = await post_form(public, REVOKE, {"token": token}, headers)
    assert response.status_code == 401
    assert (await introspect(public, introspector, token))["active"] is True


async def test_revoking_own_access_token_makes_it_inactive(
    public: httpx.AsyncClient, web_client: dict[str, Any], introspector: dict[str, Any]
) -> None:
    """S-44: a client revoking its own access token gets 200 and the token turns inactive."""
    token = await client_token(public, web_client)
    response = await revoke(public, web_client, token)
    assert response.status_code == 200
    assert response.content == b""
    assert await introspect(public, introspector, token) == INACTIVE


async def test_revoking_refresh_token_kills_its_access_tokens(
    public: httpx.AsyncClient,
    tokens: dict[str, Any],
    db: asyncpg.Connection,
    web_client: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """S-45: revoking a refresh token also deactivates the access tokens of its family."""
    response = await revoke(public, web_client, tokens["refresh_token"])
    assert response.status_code == 200
    assert await is_dead(db, tokens["refresh_token"])
    assert await introspect(public, introspector, tokens["access_token"]) == INACTIVE


async def test_revoking_refresh_token_kills_rotated_family(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: dict[str, Any],
    alice: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """S-45: revoking a rotated refresh token kills access tokens from earlier in its family."""
    first = await web_tokens(public, db, web_client, alice)
    refreshed = await refresh(public, web_client, first["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()
    await revoke(public, web_client, second["refresh_token"])
    assert await introspect(public, introspector, first["access_token"]) == INACTIVE
    assert await introspect(public, introspector, second["access_token"]) == INACTIVE


async def test_revoking_another_clients_token_does_nothing(
    public: httpx.AsyncClient,
    web_client: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """S-43: a client cannot revoke another client's token; it answers 200, the token lives."""
    token = await client_token(public, web_client)
    response = await revoke(public, introspector, token)
    assert response.status_code == 200
    assert (await introspect(public, introspector, token))["active"] is True


@UNKNOWN_TOKENS
async def test_revoking_unknown_or_forged_token_is_200(
    public: httpx.AsyncClient, web_client: dict[str, Any], token: str
) -> None:
    """S-44: unknown, forged and garbage tokens are answered 200 with an empty body."""
    response = await revoke(public, web_client, token)
    assert response.status_code == 200
    assert response.content == b""


async def test_revoking_already_revoked_token_is_200(
    public: httpx.AsyncClient, web_client: dict[str, Any]
) -> None:
    """S-44: revoking a token twice answers 200 both times."""
    token = await client_token(public, web_client)
    assert (await revoke(public, web_client, token)).status_code == 200
    assert (await revoke(public, web_client, token)).status_code == 200


async def test_revoking_expired_token_is_200(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: dict[str, Any]
) -> None:
    """S-44: revoking an expired token answers 200."""
    token = await client_token(public, web_client)
    await expire(db, token)
    assert (await revoke(public, web_client, token)).status_code == 200


async def test_wrong_token_type_hint_still_revokes(
    public: httpx.AsyncClient,
    tokens: dict[str, Any],
    db: asyncpg.Connection,
    web_client: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """S-44: a refresh token sent with token_type_hint=access_token is revoked all the same."""
    response = await revoke(
        public, web_client, tokens["refresh_token"], token_type_hint="access_token"
    )
    assert response.status_code == 200
    assert await is_dead(db, tokens["refresh_token"])


async def test_unknown_token_type_hint_is_ignored(
    public: httpx.AsyncClient, web_client: dict[str, Any], introspector: dict[str, Any]
) -> None:
    """S-44: an unknown token_type_hint is ignored: 200, and the token is revoked."""
    token = await client_token(public, web_client)
    response = await revoke(public, web_client, token, token_type_hint="foo")
    assert response.status_code == 200
    assert await introspect(public, introspector, token) == INACTIVE


async def test_public_client_revokes_own_token_with_client_id(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    desktop_client: dict[str, Any],
    alice: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """S-42: a desktop (public) client revokes its own token with only its client_id."""
    tokens = await desktop_tokens(public, db, desktop_client, alice)
    params = {"token": tokens["access_token"], "client_id": desktop_client["client_id"]}
    response = await post_form(public, REVOKE, params, {})
    assert response.status_code == 200
    assert await introspect(public, introspector, tokens["access_token"]) == INACTIVE


async def test_public_client_cannot_revoke_another_clients_token(
    public: httpx.AsyncClient,
    desktop_client: dict[str, Any],
    web_client: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """S-43: a public client naming itself cannot revoke a confidential client's token."""
    token = await client_token(public, web_client)
    params = {"token": token, "client_id": desktop_client["client_id"]}
    response = await post_form(public, REVOKE, params, {})
    assert response.status_code == 200
    assert (await introspect(public, introspector, token))["active"] is True


async def test_revocation_is_audited(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: dict[str, Any]
) -> None:
    """A revocation leaves a token.revoked audit event naming the client."""
    token = await client_token(public, web_client)
    await revoke(public, web_client, token)
    rows = await db.fetch("SELECT client_id, detail FROM audit_events WHERE kind = 'token.revoked'")
    assert [(row["client_id"], json.loads(row["detail"])) for row in rows] == [
        (web_client["client_id"], {"kind": "access"})
    ]


async def test_revoke_answer_is_not_cacheable(
    public: httpx.AsyncClient, web_client: dict[str, Any]
) -> None:
    """S-51: revocation answers carry Cache-Control: no-store."""
    token = await client_token(public, web_client)
    response = await revoke(public, web_client, token)
    assert response.headers["cache-control"] == "no-store"


# Introspection (RFC 7662), public endpoint


async def test_introspect_without_credentials_is_401(
    public: httpx.AsyncClient, web_client: dict[str, Any]
) -> None:
    """S-47: introspection without client credentials answers 401."""
    token = await client_token(public, web_client)
    response = await post_form(public, INTROSPECT, {"token": token}, {})
    assert response.status_code == 401
    assert "active" not in response.json()


async def test_introspect_with_wrong_secret_is_401(
    public: httpx.AsyncClient, introspector: dict[str, Any], web_client: dict[str, Any]
) -> None:
    """S-47: an introspector with a wrong secret answers 401."""
    token = await client_token(public, web_client)
    headers = basic(introspector["client_id"], "wrong")
    response = await post_form(public, INTROSPECT, {"token": token}, headers)
    assert response.status_code == 401


async def test_client_without_introspection_right_gets_401(
    public: httpx.AsyncClient, web_client: dict[str, Any]
) -> None:
    """S-47: an authenticated client not allowed to introspect answers 401, even its own token."""
    token = await client_token(public, web_client)
    response = await post_form(public, INTROSPECT, {"token": token}, web_auth(web_client))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_public_client_cannot_introspect(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    desktop_client: dict[str, Any],
    alice: dict[str, Any],
) -> None:
    """S-47: a public client naming itself by client_id cannot introspect, not even its token."""
    tokens = await desktop_tokens(public, db, desktop_client, alice)
    params = {"token": tokens["access_token"], "client_id": desktop_client["client_id"]}
    response = await post_form(public, INTROSPECT, params, {})
    assert response.status_code == 401


async def test_token_in_query_string_is_400(
    public: httpx.AsyncClient, introspector: dict[str, Any], web_client: dict[str, Any]
) -> None:
    """S-47/S-67: a token in the introspection URL's query string is refused with 400."""
    token = await client_token(public, web_client)
    response = await public.post(
        f"{INTROSPECT}?{urlencode({'token': token})}",
        content=urlencode({"token": token}),
        headers={"Content-Type": FORM, **web_auth(introspector)},
    )
    assert response.status_code == 400


async def test_active_user_token_claims(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: dict[str, Any],
    alice: dict[str, Any],
    introspector: dict[str, Any],
    settings: Settings,
) -> None:
    """S-49: a user's access token introspects with its scope, client, user, times and issuer."""
    before = int(time.time())
    tokens = await web_tokens(public, db, web_client, alice, scope="read")
    after = int(time.time())
    claims = await introspect(public, introspector, tokens["access_token"])
    assert claims["active"] is True
    assert claims["scope"] == "read"
    assert claims["client_id"] == web_client["client_id"]
    assert claims["sub"] == alice["user_id"]
    assert claims["username"] == alice["login"]
    assert claims["token_type"] == "Bearer"
    assert claims["iss"] == settings.issuer
    assert before - 1 <= claims["iat"] <= after + 1
    assert claims["exp"] - claims["iat"] == settings.access_token_ttl


async def test_introspection_issuer_equals_metadata_issuer(
    public: httpx.AsyncClient, web_client: dict[str, Any], introspector: dict[str, Any]
) -> None:
    """S-52: the iss of an introspection answer is the metadata's issuer."""
    claims = await introspect(public, introspector, await client_token(public, web_client))
    assert claims["iss"] == (await public.get(METADATA)).json()["issuer"]


async def test_client_credentials_token_has_no_user(
    public: httpx.AsyncClient, web_client: dict[str, Any], introspector: dict[str, Any]
) -> None:
    """S-49: a client-credentials token is active and has neither sub nor username."""
    claims = await introspect(public, introspector, await client_token(public, web_client))
    assert claims["active"] is True
    assert claims["client_id"] == web_client["client_id"]
    assert "sub" not in claims
    assert "username" not in claims


async def test_refresh_token_introspection(
    public: httpx.AsyncClient,
    tokens: dict[str, Any],
    db: asyncpg.Connection,
    introspector: dict[str, Any],
) -> None:
    """S-48: a live refresh token sent by a resource server answers exactly {"active": false}."""
    assert not await is_dead(db, tokens["refresh_token"])
    assert await introspect(public, introspector, tokens["refresh_token"]) == INACTIVE


async def test_introspection_answer_is_not_cacheable(
    public: httpx.AsyncClient, web_client: dict[str, Any], introspector: dict[str, Any]
) -> None:
    """S-51: introspection answers carry Cache-Control: no-store."""
    token = await client_token(public, web_client)
    response = await post_form(public, INTROSPECT, {"token": token}, web_auth(introspector))
    assert response.headers["cache-control"] == "no-store"


async def test_inactive_answer_is_not_cacheable(
    public: httpx.AsyncClient, introspector: dict[str, Any]
) -> None:
    """S-51: an inactive answer carries Cache-Control: no-store too."""
    params = {"token": "garbage"}
    response = await post_form(public, INTROSPECT, params, web_auth(introspector))
    assert response.headers["cache-control"] == "no-store"


async def test_expired_token_is_inactive(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """S-48: an expired access token answers exactly {"active": false}."""
    token = await client_token(public, web_client)
    await expire(db, token)
    assert await introspect(public, introspector, token) == INACTIVE


@UNKNOWN_TOKENS
async def test_unknown_or_forged_token_is_inactive(
    public: httpx.AsyncClient, introspector: dict[str, Any], token: str
) -> None:
    """S-48: unknown, forged and malformed tokens answer exactly {"active": false}."""
    assert await introspect(public, introspector, token) == INACTIVE


async def test_authorization_code_is_inactive(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: dict[str, Any],
    alice: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """S-48: an authorization code is not a token: {"active": false}."""
    code = await issue_code(
        db, web_client["client_id"], alice["user_id"], redirect_uri=None, challenge=None
    )
    assert await introspect(public, introspector, code) == INACTIVE


async def test_token_of_deactivated_client_is_inactive(
    public: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    web_client: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """S-48: once its client is deactivated, a token answers exactly {"active": false}."""
    token = await client_token(public, web_client)
    response = await admin.patch(f"/clients/{web_client['client_id']}", json={"active": False})
    assert response.status_code == 200
    assert await introspect(public, introspector, token) == INACTIVE


async def test_token_after_grant_revoked_is_inactive(
    public: httpx.AsyncClient,
    tokens: dict[str, Any],
    admin: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: dict[str, Any],
    alice: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """S-48: after the user's grant is revoked through the admin API, its tokens are inactive."""
    response = await admin.delete(f"/users/{alice['user_id']}/grants/{web_client['client_id']}")
    assert response.status_code == 204
    assert await introspect(public, introspector, tokens["access_token"]) == INACTIVE
    assert await is_dead(db, tokens["refresh_token"])


async def test_developer_token_is_active_without_expiry(
    public: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    web_client: dict[str, Any],
    owner: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """S-49: a developer token is the owner's, active, and has no exp."""
    response = await admin.post(f"/clients/{web_client['client_id']}/developer-token")
    assert response.status_code == 201
    claims = await introspect(public, introspector, response.json()["access_token"])
    assert claims["active"] is True
    assert claims["sub"] == owner["user_id"]
    assert claims["client_id"] == web_client["client_id"]
    assert "exp" not in claims


async def test_regenerated_developer_token_replaces_the_old(
    public: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    web_client: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """S-48: after regeneration the previous developer token answers {"active": false}."""
    path = f"/clients/{web_client['client_id']}/developer-token"
    old = (await admin.post(path)).json()["access_token"]
    new = (await admin.post(path)).json()["access_token"]
    assert await introspect(public, introspector, old) == INACTIVE
    assert (await introspect(public, introspector, new))["active"] is True


# Introspection on the admin listener


@pytest.fixture
async def platform_token(public: httpx.AsyncClient, web_client: dict[str, Any]) -> str:
    """An active access token as a Phraseanet service would receive it."""
    return await client_token(public, web_client)


async def test_admin_introspect_needs_admin_token(
    admin: httpx.AsyncClient, platform_token: str
) -> None:
    """Admin introspection without an admin bearer token answers 401."""
    request = admin.build_request("POST", "/introspect", json={"token": platform_token})
    del request.headers["Authorization"]
    response = await admin.send(request)
    assert response.status_code == 401
    assert "active" not in response.text


async def test_admin_introspect_refuses_wrong_admin_token(
    admin: httpx.AsyncClient, platform_token: str
) -> None:
    """Admin introspection with a wrong admin bearer token answers 401."""
    response = await admin.post(
        "/introspect", json={"token": platform_token}, headers={"Authorization": "Bearer nope"}
    )
    assert response.status_code == 401
    assert "active" not in response.text


@pytest.mark.parametrize("field", ["token", "oauth_token", "authorization"])
async def test_admin_introspect_accepts_json(
    admin: httpx.AsyncClient, platform_token: str, web_client: dict[str, Any], field: str
) -> None:
    """The admin endpoint reads a token, oauth_token or 'OAuth <token>' from a JSON body."""
    value = f"OAuth {platform_token}" if field == "authorization" else platform_token
    response = await admin.post("/introspect", json={field: value})
    assert response.status_code == 200
    body = response.json()
    assert body["active"] is True
    assert body["client_id"] == web_client["client_id"]


@pytest.mark.parametrize("field", ["token", "oauth_token", "authorization"])
async def test_admin_introspect_accepts_form(
    admin: httpx.AsyncClient, platform_token: str, field: str
) -> None:
    """The admin endpoint reads a token, oauth_token or 'OAuth <token>' from a form body."""
    value = f"OAuth {platform_token}" if field == "authorization" else platform_token
    response = await admin.post(
        "/introspect", content=urlencode({field: value}), headers={"Content-Type": FORM}
    )
    assert response.status_code == 200
    assert response.json()["active"] is True


@pytest.mark.parametrize(
    "body",
    [
        {"token": "a", "oauth_token": "b"},
        {"token": "a", "authorization": "OAuth b"},
        {"oauth_token": "a", "authorization": "OAuth b"},
    ],
    ids=["token+oauth_token", "token+authorization", "oauth_token+authorization"],
)
async def test_admin_introspect_two_tokens_is_400(
    admin: httpx.AsyncClient, body: dict[str, str]
) -> None:
    """Naming the token twice in one admin introspection answers 400."""
    response = await admin.post("/introspect", json=body)
    assert response.status_code == 400


async def test_admin_introspect_answers_like_public(
    public: httpx.AsyncClient,
    tokens: dict[str, Any],
    admin: httpx.AsyncClient,
    introspector: dict[str, Any],
) -> None:
    """The admin and public endpoints give the same answer for the same token."""
    for token in (tokens["access_token"], tokens["refresh_token"], "garbage"):
        from_admin = (await admin.post("/introspect", json={"token": token})).json()
        assert from_admin == await introspect(public, introspector, token)


async def test_admin_introspect_inactive_is_only_active_false(
    admin: httpx.AsyncClient, db: asyncpg.Connection, platform_token: str
) -> None:
    """S-48: the admin endpoint answers an expired token with exactly {"active": false}."""
    await expire(db, platform_token)
    response = await admin.post("/introspect", json={"oauth_token": platform_token})
    assert response.json() == INACTIVE


async def test_admin_introspect_is_not_cacheable(
    admin: httpx.AsyncClient, platform_token: str
) -> None:
    """S-51: admin introspection answers carry Cache-Control: no-store."""
    response = await admin.post("/introspect", json={"token": platform_token})
    assert response.headers["cache-control"] == "no-store"


# Metadata (RFC 8414)


async def test_metadata_issuer_is_configured_issuer(
    public: httpx.AsyncClient, settings: Settings
) -> None:
    """S-52: the metadata issuer is the configured issuer."""
    response = await public.get(METADATA)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["issuer"] == settings.issuer


async def test_metadata_lists_only_s256(public: httpx.AsyncClient) -> None:
    """S-52: S256 is the only PKCE method advertised."""
    assert (await public.get(METADATA)).json()["code_challenge_methods_supported"] == ["S256"]


async def test_metadata_lists_only_code_response_type(public: httpx.AsyncClient) -> None:
    """S-52: the code response type is the only one advertised (no implicit)."""
    assert (await public.get(METADATA)).json()["response_types_supported"] == ["code"]


async def test_metadata_grant_types(public: httpx.AsyncClient) -> None:
    """S-52: exactly the grants the token endpoint serves are advertised."""
    grant_types = (await public.get(METADATA)).json()["grant_types_supported"]
    assert sorted(grant_types) == sorted(
        [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "password",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ]
    )


async def test_metadata_advertises_iss_parameter(public: httpx.AsyncClient) -> None:
    """S-52: RFC 9207 iss in authorization responses is advertised."""
    body = (await public.get(METADATA)).json()
    assert body["authorization_response_iss_parameter_supported"] is True


async def test_metadata_endpoints_are_under_issuer(
    public: httpx.AsyncClient, settings: Settings
) -> None:
    """S-52: every endpoint URL is absolute and under the issuer."""
    body = (await public.get(METADATA)).json()
    endpoints = [value for key, value in body.items() if key.endswith("_endpoint")]
    assert len(endpoints) == 6
    assert all(url.startswith(settings.issuer + "/") for url in endpoints)


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "evil.example"},
        {"X-Forwarded-Host": "evil.example"},
        {"X-Forwarded-Proto": "http", "X-Forwarded-For": "127.0.0.1"},
        {"Host": "evil.example", "X-Forwarded-Host": "evil.example", "Forwarded": "host=evil"},
    ],
    ids=["host", "x-forwarded-host", "x-forwarded-proto", "all"],
)
async def test_metadata_ignores_host_headers(
    public: httpx.AsyncClient, settings: Settings, headers: dict[str, str]
) -> None:
    """S-53: Host and forwarded headers change neither the issuer nor any URL in the metadata."""
    response = await public.get(METADATA, headers=headers)
    assert response.status_code == 200
    assert response.json() == (await public.get(METADATA)).json()
    assert response.json()["issuer"] == settings.issuer
    assert "evil" not in response.text
