"""ID tokens (OpenID Connect Core §2, §3.1.3.6, §3.1.3.7, §12.2) and the documents a relying party
reads first: discovery and the JWKS."""

from __future__ import annotations

import time
from typing import Any

import asyncpg
import httpx
import pytest

from authserver.config import Settings
from authserver.oidc.keys import RELOAD, jwks_max_age
from tests.authorize_support import ISSUER, METADATA, Client, approve, query
from tests.conftest import ALICE_PASSWORD, register_client
from tests.openid_support import (
    CONFIGURATION,
    JWKS,
    at_hash,
    code_flow,
    openid_tokens,
    refresh,
    verified,
)
from tests.token_support import post_token, web_auth

# Discovery (Discovery 1.0 §3, §4) and the JWKS (RFC 7517)


async def test_discovery_matches_the_rfc8414_document(public: httpx.AsyncClient) -> None:
    """Both well-known paths serve one document."""
    openid = await public.get(CONFIGURATION)
    oauth = await public.get(METADATA)
    assert openid.status_code == 200
    assert openid.json() == oauth.json()


async def test_discovery_names_what_openid_needs(public: httpx.AsyncClient) -> None:
    """The issuer, endpoints and choices a relying party reads are all there."""
    document = (await public.get(CONFIGURATION)).json()
    assert document["issuer"] == ISSUER
    assert document["jwks_uri"] == f"{ISSUER}{JWKS}"
    assert document["userinfo_endpoint"] == f"{ISSUER}/oauth2/userinfo"
    assert document["end_session_endpoint"] == f"{ISSUER}/oauth2/logout"
    assert document["response_types_supported"] == ["code"]
    assert document["subject_types_supported"] == ["public"]
    assert set(document["id_token_signing_alg_values_supported"]) == {"RS256", "ES256"}
    assert {"openid", "profile", "email", "read", "write"} <= set(document["scopes_supported"])


async def test_discovery_claims_are_those_issued(public: httpx.AsyncClient) -> None:
    """claims_supported lists the user claims the scopes give, and nothing this server lacks."""
    claims = set((await public.get(CONFIGURATION)).json()["claims_supported"])
    assert {"sub", "name", "preferred_username", "email", "email_verified"} <= claims
    assert not claims & {"address", "phone_number", "picture", "birthdate"}


async def test_jwks_has_a_key_per_algorithm(public: httpx.AsyncClient) -> None:
    """The JWKS publishes an RS256 and an ES256 key, each with a kid and use sig."""
    keys = (await public.get(JWKS)).json()["keys"]
    assert {key["alg"] for key in keys} == {"RS256", "ES256"}
    assert all(key["kid"] and key["use"] == "sig" for key in keys)


async def test_jwks_has_no_private_members(public: httpx.AsyncClient) -> None:
    """No private-key member (RFC 7518 §6.2.2, §6.3.2) is ever published."""
    keys = (await public.get(JWKS)).json()["keys"]
    private = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
    assert all(not private & set(key) for key in keys)


async def test_jwks_is_cached_less_than_a_new_key_waits(
    public: httpx.AsyncClient, settings: Settings
) -> None:
    """A JWKS copy fetched from the slowest replica and cached as long as allowed is still a
    minute old (openid-client's pause before fetching it again) when a new key signs."""
    response = await public.get(JWKS)
    assert response.headers["content-type"].startswith("application/jwk-set+json")
    cache = response.headers["cache-control"]
    assert cache.startswith("public, max-age=")
    max_age = int(cache.rsplit("=", 1)[1])
    assert max_age > 0  # the default propagation leaves room for caches
    assert RELOAD + max_age + 60 <= settings.key_propagation


@pytest.mark.parametrize("propagation", [0, 1, 60, 69, 70, 71, 120, 3600])
def test_jwks_max_age_leaves_relying_parties_a_minute(propagation: int) -> None:
    """For any propagation, a cached copy is a minute old when the new key signs, or not cached."""
    max_age = jwks_max_age(propagation)
    assert max_age >= 0
    assert max_age == 0 or RELOAD + max_age + 60 <= propagation


# The ID token of the code grant (Core §2, §3.1.3.6)


async def test_id_token_names_issuer_subject_and_audience(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """iss is the issuer, sub the user id (as introspection says), aud and azp the client."""
    claims = (await openid_tokens(public, web_client)).claims
    assert claims["iss"] == ISSUER
    assert claims["sub"] == alice["user_id"]
    assert claims["aud"] == web_client["client_id"]
    assert claims["azp"] == web_client["client_id"]


async def test_id_token_lives_the_configured_lifetime(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """exp is iat plus AUTHSERVER_ID_TOKEN_TTL, and iat is now."""
    claims = (await openid_tokens(public, web_client)).claims
    assert claims["exp"] - claims["iat"] == 3600
    assert abs(claims["iat"] - time.time()) < 30


async def test_id_token_auth_time_is_the_sign_in(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """auth_time is when the user signed in on the login page (§2)."""
    before = int(time.time())
    claims = (await openid_tokens(public, web_client)).claims
    assert before - 1 <= claims["auth_time"] <= int(time.time()) + 1


async def test_id_token_echoes_the_nonce(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """The nonce of the authorization request comes back in the ID token (§3.1.3.6)."""
    claims = (await openid_tokens(public, web_client, nonce="n-0S6_WzA2Mj")).claims
    assert claims["nonce"] == "n-0S6_WzA2Mj"


async def test_id_token_without_nonce_has_none(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """The nonce is optional on the code flow; without one the ID token has no nonce claim."""
    assert "nonce" not in (await openid_tokens(public, web_client)).claims


async def test_id_token_at_hash_binds_the_access_token(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """at_hash is the left half of the access token's SHA-256 (§3.1.3.6)."""
    tokens = await openid_tokens(public, web_client)
    assert tokens.claims["at_hash"] == at_hash(tokens.access_token)


async def test_id_token_header_names_a_published_key(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """The header says RS256 by default and a kid the JWKS publishes."""
    tokens = await openid_tokens(public, web_client)
    kids = {key["kid"] for key in (await public.get(JWKS)).json()["keys"]}
    assert tokens.header["alg"] == "RS256"
    assert tokens.header["kid"] in kids


async def test_es256_client_gets_es256_id_tokens(
    public: httpx.AsyncClient, admin: httpx.AsyncClient, owner: dict[str, Any], alice: Client
) -> None:
    """A client registered with id_token_signed_response_alg ES256 gets ES256 ID tokens."""
    client = await register_client(
        admin,
        owner,
        name="EC App",
        website="https://photosync.example",
        type="web",
        redirect_uris=["https://photosync.example/cb"],
        id_token_signed_response_alg="ES256",
    )
    assert (await openid_tokens(public, client)).header["alg"] == "ES256"


# Claims by scope (Core §5.4)


async def test_openid_alone_says_only_who(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """With only openid, the ID token carries no profile or e-mail claim."""
    claims = (await openid_tokens(public, web_client, scope="openid")).claims
    assert not {"name", "preferred_username", "email", "email_verified"} & set(claims)


async def test_profile_scope_gives_name_and_login(
    public: httpx.AsyncClient, admin: httpx.AsyncClient, web_client: Client
) -> None:
    """profile adds name (the display name) and preferred_username (the login)."""
    await admin.put(
        "/users/alice-1",
        json={"login": "alice", "display_name": "Alice Liddell", "password": ALICE_PASSWORD},
    )
    claims = (await openid_tokens(public, web_client, scope="openid profile")).claims
    assert claims["name"] == "Alice Liddell"
    assert claims["preferred_username"] == "alice"
    assert "email" not in claims


async def test_email_scope_gives_unverified_email(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """email adds the address and email_verified false for an address nobody checked."""
    claims = (await openid_tokens(public, web_client, scope="openid email")).claims
    assert claims["email"] == "alice@example.com"
    assert claims["email_verified"] is False
    assert "name" not in claims


async def test_email_verified_by_the_platform(
    public: httpx.AsyncClient, admin: httpx.AsyncClient, web_client: Client
) -> None:
    """A user the platform marked email_verified has email_verified true."""
    response = await admin.put(
        "/users/alice-1",
        json={
            "login": "alice",
            "email": "alice@example.com",
            "email_verified": True,
            "password": ALICE_PASSWORD,
        },
    )
    assert response.status_code == 201, response.text
    claims = (await openid_tokens(public, web_client, scope="openid email")).claims
    assert claims["email_verified"] is True


# No openid, no ID token


async def test_no_id_token_without_openid(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """A code grant without openid answers as plain OAuth: no id_token."""
    response = await code_flow(public, web_client, scope="read")
    assert response.status_code == 200, response.text
    assert "id_token" not in response.json()


async def test_profile_without_openid_gives_no_id_token(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """profile and email alone are not an OpenID request."""
    response = await code_flow(public, web_client, scope="profile email")
    assert response.status_code == 200, response.text
    assert "id_token" not in response.json()


async def test_client_credentials_cannot_ask_for_openid(
    public: httpx.AsyncClient, web_client: Client
) -> None:
    """No user, no identity: client credentials with openid is invalid_scope."""
    response = await post_token(
        public,
        {"grant_type": "client_credentials", "scope": "openid"},
        headers=web_auth(web_client),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


# Refresh (Core §12.2)


async def test_refresh_gives_a_new_id_token(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """A refresh of an openid grant answers a new ID token for the same user."""
    first = await openid_tokens(public, web_client, nonce="n-1")
    response = await refresh(public, web_client, first.body["refresh_token"])
    assert response.status_code == 200, response.text
    _, claims = await verified(public, response.json()["id_token"])
    assert claims["sub"] == first.claims["sub"]
    assert claims["aud"] == web_client["client_id"]
    assert claims["iss"] == ISSUER


async def test_refresh_keeps_auth_time(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """The refreshed ID token keeps the original sign-in's auth_time."""
    first = await openid_tokens(public, web_client)
    response = await refresh(public, web_client, first.body["refresh_token"])
    _, claims = await verified(public, response.json()["id_token"])
    assert claims["auth_time"] == first.claims["auth_time"]


async def test_refresh_id_token_has_no_nonce(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """A refreshed ID token carries no nonce (§12.2)."""
    first = await openid_tokens(public, web_client, nonce="n-1")
    response = await refresh(public, web_client, first.body["refresh_token"])
    _, claims = await verified(public, response.json()["id_token"])
    assert "nonce" not in claims


async def test_refresh_at_hash_binds_the_new_access_token(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """The refreshed ID token's at_hash is that of the access token it came with."""
    first = await openid_tokens(public, web_client)
    body = (await refresh(public, web_client, first.body["refresh_token"])).json()
    _, claims = await verified(public, body["id_token"])
    assert claims["at_hash"] == at_hash(body["access_token"])


async def test_refresh_narrowed_without_openid_has_no_id_token(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """A refresh that narrows the scope to leave openid out gets no ID token."""
    first = await openid_tokens(public, web_client, scope="openid read")
    response = await refresh(public, web_client, first.body["refresh_token"], scope="read")
    assert response.status_code == 200, response.text
    assert "id_token" not in response.json()


async def test_plain_oauth_refresh_has_no_id_token(
    public: httpx.AsyncClient, tokens: dict[str, Any], web_client: Client
) -> None:
    """A refresh of a grant without openid answers as before: no id_token."""
    response = await refresh(public, web_client, tokens["refresh_token"])
    assert response.status_code == 200, response.text
    assert "id_token" not in response.json()


async def test_code_stores_nonce_only_as_sent(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """The code row keeps the nonce for the ID token and the sign-in time."""
    await approve(public, query(web_client, scope="openid", nonce="n-42"))
    row = await db.fetchrow("SELECT nonce, auth_time FROM authorization_codes")
    assert row is not None
    assert row["nonce"] == "n-42"
    assert row["auth_time"] is not None
