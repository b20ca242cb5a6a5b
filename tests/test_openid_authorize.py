"""The authorization request's OpenID Connect parameters (Core §3.1.2.1, §3.1.2.6): prompt,
max_age, login_hint, id_token_hint, and what is refused instead of ignored."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import asyncpg
import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.authorize_support import (
    ISSUER,
    WEB_REDIRECT,
    Client,
    assert_error_page,
    consent_page,
    location_base,
    location_params,
    login_form,
    query,
    signed_in_with_grant,
    url,
)
from tests.openid_support import JWKS, openid_tokens


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any]) -> str:
    """A JWT with ``alg: none`` (RFC 7519 §6): no signature at all."""
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(claims).encode())}."


def is_login_page(response: httpx.Response) -> bool:
    return response.status_code == 200 and 'name="password"' in response.text


def is_consent(response: httpx.Response) -> bool:
    return response.status_code == 200 and 'value="consent"' in response.text


def error_of(response: httpx.Response) -> str:
    """The error of an error redirect back to the client (with iss, RFC 9207)."""
    assert response.status_code in (302, 303), response.text
    assert location_base(response) == WEB_REDIRECT
    params = location_params(response)
    assert params["iss"] == ISSUER
    return params["error"]


async def signed_in(
    public: httpx.AsyncClient, db: asyncpg.Connection, alice: Client, app: Client
) -> None:
    """alice signed in, having granted ``app`` openid before."""
    await signed_in_with_grant(public, db, alice, app, scopes=("openid",))


# prompt (§3.1.2.1)


async def test_prompt_none_signed_out_is_login_required(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """prompt=none with openid and no session redirects login_required."""
    response = await public.get(url(query(web_client, scope="openid", prompt="none")))
    assert error_of(response) == "login_required"


async def test_prompt_none_without_consent_is_consent_required(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """prompt=none with openid for scopes never granted redirects consent_required."""
    await signed_in(public, db, alice, web_client)
    raw = query(web_client, scope="openid email", prompt="none")
    assert error_of(await public.get(url(raw))) == "consent_required"


async def test_prompt_none_with_consent_answers_a_code(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """prompt=none with a session and remembered openid consent redirects with a code."""
    await signed_in(public, db, alice, web_client)
    response = await public.get(url(query(web_client, scope="openid", prompt="none")))
    assert response.status_code == 302
    assert "code" in location_params(response)


async def test_prompt_none_with_another_value_is_invalid_request(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """prompt=none cannot be combined with another value."""
    await signed_in(public, db, alice, web_client)
    raw = query(web_client, scope="openid", prompt="none login")
    assert error_of(await public.get(url(raw))) == "invalid_request"


async def test_prompt_login_asks_to_sign_in_again(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """prompt=login shows the login page to a signed-in user with remembered consent."""
    await signed_in(public, db, alice, web_client)
    assert is_login_page(await public.get(url(query(web_client, scope="openid", prompt="login"))))


async def test_prompt_login_is_satisfied_by_signing_in(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """After signing in on a prompt=login page the flow goes on to an ID token, not round."""
    tokens = await openid_tokens(public, web_client, prompt="login")
    assert tokens.claims["sub"] == alice["user_id"]


async def test_prompt_consent_asks_again(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """prompt=consent shows the consent page though openid was granted before."""
    await signed_in(public, db, alice, web_client)
    assert is_consent(await public.get(url(query(web_client, scope="openid", prompt="consent"))))


async def test_prompt_select_account_is_refused(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """One account per session: select_account redirects account_selection_required."""
    await signed_in(public, db, alice, web_client)
    raw = query(web_client, scope="openid", prompt="select_account")
    assert error_of(await public.get(url(raw))) == "account_selection_required"


# max_age (§3.1.2.1)


async def test_max_age_zero_asks_to_sign_in_again(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """max_age=0 forces a fresh sign-in even with a session."""
    await signed_in(public, db, alice, web_client)
    assert is_login_page(await public.get(url(query(web_client, scope="openid", max_age="0"))))


async def test_recent_sign_in_satisfies_max_age(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """A sign-in younger than max_age goes straight on (remembered consent: a code)."""
    await signed_in(public, db, alice, web_client)
    response = await public.get(url(query(web_client, scope="openid", max_age="3600")))
    assert response.status_code == 302
    assert "code" in location_params(response)


async def test_max_age_flow_reports_auth_time(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """A request with max_age ends in an ID token with auth_time (§3.1.2.1)."""
    tokens = await openid_tokens(public, web_client, max_age="0")
    assert isinstance(tokens.claims["auth_time"], int)


async def test_malformed_max_age_is_invalid_request(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """max_age that is not a number of seconds redirects invalid_request."""
    for bad in ("-1", "ten", "1.5", "99999999999"):
        response = await public.get(url(query(web_client, scope="openid", max_age=bad)))
        assert error_of(response) == "invalid_request", bad


# What is refused rather than ignored (§3.1.2.1, §6)


async def test_request_object_is_not_supported(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """A request object redirects request_not_supported (§6)."""
    raw = query(web_client, scope="openid", request="eyJhbGciOiJub25lIn0.e30.")
    assert error_of(await public.get(url(raw))) == "request_not_supported"


async def test_request_uri_is_not_supported(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """A request_uri redirects request_uri_not_supported (§6)."""
    raw = query(web_client, scope="openid", request_uri="https://photosync.example/r")
    assert error_of(await public.get(url(raw))) == "request_uri_not_supported"


async def test_openid_without_redirect_uri_is_invalid_request(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """An OpenID request must name its redirect_uri, even when only one is registered."""
    response = await public.get(url(query(web_client, scope="openid", redirect_uri=None)))
    assert error_of(response) == "invalid_request"


async def test_oauth_without_redirect_uri_still_works(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """A plain OAuth request may leave out its one registered redirect_uri (RFC 6749)."""
    assert is_login_page(await public.get(url(query(web_client, redirect_uri=None))))


async def test_malformed_claims_parameter_is_an_error_page(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """A claims parameter that is not JSON is an error page naming it, never a 500."""
    response = await public.get(url(query(web_client, scope="openid", claims="{not json")))
    assert_error_page(response)
    assert "Malformed claims parameter" in response.text


# login_hint (§3.1.2.1)


async def test_login_hint_fills_the_login_field(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """The login page shows the login_hint in the login field."""
    page = await login_form(public, query(web_client, scope="openid", login_hint="alice"))
    assert 'name="username"' in page
    assert 'value="alice"' in page


async def test_login_hint_is_escaped(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """A login_hint with markup is shown as text."""
    page = await login_form(public, query(web_client, scope="openid", login_hint='"><b>x'))
    assert '"><b>x' not in page
    assert "&#34;&gt;&lt;b&gt;x" in page or "&quot;&gt;&lt;b&gt;x" in page


# The consent page in words


async def test_consent_page_lists_identity_scopes_in_words(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """openid, profile and email are described, not named."""
    page = (await consent_page(public, query(web_client, scope="openid profile email"))).text
    assert "Know that it is you when you sign in to it" in page
    assert "See your name and login" in page
    assert "See your e-mail address" in page


# id_token_hint (§3.1.2.1): ours, checked; anything else refused


async def test_own_id_token_hint_is_accepted(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """An ID token of ours naming the signed-in user lets prompt=none answer a code."""
    hint = (await openid_tokens(public, web_client, scope="openid")).id_token
    raw = query(web_client, scope="openid", prompt="none", id_token_hint=hint)
    response = await public.get(url(raw))
    assert response.status_code == 302
    assert "code" in location_params(response)


async def test_id_token_hint_for_another_user_is_login_required(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    admin: httpx.AsyncClient,
    web_client: Client,
    alice: Client,
) -> None:
    """A hint naming someone else than the signed-in user redirects login_required."""
    hint = (await openid_tokens(public, web_client, scope="openid")).id_token
    bob = (await admin.put("/users/bob-1", json={"login": "bob"})).json()
    public.cookies.clear()
    await signed_in(public, db, bob, web_client)
    raw = query(web_client, scope="openid", id_token_hint=hint)
    assert error_of(await public.get(url(raw))) == "login_required"


async def test_unsigned_id_token_hint_is_refused(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """A hint with alg none is not one of our ID tokens: invalid_request."""
    hint = unsigned({"iss": ISSUER, "sub": alice["user_id"], "aud": web_client["client_id"]})
    raw = query(web_client, scope="openid", id_token_hint=hint)
    assert error_of(await public.get(url(raw))) == "invalid_request"


async def test_hs256_hint_keyed_with_our_public_key_is_refused(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """The HMAC-with-the-public-key trick (RFC 8725 §2.1) does not pass as our ID token."""
    jwk = next(k for k in (await public.get(JWKS)).json()["keys"] if k["alg"] == "RS256")
    public_pem = RSAKey.import_key(jwk).as_pem(private=False)
    header = b64(json.dumps({"alg": "HS256", "kid": jwk["kid"], "typ": "JWT"}).encode())
    payload = b64(json.dumps({"iss": ISSUER, "sub": alice["user_id"]}).encode())
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    raw = query(web_client, scope="openid", id_token_hint=f"{header}.{payload}.{b64(mac)}")
    assert error_of(await public.get(url(raw))) == "invalid_request"


async def test_hint_signed_by_a_foreign_key_is_refused(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """A well-formed RS256 token from another key, claiming one of our kids, is refused."""
    kid = (await public.get(JWKS)).json()["keys"][0]["kid"]
    foreign = RSAKey.generate_key(2048, parameters={"kid": kid})
    hint = jwt.encode(
        {"alg": "RS256", "kid": kid}, {"iss": ISSUER, "sub": alice["user_id"]}, foreign
    )
    raw = query(web_client, scope="openid", id_token_hint=hint)
    assert error_of(await public.get(url(raw))) == "invalid_request"


async def test_garbage_hint_is_refused(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """A hint that is not a JWT at all is invalid_request, never a 500."""
    raw = query(web_client, scope="openid", id_token_hint="not.a.jwt")
    assert error_of(await public.get(url(raw))) == "invalid_request"


async def test_unknown_client_with_openid_gets_a_page(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """An unknown client is an error page even for an OpenID request: no redirect."""
    raw = query({"client_id": "nope-" + "x" * 20}, scope="openid")
    assert_error_page(await public.get(url(raw)))
