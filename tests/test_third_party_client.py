"""A third-party OAuth client library (Authlib) against a real running server, over real HTTP.

Each test starts ``python -m authserver serve`` on free loopback ports against the test's own
database, and drives it only through Authlib's ``AsyncOAuth2Client``.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import pytest

from tests.conftest import register_client
from tests.live_server import LiveServer, live_server
from tests.oauth_support import issue_code, pkce_pair

if TYPE_CHECKING:
    from authlib.integrations.httpx_client import AsyncOAuth2Client

WEB_REDIRECT = "https://photosync.example/cb"
DESKTOP_REDIRECT = "http://127.0.0.1/callback"


def _import_authlib() -> None:
    """Import Authlib's httpx integration without its warning.

    Authlib announces with a DeprecationWarning at import that it would rather run on ``httpx2``
    than on ``httpx``; that concerns Authlib's future, not this server. Its ``deprecate`` module
    installs an "always" filter for its own warnings when imported, so ours goes in after it.
    """
    with warnings.catch_warnings():
        import authlib.deprecate

        warnings.filterwarnings("ignore", message="The httpx module is deprecated")
        import authlib.integrations.httpx_client  # noqa: F401


def oauth_client(**kwargs: Any) -> AsyncOAuth2Client:
    """Authlib's async OAuth 2 client, with a bounded timeout on every request."""
    _import_authlib()
    from authlib.integrations.httpx_client import AsyncOAuth2Client

    return AsyncOAuth2Client(timeout=10.0, **kwargs)


@pytest.fixture
async def server(database_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    async with live_server(database_url, tmp_path / "server.log") as running:
        yield running


def url(server: LiveServer, path: str) -> str:
    return server.public_url + path


async def code_tokens(
    server: LiveServer, db: asyncpg.Connection, client: dict[str, Any], user: dict[str, Any]
) -> dict[str, Any]:
    """Tokens Authlib got by redeeming a PKCE code for the web client."""
    verifier, challenge = pkce_pair()
    code = await issue_code(
        db, client["client_id"], user["user_id"], redirect_uri=WEB_REDIRECT, challenge=challenge
    )
    async with oauth_client(
        client_id=client["client_id"],
        client_secret=client["client_secret"],
        redirect_uri=WEB_REDIRECT,
    ) as oauth:
        token: dict[str, Any] = await oauth.fetch_token(
            url(server, "/oauth2/token"),
            grant_type="authorization_code",
            code=code,
            code_verifier=verifier,
        )
    return token


async def introspect(server: LiveServer, introspector: dict[str, Any], token: str) -> Any:
    async with oauth_client(
        client_id=introspector["client_id"], client_secret=introspector["client_secret"]
    ) as oauth:
        response = await oauth.introspect_token(url(server, "/oauth2/introspect"), token=token)
    assert response.status_code == 200
    return response.json()


async def test_client_credentials(server: LiveServer, web_client: dict[str, Any]) -> None:
    """Authlib obtains a client-credentials token with HTTP Basic client authentication."""
    async with oauth_client(
        client_id=web_client["client_id"], client_secret=web_client["client_secret"]
    ) as oauth:
        token = await oauth.fetch_token(
            url(server, "/oauth2/token"), grant_type="client_credentials"
        )
    assert token["access_token"].startswith("phrat_")
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] > 0
    assert "refresh_token" not in token


async def test_authorization_code_with_pkce(
    server: LiveServer, db: asyncpg.Connection, web_client: dict[str, Any], alice: dict[str, Any]
) -> None:
    """Authlib redeems an authorization code with its PKCE verifier for both tokens."""
    token = await code_tokens(server, db, web_client, alice)
    assert token["access_token"].startswith("phrat_")
    assert token["refresh_token"].startswith("phrrt_")
    assert token["scope"] == "read write"


async def test_public_client_code_exchange(
    server: LiveServer,
    db: asyncpg.Connection,
    desktop_client: dict[str, Any],
    alice: dict[str, Any],
) -> None:
    """Authlib, as a public desktop client (auth method none), redeems a PKCE code."""
    verifier, challenge = pkce_pair()
    code = await issue_code(
        db,
        desktop_client["client_id"],
        alice["user_id"],
        redirect_uri=DESKTOP_REDIRECT,
        challenge=challenge,
    )
    async with oauth_client(
        client_id=desktop_client["client_id"],
        token_endpoint_auth_method="none",
        redirect_uri=DESKTOP_REDIRECT,
    ) as oauth:
        token = await oauth.fetch_token(
            url(server, "/oauth2/token"),
            grant_type="authorization_code",
            code=code,
            code_verifier=verifier,
        )
    assert token["access_token"].startswith("phrat_")


async def test_refresh(
    server: LiveServer, db: asyncpg.Connection, web_client: dict[str, Any], alice: dict[str, Any]
) -> None:
    """Authlib refreshes: it gets a new access token and a rotated refresh token."""
    first = await code_tokens(server, db, web_client, alice)
    async with oauth_client(
        client_id=web_client["client_id"], client_secret=web_client["client_secret"]
    ) as oauth:
        second = await oauth.refresh_token(
            url(server, "/oauth2/token"), refresh_token=first["refresh_token"]
        )
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]


async def test_introspection(
    server: LiveServer,
    db: asyncpg.Connection,
    web_client: dict[str, Any],
    alice: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """Authlib, as a resource server, introspects a user's access token (RFC 7662)."""
    token = await code_tokens(server, db, web_client, alice)
    claims = await introspect(server, introspector, token["access_token"])
    assert claims["active"] is True
    assert claims["client_id"] == web_client["client_id"]
    assert claims["sub"] == alice["user_id"]
    assert claims["iss"] == "https://auth.example.test"


async def test_revocation(
    server: LiveServer,
    db: asyncpg.Connection,
    web_client: dict[str, Any],
    alice: dict[str, Any],
    introspector: dict[str, Any],
) -> None:
    """Authlib revokes a refresh token (RFC 7009); its access token dies with it."""
    token = await code_tokens(server, db, web_client, alice)
    async with oauth_client(
        client_id=web_client["client_id"], client_secret=web_client["client_secret"]
    ) as oauth:
        response = await oauth.revoke_token(
            url(server, "/oauth2/revoke"),
            token=token["refresh_token"],
            token_type_hint="refresh_token",
        )
    assert response.status_code == 200
    assert await introspect(server, introspector, token["access_token"]) == {"active": False}


async def test_refused_secret_raises_oauth_error(
    server: LiveServer, web_client: dict[str, Any]
) -> None:
    """A wrong secret surfaces in Authlib as the server's invalid_client error."""
    _import_authlib()
    from authlib.integrations.base_client import OAuthError

    async with oauth_client(client_id=web_client["client_id"], client_secret="wrong") as oauth:
        with pytest.raises(OAuthError) as raised:
            await oauth.fetch_token(url(server, "/oauth2/token"), grant_type="client_credentials")
    assert raised.value.error == "invalid_client"


TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


@pytest.fixture
async def exchanger(admin: httpx.AsyncClient, owner: dict[str, Any]) -> dict[str, Any]:
    """A web app allowed to exchange tokens (RFC 8693)."""
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
async def resource_server(admin: httpx.AsyncClient, owner: dict[str, Any]) -> dict[str, Any]:
    """A resource server exchanged tokens may be addressed to; it introspects them."""
    return await register_client(
        admin,
        owner,
        name="Phraseanet API",
        website="https://api.example",
        type="web",
        redirect_uris=["https://api.example/cb"],
        introspection=True,
        resource_server=True,
    )


async def exchange_token(
    server: LiveServer, client: dict[str, Any], subject_token: str, **extra: str
) -> dict[str, Any]:
    """A plain RFC 8693 §2.1 request through Authlib's fetch_token, HTTP Basic client auth."""
    async with oauth_client(
        client_id=client["client_id"], client_secret=client["client_secret"]
    ) as oauth:
        token: dict[str, Any] = await oauth.fetch_token(
            url(server, "/oauth2/token"),
            grant_type=TOKEN_EXCHANGE,
            subject_token=subject_token,
            subject_token_type=ACCESS_TOKEN_TYPE,
            **extra,
        )
    return token


async def test_token_exchange(
    server: LiveServer,
    db: asyncpg.Connection,
    exchanger: dict[str, Any],
    alice: dict[str, Any],
    resource_server: dict[str, Any],
) -> None:
    """Authlib exchanges a user's access token for a narrower one addressed to a resource
    server, which introspects it with the actor and audience."""
    subject = await code_tokens(server, db, exchanger, alice)
    token = await exchange_token(
        server,
        exchanger,
        subject["access_token"],
        scope="read",
        audience=resource_server["client_id"],
    )
    assert token["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert "refresh_token" not in token
    claims = await introspect(server, resource_server, token["access_token"])
    assert claims["active"] is True
    assert claims["scope"] == "read"
    assert claims["sub"] == alice["user_id"]
    assert claims["aud"] == resource_server["client_id"]
    assert claims["act"] == {"sub": exchanger["client_id"]}


async def test_token_exchange_refusal_raises_oauth_error(
    server: LiveServer,
    db: asyncpg.Connection,
    exchanger: dict[str, Any],
    alice: dict[str, Any],
) -> None:
    """A scope wider than the subject's surfaces in Authlib as invalid_scope."""
    _import_authlib()
    from authlib.integrations.base_client import OAuthError

    verifier, challenge = pkce_pair()
    code = await issue_code(
        db,
        exchanger["client_id"],
        alice["user_id"],
        redirect_uri=WEB_REDIRECT,
        challenge=challenge,
        scope="read",
    )
    async with oauth_client(
        client_id=exchanger["client_id"],
        client_secret=exchanger["client_secret"],
        redirect_uri=WEB_REDIRECT,
    ) as oauth:
        subject = await oauth.fetch_token(
            url(server, "/oauth2/token"),
            grant_type="authorization_code",
            code=code,
            code_verifier=verifier,
        )
    with pytest.raises(OAuthError) as raised:
        await exchange_token(server, exchanger, subject["access_token"], scope="read write")
    assert raised.value.error == "invalid_scope"
