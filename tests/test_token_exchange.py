"""OAuth 2.0 Token Exchange (RFC 8693) at the token endpoint, over HTTP against PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import httpx
import pytest

from authserver.db.rows import ExchangedToken
from authserver.db.store import Store
from authserver.security.tokens import TokenKind, token_digest
from tests.conftest import register_client
from tests.oauth_support import CODEC
from tests.test_openapi import assert_conforms
from tests.token_support import (
    WEB_REDIRECT,
    client_token,
    expire,
    introspect,
    post_form,
    post_token,
    public_app,
    stored_token,
    web_auth,
    web_tokens,
)

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
REFRESH = "urn:ietf:params:oauth:token-type:refresh_token"
METADATA = "/.well-known/oauth-authorization-server"


@pytest.fixture
async def exchanger(admin: httpx.AsyncClient, owner: dict[str, Any]) -> dict[str, Any]:
    """A web app allowed to exchange the tokens it holds."""
    return await register_client(
        admin,
        owner,
        name="Photo Sync",
        website="https://photosync.example",
        type="web",
        redirect_uris=[WEB_REDIRECT],
        token_exchange=True,
    )


@pytest.fixture
async def resource(admin: httpx.AsyncClient, owner: dict[str, Any]) -> dict[str, Any]:
    """A resource server: tokens may be addressed to it, it introspects and passes requests on
    by exchanging what it received."""
    return await register_client(
        admin,
        owner,
        name="Phraseanet API",
        website="https://api.example",
        type="web",
        redirect_uris=["https://api.example/cb"],
        introspection=True,
        resource_server=True,
        token_exchange=True,
    )


@pytest.fixture
async def downstream(admin: httpx.AsyncClient, owner: dict[str, Any]) -> dict[str, Any]:
    """Another resource server, one hop further."""
    return await register_client(
        admin,
        owner,
        name="Thumbnailer",
        website="https://thumbs.example",
        type="web",
        redirect_uris=["https://thumbs.example/cb"],
        resource_server=True,
        token_exchange=True,
    )


@pytest.fixture
async def subject(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    exchanger: dict[str, Any],
    alice: dict[str, Any],
) -> dict[str, Any]:
    """The tokens the exchanger got for alice by redeeming a code."""
    return await web_tokens(public, db, exchanger, alice)


async def exchange(
    public: httpx.AsyncClient, client: dict[str, Any], subject_token: str, **extra: str
) -> httpx.Response:
    """An RFC 8693 §2.1 request, the client authenticating with HTTP Basic."""
    params = {
        "grant_type": GRANT,
        "subject_token": subject_token,
        "subject_token_type": ACCESS,
        **extra,
    }
    return await post_token(public, params, headers=web_auth(client))


async def exchanged(
    public: httpx.AsyncClient, client: dict[str, Any], subject_token: str, **extra: str
) -> str:
    """The access token of an exchange asserted to succeed."""
    response = await exchange(public, client, subject_token, **extra)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def error_of(response: httpx.Response) -> str:
    assert response.status_code in (400, 401), response.text
    error: str = response.json()["error"]
    return error


# What is issued


async def test_exchange_answers_an_access_token(
    public: httpx.AsyncClient, exchanger: dict[str, Any], subject: dict[str, Any]
) -> None:
    """An exchange answers a new Bearer access token and its issued_token_type (§2.2.1)."""
    body = (await exchange(public, exchanger, subject["access_token"])).json()
    assert body["access_token"].startswith("phrat_")
    assert body["access_token"] != subject["access_token"]
    assert body["issued_token_type"] == ACCESS
    assert body["token_type"] == "Bearer"


async def test_exchange_issues_no_refresh_token(
    public: httpx.AsyncClient, exchanger: dict[str, Any], subject: dict[str, Any]
) -> None:
    """No refresh token comes with an exchanged token."""
    body = (await exchange(public, exchanger, subject["access_token"])).json()
    assert "refresh_token" not in body


async def test_exchange_answer_is_not_cached(
    public: httpx.AsyncClient, exchanger: dict[str, Any], subject: dict[str, Any]
) -> None:
    """The answer carries Cache-Control: no-store, like every token answer."""
    response = await exchange(public, exchanger, subject["access_token"])
    assert response.headers["cache-control"] == "no-store"


async def test_exchange_keeps_the_subject_scope_by_default(
    public: httpx.AsyncClient, exchanger: dict[str, Any], subject: dict[str, Any]
) -> None:
    """Without scope, the new token has the subject token's scope."""
    body = (await exchange(public, exchanger, subject["access_token"])).json()
    assert body["scope"] == "read write"


async def test_exchange_narrows_the_scope(
    public: httpx.AsyncClient,
    exchanger: dict[str, Any],
    subject: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """A narrower scope is granted and is what introspection says."""
    token = await exchanged(public, exchanger, subject["access_token"], scope="read")
    assert (await introspect(public, introspector, token))["scope"] == "read"


async def test_exchange_never_outlives_the_subject(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    exchanger: dict[str, Any],
    subject: dict[str, Any],
) -> None:
    """The new token expires no later than the subject token, and says so in expires_in."""
    await db.execute(
        "UPDATE tokens SET expires_at = now() + interval '100 seconds' WHERE kind = 'access'"
    )
    body = (await exchange(public, exchanger, subject["access_token"])).json()
    assert 0 < body["expires_in"] <= 100
    new = await stored_token(db, body["access_token"])
    old = await stored_token(db, subject["access_token"])
    assert new is not None
    assert old is not None
    assert new["expires_at"] <= old["expires_at"]


async def test_introspection_shows_the_actor(
    public: httpx.AsyncClient,
    exchanger: dict[str, Any],
    subject: dict[str, Any],
    introspector: dict[str, Any],
    alice: dict[str, Any],
) -> None:
    """Introspection names the user as sub and the exchanging client in act (§4.1)."""
    token = await exchanged(public, exchanger, subject["access_token"])
    claims = await introspect(public, introspector, token)
    assert claims["active"] is True
    assert claims["sub"] == alice["user_id"]
    assert claims["client_id"] == exchanger["client_id"]
    assert claims["act"] == {"sub": exchanger["client_id"]}


async def test_introspection_of_an_issued_token_has_no_act(
    public: httpx.AsyncClient, subject: dict[str, Any], introspector: dict[str, Any]
) -> None:
    """A token that was not exchanged carries neither act nor aud."""
    claims = await introspect(public, introspector, subject["access_token"])
    assert "act" not in claims
    assert "aud" not in claims


async def test_exchange_for_an_audience(
    public: httpx.AsyncClient,
    exchanger: dict[str, Any],
    subject: dict[str, Any],
    resource: dict[str, Any],
) -> None:
    """A token exchanged for a resource server names it as aud in introspection."""
    token = await exchanged(
        public, exchanger, subject["access_token"], audience=resource["client_id"]
    )
    assert (await introspect(public, resource, token))["aud"] == resource["client_id"]


async def test_resource_server_passes_a_token_on(
    public: httpx.AsyncClient,
    exchanger: dict[str, Any],
    subject: dict[str, Any],
    resource: dict[str, Any],
    downstream: dict[str, Any],
) -> None:
    """A resource server exchanges a token addressed to it; act nests the chain (§4.1)."""
    first = await exchanged(
        public, exchanger, subject["access_token"], audience=resource["client_id"]
    )
    second = await exchanged(public, resource, first, audience=downstream["client_id"])
    claims = await introspect(public, resource, second)
    assert claims["aud"] == downstream["client_id"]
    assert claims["act"] == {
        "sub": resource["client_id"],
        "act": {"sub": exchanger["client_id"]},
    }


async def test_admin_introspection_of_a_chain_conforms(
    public: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    exchanger: dict[str, Any],
    subject: dict[str, Any],
    resource: dict[str, Any],
    downstream: dict[str, Any],
) -> None:
    """The admin listener's introspection shows act and aud too, as openapi/admin.yaml says."""
    first = await exchanged(
        public, exchanger, subject["access_token"], audience=resource["client_id"]
    )
    second = await exchanged(public, resource, first, audience=downstream["client_id"])
    response = await admin.post("/introspect", json={"token": second})
    assert response.json()["act"]["act"] == {"sub": exchanger["client_id"]}
    assert_conforms(response, "/introspect", "POST")


async def test_exchange_without_audience_keeps_the_subject_audience(
    public: httpx.AsyncClient,
    exchanger: dict[str, Any],
    subject: dict[str, Any],
    resource: dict[str, Any],
) -> None:
    """Exchanging an addressed token without naming an audience keeps its audience."""
    first = await exchanged(
        public, exchanger, subject["access_token"], audience=resource["client_id"]
    )
    second = await exchanged(public, resource, first, scope="read")
    assert (await introspect(public, resource, second))["aud"] == resource["client_id"]


async def test_exchange_is_audited(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    exchanger: dict[str, Any],
    subject: dict[str, Any],
) -> None:
    """The exchange leaves a token.issued event with its grant type."""
    await exchanged(public, exchanger, subject["access_token"])
    detail = await db.fetchval(
        "SELECT detail->>'grant_type' FROM audit_events WHERE kind = 'token.issued' "
        "ORDER BY event_id DESC LIMIT 1"
    )
    assert detail == GRANT


# Refused requests


async def test_scope_widening_is_refused(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    exchanger: dict[str, Any],
    alice: dict[str, Any],
) -> None:
    """A scope wider than the subject token's is invalid_scope."""
    narrow = await web_tokens(public, db, exchanger, alice, scope="read")
    response = await exchange(public, exchanger, narrow["access_token"], scope="read write")
    assert error_of(response) == "invalid_scope"


async def test_unknown_scope_is_refused(
    public: httpx.AsyncClient, exchanger: dict[str, Any], subject: dict[str, Any]
) -> None:
    """A scope name the server does not know is invalid_scope."""
    response = await exchange(public, exchanger, subject["access_token"], scope="admin")
    assert error_of(response) == "invalid_scope"


async def test_audience_not_a_resource_server_is_refused(
    public: httpx.AsyncClient,
    exchanger: dict[str, Any],
    subject: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """An audience that is a client but not a resource server is invalid_target."""
    response = await exchange(
        public, exchanger, subject["access_token"], audience=introspector["client_id"]
    )
    assert error_of(response) == "invalid_target"


async def test_unknown_audience_is_refused(
    public: httpx.AsyncClient, exchanger: dict[str, Any], subject: dict[str, Any]
) -> None:
    """An audience that names nobody is invalid_target."""
    response = await exchange(public, exchanger, subject["access_token"], audience="nobody")
    assert error_of(response) == "invalid_target"


async def test_disabled_audience_is_refused(
    public: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    exchanger: dict[str, Any],
    subject: dict[str, Any],
    resource: dict[str, Any],
) -> None:
    """A disabled resource server is no audience: invalid_target."""
    await admin.patch(f"/clients/{resource['client_id']}", json={"active": False})
    response = await exchange(
        public, exchanger, subject["access_token"], audience=resource["client_id"]
    )
    assert error_of(response) == "invalid_target"


async def test_resource_indicator_is_refused(
    public: httpx.AsyncClient, exchanger: dict[str, Any], subject: dict[str, Any]
) -> None:
    """resource (RFC 8707) is not supported: invalid_target pointing at audience."""
    response = await exchange(
        public, exchanger, subject["access_token"], resource="https://api.example/"
    )
    assert error_of(response) == "invalid_target"
    assert "audience" in response.json()["error_description"]


async def test_third_hop_is_refused(
    public: httpx.AsyncClient,
    exchanger: dict[str, Any],
    subject: dict[str, Any],
    resource: dict[str, Any],
    downstream: dict[str, Any],
) -> None:
    """A token already exchanged twice is not exchanged again: invalid_request."""
    first = await exchanged(
        public, exchanger, subject["access_token"], audience=resource["client_id"]
    )
    second = await exchanged(public, resource, first, audience=downstream["client_id"])
    response = await exchange(public, downstream, second)
    assert error_of(response) == "invalid_request"
    assert "exchanged 2 times" in response.json()["error_description"]


async def test_unknown_subject_token_type_is_refused(
    public: httpx.AsyncClient, exchanger: dict[str, Any], subject: dict[str, Any]
) -> None:
    """A subject_token_type other than an access token's is invalid_request."""
    response = await exchange(
        public,
        exchanger,
        subject["access_token"],
        subject_token_type="urn:ietf:params:oauth:token-type:jwt",
    )
    assert error_of(response) == "invalid_request"


async def test_missing_subject_token_type_is_refused(
    public: httpx.AsyncClient, exchanger: dict[str, Any], subject: dict[str, Any]
) -> None:
    """subject_token_type is required (§2.1): invalid_request."""
    params = {"grant_type": GRANT, "subject_token": subject["access_token"]}
    response = await post_token(public, params, headers=web_auth(exchanger))
    assert error_of(response) == "invalid_request"


async def test_missing_subject_token_is_refused(
    public: httpx.AsyncClient, exchanger: dict[str, Any]
) -> None:
    """subject_token is required (§2.1): invalid_request."""
    params = {"grant_type": GRANT, "subject_token_type": ACCESS}
    response = await post_token(public, params, headers=web_auth(exchanger))
    assert error_of(response) == "invalid_request"


async def test_requested_refresh_token_is_refused(
    public: httpx.AsyncClient, exchanger: dict[str, Any], subject: dict[str, Any]
) -> None:
    """Only access tokens are issued: requested_token_type refresh_token is invalid_request."""
    response = await exchange(
        public, exchanger, subject["access_token"], requested_token_type=REFRESH
    )
    assert error_of(response) == "invalid_request"


async def test_actor_token_is_refused(
    public: httpx.AsyncClient, exchanger: dict[str, Any], subject: dict[str, Any]
) -> None:
    """actor_token is not offered: invalid_request that says so."""
    response = await exchange(
        public,
        exchanger,
        subject["access_token"],
        actor_token=subject["access_token"],
        actor_token_type=ACCESS,
    )
    assert error_of(response) == "invalid_request"
    assert "actor_token" in response.json()["error_description"]


async def test_expired_subject_is_refused(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    exchanger: dict[str, Any],
    subject: dict[str, Any],
) -> None:
    """An expired subject token is invalid_request (§2.2.2)."""
    await expire(db, subject["access_token"])
    response = await exchange(public, exchanger, subject["access_token"])
    assert error_of(response) == "invalid_request"


async def test_revoked_subject_is_refused(
    public: httpx.AsyncClient, exchanger: dict[str, Any], subject: dict[str, Any]
) -> None:
    """A subject token revoked by its client (RFC 7009) is invalid_request."""
    await revoke(public, exchanger, subject["access_token"])
    response = await exchange(public, exchanger, subject["access_token"])
    assert error_of(response) == "invalid_request"


async def test_foreign_subject_is_refused(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    exchanger: dict[str, Any],
    web_client: dict[str, Any],
    alice: dict[str, Any],
) -> None:
    """Another client's token, not addressed to the exchanger, is invalid_request."""
    theirs = await web_tokens(public, db, web_client, alice)
    response = await exchange(public, exchanger, theirs["access_token"])
    assert error_of(response) == "invalid_request"


async def test_unknown_subject_is_refused(
    public: httpx.AsyncClient, exchanger: dict[str, Any]
) -> None:
    """A well-formed access token that was never issued is invalid_request."""
    response = await exchange(public, exchanger, CODEC.mint(TokenKind.ACCESS))
    assert error_of(response) == "invalid_request"


async def test_forged_subject_is_refused(
    public: httpx.AsyncClient, exchanger: dict[str, Any]
) -> None:
    """A value whose MAC fails is invalid_request."""
    response = await exchange(public, exchanger, "phrat_" + "A" * 50)
    assert error_of(response) == "invalid_request"


async def test_refresh_token_as_subject_is_refused(
    public: httpx.AsyncClient, exchanger: dict[str, Any], subject: dict[str, Any]
) -> None:
    """A refresh token presented as the subject access token is invalid_request."""
    response = await exchange(public, exchanger, subject["refresh_token"])
    assert error_of(response) == "invalid_request"


async def test_client_credentials_subject_is_refused(
    public: httpx.AsyncClient, exchanger: dict[str, Any]
) -> None:
    """A token without a user has nobody to act for: invalid_request."""
    token = await client_token(public, exchanger)
    response = await exchange(public, exchanger, token)
    assert error_of(response) == "invalid_request"


async def test_client_not_allowed_is_refused(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: dict[str, Any],
    alice: dict[str, Any],
) -> None:
    """A web app not allowed to exchange is unauthorized_client."""
    own = await web_tokens(public, db, web_client, alice)
    response = await exchange(public, web_client, own["access_token"])
    assert error_of(response) == "unauthorized_client"


async def test_public_client_is_refused(
    public: httpx.AsyncClient,
    desktop_client: dict[str, Any],
    subject: dict[str, Any],
) -> None:
    """A public (desktop) client is unauthorized_client."""
    params = {
        "grant_type": GRANT,
        "subject_token": subject["access_token"],
        "subject_token_type": ACCESS,
        "client_id": desktop_client["client_id"],
    }
    response = await post_token(public, params)
    assert error_of(response) == "unauthorized_client"


async def test_wrong_secret_is_refused(
    public: httpx.AsyncClient, exchanger: dict[str, Any], subject: dict[str, Any]
) -> None:
    """A client that fails authentication is invalid_client."""
    response = await exchange(
        public, {**exchanger, "client_secret": "wrong"}, subject["access_token"]
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


# Revocation cascades


async def revoke(public: httpx.AsyncClient, client: dict[str, Any], token: str) -> None:
    response = await post_form(public, "/oauth2/revoke", {"token": token}, web_auth(client))
    assert response.status_code == 200


async def active(public: httpx.AsyncClient, introspector: dict[str, Any], token: str) -> bool:
    return bool((await introspect(public, introspector, token))["active"])


async def test_revoking_the_subject_revokes_the_exchanged_token(
    public: httpx.AsyncClient,
    exchanger: dict[str, Any],
    subject: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """RFC 7009 revocation of the subject access token ends what was exchanged for it."""
    token = await exchanged(public, exchanger, subject["access_token"])
    await revoke(public, exchanger, subject["access_token"])
    assert not await active(public, introspector, token)


async def test_revoking_the_subject_refresh_token_revokes_the_exchanged_token(
    public: httpx.AsyncClient,
    exchanger: dict[str, Any],
    subject: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """Revoking the subject's refresh token revokes its family, and what was exchanged."""
    token = await exchanged(public, exchanger, subject["access_token"])
    await revoke(public, exchanger, subject["refresh_token"])
    assert not await active(public, introspector, token)


async def test_revoking_the_grant_revokes_the_exchanged_token(
    public: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    exchanger: dict[str, Any],
    subject: dict[str, Any],
    alice: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """The user revoking the app's grant also ends the tokens exchanged under it."""
    token = await exchanged(public, exchanger, subject["access_token"])
    response = await admin.delete(f"/users/{alice['user_id']}/grants/{exchanger['client_id']}")
    assert response.status_code == 204
    assert not await active(public, introspector, token)


async def test_deleting_the_user_revokes_the_exchanged_token(
    public: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    exchanger: dict[str, Any],
    subject: dict[str, Any],
    alice: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """Deleting the user ends every token exchanged for them."""
    token = await exchanged(public, exchanger, subject["access_token"])
    assert (await admin.delete(f"/users/{alice['user_id']}")).status_code == 204
    assert not await active(public, introspector, token)


async def test_password_change_revokes_the_exchanged_token(
    public: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    exchanger: dict[str, Any],
    subject: dict[str, Any],
    alice: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """A new password revokes the user's tokens, exchanged ones included."""
    token = await exchanged(public, exchanger, subject["access_token"])
    response = await admin.put(
        f"/users/{alice['user_id']}", json={"login": "alice", "password": "a new long password"}
    )
    assert response.status_code == 200
    assert not await active(public, introspector, token)


async def test_revoking_the_first_link_revokes_the_whole_chain(
    public: httpx.AsyncClient,
    exchanger: dict[str, Any],
    subject: dict[str, Any],
    resource: dict[str, Any],
    downstream: dict[str, Any],
) -> None:
    """Revoking the original token ends the second hop too."""
    first = await exchanged(
        public, exchanger, subject["access_token"], audience=resource["client_id"]
    )
    second = await exchanged(public, resource, first, audience=downstream["client_id"])
    await revoke(public, exchanger, subject["access_token"])
    assert not await active(public, resource, second)


async def test_disabling_the_first_client_revokes_the_passed_on_token(
    public: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    exchanger: dict[str, Any],
    subject: dict[str, Any],
    resource: dict[str, Any],
) -> None:
    """Disabling the app whose token was passed on ends the resource server's token too."""
    first = await exchanged(
        public, exchanger, subject["access_token"], audience=resource["client_id"]
    )
    second = await exchanged(public, resource, first, scope="read")
    await admin.patch(f"/clients/{exchanger['client_id']}", json={"active": False})
    assert not await active(public, resource, second)


async def test_revoking_the_exchanged_token_spares_the_subject(
    public: httpx.AsyncClient,
    exchanger: dict[str, Any],
    subject: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """Revocation flows down the chain, never up."""
    token = await exchanged(public, exchanger, subject["access_token"])
    await revoke(public, exchanger, token)
    assert await active(public, introspector, subject["access_token"])


# Races: the subject is claimed by the conditional insert


def exchanged_row(
    subject_token: str, client_id: str, user_id: str, grant_id: int
) -> ExchangedToken:
    """What the store phase is given for an accepted exchange."""
    return ExchangedToken(
        digest=token_digest(CODEC.mint(TokenKind.ACCESS)),
        subject_digest=token_digest(subject_token),
        client_id=client_id,
        user_id=user_id,
        grant_id=grant_id,
        scope="read",
        expires_in=3600,
        audience=None,
        actors=(client_id,),
        detail={"grant_type": GRANT},
    )


async def test_store_refuses_a_subject_revoked_since_it_was_read(
    db: asyncpg.Connection, exchanger: dict[str, Any], subject: dict[str, Any]
) -> None:
    """The store phase issues nothing for a subject revoked after the load phase read it."""
    row = await stored_token(db, subject["access_token"])
    assert row is not None
    await db.execute("UPDATE tokens SET revoked_at = now() WHERE digest = $1", row["digest"])
    new = exchanged_row(
        subject["access_token"], exchanger["client_id"], row["user_id"], row["grant_id"]
    )
    assert await Store(db).tokens.issue_exchanged(new) is False
    assert await db.fetchval("SELECT count(*) FROM tokens WHERE digest = $1", new.digest) == 0


async def test_store_caps_the_lifetime_at_the_subject_expiry(
    db: asyncpg.Connection, exchanger: dict[str, Any], subject: dict[str, Any]
) -> None:
    """Whatever lifetime the decide phase asked for, the stored token ends with its subject."""
    row = await stored_token(db, subject["access_token"])
    assert row is not None
    new = exchanged_row(
        subject["access_token"], exchanger["client_id"], row["user_id"], row["grant_id"]
    )
    assert await Store(db).tokens.issue_exchanged(replace(new, expires_in=10**7)) is True
    stored = await db.fetchval("SELECT expires_at FROM tokens WHERE digest = $1", new.digest)
    assert stored == row["expires_at"]


@pytest.fixture
async def racing(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The public API with a pool large enough for a burst at once."""
    async with public_app(database_url, pool_max_size="12") as client:
        yield client


async def test_exchange_racing_revocation_leaves_nothing_alive(
    racing: httpx.AsyncClient,
    db: asyncpg.Connection,
    exchanger: dict[str, Any],
    alice: dict[str, Any],
) -> None:
    """Exchanges racing the subject's revocation: none of what they issued stays active."""
    for _ in range(4):
        subject = await web_tokens(racing, db, exchanger, alice)
        burst = [exchange(racing, exchanger, subject["access_token"]) for _ in range(10)]
        burst.insert(5, revoke_response(racing, exchanger, subject["access_token"]))
        responses = await asyncio.gather(*burst)
        assert all(response.status_code in (200, 400) for response in responses)
        refused = {r.json()["error"] for r in responses if r.status_code == 400}
        assert refused <= {"invalid_request"}
        alive = await db.fetchval(
            "SELECT count(*) FROM tokens WHERE subject_digest = $1 AND revoked_at IS NULL",
            token_digest(subject["access_token"]),
        )
        assert alive == 0


async def revoke_response(
    public: httpx.AsyncClient, client: dict[str, Any], token: str
) -> httpx.Response:
    return await post_form(public, "/oauth2/revoke", {"token": token}, web_auth(client))


# Registration and metadata


async def test_desktop_app_may_not_exchange(
    admin: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    """A desktop (public) app registered with token_exchange is refused with a 400."""
    response = await admin.post(
        "/clients",
        json={
            "name": "Desk",
            "website": "https://desk.example",
            "type": "desktop",
            "owner_id": owner["user_id"],
            "token_exchange": True,
        },
    )
    assert response.status_code == 400
    assert "token_exchange" in response.json()["error_description"]


async def test_flags_can_be_changed(admin: httpx.AsyncClient, web_client: dict[str, Any]) -> None:
    """PATCH turns token_exchange and resource_server on, and GET shows them."""
    path = f"/clients/{web_client['client_id']}"
    response = await admin.patch(path, json={"token_exchange": True, "resource_server": True})
    assert response.status_code == 200
    body = (await admin.get(path)).json()
    assert (body["token_exchange"], body["resource_server"]) == (True, True)


async def test_flags_default_to_off(web_client: dict[str, Any]) -> None:
    """A client registered without them may neither exchange nor be an audience."""
    assert (web_client["token_exchange"], web_client["resource_server"]) == (False, False)


async def test_metadata_lists_token_exchange(public: httpx.AsyncClient) -> None:
    """RFC 8414 metadata advertises the token exchange grant type."""
    assert GRANT in (await public.get(METADATA)).json()["grant_types_supported"]
