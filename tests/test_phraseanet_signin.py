"""Imported users sign in with their Phraseanet passwords, both schemes and every nonce Phraseanet
left behind, on the real login page and the password grant, and still do once the site key is
gone (D1)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from tests.authorize_support import login_form, public_app, query, sign_in, submit_login
from tests.phraseanet_support import SITE_KEY, Appbox, nonce, run_import
from tests.token_support import basic, post_token

PASSWORD = "Grüße-2024! Phraseanet"
REDIRECT = "https://photosync.example/cb"


@dataclass(frozen=True)
class Imported:
    login: str
    user_id: str
    client: dict[str, Any]  # client_id, client_secret, as the web app's developers hold them


@pytest.fixture(
    params=[
        ("hmac", 64),
        ("hmac", 16),
        ("hmac", 8),
        ("hmac", None),
        ("sha256", 16),
        ("sha256", None),
    ],
    ids=["hmac-64", "hmac-16", "hmac-8", "hmac-null", "sha256-16", "sha256-null"],
)
async def imported(request: pytest.FixtureRequest, appbox: Appbox, database_url: str) -> Imported:
    """A user with a Phraseanet password of one scheme and nonce, and a web app with the
    password grant, imported with the site key."""
    scheme, length = request.param
    salt = None if length is None else nonce(length)
    user = appbox.user_with_password("rene.lefevre", PASSWORD, scheme=scheme, salt=salt)
    app = appbox.app(user, grant_password=1, redirect_uri=REDIRECT)
    await run_import(database_url, appbox)
    client = {"client_id": app.client_id, "client_secret": app.client_secret}
    return Imported("rene.lefevre", str(user), client)


@pytest.fixture
async def keyed(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with public_app(database_url, phraseanet_site_key=SITE_KEY) as client:
        yield client


@pytest.fixture
async def unkeyed(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with public_app(database_url) as client:
        yield client


async def password_grant(
    client: httpx.AsyncClient, imported: Imported, login: str, password: str
) -> httpx.Response:
    params = {"grant_type": "password", "username": login, "password": password}
    headers = basic(imported.client["client_id"], imported.client["client_secret"])
    return await post_token(client, params, headers=headers)


async def legacy_scheme(db: asyncpg.Connection, imported: Imported) -> str | None:
    scheme: str | None = await db.fetchval(
        "SELECT legacy_scheme FROM users WHERE user_id = $1", imported.user_id
    )
    return scheme


async def test_signs_in_on_the_login_page(keyed: httpx.AsyncClient, imported: Imported) -> None:
    """The Phraseanet password signs the user in on the login page."""
    await sign_in(keyed, query(imported.client, redirect_uri=REDIRECT), imported.login, PASSWORD)


async def test_signs_in_through_the_password_grant(
    keyed: httpx.AsyncClient, imported: Imported
) -> None:
    """The Phraseanet password works at the token endpoint, for the web app's own secret."""
    response = await password_grant(keyed, imported, imported.login, PASSWORD)
    assert response.status_code == 200, response.text


async def test_login_matches_ignoring_case_only(
    keyed: httpx.AsyncClient, imported: Imported
) -> None:
    """D13: RENE.LEFEVRE is rene.lefevre; with a trailing space it is nobody."""
    assert (await password_grant(keyed, imported, "RENE.LEFEVRE", PASSWORD)).status_code == 200
    response = await password_grant(keyed, imported, "rene.lefevre ", PASSWORD)
    assert response.status_code == 400


async def test_wrong_password_is_refused(keyed: httpx.AsyncClient, imported: Imported) -> None:
    """Another spelling of the password is refused, on the login page too."""
    page = await login_form(keyed, query(imported.client, redirect_uri=REDIRECT))
    response = await submit_login(keyed, page, imported.login, PASSWORD.lower())
    assert response.status_code == 400


async def test_first_sign_in_upgrades_the_hash(
    keyed: httpx.AsyncClient, db: asyncpg.Connection, imported: Imported
) -> None:
    """After the first sign-in the user holds a plain argon2id and no legacy columns."""
    assert await legacy_scheme(db, imported) is not None
    assert (await password_grant(keyed, imported, imported.login, PASSWORD)).status_code == 200
    assert await legacy_scheme(db, imported) is None


async def test_still_signs_in_after_the_key_is_removed(
    keyed: httpx.AsyncClient, unkeyed: httpx.AsyncClient, imported: Imported
) -> None:
    """Once signed in (and upgraded) with the key, the user signs in on a server without it."""
    await sign_in(keyed, query(imported.client, redirect_uri=REDIRECT), imported.login, PASSWORD)
    response = await password_grant(unkeyed, imported, imported.login, PASSWORD)
    assert response.status_code == 200, response.text


async def test_reimport_after_sign_in_keeps_the_upgrade(
    keyed: httpx.AsyncClient,
    unkeyed: httpx.AsyncClient,
    db: asyncpg.Connection,
    appbox: Appbox,
    database_url: str,
    imported: Imported,
) -> None:
    """An import run again after the upgrade leaves the user's own hash in place."""
    assert (await password_grant(keyed, imported, imported.login, PASSWORD)).status_code == 200
    await run_import(database_url, appbox)
    assert await legacy_scheme(db, imported) is None
    assert (await password_grant(unkeyed, imported, imported.login, PASSWORD)).status_code == 200


@pytest.mark.parametrize("length", [64, 16, 8], ids=["nonce-64", "nonce-16", "nonce-8"])
async def test_hmac_needs_the_key_before_the_upgrade(
    appbox: Appbox, database_url: str, unkeyed: httpx.AsyncClient, length: int
) -> None:
    """Without the site key an HMAC user cannot sign in yet."""
    user = appbox.user_with_password("sam", PASSWORD, salt=nonce(length))
    app = appbox.app(user, grant_password=1)
    await run_import(database_url, appbox)
    client = {"client_id": app.client_id, "client_secret": app.client_secret}
    imported = Imported("sam", str(user), client)
    assert (await password_grant(unkeyed, imported, "sam", PASSWORD)).status_code == 400
