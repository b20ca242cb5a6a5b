"""What the login and consent pages tell the user: who is asking (name, description, website)
and where the code goes once they decide (checklist S-56, RFC 6819 §4.4.1.4)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.authorize_support import LOOPBACK, OOB, consent_page, login_form, query
from tests.conftest import register_client

Client = dict[str, Any]


async def test_login_page_shows_description_and_website(
    public: httpx.AsyncClient, web_client: Client
) -> None:
    """As Phraseanet promises its developers: the login page shows the app's description and
    website, not only its name."""
    page = await login_form(public, query(web_client))
    assert "Syncs your photos" in page
    assert 'href="https://photosync.example"' in page
    assert "Photo Sync" in page


async def test_consent_page_names_the_redirect_host(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """A web app's consent page says which host the user is sent back to."""
    page = (await consent_page(public, query(web_client))).text
    assert "You will be sent back to photosync.example." in page


async def test_consent_page_for_loopback_says_this_computer(
    public: httpx.AsyncClient, desktop_client: Client, alice: Client
) -> None:
    """A desktop app's loopback redirect is described as an application on this computer."""
    page = (await consent_page(public, query(desktop_client, redirect_uri=LOOPBACK))).text
    assert "an application on this computer" in page


async def test_consent_page_for_oob_says_a_code_to_copy(
    public: httpx.AsyncClient, desktop_client: Client, alice: Client
) -> None:
    """The legacy out-of-band URN is described as a code to copy."""
    page = (await consent_page(public, query(desktop_client, redirect_uri=OOB))).text
    assert "a code to copy" in page


async def test_consent_page_names_a_private_scheme(
    public: httpx.AsyncClient, admin: httpx.AsyncClient, owner: Client, alice: Client
) -> None:
    """A private-use scheme (RFC 8252 §7.1) is named, so the user sees which app gets it."""
    app = await register_client(
        admin,
        owner,
        name="Phone App",
        website="https://phone.example",
        type="desktop",
        redirect_uris=["com.example.phone:/cb"],
    )
    page = (await consent_page(public, query(app, redirect_uri="com.example.phone:/cb"))).text
    assert "com.example.phone" in page


async def test_login_page_escapes_the_description(
    public: httpx.AsyncClient, admin: httpx.AsyncClient, owner: Client
) -> None:
    """The description reaches the login page escaped, never as markup."""
    app = await register_client(
        admin,
        owner,
        name="Shady",
        description="<img src=x onerror=alert(1)>",
        website="https://shady.example",
        type="web",
        redirect_uris=["https://shady.example/cb"],
    )
    page = await login_form(public, query(app, redirect_uri="https://shady.example/cb"))
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
