"""Helpers for the device authorization grant tests (RFC 8628): asking for codes, polling, and
a person entering the code, signing in and deciding on the verification page (in process)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from tests.authorize_support import FORM, hidden_fields, post_form, submit_login

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEVICE_AUTHORIZATION = "/oauth2/device_authorization"
VERIFY = "/device"
TOKEN = "/oauth2/token"

Client = Mapping[str, Any]


def client_auth(client: Client) -> tuple[dict[str, str], tuple[str, str] | None]:
    """Form fields and Basic credentials a client authenticates with (public: its id only)."""
    if client.get("client_secret"):
        return {}, (str(client["client_id"]), str(client["client_secret"]))
    return {"client_id": str(client["client_id"])}, None


async def ask(public: httpx.AsyncClient, client: Client, **extra: str) -> httpx.Response:
    """POST a device authorization request (RFC 8628 §3.1)."""
    fields, basic = client_auth(client)
    return await public.post(
        DEVICE_AUTHORIZATION,
        data={**fields, **extra},
        auth=basic if basic is not None else httpx.USE_CLIENT_DEFAULT,
        headers={"Content-Type": FORM},
    )


async def codes(public: httpx.AsyncClient, client: Client, **extra: str) -> dict[str, Any]:
    """A device authorization answer that must succeed."""
    response = await ask(public, client, **extra)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def poll(public: httpx.AsyncClient, client: Client, device_code: str) -> httpx.Response:
    """One poll of the token endpoint (RFC 8628 §3.4)."""
    fields, basic = client_auth(client)
    return await public.post(
        TOKEN,
        data={**fields, "grant_type": DEVICE_GRANT, "device_code": device_code},
        auth=basic if basic is not None else httpx.USE_CLIENT_DEFAULT,
    )


async def enter_code(browser: httpx.AsyncClient, user_code: str) -> httpx.Response:
    """Open the verification page and submit ``user_code`` in its form."""
    page = await browser.get(VERIFY)
    assert page.status_code == 200, page.text
    fields = {**hidden_fields(page.text), "user_code": user_code}
    return await post_form(browser, fields, path=VERIFY)


async def consent(browser: httpx.AsyncClient, user_code: str) -> httpx.Response:
    """Enter the code, sign in as alice if asked, and land on the device consent page."""
    response = await enter_code(browser, user_code)
    if 'name="password"' in response.text:
        signed_in = await submit_login(browser, response.text, path=VERIFY)
        assert signed_in.status_code == 303, signed_in.text
        response = await browser.get(signed_in.headers["location"])
    assert response.status_code == 200, response.text
    assert 'value="consent"' in response.text
    return response


async def decide(
    browser: httpx.AsyncClient, user_code: str, decision: str = "allow"
) -> httpx.Response:
    """Go through the verification page and answer ``decision`` on the consent page."""
    page = await consent(browser, user_code)
    fields = {**hidden_fields(page.text), "decision": decision}
    response = await post_form(browser, fields, path=VERIFY)
    assert response.status_code == 200, response.text
    return response
