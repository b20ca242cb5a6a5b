"""One identifier space: a user id is never a client id and the other way round, so a token's
``sub`` never names a client (checklist S-49)."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

Client = dict[str, Any]


async def test_user_id_equal_to_a_client_id_is_refused(
    admin: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client
) -> None:
    """PUT /users/{id} with an existing client's id is a 409, and nothing is stored."""
    response = await admin.put(f"/users/{web_client['client_id']}", json={"login": "mallory"})
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert await db.fetchval("SELECT count(*) FROM users WHERE login = 'mallory'") == 0


async def test_client_id_equal_to_a_user_id_is_refused_by_the_database(
    db: asyncpg.Connection, owner: Client
) -> None:
    """Whatever writes the row (an import, a hand-made fix), the schema refuses the clash."""
    with pytest.raises(asyncpg.UniqueViolationError) as caught:
        await db.execute(
            """INSERT INTO clients (client_id, name, website, client_type, redirect_uris,
                                    owner_id)
               VALUES ($1, 'Clash', 'https://clash.example', 'web', '{https://clash.example/cb}',
                       $1)""",
            owner["user_id"],
        )
    assert caught.value.constraint_name == "identifier_shared"


async def test_renaming_a_user_onto_a_client_id_is_refused(
    db: asyncpg.Connection, owner: Client, web_client: Client
) -> None:
    """An update of a user id is held to the same rule as an insert."""
    await db.execute("INSERT INTO users (user_id, login) VALUES ('other-1', 'other')")
    with pytest.raises(asyncpg.UniqueViolationError):
        await db.execute(
            "UPDATE users SET user_id = $1 WHERE user_id = 'other-1'", web_client["client_id"]
        )


async def test_distinct_ids_are_fine(admin: httpx.AsyncClient, web_client: Client) -> None:
    """Users and clients with ids of their own are created as before."""
    response = await admin.put("/users/user-2", json={"login": "bob"})
    assert response.status_code == 201
