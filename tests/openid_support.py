"""Helpers for the OpenID Connect tests: the code flow with ``openid`` through the real login
and consent pages, and ID tokens checked the way a relying party checks them (the published
JWKS, never the server's own objects)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.authorize_support import (
    FORM,
    TOKEN,
    WEB_REDIRECT,
    Client,
    decide,
    location_params,
    query,
    submit_login,
    url,
)
from tests.oauth_support import pkce_pair

JWKS = "/.well-known/jwks.json"
CONFIGURATION = "/.well-known/openid-configuration"
USERINFO = "/oauth2/userinfo"
IDENTITY = "openid profile email"


@dataclass(frozen=True)
class Tokens:
    """A token response of the code grant, and the ID token's header and claims."""

    body: dict[str, Any]
    header: dict[str, Any]
    claims: dict[str, Any]

    @property
    def access_token(self) -> str:
        return str(self.body["access_token"])

    @property
    def id_token(self) -> str:
        return str(self.body["id_token"])


async def published_keys(public: httpx.AsyncClient) -> KeySet:
    response = await public.get(JWKS)
    assert response.status_code == 200, response.text
    return KeySet.import_key_set(response.json())


async def verified(
    public: httpx.AsyncClient, id_token: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of an ID token whose signature a published key verifies."""
    decoded = jwt.decode(id_token, await published_keys(public), algorithms=["RS256", "ES256"])
    return dict(decoded.header), dict(decoded.claims)


def at_hash(access_token: str) -> str:
    """Core §3.1.3.6: the left half of the SHA-256 of the access token, base64url."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


async def redeem(
    public: httpx.AsyncClient,
    client: Client,
    code: str,
    verifier: str,
    redirect_uri: str = WEB_REDIRECT,
) -> httpx.Response:
    """Exchange a code at the token endpoint (client_secret_post for confidential clients)."""
    params = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        "client_id": str(client["client_id"]),
    }
    if client.get("client_secret"):
        params["client_secret"] = str(client["client_secret"])
    return await public.post(TOKEN, content=urlencode(params), headers={"Content-Type": FORM})


async def approve_as_browser(public: httpx.AsyncClient, raw_query: str) -> httpx.Response:
    """Sign in and allow the way a browser does: following the login page's redirect, which
    may differ from the request (prompt=login and max_age are satisfied by signing in); the
    redirect that carries the code."""
    page = await public.get(url(raw_query))
    if 'name="password"' in page.text:
        signed = await submit_login(public, page.text)
        assert signed.status_code == 303, signed.text
        page = await public.get(signed.headers["location"])
    if page.status_code == 302:
        return page  # consent remembered: the code comes at once
    assert page.status_code == 200, page.text
    assert 'value="consent"' in page.text, page.text
    allowed = await decide(public, page.text)
    assert allowed.status_code == 303, allowed.text
    return allowed


async def code_flow(
    public: httpx.AsyncClient,
    client: Client,
    scope: str = IDENTITY,
    **extra: str,
) -> httpx.Response:
    """Sign in, allow and redeem the code; the token endpoint's answer."""
    verifier, challenge = pkce_pair()
    allowed = await approve_as_browser(
        public, query(client, challenge=challenge, scope=scope, **extra)
    )
    params = location_params(allowed)
    assert "code" in params, params
    return await redeem(public, client, params["code"], verifier)


async def openid_tokens(
    public: httpx.AsyncClient,
    client: Client,
    scope: str = IDENTITY,
    **extra: str,
) -> Tokens:
    """The code flow with ``openid``; the tokens and the verified ID token."""
    response = await code_flow(public, client, scope, **extra)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    header, claims = await verified(public, body["id_token"])
    return Tokens(body, header, claims)


async def refresh(
    public: httpx.AsyncClient, client: Client, refresh_token: str, **extra: str
) -> httpx.Response:
    params = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": str(client["client_id"]),
        "client_secret": str(client["client_secret"]),
        **extra,
    }
    return await public.post(TOKEN, content=urlencode(params), headers={"Content-Type": FORM})


def bearer(token: str) -> Mapping[str, str]:
    return {"Authorization": f"Bearer {token}"}
