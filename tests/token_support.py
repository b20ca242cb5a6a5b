"""Helpers for the token-endpoint tests: form posts, client authentication, redeeming codes."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote, urlencode

import asyncpg
import httpx
from asgi_lifespan import LifespanManager

from authserver.config import Settings
from authserver.security.tokens import token_digest
from authserver.services import create_apps
from tests.conftest import server_environ as environ_for
from tests.oauth_support import issue_code, pkce_pair

TOKEN = "/oauth2/token"
INTROSPECT = "/oauth2/introspect"
ALIAS = "/api/oauthv2/token"
FORM = "application/x-www-form-urlencoded"
WEB_REDIRECT = "https://photosync.example/cb"
DESKTOP_REDIRECT = "http://127.0.0.1/callback"

Params = Mapping[str, str] | Sequence[tuple[str, str]] | str | bytes


def basic(client_id: str, secret: str) -> dict[str, str]:
    """An RFC 6749 §2.3.1 Basic header: id and secret form-urlencoded, then base64."""
    joined = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return {"Authorization": "Basic " + base64.b64encode(joined.encode()).decode()}


def web_auth(client: Mapping[str, Any]) -> dict[str, str]:
    return basic(client["client_id"], client["client_secret"])


async def post_form(
    public: httpx.AsyncClient,
    path: str,
    params: Params,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """POST a form to ``path``; a str or bytes body is sent exactly as given."""
    content = params if isinstance(params, (str, bytes)) else urlencode(params)
    return await public.post(
        path, content=content, headers={"Content-Type": FORM, **(headers or {})}
    )


async def post_token(
    public: httpx.AsyncClient,
    params: Params,
    *,
    headers: Mapping[str, str] | None = None,
    path: str = TOKEN,
) -> httpx.Response:
    """POST a form to the token endpoint; a str or bytes body is sent exactly as given."""
    return await post_form(public, path, params, headers)


async def introspect(
    public: httpx.AsyncClient, introspector: Mapping[str, Any], token: str
) -> dict[str, Any]:
    """What RFC 7662 introspection says about a token, asked by a trusted resource server."""
    response = await post_form(public, INTROSPECT, {"token": token}, web_auth(introspector))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def client_token(public: httpx.AsyncClient, client: Mapping[str, Any]) -> str:
    """An access token from the client-credentials grant."""
    response = await post_token(
        public, {"grant_type": "client_credentials"}, headers=web_auth(client)
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def refresh(
    public: httpx.AsyncClient, client: Mapping[str, Any], refresh_token: str, **extra: str
) -> httpx.Response:
    """Use a refresh token, the client authenticating with HTTP Basic."""
    params = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    return await post_token(public, params, headers=web_auth(client))


async def stored_token(db: asyncpg.Connection, token: str) -> asyncpg.Record | None:
    """The tokens row of a token string, found by its SHA-256 digest."""
    row: asyncpg.Record | None = await db.fetchrow(
        "SELECT * FROM tokens WHERE digest = $1", token_digest(token)
    )
    return row


async def expire(db: asyncpg.Connection, token: str) -> None:
    """Put a stored token's expiry one second in the past."""
    await db.execute(
        "UPDATE tokens SET expires_at = now() - interval '1 second' WHERE digest = $1",
        token_digest(token),
    )


async def audit_kinds(db: asyncpg.Connection) -> list[str]:
    return [row["kind"] for row in await db.fetch("SELECT kind FROM audit_events")]


async def web_code(
    db: asyncpg.Connection,
    web_client: Mapping[str, Any],
    user: Mapping[str, Any],
    **kwargs: Any,
) -> tuple[str, str]:
    """A fresh PKCE code for the web client, redirect URI stored; (code, verifier)."""
    verifier, challenge = pkce_pair()
    kwargs.setdefault("redirect_uri", WEB_REDIRECT)
    code = await issue_code(
        db, web_client["client_id"], user["user_id"], challenge=challenge, **kwargs
    )
    return code, verifier


def code_params(code: str, verifier: str, redirect_uri: str = WEB_REDIRECT) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": redirect_uri,
    }


async def redeem(
    public: httpx.AsyncClient,
    client: Mapping[str, Any],
    code: str,
    verifier: str,
    **extra: str,
) -> httpx.Response:
    """Redeem a web client's code, ``client`` authenticating with HTTP Basic."""
    params = {**code_params(code, verifier), **extra}
    return await post_token(public, params, headers=web_auth(client))


async def desktop_code(
    db: asyncpg.Connection, desktop_client: Mapping[str, Any], user: Mapping[str, Any]
) -> tuple[str, str]:
    """A fresh PKCE code for the desktop client's loopback redirect; (code, verifier)."""
    verifier, challenge = pkce_pair()
    code = await issue_code(
        db,
        desktop_client["client_id"],
        user["user_id"],
        redirect_uri=DESKTOP_REDIRECT,
        challenge=challenge,
    )
    return code, verifier


def desktop_params(code: str, verifier: str | None, client: Mapping[str, Any]) -> dict[str, str]:
    """A public client's code redemption: it names itself, with no secret."""
    params = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": DESKTOP_REDIRECT,
        "client_id": client["client_id"],
    }
    if verifier is not None:
        params["code_verifier"] = verifier
    return params


async def desktop_tokens(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    desktop_client: Mapping[str, Any],
    user: Mapping[str, Any],
) -> dict[str, Any]:
    """Tokens a public client got for a code, authenticating with its client_id only."""
    code, verifier = await desktop_code(db, desktop_client, user)
    response = await post_token(public, desktop_params(code, verifier, desktop_client))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def web_tokens(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: Mapping[str, Any],
    user: Mapping[str, Any],
    **kwargs: Any,
) -> dict[str, Any]:
    """Tokens the web client got by redeeming a fresh code (asserted to succeed)."""
    code, verifier = await web_code(db, web_client, user, **kwargs)
    response = await redeem(public, web_client, code, verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@asynccontextmanager
async def public_app(database_url: str, **overrides: str) -> AsyncIterator[httpx.AsyncClient]:
    """The public API built with settings overrides (e.g. ``pool_max_size="20"``)."""
    settings = Settings.from_env(environ_for(database_url, **overrides))
    app, _ = create_apps(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="https://auth.example.test"
        ) as client,
    ):
        yield client
