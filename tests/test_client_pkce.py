"""PKCE per client (D17): each application says whether its codes need PKCE; new ones follow
AUTHSERVER_PKCE_REQUIRED_FOR_ALL; desktop applications always need it."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from tests.oauth_support import issue_code
from tests.test_admin_clients import admin_with, desktop_body, provision_owner, web_body
from tests.token_support import WEB_REDIRECT, post_token, web_auth


async def test_new_web_app_requires_pkce_by_default(
    admin: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    """Without the member, a web application requires PKCE (the setting's default)."""
    response = await admin.post("/clients", json=web_body())
    assert response.status_code == 201
    assert response.json()["require_pkce"] is True


async def test_web_app_may_be_created_without_pkce(
    admin: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    """A web application may be registered with require_pkce false."""
    response = await admin.post("/clients", json=web_body(require_pkce=False))
    assert response.status_code == 201
    assert response.json()["require_pkce"] is False


async def test_default_follows_the_setting(database_url: str) -> None:
    """With AUTHSERVER_PKCE_REQUIRED_FOR_ALL=false a new web application needs no PKCE."""
    async with admin_with(database_url, pkce_required_for_all="false") as admin:
        await provision_owner(admin)
        response = await admin.post("/clients", json=web_body())
    assert response.status_code == 201
    assert response.json()["require_pkce"] is False


async def test_desktop_app_always_requires_pkce(database_url: str) -> None:
    """A desktop application requires PKCE even where the setting is off."""
    async with admin_with(database_url, pkce_required_for_all="false") as admin:
        await provision_owner(admin)
        response = await admin.post("/clients", json=desktop_body())
    assert response.status_code == 201
    assert response.json()["require_pkce"] is True


async def test_desktop_app_without_pkce_is_refused(
    admin: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    """Asking a desktop application not to require PKCE is a 400 naming the field."""
    response = await admin.post("/clients", json=desktop_body(require_pkce=False))
    assert response.status_code == 400
    assert "require_pkce" in response.json()["error_description"]


async def test_patch_turns_pkce_off_and_on(
    admin: httpx.AsyncClient, web_client: dict[str, Any]
) -> None:
    """PATCH changes a web application's require_pkce, and GET shows it."""
    path = f"/clients/{web_client['client_id']}"
    assert (await admin.patch(path, json={"require_pkce": False})).json()["require_pkce"] is False
    assert (await admin.get(path)).json()["require_pkce"] is False
    assert (await admin.patch(path, json={"require_pkce": True})).json()["require_pkce"] is True


async def test_patch_desktop_pkce_off_is_refused(
    admin: httpx.AsyncClient, desktop_client: dict[str, Any]
) -> None:
    """PATCH cannot turn PKCE off for a desktop application."""
    response = await admin.patch(
        f"/clients/{desktop_client['client_id']}", json={"require_pkce": False}
    )
    assert response.status_code == 400


async def test_patch_keeps_pkce_when_omitted(
    admin: httpx.AsyncClient, web_client: dict[str, Any]
) -> None:
    """A PATCH of other fields leaves require_pkce as it was."""
    path = f"/clients/{web_client['client_id']}"
    await admin.patch(path, json={"require_pkce": False})
    response = await admin.patch(path, json={"name": "Renamed"})
    assert response.json()["require_pkce"] is False


@pytest.mark.parametrize("required", [True, False], ids=["required", "optional"])
async def test_code_without_challenge_follows_the_client(
    public: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: dict[str, Any],
    alice: dict[str, Any],
    required: bool,
) -> None:
    """A code issued without PKCE is redeemed only by a client that does not require it."""
    await admin.patch(f"/clients/{web_client['client_id']}", json={"require_pkce": required})
    code = await issue_code(
        db, web_client["client_id"], alice["user_id"], redirect_uri=WEB_REDIRECT, challenge=None
    )
    params = {"grant_type": "authorization_code", "code": code, "redirect_uri": WEB_REDIRECT}
    response = await post_token(public, params, headers=web_auth(web_client))
    assert response.status_code == (400 if required else 200), response.text
