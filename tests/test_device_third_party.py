"""A third-party OAuth client library (Authlib) runs the device grant (RFC 8628) against a real
running server over real HTTP.

Authlib has no device-flow helper of its own: its client authenticates the device
authorization request (``client_auth``) and redeems the device code through ``fetch_token``
with the grant's URN, raising ``OAuthError`` with the server's RFC 8628 §3.5 error codes while
it waits. The person approves through the verification page of the in-process app over the
same database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.authorize_support import browser
from tests.conftest import register_client
from tests.device_support import DEVICE_GRANT, decide
from tests.live_server import LiveServer, live_server
from tests.test_third_party_client import _import_authlib, oauth_client

POLL_DEADLINE = 30.0  # seconds


@pytest.fixture
async def server(database_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    async with live_server(
        database_url, tmp_path / "server.log", device_poll_interval="1"
    ) as running:
        yield running


@pytest.fixture
async def tv_app(admin: httpx.AsyncClient, owner: dict[str, Any]) -> dict[str, Any]:
    """A desktop (public) application that enabled the device grant."""
    return await register_client(
        admin,
        owner,
        name="Hall Frame",
        website="https://frame.example",
        type="desktop",
        device_grant=True,
    )


@pytest.fixture
async def kiosk_app(admin: httpx.AsyncClient, owner: dict[str, Any]) -> dict[str, Any]:
    """A web (confidential) application that asked for the device grant."""
    return await register_client(
        admin,
        owner,
        name="Lobby Kiosk",
        website="https://kiosk.example",
        type="web",
        redirect_uris=["https://kiosk.example/cb"],
        device_grant=True,
    )


def authlib_client(app: dict[str, Any]) -> Any:
    """Authlib's client for ``app``: HTTP Basic with a secret, auth method none without."""
    if app.get("client_secret"):
        return oauth_client(client_id=app["client_id"], client_secret=app["client_secret"])
    return oauth_client(client_id=app["client_id"], token_endpoint_auth_method="none")


async def device_codes(oauth: Any, server: LiveServer, **fields: str) -> dict[str, Any]:
    """RFC 8628 §3.1, authenticated the way Authlib authenticates at the token endpoint."""
    response = await oauth.request(
        "POST",
        server.public_url + "/oauth2/device_authorization",
        data=fields,
        # RFC 8628 §3.1 is a form post, even with nothing but the client's Basic credentials
        # in it; httpx sends no media type for an empty form.
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        withhold_token=True,
        auth=oauth.client_auth(oauth.token_endpoint_auth_method),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def poll_until_done(
    oauth: Any, server: LiveServer, codes: dict[str, Any], seen: list[str]
) -> dict[str, Any]:
    """Poll as §3.5 says (the interval, 5 s more on slow_down) until tokens or another error."""
    _import_authlib()
    from authlib.integrations.base_client import OAuthError

    interval = codes["interval"]
    deadline = time.monotonic() + POLL_DEADLINE
    while time.monotonic() < deadline:
        try:
            token: dict[str, Any] = await oauth.fetch_token(
                server.public_url + "/oauth2/token",
                grant_type=DEVICE_GRANT,
                device_code=codes["device_code"],
            )
        except OAuthError as exc:
            seen.append(exc.error)
            if exc.error == "slow_down":
                interval += 5
            elif exc.error != "authorization_pending":
                raise
        else:
            return token
        await asyncio.sleep(interval)
    raise TimeoutError(f"no answer but {seen}")


async def test_authlib_public_client_gets_tokens_after_approval(
    server: LiveServer, public: httpx.AsyncClient, tv_app: Any, alice: Any
) -> None:
    """Authlib as a desktop app: pending while alice decides, then tokens once she allows."""
    seen: list[str] = []
    async with authlib_client(tv_app) as oauth:
        codes = await device_codes(oauth, server, scope="read")
        polling = asyncio.create_task(poll_until_done(oauth, server, codes, seen))
        await asyncio.sleep(1.5)  # the device polls at least once before the person acts
        async with browser(public) as person:
            await decide(person, codes["user_code"], "allow")
        token = await polling
    assert "authorization_pending" in seen
    assert token["access_token"].startswith("phrat_")
    assert token["refresh_token"].startswith("phrrt_")
    assert token["scope"] == "read"


async def test_authlib_refreshes_a_device_token(
    server: LiveServer, public: httpx.AsyncClient, tv_app: Any, alice: Any
) -> None:
    """Authlib's refresh of a device-issued refresh token rotates it."""
    async with authlib_client(tv_app) as oauth:
        codes = await device_codes(oauth, server)
        async with browser(public) as person:
            await decide(person, codes["user_code"], "allow")
        first = await poll_until_done(oauth, server, codes, [])
        second = await oauth.refresh_token(
            server.public_url + "/oauth2/token", refresh_token=first["refresh_token"]
        )
    assert second["refresh_token"] != first["refresh_token"]


async def test_authlib_confidential_client_is_told_access_denied(
    server: LiveServer, public: httpx.AsyncClient, kiosk_app: Any, alice: Any
) -> None:
    """Authlib as a web app with HTTP Basic: a denial surfaces as OAuthError access_denied."""
    _import_authlib()
    from authlib.integrations.base_client import OAuthError

    async with authlib_client(kiosk_app) as oauth:
        codes = await device_codes(oauth, server)
        async with browser(public) as person:
            await decide(person, codes["user_code"], "deny")
        with pytest.raises(OAuthError) as raised:
            await poll_until_done(oauth, server, codes, [])
    assert raised.value.error == "access_denied"


async def test_authlib_polling_too_fast_is_slowed_down(server: LiveServer, tv_app: Any) -> None:
    """Two polls in a row: Authlib sees slow_down (RFC 8628 §3.5)."""
    _import_authlib()
    from authlib.integrations.base_client import OAuthError

    async with authlib_client(tv_app) as oauth:
        codes = await device_codes(oauth, server)
        errors = []
        for _ in range(2):
            with pytest.raises(OAuthError) as raised:
                await oauth.fetch_token(
                    server.public_url + "/oauth2/token",
                    grant_type=DEVICE_GRANT,
                    device_code=codes["device_code"],
                )
            errors.append(raised.value.error)
    assert errors == ["authorization_pending", "slow_down"]
