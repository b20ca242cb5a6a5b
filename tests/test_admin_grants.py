"""Admin API: the applications a user has authorized, and revoking them."""

from __future__ import annotations

import hashlib
from typing import Any

import asyncpg
import httpx
import pytest

USER = "u-2"


def digest(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


async def add_grant(
    db: asyncpg.Connection, user_id: str, client_id: str, scopes: list[str] | None = None
) -> int:
    """A grant row, as the consent page would store it."""
    grant_id: int = await db.fetchval(
        "INSERT INTO grants (user_id, client_id, scopes) VALUES ($1, $2, $3) RETURNING grant_id",
        user_id,
        client_id,
        scopes or [],
    )
    return grant_id


async def add_code_and_tokens(
    db: asyncpg.Connection, grant_id: int, user_id: str, client_id: str, label: str
) -> None:
    """An authorization code, an access token and a refresh token issued under a grant."""
    await db.execute(
        "INSERT INTO authorization_codes (digest, client_id, user_id, grant_id, expires_at) "
        "VALUES ($1, $2, $3, $4, now() + interval '1 minute')",
        digest(f"{label}-code"),
        client_id,
        user_id,
        grant_id,
    )
    for kind in ("access", "refresh"):
        await db.execute(
            "INSERT INTO tokens (digest, kind, client_id, user_id, grant_id, expires_at) "
            "VALUES ($1, $2, $3, $4, $5, now() + interval '1 hour')",
            digest(f"{label}-{kind}"),
            kind,
            client_id,
            user_id,
            grant_id,
        )


async def count_issued(db: asyncpg.Connection, grant_id: int) -> tuple[int, int]:
    """How many codes and tokens a grant has."""
    codes = await db.fetchval(
        "SELECT count(*) FROM authorization_codes WHERE grant_id = $1", grant_id
    )
    tokens = await db.fetchval("SELECT count(*) FROM tokens WHERE grant_id = $1", grant_id)
    return int(codes), int(tokens)


@pytest.fixture
async def user(admin: httpx.AsyncClient) -> str:
    """A second user, who authorizes other people's applications."""
    response = await admin.put(f"/users/{USER}", json={"login": "uma"})
    assert response.status_code == 201
    return USER


@pytest.fixture
async def other_client(admin: httpx.AsyncClient, owner: dict[str, Any]) -> dict[str, Any]:
    """A second application of the same owner."""
    response = await admin.post(
        "/clients",
        json={
            "name": "Album Maker",
            "description": "Makes albums",
            "website": "https://albums.example",
            "type": "web",
            "redirect_uris": ["https://albums.example/cb"],
            "owner_id": owner["user_id"],
        },
    )
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


# listing


async def test_user_without_grants_lists_empty(admin: httpx.AsyncClient, user: str) -> None:
    """A user who authorized nothing gets an empty list."""
    response = await admin.get(f"/users/{user}/grants")
    assert response.status_code == 200
    assert response.json() == {"grants": []}


async def test_unknown_user_grants_is_404(admin: httpx.AsyncClient) -> None:
    """Listing the grants of an unknown user answers 404, not an empty list."""
    response = await admin.get("/users/nobody/grants")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


async def test_malformed_user_grants_is_400(admin: httpx.AsyncClient) -> None:
    """Listing with a malformed user id answers 400."""
    response = await admin.get("/users/sp%20ace/grants")
    assert response.status_code == 400


async def test_list_grants_rejects_query(admin: httpx.AsyncClient, user: str) -> None:
    """The grants listing takes no query parameters."""
    response = await admin.get(f"/users/{user}/grants?limit=5")
    assert response.status_code == 400


async def test_developer_token_creates_owner_grant(
    admin: httpx.AsyncClient, owner: dict[str, Any], web_client: dict[str, Any]
) -> None:
    """After a developer token, the owner has a grant for the app."""
    issued = await admin.post(f"/clients/{web_client['client_id']}/developer-token")
    response = await admin.get(f"/users/{owner['user_id']}/grants")
    assert response.status_code == 200
    grants = response.json()["grants"]
    assert [grant["client_id"] for grant in grants] == [web_client["client_id"]]
    assert grants[0]["scopes"] == sorted(issued.json()["scope"].split())


async def test_list_shows_app_details(
    admin: httpx.AsyncClient,
    db: asyncpg.Connection,
    user: str,
    owner: dict[str, Any],
    web_client: dict[str, Any],
) -> None:
    """Each grant shows the app's name, description, website, owner and granted scopes."""
    await add_grant(db, user, web_client["client_id"], ["photos:read", "profile"])
    response = await admin.get(f"/users/{user}/grants")
    assert response.status_code == 200
    [grant] = response.json()["grants"]
    assert grant["client_id"] == web_client["client_id"]
    assert grant["name"] == "Photo Sync"
    assert grant["description"] == "Syncs your photos"
    assert grant["website"] == "https://photosync.example"
    assert grant["owner_id"] == owner["user_id"]
    assert grant["scopes"] == ["photos:read", "profile"]
    assert grant["created_at"]
    assert "client_secret" not in grant


async def test_list_shows_only_this_users_grants(
    admin: httpx.AsyncClient,
    db: asyncpg.Connection,
    user: str,
    owner: dict[str, Any],
    web_client: dict[str, Any],
    other_client: dict[str, Any],
) -> None:
    """A user's listing holds their own grants, in the order they were given, and no one else's."""
    await add_grant(db, user, web_client["client_id"])
    await add_grant(db, user, other_client["client_id"])
    await add_grant(db, owner["user_id"], other_client["client_id"])
    response = await admin.get(f"/users/{user}/grants")
    assert [g["client_id"] for g in response.json()["grants"]] == [
        web_client["client_id"],
        other_client["client_id"],
    ]


async def test_list_shows_current_app_name(
    admin: httpx.AsyncClient, db: asyncpg.Connection, user: str, web_client: dict[str, Any]
) -> None:
    """The listing shows the app as it is now, after a rename."""
    await add_grant(db, user, web_client["client_id"])
    await admin.patch(f"/clients/{web_client['client_id']}", json={"name": "Photo Sync Pro"})
    response = await admin.get(f"/users/{user}/grants")
    assert response.json()["grants"][0]["name"] == "Photo Sync Pro"


# revoking


async def test_revoke_grant(
    admin: httpx.AsyncClient, db: asyncpg.Connection, user: str, web_client: dict[str, Any]
) -> None:
    """Revoking answers 204 and the grant is no longer listed."""
    await add_grant(db, user, web_client["client_id"], ["profile"])
    response = await admin.delete(f"/users/{user}/grants/{web_client['client_id']}")
    assert response.status_code == 204
    assert (await admin.get(f"/users/{user}/grants")).json() == {"grants": []}


async def test_revoke_keeps_row_marked_revoked(
    admin: httpx.AsyncClient, db: asyncpg.Connection, user: str, web_client: dict[str, Any]
) -> None:
    """The grant row is kept, marked revoked and with its scopes cleared."""
    grant_id = await add_grant(db, user, web_client["client_id"], ["profile"])
    await admin.delete(f"/users/{user}/grants/{web_client['client_id']}")
    row = await db.fetchrow("SELECT revoked_at, scopes FROM grants WHERE grant_id = $1", grant_id)
    assert row is not None
    assert row["revoked_at"] is not None
    assert row["scopes"] == []


async def test_revoke_deletes_codes_and_tokens(
    admin: httpx.AsyncClient, db: asyncpg.Connection, user: str, web_client: dict[str, Any]
) -> None:
    """Revoking deletes every code and token issued under the grant."""
    grant_id = await add_grant(db, user, web_client["client_id"])
    await add_code_and_tokens(db, grant_id, user, web_client["client_id"], "revoked")
    assert await count_issued(db, grant_id) == (1, 2)
    await admin.delete(f"/users/{user}/grants/{web_client['client_id']}")
    assert await count_issued(db, grant_id) == (0, 0)


async def test_revoke_leaves_other_grants_alone(
    admin: httpx.AsyncClient,
    db: asyncpg.Connection,
    user: str,
    owner: dict[str, Any],
    web_client: dict[str, Any],
    other_client: dict[str, Any],
) -> None:
    """Codes and tokens of the user's other grants, and other users' grants, survive."""
    revoked = await add_grant(db, user, web_client["client_id"])
    same_user = await add_grant(db, user, other_client["client_id"])
    same_client = await add_grant(db, owner["user_id"], web_client["client_id"])
    await add_code_and_tokens(db, revoked, user, web_client["client_id"], "revoked")
    await add_code_and_tokens(db, same_user, user, other_client["client_id"], "same-user")
    await add_code_and_tokens(db, same_client, owner["user_id"], web_client["client_id"], "other")
    await admin.delete(f"/users/{user}/grants/{web_client['client_id']}")
    assert await count_issued(db, same_user) == (1, 2)
    assert await count_issued(db, same_client) == (1, 2)
    listed = (await admin.get(f"/users/{user}/grants")).json()["grants"]
    assert [g["client_id"] for g in listed] == [other_client["client_id"]]


async def test_revoke_kills_developer_token(
    admin: httpx.AsyncClient,
    db: asyncpg.Connection,
    owner: dict[str, Any],
    web_client: dict[str, Any],
) -> None:
    """An owner revoking their own grant kills the app's developer token."""
    await admin.post(f"/clients/{web_client['client_id']}/developer-token")
    response = await admin.delete(f"/users/{owner['user_id']}/grants/{web_client['client_id']}")
    assert response.status_code == 204
    assert await db.fetchval("SELECT count(*) FROM tokens WHERE developer") == 0


async def test_revoke_is_audited(
    admin: httpx.AsyncClient, db: asyncpg.Connection, user: str, web_client: dict[str, Any]
) -> None:
    """Revoking records a grant.revoked event naming the user and the app."""
    await add_grant(db, user, web_client["client_id"])
    await admin.delete(f"/users/{user}/grants/{web_client['client_id']}")
    rows = await db.fetch(
        "SELECT client_id, user_id FROM audit_events WHERE kind = 'grant.revoked'"
    )
    assert [(r["client_id"], r["user_id"]) for r in rows] == [(web_client["client_id"], user)]


async def test_second_revoke_is_404(
    admin: httpx.AsyncClient, db: asyncpg.Connection, user: str, web_client: dict[str, Any]
) -> None:
    """Revoking a grant that is already revoked answers 404."""
    await add_grant(db, user, web_client["client_id"])
    path = f"/users/{user}/grants/{web_client['client_id']}"
    assert (await admin.delete(path)).status_code == 204
    response = await admin.delete(path)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


async def test_revoke_without_grant_is_404(
    admin: httpx.AsyncClient, user: str, web_client: dict[str, Any]
) -> None:
    """Revoking an app the user never authorized answers 404."""
    response = await admin.delete(f"/users/{user}/grants/{web_client['client_id']}")
    assert response.status_code == 404


async def test_revoke_unknown_user_is_404(
    admin: httpx.AsyncClient, web_client: dict[str, Any]
) -> None:
    """Revoking for an unknown user answers 404."""
    response = await admin.delete(f"/users/nobody/grants/{web_client['client_id']}")
    assert response.status_code == 404


async def test_revoke_unknown_client_is_404(admin: httpx.AsyncClient, user: str) -> None:
    """Revoking an unknown client answers 404."""
    response = await admin.delete(f"/users/{user}/grants/no-such-client")
    assert response.status_code == 404


async def test_failed_revoke_is_not_audited(
    admin: httpx.AsyncClient, db: asyncpg.Connection, user: str
) -> None:
    """A revoke that found nothing leaves no audit event."""
    await admin.delete(f"/users/{user}/grants/no-such-client")
    assert await db.fetchval("SELECT count(*) FROM audit_events WHERE kind = 'grant.revoked'") == 0


@pytest.mark.parametrize(
    ("user_id", "client_id"),
    [
        pytest.param("sp%20ace", "abc", id="user-space"),
        pytest.param("a" * 65, "abc", id="user-too-long"),
        pytest.param("u-2", "bad.id", id="client-dot"),
        pytest.param("u-2", "c" * 65, id="client-too-long"),
        pytest.param("u-2", "semi%3Bcolon", id="client-semicolon"),
    ],
)
async def test_revoke_malformed_ids_is_400(
    admin: httpx.AsyncClient, user: str, user_id: str, client_id: str
) -> None:
    """Malformed user or client ids answer 400 invalid_request."""
    response = await admin.delete(f"/users/{user_id}/grants/{client_id}")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_developer_token_revives_revoked_grant(
    admin: httpx.AsyncClient, owner: dict[str, Any], web_client: dict[str, Any]
) -> None:
    """A new developer token after a revoke gives the owner a listed grant again."""
    path = f"/clients/{web_client['client_id']}/developer-token"
    await admin.post(path)
    await admin.delete(f"/users/{owner['user_id']}/grants/{web_client['client_id']}")
    assert (await admin.post(path)).status_code == 201
    listed = (await admin.get(f"/users/{owner['user_id']}/grants")).json()["grants"]
    assert [g["client_id"] for g in listed] == [web_client["client_id"]]
