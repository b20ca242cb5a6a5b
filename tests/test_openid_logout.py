"""RP-Initiated Logout 1.0 at the end_session_endpoint: the confirmation page, registered
post-logout URIs compared exactly, id_token_hint checked, and state carried back."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import pytest

from tests.authorize_support import (
    LOGOUT,
    Client,
    assert_error_page,
    hidden_fields,
    location_params,
    post_form,
)
from tests.conftest import register_client
from tests.openid_support import openid_tokens
from tests.test_openid_authorize import unsigned

BYE = "https://photosync.example/bye"


@pytest.fixture
async def rp(admin: httpx.AsyncClient, owner: dict[str, Any]) -> dict[str, Any]:
    """A web application that registered where users go after signing out."""
    return await register_client(
        admin,
        owner,
        name="Photo Sync",
        description="Syncs your photos",
        website="https://photosync.example",
        type="web",
        redirect_uris=["https://photosync.example/cb"],
        post_logout_redirect_uris=[BYE],
    )


async def session_count(db: asyncpg.Connection) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM browser_sessions")
    return count


def logout_url(**params: str) -> str:
    return f"{LOGOUT}?{urlencode(params)}"


async def confirm(public: httpx.AsyncClient, page: httpx.Response) -> httpx.Response:
    """Press 'Sign out' on the confirmation page."""
    assert page.status_code == 200, page.text
    return await post_form(public, hidden_fields(page.text), path=LOGOUT)


async def test_hint_and_registered_uri_show_the_confirmation(
    public: httpx.AsyncClient, rp: Client, alice: Client
) -> None:
    """A signed-in user asked to sign out sees a form naming the application."""
    hint = (await openid_tokens(public, rp, scope="openid")).id_token
    page = await public.get(logout_url(id_token_hint=hint, post_logout_redirect_uri=BYE))
    assert page.status_code == 200
    assert "Sign out?" in page.text
    assert "Photo Sync" in page.text
    assert "Syncs your photos" in page.text
    assert "Published by Olivia" in page.text


async def test_get_does_not_sign_out(
    public: httpx.AsyncClient, db: asyncpg.Connection, rp: Client, alice: Client
) -> None:
    """The GET alone ends nothing (any page could link to it)."""
    hint = (await openid_tokens(public, rp, scope="openid")).id_token
    await public.get(logout_url(id_token_hint=hint, post_logout_redirect_uri=BYE))
    assert await session_count(db) == 1


async def test_confirming_signs_out_and_returns_with_state(
    public: httpx.AsyncClient, db: asyncpg.Connection, rp: Client, alice: Client
) -> None:
    """Confirming ends the session and sends the user to the registered URI with state."""
    hint = (await openid_tokens(public, rp, scope="openid")).id_token
    page = await public.get(
        logout_url(id_token_hint=hint, post_logout_redirect_uri=BYE, state="s-9")
    )
    response = await confirm(public, page)
    assert response.status_code == 303
    assert response.headers["location"].startswith(BYE + "?")
    assert location_params(response) == {"state": "s-9"}
    assert await session_count(db) == 0


async def test_client_id_alone_names_the_application(
    public: httpx.AsyncClient, rp: Client, alice: Client
) -> None:
    """client_id instead of a hint (§2) lets a registered URI be used."""
    await openid_tokens(public, rp, scope="openid")
    page = await public.get(logout_url(client_id=rp["client_id"], post_logout_redirect_uri=BYE))
    response = await confirm(public, page)
    assert response.headers["location"] == BYE


async def test_unregistered_uri_is_refused_with_a_page(
    public: httpx.AsyncClient, rp: Client, alice: Client
) -> None:
    """A URI the application did not register is never followed: an error page."""
    hint = (await openid_tokens(public, rp, scope="openid")).id_token
    for uri in ("https://evil.example/", BYE + "/more", BYE + "?x=1", BYE.upper()):
        response = await public.get(logout_url(id_token_hint=hint, post_logout_redirect_uri=uri))
        assert_error_page(response)


async def test_uri_without_client_is_refused(public: httpx.AsyncClient, rp: Client) -> None:
    """A post-logout URI with no hint and no client_id cannot be checked: an error page."""
    assert_error_page(await public.get(logout_url(post_logout_redirect_uri=BYE)))


async def test_forged_hint_is_refused(public: httpx.AsyncClient, rp: Client, alice: Client) -> None:
    """An unsigned hint naming the application is not one of our ID tokens."""
    hint = unsigned({"iss": "https://auth.example.test", "aud": rp["client_id"]})
    assert_error_page(
        await public.get(logout_url(id_token_hint=hint, post_logout_redirect_uri=BYE))
    )


async def test_hint_and_client_id_must_agree(
    public: httpx.AsyncClient, rp: Client, web_client: Client, alice: Client
) -> None:
    """A hint issued to one application and a client_id naming another: an error page."""
    hint = (await openid_tokens(public, rp, scope="openid")).id_token
    response = await public.get(
        logout_url(
            id_token_hint=hint, client_id=web_client["client_id"], post_logout_redirect_uri=BYE
        )
    )
    assert_error_page(response)


async def test_expired_hint_is_accepted(
    public: httpx.AsyncClient, rp: Client, alice: Client, clock: Any
) -> None:
    """An ID token past its exp still says who asks (§2: it may have expired)."""
    hint = (await openid_tokens(public, rp, scope="openid")).id_token
    clock.advance(2 * 3600)
    page = await public.get(logout_url(id_token_hint=hint, post_logout_redirect_uri=BYE))
    assert page.status_code == 200, page.text


async def test_not_signed_in_goes_straight_back(
    public: httpx.AsyncClient, rp: Client, alice: Client
) -> None:
    """A browser with no session is sent on to the registered URI at once, with state."""
    hint = (await openid_tokens(public, rp, scope="openid")).id_token
    public.cookies.clear()
    response = await public.get(
        logout_url(id_token_hint=hint, post_logout_redirect_uri=BYE, state="s-1")
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"{BYE}?state=s-1"


async def test_not_signed_in_without_uri_shows_signed_out(public: httpx.AsyncClient) -> None:
    """No session, nowhere to go: the 'signed out' page."""
    response = await public.get(LOGOUT)
    assert response.status_code == 200
    assert "You are signed out" in response.text


async def test_tampered_form_uri_is_not_followed(
    public: httpx.AsyncClient, db: asyncpg.Connection, rp: Client, alice: Client
) -> None:
    """A post-logout URI swapped in the form is checked again: signed out, not redirected."""
    hint = (await openid_tokens(public, rp, scope="openid")).id_token
    page = await public.get(logout_url(id_token_hint=hint, post_logout_redirect_uri=BYE))
    fields = {**hidden_fields(page.text), "post_logout_redirect_uri": "https://evil.example/"}
    response = await post_form(public, fields, path=LOGOUT)
    assert response.status_code == 303
    assert response.headers["location"] == LOGOUT
    assert await session_count(db) == 0


async def test_disabled_application_is_refused(
    public: httpx.AsyncClient, admin: httpx.AsyncClient, rp: Client, alice: Client
) -> None:
    """An application that was disabled cannot send users anywhere after sign-out."""
    hint = (await openid_tokens(public, rp, scope="openid")).id_token
    patched = await admin.patch(f"/clients/{rp['client_id']}", json={"active": False})
    assert patched.status_code == 200, patched.text
    assert_error_page(
        await public.get(logout_url(id_token_hint=hint, post_logout_redirect_uri=BYE))
    )
