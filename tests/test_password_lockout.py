"""The password grant shares the login page's pause after too many wrong passwords."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import ALICE_PASSWORD
from tests.token_support import post_token, web_auth

Client = dict[str, Any]
FAILURES = 5  # AUTHSERVER_LOGIN_MAX_FAILURES' default


@pytest.fixture
async def password_client(admin: httpx.AsyncClient, web_client: Client) -> Client:
    """The web client with the password grant enabled by its owner."""
    response = await admin.patch(
        f"/clients/{web_client['client_id']}", json={"password_grant": True}
    )
    assert response.status_code == 200
    return web_client


async def grant(public: httpx.AsyncClient, client: Client, password: str) -> httpx.Response:
    params = {"grant_type": "password", "username": "ALICE", "password": password}
    return await post_token(public, params, headers=web_auth(client))


async def test_wrong_passwords_pause_the_account(
    public: httpx.AsyncClient, password_client: Client, alice: Client
) -> None:
    """After too many wrong passwords even the right one is refused, 429 with Retry-After: no
    guessing round the login page's pause through the token endpoint."""
    for _ in range(FAILURES):
        assert (await grant(public, password_client, "wrong")).status_code == 400
    refused = await grant(public, password_client, ALICE_PASSWORD)
    assert refused.status_code == 429
    assert refused.json()["error"] == "invalid_grant"
    assert int(refused.headers["retry-after"]) > 0


async def test_grant_failures_count_on_the_login_pages_counter(
    public: httpx.AsyncClient, db: asyncpg.Connection, password_client: Client, alice: Client
) -> None:
    """The grant counts on the same per-account counter as the login page."""
    await grant(public, password_client, "wrong")
    failures = await db.fetchval(
        "SELECT failures FROM login_failures WHERE throttle_key = 'account:alice'"
    )
    assert failures == 1


async def test_right_password_starts_the_count_over(
    public: httpx.AsyncClient, password_client: Client, alice: Client
) -> None:
    """A right password clears the account's failures, as a sign-in on the page does."""
    for _ in range(FAILURES - 1):
        await grant(public, password_client, "wrong")
    assert (await grant(public, password_client, ALICE_PASSWORD)).status_code == 200
    for _ in range(FAILURES - 1):
        await grant(public, password_client, "wrong")
    assert (await grant(public, password_client, ALICE_PASSWORD)).status_code == 200
