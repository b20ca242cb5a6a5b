"""D10: a desktop app imported from Phraseanet keeps the secret its developers were shown; a
client that still sends it is accepted, a wrong one is refused, and sending none stays fine."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from authserver.security.client_secrets import SecretHasher
from authserver.security.keys import Keyring
from tests.conftest import ALICE_PASSWORD, SECRET_KEY
from tests.token_support import basic, post_token

HASHER = SecretHasher(Keyring([SECRET_KEY]))
LEGACY_SECRET = "s3cr3tSh0wnOnPhraseanetsDevPage1"  # 32 alphanumerics, as Phraseanet made them


@pytest.fixture
async def imported_desktop(
    admin: httpx.AsyncClient, db: asyncpg.Connection, desktop_client: dict[str, Any]
) -> dict[str, Any]:
    """The desktop client with the password grant and an imported secret's digest."""
    await admin.patch(f"/clients/{desktop_client['client_id']}", json={"password_grant": True})
    digest = HASHER.digest(LEGACY_SECRET)
    await db.execute(
        "INSERT INTO client_secrets (client_id, key_id, digest) VALUES ($1, $2, $3)",
        desktop_client["client_id"],
        digest.key_id,
        digest.digest,
    )
    return desktop_client


def password_params(**extra: str) -> dict[str, str]:
    return {"grant_type": "password", "username": "alice", "password": ALICE_PASSWORD, **extra}


async def test_desktop_sending_its_secret_in_basic_is_accepted(
    public: httpx.AsyncClient, imported_desktop: dict[str, Any], alice: dict[str, Any]
) -> None:
    """The imported secret, sent with HTTP Basic, authenticates the desktop client."""
    headers = basic(imported_desktop["client_id"], LEGACY_SECRET)
    response = await post_token(public, password_params(), headers=headers)
    assert response.status_code == 200, response.text


async def test_desktop_sending_its_secret_in_the_body_is_accepted(
    public: httpx.AsyncClient, imported_desktop: dict[str, Any], alice: dict[str, Any]
) -> None:
    """The imported secret, sent as client_secret in the body, authenticates it too."""
    params = password_params(client_id=imported_desktop["client_id"], client_secret=LEGACY_SECRET)
    response = await post_token(public, params)
    assert response.status_code == 200, response.text


async def test_desktop_sending_a_wrong_secret_is_refused(
    public: httpx.AsyncClient, imported_desktop: dict[str, Any], alice: dict[str, Any]
) -> None:
    """A secret that is not the imported one is a failed client authentication."""
    headers = basic(imported_desktop["client_id"], LEGACY_SECRET[::-1])
    response = await post_token(public, password_params(), headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_desktop_sending_no_secret_is_still_public(
    public: httpx.AsyncClient, imported_desktop: dict[str, Any], alice: dict[str, Any]
) -> None:
    """Without a secret the desktop client stays the public client it is."""
    params = password_params(client_id=imported_desktop["client_id"])
    response = await post_token(public, params)
    assert response.status_code == 200, response.text


async def test_authenticated_desktop_still_cannot_use_client_credentials(
    public: httpx.AsyncClient, imported_desktop: dict[str, Any]
) -> None:
    """Its secret does not make a desktop app confidential: no client-credentials grant."""
    headers = basic(imported_desktop["client_id"], LEGACY_SECRET)
    response = await post_token(public, {"grant_type": "client_credentials"}, headers=headers)
    assert (response.status_code, response.json()["error"]) == (400, "unauthorized_client")
