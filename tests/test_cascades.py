"""Deleting users and applications through the admin API: what the database cascades."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

ALICE = "alice-id"  # owns app A, and has authorized app B
BOB = "bob-id"  # owns app B, and has authorized app A
CAROL = "carol-id"  # owns nothing, and has authorized app B


@dataclass(frozen=True)
class World:
    app_a: str
    app_b: str


def digest(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


async def _user(admin: httpx.AsyncClient, user_id: str) -> None:
    response = await admin.put(f"/users/{user_id}", json={"login": user_id.split("-")[0]})
    assert response.status_code == 201


async def _app(admin: httpx.AsyncClient, owner_id: str, name: str) -> str:
    response = await admin.post(
        "/clients",
        json={
            "name": name,
            "website": f"https://{name}.example",
            "type": "web",
            "redirect_uris": [f"https://{name}.example/cb"],
            "owner_id": owner_id,
        },
    )
    assert response.status_code == 201
    client_id: str = response.json()["client_id"]
    return client_id


async def _authorize(db: asyncpg.Connection, user_id: str, client_id: str) -> None:
    """A grant with one code, one access and one refresh token, as a finished flow leaves."""
    grant_id = await db.fetchval(
        "INSERT INTO grants (user_id, client_id, scopes) VALUES ($1, $2, '{profile}') "
        "RETURNING grant_id",
        user_id,
        client_id,
    )
    label = f"{user_id}/{client_id}"
    await db.execute(
        "INSERT INTO authorization_codes (digest, client_id, user_id, grant_id, expires_at) "
        "VALUES ($1, $2, $3, $4, now() + interval '1 minute')",
        digest(label + "/code"),
        client_id,
        user_id,
        grant_id,
    )
    for kind in ("access", "refresh"):
        await db.execute(
            "INSERT INTO tokens (digest, kind, client_id, user_id, grant_id, expires_at) "
            "VALUES ($1, $2, $3, $4, $5, now() + interval '1 hour')",
            digest(f"{label}/{kind}"),
            kind,
            client_id,
            user_id,
            grant_id,
        )


@pytest.fixture
async def world(admin: httpx.AsyncClient, db: asyncpg.Connection) -> World:
    """Two owners' apps with secrets (one rotated), developer tokens and cross grants."""
    for user_id in (ALICE, BOB, CAROL):
        await _user(admin, user_id)
    app_a = await _app(admin, ALICE, "appa")
    app_b = await _app(admin, BOB, "appb")
    for app in (app_a, app_b):
        assert (await admin.post(f"/clients/{app}/secret")).status_code == 201
        assert (await admin.post(f"/clients/{app}/developer-token")).status_code == 201
    await _authorize(db, BOB, app_a)
    await _authorize(db, ALICE, app_b)
    await _authorize(db, CAROL, app_b)
    # app-only token (client credentials): no user, no grant
    await db.execute(
        "INSERT INTO tokens (digest, kind, client_id, expires_at) "
        "VALUES ($1, 'access', $2, now() + interval '1 hour')",
        digest("client-credentials/a"),
        app_a,
    )
    return World(app_a, app_b)


async def rows_of_client(db: asyncpg.Connection, client_id: str) -> dict[str, int]:
    """How many rows each table holds for one application."""
    counts: dict[str, int] = {}
    for table in ("clients", "client_secrets", "grants", "authorization_codes", "tokens"):
        counts[table] = await db.fetchval(
            f"SELECT count(*) FROM {table} WHERE client_id = $1", client_id
        )
    return counts


async def rows_of_user(db: asyncpg.Connection, user_id: str) -> dict[str, int]:
    """How many rows each table holds for one user, as owner or as the one who authorized."""
    return {
        "users": await db.fetchval("SELECT count(*) FROM users WHERE user_id = $1", user_id),
        "clients": await db.fetchval("SELECT count(*) FROM clients WHERE owner_id = $1", user_id),
        "grants": await db.fetchval("SELECT count(*) FROM grants WHERE user_id = $1", user_id),
        "authorization_codes": await db.fetchval(
            "SELECT count(*) FROM authorization_codes WHERE user_id = $1", user_id
        ),
        "tokens": await db.fetchval("SELECT count(*) FROM tokens WHERE user_id = $1", user_id),
    }


EMPTY_CLIENT = {
    "clients": 0,
    "client_secrets": 0,
    "grants": 0,
    "authorization_codes": 0,
    "tokens": 0,
}
EMPTY_USER = {"users": 0, "clients": 0, "grants": 0, "authorization_codes": 0, "tokens": 0}


async def test_world_is_populated(db: asyncpg.Connection, world: World) -> None:
    """The scenario holds rows in every table, so the deletions below prove something."""
    assert await rows_of_client(db, world.app_a) == {
        "clients": 1,
        "client_secrets": 2,
        "grants": 2,
        "authorization_codes": 1,
        "tokens": 4,
    }
    assert await rows_of_client(db, world.app_b) == {
        "clients": 1,
        "client_secrets": 2,
        "grants": 3,
        "authorization_codes": 2,
        "tokens": 5,
    }


# deleting a user


async def test_delete_user_removes_owned_apps(
    admin: httpx.AsyncClient, db: asyncpg.Connection, world: World
) -> None:
    """Deleting a user removes their apps and the apps' secrets, grants, codes and tokens."""
    assert (await admin.delete(f"/users/{ALICE}")).status_code == 204
    assert await rows_of_client(db, world.app_a) == EMPTY_CLIENT
    assert (await admin.get(f"/clients/{world.app_a}")).status_code == 404


async def test_delete_user_removes_their_grants_elsewhere(
    admin: httpx.AsyncClient, db: asyncpg.Connection, world: World
) -> None:
    """Deleting a user removes their grants, codes and tokens on other owners' apps."""
    await admin.delete(f"/users/{ALICE}")
    assert await rows_of_user(db, ALICE) == EMPTY_USER
    assert (
        await db.fetchval(
            "SELECT count(*) FROM tokens WHERE digest = $1", digest(f"{ALICE}/{world.app_b}/access")
        )
        == 0
    )


async def test_delete_user_keeps_other_apps(
    admin: httpx.AsyncClient, db: asyncpg.Connection, world: World
) -> None:
    """Other owners' apps keep their secrets, developer token and other users' grants."""
    await admin.delete(f"/users/{ALICE}")
    assert await rows_of_client(db, world.app_b) == {
        "clients": 1,
        "client_secrets": 2,
        "grants": 2,  # Bob's own (developer token) and Carol's
        "authorization_codes": 1,
        "tokens": 3,
    }
    assert await rows_of_user(db, CAROL) == {
        "users": 1,
        "clients": 0,
        "grants": 1,
        "authorization_codes": 1,
        "tokens": 2,
    }


async def test_delete_user_removes_others_grants_on_their_apps(
    admin: httpx.AsyncClient, db: asyncpg.Connection, world: World
) -> None:
    """Other users lose their grants, codes and tokens on the deleted user's apps, not more."""
    await admin.delete(f"/users/{ALICE}")
    assert await rows_of_user(db, BOB) == {
        "users": 1,
        "clients": 1,
        "grants": 1,  # the developer-token grant on app B; the grant on app A is gone
        "authorization_codes": 0,
        "tokens": 1,
    }
    listed = (await admin.get(f"/users/{BOB}/grants")).json()["grants"]
    assert [grant["client_id"] for grant in listed] == [world.app_b]


async def test_deleted_user_cannot_be_listed(admin: httpx.AsyncClient, world: World) -> None:
    """After deletion, the user's grants and apps are gone from the admin API."""
    await admin.delete(f"/users/{ALICE}")
    assert (await admin.get(f"/users/{ALICE}/grants")).status_code == 404
    listed = (await admin.get("/clients", params={"owner_id": ALICE})).json()
    assert listed == {"clients": []}


# deleting an app


async def test_delete_app_removes_its_rows(
    admin: httpx.AsyncClient, db: asyncpg.Connection, world: World
) -> None:
    """Deleting an app removes its secrets, grants, codes and tokens."""
    assert (await admin.delete(f"/clients/{world.app_a}")).status_code == 204
    assert await rows_of_client(db, world.app_a) == EMPTY_CLIENT


async def test_delete_app_keeps_other_apps(
    admin: httpx.AsyncClient, db: asyncpg.Connection, world: World
) -> None:
    """Deleting one app leaves another app's rows untouched."""
    before = await rows_of_client(db, world.app_b)
    await admin.delete(f"/clients/{world.app_a}")
    assert await rows_of_client(db, world.app_b) == before


async def test_delete_app_keeps_users(
    admin: httpx.AsyncClient, db: asyncpg.Connection, world: World
) -> None:
    """Deleting an app deletes neither its owner nor the users who authorized it."""
    await admin.delete(f"/clients/{world.app_a}")
    assert await db.fetchval("SELECT count(*) FROM users") == 3
    assert (await admin.get(f"/users/{BOB}/grants")).json()["grants"][0]["client_id"] == (
        world.app_b
    )


async def test_delete_app_removes_it_from_grant_listings(
    admin: httpx.AsyncClient, world: World
) -> None:
    """Users who had authorized a deleted app no longer see it."""
    await admin.delete(f"/clients/{world.app_b}")
    for user_id in (ALICE, CAROL):
        listed = (await admin.get(f"/users/{user_id}/grants")).json()["grants"]
        assert world.app_b not in [grant["client_id"] for grant in listed]


# audit events


async def _audit(db: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT event_id, kind, client_id, user_id FROM audit_events ORDER BY event_id"
    )
    return [dict(row) for row in rows]


async def test_audit_survives_user_deletion(
    admin: httpx.AsyncClient, db: asyncpg.Connection, world: World
) -> None:
    """Audit events about a deleted user and their apps are kept, and the deletion is added."""
    before = await _audit(db)
    assert any(event["client_id"] == world.app_a for event in before)
    await admin.delete(f"/users/{ALICE}")
    after = await _audit(db)
    assert after[: len(before)] == before
    assert [(e["kind"], e["user_id"]) for e in after[len(before) :]] == [("user.deleted", ALICE)]


async def test_audit_survives_app_deletion(
    admin: httpx.AsyncClient, db: asyncpg.Connection, world: World
) -> None:
    """Audit events about a deleted app are kept, and the deletion is added."""
    before = await _audit(db)
    await admin.delete(f"/clients/{world.app_a}")
    after = await _audit(db)
    assert after[: len(before)] == before
    assert [(e["kind"], e["client_id"]) for e in after[len(before) :]] == [
        ("client.deleted", world.app_a)
    ]


async def test_failed_delete_changes_nothing(
    admin: httpx.AsyncClient, db: asyncpg.Connection, world: World
) -> None:
    """Deleting an unknown user or app answers 404 and records nothing."""
    before = await _audit(db)
    assert (await admin.delete("/users/nobody")).status_code == 404
    assert (await admin.delete("/clients/no-such-client")).status_code == 404
    assert await _audit(db) == before
