"""Admin API: provisioning users."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
from argon2 import PasswordHasher

ALICE = {"login": "alice", "email": "alice@example.com", "display_name": "Alice"}


async def test_put_creates_user(admin: httpx.AsyncClient) -> None:
    """PUT of an unknown user id creates the user and answers 201 with its fields."""
    response = await admin.put("/users/u-1", json={**ALICE, "password": "s3cret pass"})
    assert response.status_code == 201
    body = response.json()
    assert body["user_id"] == "u-1"
    assert body["login"] == "alice"
    assert body["has_password"] is True


async def test_put_replaces_user(admin: httpx.AsyncClient) -> None:
    """PUT of a known user id replaces the profile and answers 200."""
    await admin.put("/users/u-1", json=ALICE)
    response = await admin.put("/users/u-1", json={**ALICE, "display_name": "Alice B."})
    assert response.status_code == 200
    assert response.json()["display_name"] == "Alice B."


async def test_password_is_stored_as_argon2id(
    admin: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    """A password is stored only as an argon2id hash that verifies it."""
    await admin.put("/users/u-1", json={**ALICE, "password": "s3cret pass"})
    stored = await db.fetchval("SELECT password_hash FROM users WHERE user_id = 'u-1'")
    assert stored.startswith("$argon2id$")
    assert "s3cret pass" not in stored
    assert PasswordHasher().verify(stored, "s3cret pass")


async def test_put_without_password_keeps_it(
    admin: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    """Replacing a profile without password fields keeps the stored password."""
    await admin.put("/users/u-1", json={**ALICE, "password": "s3cret pass"})
    before = await db.fetchval("SELECT password_hash FROM users WHERE user_id = 'u-1'")
    await admin.put("/users/u-1", json={**ALICE, "display_name": "A"})
    after = await db.fetchval("SELECT password_hash FROM users WHERE user_id = 'u-1'")
    assert after == before


async def test_null_password_removes_it(admin: httpx.AsyncClient) -> None:
    """An explicit null password removes the stored one."""
    await admin.put("/users/u-1", json={**ALICE, "password": "s3cret pass"})
    response = await admin.put("/users/u-1", json={**ALICE, "password": None})
    assert response.json()["has_password"] is False


async def test_imports_argon2_hash(admin: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    """An existing argon2 hash is stored as given."""
    imported = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("old password")
    response = await admin.put("/users/u-1", json={**ALICE, "password_hash": imported})
    assert response.status_code == 201
    assert await db.fetchval("SELECT password_hash FROM users WHERE user_id = 'u-1'") == imported


async def test_get_user_never_returns_hash(admin: httpx.AsyncClient) -> None:
    """GET answers the profile without any password material."""
    await admin.put("/users/u-1", json={**ALICE, "password": "s3cret pass"})
    response = await admin.get("/users/u-1")
    assert response.status_code == 200
    assert "s3cret pass" not in response.text
    assert "argon2" not in response.text
    assert "password_hash" not in response.json()


async def test_get_unknown_user_is_404(admin: httpx.AsyncClient) -> None:
    """GET of an unknown user answers 404 not_found."""
    response = await admin.get("/users/nobody")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


async def test_delete_user(admin: httpx.AsyncClient) -> None:
    """DELETE removes the user; a second DELETE answers 404."""
    await admin.put("/users/u-1", json=ALICE)
    assert (await admin.delete("/users/u-1")).status_code == 204
    assert (await admin.get("/users/u-1")).status_code == 404
    assert (await admin.delete("/users/u-1")).status_code == 404


async def test_login_taken_is_409(admin: httpx.AsyncClient) -> None:
    """A login already used by another user, in any case, answers 409 conflict."""
    await admin.put("/users/u-1", json=ALICE)
    response = await admin.put("/users/u-2", json={**ALICE, "login": "ALICE"})
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="login-missing"),
        pytest.param({**ALICE, "login": 7}, id="login-not-string"),
        pytest.param({**ALICE, "login": "   "}, id="login-blank"),
        pytest.param({**ALICE, "login": "a" * 256}, id="login-too-long"),
        pytest.param({**ALICE, "email": "not-an-email"}, id="email-malformed"),
        pytest.param({**ALICE, "nickname": "al"}, id="unknown-field"),
        pytest.param({**ALICE, "password": ""}, id="password-empty"),
        pytest.param({**ALICE, "password": "x" * 1025}, id="password-too-long"),
        pytest.param({**ALICE, "password_hash": "$2b$12$bcrypt"}, id="hash-not-argon2"),
        pytest.param(
            {**ALICE, "password": "a", "password_hash": "$argon2id$x"}, id="password-and-hash"
        ),
        pytest.param({**ALICE, "login": "al\x00ice"}, id="nul-in-login"),
    ],
)
async def test_put_rejects_bad_body(admin: httpx.AsyncClient, body: dict[str, Any]) -> None:
    """A malformed user body answers 400 invalid_request and stores nothing."""
    response = await admin.put("/users/u-1", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert (await admin.get("/users/u-1")).status_code == 404


@pytest.mark.parametrize(
    "user_id", ["a" * 65, "sp ace", "semi;colon", "%00"], ids=["long", "space", "semi", "nul"]
)
async def test_malformed_user_id_is_400(admin: httpx.AsyncClient, user_id: str) -> None:
    """A user id outside the allowed shape answers 400, never a database error."""
    response = await admin.put(f"/users/{user_id}", json=ALICE)
    assert response.status_code == 400
