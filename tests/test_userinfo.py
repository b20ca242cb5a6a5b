"""The UserInfo endpoint (OpenID Connect Core §5.3): claims by granted scope, the bearer token
sent as RFC 6750 allows, and RFC 6750 §3 challenges for everything else."""

from __future__ import annotations

from typing import Any

import httpx

from tests.authorize_support import FORM, Client
from tests.openid_support import USERINFO, bearer, openid_tokens
from tests.token_support import INTROSPECT, client_token, post_form, web_auth


def challenge(response: httpx.Response) -> str:
    return response.headers["www-authenticate"]


async def test_get_answers_the_claims_of_the_scopes(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """GET with the bearer header answers sub, profile and e-mail claims."""
    token = (await openid_tokens(public, web_client)).access_token
    response = await public.get(USERINFO, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "sub": alice["user_id"],
        "name": "alice",
        "preferred_username": "alice",
        "email": "alice@example.com",
        "email_verified": False,
    }


async def test_answer_is_not_cached(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """What UserInfo says is personal: Cache-Control no-store."""
    token = (await openid_tokens(public, web_client)).access_token
    response = await public.get(USERINFO, headers=bearer(token))
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"].startswith("application/json")


async def test_sub_matches_the_id_token(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """UserInfo's sub is the ID token's sub (§5.3.2)."""
    tokens = await openid_tokens(public, web_client)
    response = await public.get(USERINFO, headers=bearer(tokens.access_token))
    assert response.json()["sub"] == tokens.claims["sub"]


async def test_openid_alone_answers_only_sub(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """A token granted only openid reads only sub."""
    token = (await openid_tokens(public, web_client, scope="openid")).access_token
    response = await public.get(USERINFO, headers=bearer(token))
    assert response.json() == {"sub": alice["user_id"]}


async def test_post_with_the_header(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """POST with the bearer header answers the same claims."""
    token = (await openid_tokens(public, web_client, scope="openid email")).access_token
    response = await public.post(USERINFO, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["email"] == "alice@example.com"


async def test_post_with_the_token_in_the_form(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """POST with access_token in a form body (RFC 6750 §2.2) is accepted."""
    token = (await openid_tokens(public, web_client, scope="openid")).access_token
    response = await post_form(public, USERINFO, {"access_token": token})
    assert response.status_code == 200, response.text
    assert response.json()["sub"] == alice["user_id"]


async def test_no_token_is_a_bare_challenge(public: httpx.AsyncClient) -> None:
    """Without a token: 401 and a challenge with no error code (RFC 6750 §3.1)."""
    response = await public.get(USERINFO)
    assert response.status_code == 401
    assert challenge(response) == 'Bearer realm="authserver"'


async def test_unknown_token_is_invalid_token(public: httpx.AsyncClient) -> None:
    """A token that is not ours: 401 invalid_token."""
    response = await public.get(USERINFO, headers=bearer("phrat_not-a-real-token"))
    assert response.status_code == 401
    assert 'error="invalid_token"' in challenge(response)
    assert response.json()["error"] == "invalid_token"


async def test_token_without_openid_is_insufficient_scope(
    public: httpx.AsyncClient, tokens: dict[str, Any]
) -> None:
    """A valid token without openid: 403 insufficient_scope naming openid."""
    response = await public.get(USERINFO, headers=bearer(tokens["access_token"]))
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in challenge(response)
    assert 'scope="openid"' in challenge(response)


async def test_refresh_token_is_invalid_token(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """A refresh token is not an access token: 401 invalid_token."""
    refresh = (await openid_tokens(public, web_client)).body["refresh_token"]
    response = await public.get(USERINFO, headers=bearer(refresh))
    assert response.status_code == 401
    assert 'error="invalid_token"' in challenge(response)


async def test_client_credentials_token_is_invalid_token(
    public: httpx.AsyncClient, web_client: Client
) -> None:
    """A token with no user behind it has nobody to describe: 401 invalid_token."""
    response = await public.get(USERINFO, headers=bearer(await client_token(public, web_client)))
    assert response.status_code == 401
    assert 'error="invalid_token"' in challenge(response)


async def test_revoked_token_is_invalid_token(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """After RFC 7009 revocation the token reads nothing."""
    token = (await openid_tokens(public, web_client)).access_token
    revoked = await post_form(public, "/oauth2/revoke", {"token": token}, web_auth(web_client))
    assert revoked.status_code == 200
    response = await public.get(USERINFO, headers=bearer(token))
    assert response.status_code == 401


async def test_disabled_user_is_invalid_token(
    public: httpx.AsyncClient, admin: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """A user the platform deleted reads nothing, whatever tokens are left."""
    token = (await openid_tokens(public, web_client)).access_token
    assert (await admin.delete(f"/users/{alice['user_id']}")).status_code == 204
    response = await public.get(USERINFO, headers=bearer(token))
    assert response.status_code == 401


async def test_token_in_the_query_is_refused(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """A token in the URL would reach logs: invalid_request, whatever the token."""
    token = (await openid_tokens(public, web_client)).access_token
    response = await public.get(USERINFO, params={"access_token": token})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_two_methods_at_once_are_refused(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """The header and the form body together: invalid_request (RFC 6750 §2)."""
    token = (await openid_tokens(public, web_client)).access_token
    response = await public.post(
        USERINFO,
        content=f"access_token={token}",
        headers={**bearer(token), "Content-Type": FORM},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_malformed_authorization_header_is_invalid_request(
    public: httpx.AsyncClient,
) -> None:
    """'Bearer' with two values is malformed: 400 invalid_request."""
    response = await public.get(USERINFO, headers={"Authorization": "Bearer a b"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_userinfo_token_still_introspects(
    public: httpx.AsyncClient, web_client: Client, introspector: Client, alice: Client
) -> None:
    """An openid access token is an access token like the others to resource servers."""
    token = (await openid_tokens(public, web_client)).access_token
    response = await post_form(public, INTROSPECT, {"token": token}, web_auth(introspector))
    assert response.json()["active"] is True
    assert response.json()["sub"] == alice["user_id"]
