"""Pauses for failing clients: wrong secrets pause the address that sent them (checklist S-29),
and scanning for codes or tokens pauses the client (S-23, S-41, S-50); every failure is seen in
the metrics, and a constant PKCE challenge is noticed (S-17)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families

from authserver.config import Settings
from authserver.security.tokens import TokenKind
from authserver.services import create_apps
from tests.authorize_support import approve, query
from tests.conftest import ADMIN_TOKEN, server_environ
from tests.oauth_support import CODEC, pkce_pair
from tests.token_support import basic, desktop_params, post_form, post_token, web_auth

Client = dict[str, Any]
ISSUER = "https://auth.example.test"
CLIENT_CREDENTIALS = {"grant_type": "client_credentials"}


@dataclass
class Server:
    here: httpx.AsyncClient  # requests from 10.0.0.1
    there: httpx.AsyncClient  # requests from 10.0.0.2
    admin: httpx.AsyncClient

    async def metric(self, name: str, **labels: str) -> float:
        text = (await self.admin.get("/metrics")).text
        for family in text_string_to_metric_families(text):
            for found in family.samples:
                if found.name == name and found.labels == labels:
                    return float(found.value)
        return 0.0


@asynccontextmanager
async def server(database_url: str, **overrides: str) -> AsyncIterator[Server]:
    """One server (both apps, one pool) and callers from two addresses."""
    public_app, admin_app = create_apps(
        Settings.from_env(server_environ(database_url, **overrides))
    )
    async with (
        LifespanManager(public_app) as public,
        LifespanManager(admin_app) as admin,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=public.app, client=("10.0.0.1", 1234)),
            base_url=ISSUER,
        ) as here,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=public.app, client=("10.0.0.2", 1234)),
            base_url=ISSUER,
        ) as there,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=admin.app),
            base_url="http://admin.test",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as admin_client,
    ):
        yield Server(here, there, admin_client)


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> bool:
    """True once ``check`` holds; counts reach PostgreSQL a fraction of a second later."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.05)
    return False


# S-29: wrong secrets pause the address that sent them, not the client everywhere


async def test_wrong_secrets_pause_their_address_only(
    database_url: str, web_client: Client
) -> None:
    """After the limit, the right secret is refused from the guessing address (429 with
    Retry-After) and still works from any other: knowing a client id is not enough to lock
    the client out."""
    wrong = basic(web_client["client_id"], "phrcs_wrong")
    async with server(database_url, client_max_failures="3") as s:
        for _ in range(3):
            refused = await post_token(s.here, CLIENT_CREDENTIALS, headers=wrong)
            assert refused.status_code == 401
        paused = await post_token(s.here, CLIENT_CREDENTIALS, headers=web_auth(web_client))
        assert paused.status_code == 429
        assert int(paused.headers["retry-after"]) > 0
        elsewhere = await post_token(s.there, CLIENT_CREDENTIALS, headers=web_auth(web_client))
        assert elsewhere.status_code == 200


# S-23, S-41, S-50: scanning for codes and tokens


def code_redemption(client: Client, code: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "https://photosync.example/cb",
        "code_verifier": pkce_pair()[0],
    }


async def test_unknown_codes_pause_the_client(database_url: str, web_client: Client) -> None:
    """A client that keeps sending codes that match nothing is paused with 429 + Retry-After."""
    async with server(database_url, client_max_guesses="5") as s:
        for _ in range(5):
            code = CODEC.mint(TokenKind.CODE)  # well-formed, never issued
            answer = await post_token(
                s.here, code_redemption(web_client, code), headers=web_auth(web_client)
            )
            assert answer.status_code == 400

        async def paused() -> bool:
            answer = await post_token(s.here, CLIENT_CREDENTIALS, headers=web_auth(web_client))
            return answer.status_code == 429 and "retry-after" in answer.headers

        assert await eventually(paused)
        assert (
            await s.metric("authserver_failed_guesses_total", endpoint="token", reason="unknown")
            >= 5
        )


async def test_forged_refresh_tokens_are_counted_and_pause(
    database_url: str, web_client: Client
) -> None:
    """Refresh tokens whose MAC fails count as guesses too, by their own reason."""
    async with server(database_url, client_max_guesses="3") as s:
        for index in range(3):
            params = {"grant_type": "refresh_token", "refresh_token": f"phrrt_forged{index}"}
            answer = await post_token(s.here, params, headers=web_auth(web_client))
            assert answer.status_code == 400

        async def paused() -> bool:
            answer = await post_token(s.here, CLIENT_CREDENTIALS, headers=web_auth(web_client))
            return answer.status_code == 429

        assert await eventually(paused)
        assert (
            await s.metric("authserver_failed_guesses_total", endpoint="token", reason="forged")
            == 3
        )


async def test_revoking_unknown_tokens_pauses(database_url: str, web_client: Client) -> None:
    """Revocation answers 200 for unknown tokens (RFC 7009 §2.2), but scanning it pauses."""
    async with server(database_url, client_max_guesses="3") as s:
        for _ in range(3):
            token = CODEC.mint(TokenKind.ACCESS)
            answer = await post_form(
                s.here, "/oauth2/revoke", {"token": token}, web_auth(web_client)
            )
            assert answer.status_code == 200

        async def paused() -> bool:
            answer = await post_form(s.here, "/oauth2/revoke", {"token": "x"}, web_auth(web_client))
            return answer.status_code == 429

        assert await eventually(paused)
        assert (
            await s.metric("authserver_failed_guesses_total", endpoint="revoke", reason="unknown")
            == 3
        )


async def test_introspection_guesses_are_counted_but_do_not_pause_by_default(
    database_url: str, introspector: Client
) -> None:
    """A resource server passes on whatever its callers send: by default its unknown tokens
    are counted, and it is not paused."""
    async with server(database_url) as s:
        for _ in range(30):
            answer = await post_form(
                s.here, "/oauth2/introspect", {"token": "nonsense"}, web_auth(introspector)
            )
            assert answer.status_code == 200
        await asyncio.sleep(0.5)
        answer = await post_form(
            s.here, "/oauth2/introspect", {"token": "nonsense"}, web_auth(introspector)
        )
        assert answer.status_code == 200
        assert (
            await s.metric(
                "authserver_failed_guesses_total", endpoint="introspect", reason="forged"
            )
            == 31
        )


async def test_introspection_scanning_pauses_when_configured(
    database_url: str, introspector: Client
) -> None:
    """With AUTHSERVER_INTROSPECTION_MAX_GUESSES set, a scanning caller is paused too."""
    async with server(database_url, introspection_max_guesses="5") as s:
        for _ in range(5):
            await post_form(
                s.here, "/oauth2/introspect", {"token": "nonsense"}, web_auth(introspector)
            )

        async def paused() -> bool:
            answer = await post_form(
                s.here, "/oauth2/introspect", {"token": "nonsense"}, web_auth(introspector)
            )
            return answer.status_code == 429

        assert await eventually(paused)


async def test_public_client_guesses_pause_the_address_only(
    database_url: str, desktop_client: Client
) -> None:
    """Anyone can name a public client: its guesses pause the guessing address, not the app."""
    async with server(database_url, client_max_guesses="3") as s:
        for _ in range(3):
            params = desktop_params(CODEC.mint(TokenKind.CODE), pkce_pair()[0], desktop_client)
            assert (await post_token(s.here, params)).status_code == 400

        async def paused() -> bool:
            params = desktop_params(CODEC.mint(TokenKind.CODE), pkce_pair()[0], desktop_client)
            return (await post_token(s.here, params)).status_code == 429

        assert await eventually(paused)
        params = desktop_params(CODEC.mint(TokenKind.CODE), pkce_pair()[0], desktop_client)
        assert (await post_token(s.there, params)).status_code == 400


# S-17: a constant PKCE challenge


async def test_constant_challenge_is_audited_and_counted(
    public: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: Client,
    alice: Client,
) -> None:
    """The second code a client gets for a challenge it used before is noticed."""
    challenge = pkce_pair()[1]
    await approve(public, query(web_client, challenge=challenge))
    assert (
        await db.fetchval("SELECT count(*) FROM audit_events WHERE kind = 'pkce.challenge_reused'")
        == 0
    )
    await approve(public, query(web_client, challenge=challenge, prompt="consent"))
    assert (
        await db.fetchval("SELECT count(*) FROM audit_events WHERE kind = 'pkce.challenge_reused'")
        == 1
    )
    metrics = (await admin.get("/metrics")).text
    assert "authserver_pkce_challenge_reuses_total 1.0" in metrics
