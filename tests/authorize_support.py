"""Helpers for the authorization-endpoint tests: building requests, reading forms off pages,
signing in and consenting through the in-process public app."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import asyncpg
import httpx
from asgi_lifespan import LifespanManager

from authserver.config import Settings
from authserver.http.session import Session, Signer
from authserver.security.keys import Keyring
from authserver.services import create_apps
from tests.conftest import ALICE_PASSWORD, SECRET_KEY
from tests.conftest import server_environ as environ_for
from tests.oauth_support import pkce_pair

ISSUER = "https://auth.example.test"
AUTHORIZE = "/oauth2/authorize"
ALIAS = "/api/oauthv2/authorize"
LOGOUT = "/oauth2/logout"
TOKEN = "/oauth2/token"
METADATA = "/.well-known/oauth-authorization-server"
WEB_REDIRECT = "https://photosync.example/cb"
LOOPBACK = "http://127.0.0.1/callback"
OOB = "urn:ietf:wg:oauth:2.0:oob"
COOKIE = "__Host-authserver_session"
FORM = "application/x-www-form-urlencoded"

Client = Mapping[str, Any]

SIGNER = Signer(Keyring([SECRET_KEY]))

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def query(
    client: Client | None,
    *,
    redirect_uri: str | None = WEB_REDIRECT,
    challenge: str | None = None,
    state: str | None = "st-123",
    scope: str | None = "read",
    response_type: str | None = "code",
    method: str | None = "S256",
    **extra: str,
) -> str:
    """An authorization request's query string (PKCE S256 with a fresh challenge by default)."""
    params: list[tuple[str, str]] = []
    if client is not None:
        params.append(("client_id", str(client["client_id"])))
    if response_type is not None:
        params.append(("response_type", response_type))
    if redirect_uri is not None:
        params.append(("redirect_uri", redirect_uri))
    if scope is not None:
        params.append(("scope", scope))
    if state is not None:
        params.append(("state", state))
    params.append(("code_challenge", challenge if challenge is not None else pkce_pair()[1]))
    if method is not None:
        params.append(("code_challenge_method", method))
    params.extend(extra.items())
    return urlencode(params)


def url(raw_query: str, path: str = AUTHORIZE) -> str:
    return f"{path}?{raw_query}"


def hidden_fields(page: str) -> dict[str, str]:
    """The hidden inputs of the page's form, unescaped."""
    return {name: html.unescape(value) for name, value in _HIDDEN.findall(page)}


def location_params(response: httpx.Response) -> dict[str, str]:
    """The query parameters of a redirect's Location (each must appear once)."""
    pairs = parse_qsl(urlsplit(response.headers["location"]).query, keep_blank_values=True)
    params = dict(pairs)
    assert len(params) == len(pairs), "a parameter is repeated in the Location"
    return params


def location_base(response: httpx.Response) -> str:
    """The Location without its query: where the redirect goes."""
    parts = urlsplit(response.headers["location"])
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def assert_error_page(response: httpx.Response, status: int = 400) -> None:
    """An HTML error page: no redirect anywhere."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "location" not in response.headers


def flip(value: str) -> str:
    """``value`` with its middle character changed."""
    middle = len(value) // 2
    return value[:middle] + ("A" if value[middle] != "A" else "B") + value[middle + 1 :]


async def post_form(
    client: httpx.AsyncClient,
    fields: Mapping[str, str],
    *,
    path: str = AUTHORIZE,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    return await client.post(
        path, content=urlencode(fields), headers={"Content-Type": FORM, **(headers or {})}
    )


async def login_form(client: httpx.AsyncClient, raw_query: str, path: str = AUTHORIZE) -> str:
    """GET the authorize URL, expecting the login page; its HTML."""
    response = await client.get(url(raw_query, path))
    assert response.status_code == 200, response.text
    assert 'name="password"' in response.text
    return response.text


async def submit_login(
    client: httpx.AsyncClient,
    page: str,
    username: str = "alice",
    password: str = ALICE_PASSWORD,
    *,
    path: str = AUTHORIZE,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    fields = {**hidden_fields(page), "username": username, "password": password}
    return await post_form(client, fields, path=path, headers=headers)


async def sign_in(
    client: httpx.AsyncClient,
    raw_query: str,
    username: str = "alice",
    password: str = ALICE_PASSWORD,
    path: str = AUTHORIZE,
) -> httpx.Response:
    """Sign in from the login page; the 303 back to the authorize URL."""
    page = await login_form(client, raw_query, path)
    response = await submit_login(client, page, username, password, path=path)
    assert response.status_code == 303, response.text
    return response


async def consent_page(
    client: httpx.AsyncClient, raw_query: str, path: str = AUTHORIZE
) -> httpx.Response:
    """Sign in if needed, and GET the authorize URL again; the consent page."""
    response = await client.get(url(raw_query, path))
    if 'name="password"' in response.text:
        await submit_login(client, response.text, path=path)
        response = await client.get(url(raw_query, path))
    assert response.status_code == 200, response.text
    assert 'value="consent"' in response.text
    return response


async def decide(
    client: httpx.AsyncClient,
    page: str,
    decision: str = "allow",
    *,
    path: str = AUTHORIZE,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """Submit the consent form on ``page``."""
    fields = {**hidden_fields(page), "decision": decision}
    return await post_form(client, fields, path=path, headers=headers)


async def approve(client: httpx.AsyncClient, raw_query: str) -> httpx.Response:
    """Sign in, allow, and return the redirect that carries the code."""
    page = await consent_page(client, raw_query)
    response = await decide(client, page.text)
    assert response.status_code == 303, response.text
    return response


async def code_count(db: asyncpg.Connection) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM authorization_codes")
    return count


@asynccontextmanager
async def public_app(database_url: str, **overrides: str) -> AsyncIterator[httpx.AsyncClient]:
    """The public API built with settings overrides (e.g. ``login_max_failures="3"``)."""
    settings = Settings.from_env(environ_for(database_url, **overrides))
    app, _ = create_apps(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url=ISSUER) as c,
    ):
        yield c


def browser(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """A second browser on the same app: same transport, its own cookie jar."""
    return httpx.AsyncClient(transport=client._transport, base_url=ISSUER)


async def signed_in_with_grant(
    client: httpx.AsyncClient,
    db: asyncpg.Connection,
    user: Client,
    app: Client | None = None,
    scopes: tuple[str, ...] = ("read",),
) -> Session:
    """Put a signed-in session cookie in ``client``'s jar (and, for ``app``, a grant of
    ``scopes``) straight through the database: what a login and an Allow would leave behind."""
    session = Session.new()
    await db.execute(
        "INSERT INTO browser_sessions (sid_digest, user_id, expires_at)"
        " VALUES ($1, $2, now() + interval '1 hour')",
        session.digest,
        user["user_id"],
    )
    if app is not None:
        await db.execute(
            "INSERT INTO grants (user_id, client_id, scopes) VALUES ($1, $2, $3)",
            user["user_id"],
            app["client_id"],
            list(scopes),
        )
    client.cookies.set(COOKIE, SIGNER.dump_session(session), domain="auth.example.test")
    return session
