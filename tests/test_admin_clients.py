"""Admin API: applications (clients), their secrets and developer tokens."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from authserver.config import Settings
from authserver.db.store import Store
from authserver.models import SecretDigest
from authserver.security.client_secrets import SecretHasher
from authserver.security.keys import Keyring
from authserver.security.tokens import TokenCodec, TokenKind
from authserver.services import create_apps
from tests import conftest

HASHER = SecretHasher(Keyring([conftest.SECRET_KEY]))
OTHER_SERVER_KEY = "other-server-key-0123456789abcdefghijklm"
CODEC = TokenCodec(Keyring([conftest.SECRET_KEY]))
OWNER_ID = "owner-1"  # the id the ``owner`` fixture provisions
DESKTOP_DEFAULTS = ["http://127.0.0.1/callback", "urn:ietf:wg:oauth:2.0:oob"]


def web_body(**overrides: Any) -> dict[str, Any]:
    """A valid web application body for the ``owner`` fixture's user."""
    body: dict[str, Any] = {
        "name": "Photo Sync",
        "description": "Syncs your photos",
        "website": "https://photosync.example",
        "type": "web",
        "redirect_uris": ["https://photosync.example/cb"],
        "owner_id": OWNER_ID,
    }
    body.update(overrides)
    return body


def desktop_body(**overrides: Any) -> dict[str, Any]:
    """A valid desktop application body, without redirect URIs."""
    body: dict[str, Any] = {
        "name": "Desk Uploader",
        "website": "https://uploader.example",
        "type": "desktop",
        "owner_id": OWNER_ID,
    }
    body.update(overrides)
    return body


async def create(admin: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await admin.post("/clients", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def stored_secrets(db: asyncpg.Connection, client_id: str) -> list[SecretDigest]:
    loaded = await Store(db).clients.for_auth(client_id)
    return [] if loaded is None else list(loaded.secrets)


async def nothing_stored(db: asyncpg.Connection) -> bool:
    clients = await db.fetchval("SELECT count(*) FROM clients")
    secrets = await db.fetchval("SELECT count(*) FROM client_secrets")
    events = await db.fetchval("SELECT count(*) FROM audit_events WHERE kind = 'client.created'")
    return bool(clients == 0 and secrets == 0 and events == 0)


@asynccontextmanager
async def admin_with(database_url: str, **overrides: str) -> AsyncIterator[httpx.AsyncClient]:
    """An admin API client for a server configured with ``overrides``."""
    settings = Settings.from_env(conftest.server_environ(database_url, **overrides))
    _, app = create_apps(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app),
            base_url="http://admin.test",
            headers={"Authorization": f"Bearer {conftest.ADMIN_TOKEN}"},
        ) as client,
    ):
        yield client


async def provision_owner(admin: httpx.AsyncClient) -> None:
    response = await admin.put("/users/owner-1", json={"login": "olivia"})
    assert response.status_code == 201


# creating


async def test_create_web_app(admin: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    """Creating a web app answers 201 with a client id, a secret and the fields as sent."""
    response = await admin.post("/clients", json=web_body(password_grant=True))
    assert response.status_code == 201
    body = response.json()
    assert body["client_id"]
    assert body["client_secret"].startswith("phrcs_")
    assert body["name"] == "Photo Sync"
    assert body["description"] == "Syncs your photos"
    assert body["website"] == "https://photosync.example"
    assert body["type"] == "web"
    assert body["redirect_uris"] == ["https://photosync.example/cb"]
    assert body["owner_id"] == OWNER_ID
    assert body["password_grant"] is True
    assert body["introspection"] is False
    assert body["active"] is True
    assert body["token_endpoint_auth_method"] == "client_secret_basic"


async def test_create_answers_no_store(admin: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    """The answer that carries the secret must not be cached."""
    response = await admin.post("/clients", json=web_body())
    assert response.headers["cache-control"] == "no-store"


async def test_create_desktop_app(admin: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    """A desktop app is public: no secret, default redirect URIs, auth method none."""
    response = await admin.post("/clients", json=desktop_body())
    assert response.status_code == 201
    body = response.json()
    assert body["client_secret"] is None
    assert body["type"] == "desktop"
    assert body["redirect_uris"] == DESKTOP_DEFAULTS
    assert body["token_endpoint_auth_method"] == "none"


async def test_desktop_app_stores_no_secret(
    admin: httpx.AsyncClient, db: asyncpg.Connection, owner: dict[str, Any]
) -> None:
    """Creating a desktop app stores no client secret row."""
    created = await create(admin, desktop_body())
    count = await db.fetchval(
        "SELECT count(*) FROM client_secrets WHERE client_id = $1", created["client_id"]
    )
    assert count == 0


async def test_client_ids_are_unique(admin: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    """Two apps with the same fields get different client ids and secrets."""
    first = await create(admin, web_body())
    second = await create(admin, web_body())
    assert first["client_id"] != second["client_id"]
    assert first["client_secret"] != second["client_secret"]


async def test_get_never_returns_secret(
    admin: httpx.AsyncClient, web_client: dict[str, Any]
) -> None:
    """GET answers the app's fields without the secret or any digest of it."""
    response = await admin.get(f"/clients/{web_client['client_id']}")
    assert response.status_code == 200
    body = response.json()
    assert body["client_id"] == web_client["client_id"]
    assert web_client["client_secret"] not in response.text
    assert not any("secret" in key or "digest" in key for key in body)
    assert "digest" not in response.text


async def test_get_unknown_client_is_404(admin: httpx.AsyncClient) -> None:
    """GET of an unknown client id answers 404 not_found."""
    response = await admin.get("/clients/no-such-client")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


async def test_secret_stored_as_hmac_digest(
    admin: httpx.AsyncClient, db: asyncpg.Connection, web_client: dict[str, Any]
) -> None:
    """The stored secret is a 32-byte keyed digest that verifies the secret, not the secret."""
    rows = await db.fetch(
        "SELECT key_id, digest, expires_at FROM client_secrets WHERE client_id = $1",
        web_client["client_id"],
    )
    assert len(rows) == 1
    digest: bytes = rows[0]["digest"]
    secret: str = web_client["client_secret"]
    assert len(digest) == 32
    assert rows[0]["expires_at"] is None
    assert secret.encode() not in digest
    assert digest != hashlib.sha256(secret.encode()).digest()  # keyed, not a bare hash
    assert HASHER.verify(secret, [SecretDigest(rows[0]["key_id"], digest)])
    assert not HASHER.verify(secret + "x", [SecretDigest(rows[0]["key_id"], digest)])
    # Under another server key the same secret has another digest, and this one fails there.
    other = SecretHasher(Keyring([OTHER_SERVER_KEY]))
    elsewhere = other.digest(secret)
    assert elsewhere.digest != digest
    assert not other.verify(secret, [SecretDigest(elsewhere.key_id, digest)])


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("http://127.0.0.1:8000/cb", id="ipv4-loopback-port"),
        pytest.param("http://[::1]/cb", id="ipv6-loopback"),
        pytest.param("com.example.app:/cb", id="private-use-scheme"),
        pytest.param("urn:ietf:wg:oauth:2.0:oob", id="oob"),
    ],
)
async def test_desktop_accepts_native_redirects(
    admin: httpx.AsyncClient, owner: dict[str, Any], uri: str
) -> None:
    """A desktop app may register loopback IP literals, private-use schemes and the oob URN."""
    response = await admin.post("/clients", json=desktop_body(redirect_uris=[uri]))
    assert response.status_code == 201
    assert response.json()["redirect_uris"] == [uri]


async def test_web_http_redirect_allowed_by_operator(
    database_url: str, db: asyncpg.Connection
) -> None:
    """With allow_http_redirects a web app may register a plain http redirect URI."""
    async with admin_with(database_url, allow_http_redirects="true") as admin:
        await provision_owner(admin)
        response = await admin.post(
            "/clients", json=web_body(redirect_uris=["http://photosync.example/cb"])
        )
    assert response.status_code == 201
    assert response.json()["redirect_uris"] == ["http://photosync.example/cb"]


async def test_create_for_unknown_owner_is_404(
    admin: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    """An owner id that names no user answers 404 and stores nothing."""
    response = await admin.post("/clients", json=web_body(owner_id="ghost"))
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert await nothing_stored(db)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"website": "not a url"}, id="website-not-url"),
        pytest.param({"website": "ftp://photosync.example"}, id="website-ftp"),
        pytest.param({"website": "javascript:alert(1)"}, id="website-javascript"),
        pytest.param({"website": "https://user:pw@photosync.example"}, id="website-userinfo"),
        pytest.param({"website": "https://photosync.example:99999"}, id="website-bad-port"),
        pytest.param({"website": "HTTPS://photosync.example"}, id="website-upper-scheme"),
        pytest.param({"website": "https://"}, id="website-no-host"),
        pytest.param({"redirect_uris": ["https://photosync.example/cb#x"]}, id="redirect-fragment"),
        pytest.param({"redirect_uris": ["http://photosync.example/cb"]}, id="web-http-redirect"),
        pytest.param({"redirect_uris": ["http://127.0.0.1/cb"]}, id="web-http-loopback"),
        pytest.param({"redirect_uris": ["urn:ietf:wg:oauth:2.0:oob"]}, id="web-oob"),
        pytest.param({"redirect_uris": ["com.example.app:/cb"]}, id="web-private-scheme"),
        pytest.param({"redirect_uris": ["/cb"]}, id="redirect-relative"),
        pytest.param({"redirect_uris": ["https://u@photosync.example/cb"]}, id="redirect-userinfo"),
        pytest.param({"redirect_uris": []}, id="web-no-redirects"),
        pytest.param(
            {"redirect_uris": [f"https://photosync.example/cb{i}" for i in range(21)]},
            id="too-many-redirects",
        ),
        pytest.param(
            {"redirect_uris": ["https://photosync.example/cb"] * 2}, id="repeated-redirect"
        ),
        pytest.param({"redirect_uris": "https://photosync.example/cb"}, id="redirects-not-list"),
        pytest.param({"redirect_uris": [5]}, id="redirect-not-string"),
        pytest.param({"name": ""}, id="name-empty"),
        pytest.param({"name": "   "}, id="name-blank"),
        pytest.param({"name": "n" * 129}, id="name-too-long"),
        pytest.param({"name": "a\x00b"}, id="name-nul"),
        pytest.param({"description": "d" * 2001}, id="description-too-long"),
        pytest.param({"type": "mobile"}, id="type-unknown"),
        pytest.param({"name": 5}, id="name-not-string"),
        pytest.param({"password_grant": "yes"}, id="password-grant-not-bool"),
        pytest.param({"introspection": 1}, id="introspection-int"),
        pytest.param({"name": None}, id="name-null"),
        pytest.param({"owner_id": "sp ace"}, id="owner-malformed"),
        pytest.param({"owner_id": "o" * 65}, id="owner-too-long"),
        pytest.param({"active": False}, id="active-on-create"),
        pytest.param({"client_secret": "mine"}, id="unknown-field"),
    ],
)
async def test_create_rejects_bad_body(
    admin: httpx.AsyncClient,
    db: asyncpg.Connection,
    owner: dict[str, Any],
    overrides: dict[str, Any],
) -> None:
    """A malformed application body answers 400 invalid_request and stores nothing."""
    response = await admin.post("/clients", json=web_body(**overrides))
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_request"
    assert body["error_description"]
    assert await nothing_stored(db)


@pytest.mark.parametrize(
    "field", ["name", "website", "type", "owner_id"], ids=lambda field: f"{field}-missing"
)
async def test_create_requires_field(
    admin: httpx.AsyncClient, db: asyncpg.Connection, owner: dict[str, Any], field: str
) -> None:
    """Leaving out a required field answers 400 and stores nothing."""
    body = web_body()
    del body[field]
    response = await admin.post("/clients", json=body)
    assert response.status_code == 400
    assert await nothing_stored(db)


@pytest.mark.parametrize(
    "uris",
    [
        pytest.param(["http://localhost/cb"], id="http-localhost"),
        pytest.param(["http://192.168.1.2/cb"], id="http-lan"),
        pytest.param(["http://c1.example/cb"], id="http-hostname"),
        pytest.param(["http://127.0.0.1.evil.example/cb"], id="loopback-prefix-host"),
        pytest.param(["http://u@127.0.0.1/cb"], id="loopback-userinfo"),
        pytest.param(["http://127.0.0.1/cb#frag"], id="loopback-fragment"),
        pytest.param(["cb"], id="relative"),
        pytest.param(["javascript:alert(1)"], id="javascript"),
        pytest.param(["com.example.app:/cb"] * 2, id="repeated"),
    ],
)
async def test_desktop_rejects_bad_redirects(
    admin: httpx.AsyncClient, db: asyncpg.Connection, owner: dict[str, Any], uris: list[str]
) -> None:
    """A desktop app may not register http hosts other than loopback IP literals."""
    response = await admin.post("/clients", json=desktop_body(redirect_uris=uris))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert await nothing_stored(db)


# request bodies


async def test_wrong_content_type_is_415(
    admin: httpx.AsyncClient, db: asyncpg.Connection, owner: dict[str, Any]
) -> None:
    """A body that is not application/json answers 415 and stores nothing."""
    response = await admin.post(
        "/clients", content=json.dumps(web_body()), headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    assert await nothing_stored(db)


async def test_missing_content_type_is_415(admin: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    """A body without any content type answers 415."""
    response = await admin.post("/clients", content=json.dumps(web_body()).encode())
    assert response.status_code == 415


async def test_json_with_charset_is_accepted(
    admin: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    """application/json with a charset parameter is still JSON."""
    response = await admin.post(
        "/clients",
        content=json.dumps(web_body()),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201


def _deep(depth: int) -> str:
    return '{"name": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"{not json", id="invalid-json"),
        pytest.param(b"", id="empty"),
        pytest.param(_deep(10000).encode(), id="nested-10000"),
        pytest.param(b"[]", id="array"),
        pytest.param(b'"a string"', id="string"),
        pytest.param(b"null", id="null"),
        pytest.param(b'{"name": "\xff"}', id="not-utf8"),
    ],
)
async def test_bad_json_body_is_400(
    admin: httpx.AsyncClient, db: asyncpg.Connection, owner: dict[str, Any], raw: bytes
) -> None:
    """A body that is not one plain JSON object answers 400 invalid_request, never a 500."""
    response = await admin.post(
        "/clients", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert await nothing_stored(db)


def _valid_body_with(member: str) -> bytes:
    """web_body() as JSON, with ``member`` (raw JSON text) added as its last member."""
    return (json.dumps(web_body())[:-1] + ", " + member + "}").encode()


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(_valid_body_with('"name": "Other"'), id="duplicate-keys"),
        pytest.param(
            json.dumps(web_body(description="\ud800")).encode(), id="lone-surrogate-value"
        ),
        pytest.param(_valid_body_with('"\\ud800": true'), id="lone-surrogate-key"),
    ],
)
async def test_bad_json_in_valid_body_is_400(
    admin: httpx.AsyncClient, db: asyncpg.Connection, owner: dict[str, Any], raw: bytes
) -> None:
    """A complete body with one JSON flaw answers 400 invalid_request, never a 500 or a 201."""
    response = await admin.post(
        "/clients", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert await nothing_stored(db)


@pytest.mark.parametrize(
    "number",
    [
        pytest.param("NaN", id="nan"),
        pytest.param("Infinity", id="infinity"),
        pytest.param("-Infinity", id="minus-infinity"),
        pytest.param("1e400", id="float-overflow"),
    ],
)
async def test_non_finite_number_in_valid_body_is_400(
    admin: httpx.AsyncClient, number: str
) -> None:
    """A complete admin body holding NaN, ±Infinity or an overflowing number answers 400."""
    # No client field takes a number, so this uses POST /introspect, whose token_type_hint
    # may hold any value: the same body with a finite number there answers 200.
    raw = f'{{"token": "phrat_unknown", "token_type_hint": {number}}}'
    response = await admin.post(
        "/introspect", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_body_over_64k_is_413(
    admin: httpx.AsyncClient, db: asyncpg.Connection, owner: dict[str, Any]
) -> None:
    """A body declared larger than 64 KiB answers 413 request_too_large."""
    raw = json.dumps(web_body(description="d" * (64 * 1024))).encode()
    response = await admin.post(
        "/clients", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"] == "request_too_large"
    assert await nothing_stored(db)


async def test_malformed_content_length_is_refused(
    admin: httpx.AsyncClient, db: asyncpg.Connection, owner: dict[str, Any]
) -> None:
    """A Content-Length that is not ASCII digits is refused, never a 500."""
    response = await admin.post(
        "/clients",
        content=json.dumps(web_body()).encode(),
        headers={b"Content-Type": b"application/json", b"Content-Length": b"\xb2"},
    )
    assert response.status_code == 413
    assert await nothing_stored(db)


async def test_streamed_body_over_64k_is_413(
    admin: httpx.AsyncClient, db: asyncpg.Connection, owner: dict[str, Any]
) -> None:
    """A chunked body without a length is cut off at 64 KiB too."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(20):
            yield b"n" * 4096
        yield b'"}'

    response = await admin.post(
        "/clients", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert await nothing_stored(db)


# listing


async def test_list_by_owner(admin: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    """Listing by owner_id answers only that owner's applications."""
    mine = {(await create(admin, web_body()))["client_id"] for _ in range(2)}
    await admin.put("/users/other", json={"login": "oscar"})
    await create(admin, web_body(owner_id="other"))
    response = await admin.get("/clients", params={"owner_id": OWNER_ID})
    assert response.status_code == 200
    listed = response.json()["clients"]
    assert {client["client_id"] for client in listed} == mine
    assert all(client["owner_id"] == OWNER_ID for client in listed)
    assert all("client_secret" not in client for client in listed)


async def test_list_without_owner_lists_all(
    admin: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    """Without owner_id, every application is listed."""
    await create(admin, web_body())
    await admin.put("/users/other", json={"login": "oscar"})
    await create(admin, web_body(owner_id="other"))
    response = await admin.get("/clients")
    assert response.status_code == 200
    assert {c["owner_id"] for c in response.json()["clients"]} == {OWNER_ID, "other"}


async def test_list_of_owner_without_apps_is_empty(
    admin: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    """An owner with no applications gets an empty list and no cursor."""
    response = await admin.get("/clients", params={"owner_id": OWNER_ID})
    assert response.status_code == 200
    assert response.json() == {"clients": []}


async def test_list_pagination(admin: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    """Following next_after with a small limit visits every app once, in client id order."""
    created = sorted([(await create(admin, web_body()))["client_id"] for _ in range(5)])
    seen: list[str] = []
    pages = 0
    params = {"owner_id": OWNER_ID, "limit": "2"}
    while True:
        response = await admin.get("/clients", params=params)
        assert response.status_code == 200
        body = response.json()
        assert len(body["clients"]) <= 2
        seen.extend(client["client_id"] for client in body["clients"])
        pages += 1
        if "next_after" not in body:
            break
        assert body["next_after"] == seen[-1]
        params["after"] = body["next_after"]
    assert seen == created
    assert pages == 3


@pytest.mark.parametrize(
    "limit",
    [
        pytest.param("0", id="zero"),
        pytest.param("501", id="over-max"),
        pytest.param("-1", id="negative"),
        pytest.param("abc", id="not-number"),
        pytest.param("", id="empty"),
        pytest.param("1.5", id="fraction"),
        pytest.param("9" * 30, id="huge"),
        pytest.param("\u00b2", id="superscript-digit"),
    ],
)
async def test_list_limit_out_of_range_is_400(admin: httpx.AsyncClient, limit: str) -> None:
    """A limit outside 1..500 or not a whole number answers 400."""
    response = await admin.get("/clients", params={"limit": limit})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("owner=owner-1", id="unknown"),
        pytest.param("owner_id=owner-1&owner_id=other", id="repeated-owner"),
        pytest.param("limit=1&limit=2", id="repeated-limit"),
        pytest.param("owner_id=sp%20ace", id="owner-malformed"),
        pytest.param("after=%00", id="nul"),
    ],
)
async def test_list_bad_query_is_400(admin: httpx.AsyncClient, query: str) -> None:
    """Unknown, repeated or malformed query parameters answer 400."""
    response = await admin.get(f"/clients?{query}")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_get_with_query_parameter_is_400(
    admin: httpx.AsyncClient, web_client: dict[str, Any]
) -> None:
    """GET of one client takes no query parameters."""
    response = await admin.get(f"/clients/{web_client['client_id']}?fields=all")
    assert response.status_code == 400


# updating


async def test_patch_changes_fields(admin: httpx.AsyncClient, web_client: dict[str, Any]) -> None:
    """PATCH changes every editable field, and GET shows the new values."""
    changes = {
        "name": "Photo Sync 2",
        "description": "Now with albums",
        "website": "https://v2.photosync.example",
        "redirect_uris": ["https://v2.photosync.example/cb", "https://photosync.example/cb2"],
        "password_grant": True,
        "introspection": True,
        "active": False,
    }
    response = await admin.patch(f"/clients/{web_client['client_id']}", json=changes)
    assert response.status_code == 200
    fetched = (await admin.get(f"/clients/{web_client['client_id']}")).json()
    for body in (response.json(), fetched):
        assert {key: body[key] for key in changes} == changes


async def test_patch_keeps_omitted_fields(
    admin: httpx.AsyncClient, web_client: dict[str, Any]
) -> None:
    """Fields the PATCH body leaves out keep their values."""
    response = await admin.patch(f"/clients/{web_client['client_id']}", json={"name": "Renamed"})
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Renamed"
    for key in ("description", "website", "redirect_uris", "type", "owner_id", "active"):
        assert body[key] == web_client[key]


async def test_patch_does_not_change_secret(
    admin: httpx.AsyncClient, db: asyncpg.Connection, web_client: dict[str, Any]
) -> None:
    """Changing settings keeps the secret valid."""
    await admin.patch(f"/clients/{web_client['client_id']}", json={"active": False})
    stored = await stored_secrets(db, web_client["client_id"])
    assert HASHER.verify(web_client["client_secret"], stored)


async def test_patch_desktop_empty_redirects_restores_defaults(
    admin: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    """A desktop app's empty redirect list means the default native redirect URIs."""
    created = await create(admin, desktop_body(redirect_uris=["com.example.app:/cb"]))
    response = await admin.patch(f"/clients/{created['client_id']}", json={"redirect_uris": []})
    assert response.status_code == 200
    assert response.json()["redirect_uris"] == DESKTOP_DEFAULTS


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"nickname": "x"}, id="unknown-field"),
        pytest.param({"redirect_uris": []}, id="web-empty-redirects"),
        pytest.param({"redirect_uris": ["http://photosync.example/cb"]}, id="web-http-redirect"),
        pytest.param({"website": "ftp://photosync.example"}, id="website-ftp"),
        pytest.param({"name": ""}, id="name-empty"),
        pytest.param({"name": None}, id="name-null"),
        pytest.param({"active": "no"}, id="active-not-bool"),
        pytest.param({"type": "desktop"}, id="type-not-editable"),
        pytest.param({"owner_id": "other"}, id="owner-not-editable"),
    ],
)
async def test_patch_rejects_bad_body(
    admin: httpx.AsyncClient, web_client: dict[str, Any], changes: dict[str, Any]
) -> None:
    """A bad PATCH answers 400 and leaves the app as it was."""
    client_id = web_client["client_id"]
    before = (await admin.get(f"/clients/{client_id}")).json()
    response = await admin.patch(f"/clients/{client_id}", json=changes)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert (await admin.get(f"/clients/{client_id}")).json() == before


async def test_patch_unknown_client_is_404(admin: httpx.AsyncClient) -> None:
    """PATCH of an unknown client answers 404."""
    response = await admin.patch("/clients/no-such-client", json={"name": "x"})
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


async def test_patch_malformed_client_id_is_400(admin: httpx.AsyncClient) -> None:
    """A client id outside the allowed shape answers 400, never a database error."""
    response = await admin.patch("/clients/bad.id", json={"name": "x"})
    assert response.status_code == 400


# deleting


async def test_delete_client(admin: httpx.AsyncClient, web_client: dict[str, Any]) -> None:
    """DELETE answers 204; the app is then gone and a second DELETE answers 404."""
    client_id = web_client["client_id"]
    assert (await admin.delete(f"/clients/{client_id}")).status_code == 204
    assert (await admin.get(f"/clients/{client_id}")).status_code == 404
    assert (await admin.delete(f"/clients/{client_id}")).status_code == 404


async def test_delete_writes_audit_event(
    admin: httpx.AsyncClient, db: asyncpg.Connection, web_client: dict[str, Any]
) -> None:
    """Deleting an app records a client.deleted event."""
    await admin.delete(f"/clients/{web_client['client_id']}")
    count = await db.fetchval(
        "SELECT count(*) FROM audit_events WHERE kind = 'client.deleted' AND client_id = $1",
        web_client["client_id"],
    )
    assert count == 1


# rotating the secret


async def test_rotate_returns_new_secret(
    admin: httpx.AsyncClient, web_client: dict[str, Any]
) -> None:
    """Rotation answers 201 with a new secret and how long the old one keeps working."""
    response = await admin.post(f"/clients/{web_client['client_id']}/secret")
    assert response.status_code == 201
    body = response.json()
    assert body["client_id"] == web_client["client_id"]
    assert body["client_secret"].startswith("phrcs_")
    assert body["client_secret"] != web_client["client_secret"]
    assert body["previous_secret_valid_for"] == 86400
    assert response.headers["cache-control"] == "no-store"


async def test_rotation_overlap_keeps_both_secrets(
    admin: httpx.AsyncClient, db: asyncpg.Connection, web_client: dict[str, Any]
) -> None:
    """During the overlap window both the old and the new secret verify."""
    response = await admin.post(f"/clients/{web_client['client_id']}/secret")
    new_secret = response.json()["client_secret"]
    stored = await stored_secrets(db, web_client["client_id"])
    assert len(stored) == 2
    assert HASHER.verify(web_client["client_secret"], stored)
    assert HASHER.verify(new_secret, stored)


async def test_rotation_sets_old_secret_expiry(
    admin: httpx.AsyncClient, db: asyncpg.Connection, web_client: dict[str, Any]
) -> None:
    """The rotated-out secret expires after the overlap; the new one never expires."""
    await admin.post(f"/clients/{web_client['client_id']}/secret")
    rows = await db.fetch(
        "SELECT expires_at - created_at AS lifetime FROM client_secrets "
        "WHERE client_id = $1 ORDER BY secret_id",
        web_client["client_id"],
    )
    assert rows[1]["lifetime"] is None
    assert 86000 < rows[0]["lifetime"].total_seconds() <= 86400 + 60


async def test_rotation_without_overlap_kills_old_secret(
    database_url: str, db: asyncpg.Connection
) -> None:
    """With secret_overlap 0 the old secret stops working at once."""
    async with admin_with(database_url, secret_overlap="0") as admin:
        await provision_owner(admin)
        created = await create(admin, web_body())
        response = await admin.post(f"/clients/{created['client_id']}/secret")
    assert response.json()["previous_secret_valid_for"] == 0
    stored = await stored_secrets(db, created["client_id"])
    assert len(stored) == 1
    assert not HASHER.verify(created["client_secret"], stored)
    assert HASHER.verify(response.json()["client_secret"], stored)


async def test_second_rotation_kills_oldest_secret(
    admin: httpx.AsyncClient, db: asyncpg.Connection, web_client: dict[str, Any]
) -> None:
    """A second rotation leaves two valid secrets: the oldest dies at once."""
    path = f"/clients/{web_client['client_id']}/secret"
    second = (await admin.post(path)).json()["client_secret"]
    third = (await admin.post(path)).json()["client_secret"]
    stored = await stored_secrets(db, web_client["client_id"])
    assert len(stored) == 2
    assert not HASHER.verify(web_client["client_secret"], stored)
    assert HASHER.verify(second, stored)
    assert HASHER.verify(third, stored)


async def test_many_rotations_keep_two_valid(
    admin: httpx.AsyncClient, db: asyncpg.Connection, web_client: dict[str, Any]
) -> None:
    """However often the secret rotates, at most two are valid at any time."""
    path = f"/clients/{web_client['client_id']}/secret"
    for _ in range(5):
        assert (await admin.post(path)).status_code == 201
    assert len(await stored_secrets(db, web_client["client_id"])) == 2
    current = await db.fetchval(
        "SELECT count(*) FROM client_secrets WHERE client_id = $1 AND expires_at IS NULL",
        web_client["client_id"],
    )
    assert current == 1


async def test_concurrent_rotations_keep_two_valid(
    admin: httpx.AsyncClient, db: asyncpg.Connection, web_client: dict[str, Any]
) -> None:
    """Rotations racing each other still leave one current and at most one previous secret."""
    path = f"/clients/{web_client['client_id']}/secret"
    responses = await asyncio.gather(*(admin.post(path) for _ in range(6)))
    assert [r.status_code for r in responses] == [201] * 6
    assert len(await stored_secrets(db, web_client["client_id"])) == 2
    current = await db.fetchval(
        "SELECT count(*) FROM client_secrets WHERE client_id = $1 AND expires_at IS NULL",
        web_client["client_id"],
    )
    assert current == 1


async def test_rotate_desktop_is_409(
    admin: httpx.AsyncClient, db: asyncpg.Connection, owner: dict[str, Any]
) -> None:
    """A desktop app is a public client: rotating its secret answers 409 and stores nothing."""
    created = await create(admin, desktop_body())
    response = await admin.post(f"/clients/{created['client_id']}/secret")
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    count = await db.fetchval(
        "SELECT count(*) FROM client_secrets WHERE client_id = $1", created["client_id"]
    )
    assert count == 0


async def test_rotate_unknown_client_is_404(admin: httpx.AsyncClient) -> None:
    """Rotating the secret of an unknown client answers 404."""
    response = await admin.post("/clients/no-such-client/secret")
    assert response.status_code == 404


# developer tokens


async def test_developer_token_issued(admin: httpx.AsyncClient, web_client: dict[str, Any]) -> None:
    """A developer token answers 201 with a phrat_ bearer token for the app."""
    response = await admin.post(f"/clients/{web_client['client_id']}/developer-token")
    assert response.status_code == 201
    body = response.json()
    assert body["access_token"].startswith("phrat_")
    assert body["token_type"] == "Bearer"
    assert body["client_id"] == web_client["client_id"]
    assert response.headers["cache-control"] == "no-store"


async def test_developer_token_is_well_formed(
    admin: httpx.AsyncClient, web_client: dict[str, Any]
) -> None:
    """The token's MAC verifies under the server key, as an access token."""
    response = await admin.post(f"/clients/{web_client['client_id']}/developer-token")
    token = response.json()["access_token"]
    assert CODEC.kind_of(token) is TokenKind.ACCESS
    assert CODEC.kind_of(token[:-1] + ("A" if token[-1] != "A" else "B")) is None


async def test_developer_token_stored_as_digest(
    admin: httpx.AsyncClient, db: asyncpg.Connection, web_client: dict[str, Any]
) -> None:
    """Only the SHA-256 digest is stored, as a non-expiring developer access token."""
    response = await admin.post(f"/clients/{web_client['client_id']}/developer-token")
    token = response.json()["access_token"]
    rows = await db.fetch("SELECT * FROM tokens")
    assert len(rows) == 1
    row = rows[0]
    assert row["digest"] == hashlib.sha256(token.encode()).digest()
    assert row["developer"] is True
    assert row["kind"] == "access"
    assert row["expires_at"] is None
    assert row["client_id"] == web_client["client_id"]
    assert row["user_id"] == OWNER_ID
    assert row["scope"] == response.json()["scope"]
    assert token.encode() not in b"".join(str(value).encode() for value in row.values())


async def test_developer_token_shown_once(
    admin: httpx.AsyncClient, web_client: dict[str, Any]
) -> None:
    """The token appears in no later answer about the app."""
    client_id = web_client["client_id"]
    token = (await admin.post(f"/clients/{client_id}/developer-token")).json()["access_token"]
    assert token not in (await admin.get(f"/clients/{client_id}")).text
    assert token not in (await admin.get("/clients")).text
    assert token not in (await admin.get(f"/users/{OWNER_ID}/grants")).text


async def test_regenerating_developer_token_kills_previous(
    admin: httpx.AsyncClient, db: asyncpg.Connection, web_client: dict[str, Any]
) -> None:
    """Issuing again leaves exactly one developer token for the grant: the new one."""
    path = f"/clients/{web_client['client_id']}/developer-token"
    first = (await admin.post(path)).json()["access_token"]
    second = (await admin.post(path)).json()["access_token"]
    assert first != second
    rows = await db.fetch(
        "SELECT t.digest FROM tokens t JOIN grants g USING (grant_id) "
        "WHERE t.developer AND g.user_id = $1 AND g.client_id = $2",
        OWNER_ID,
        web_client["client_id"],
    )
    assert [row["digest"] for row in rows] == [hashlib.sha256(second.encode()).digest()]


async def test_concurrent_developer_tokens_leave_one(
    admin: httpx.AsyncClient, db: asyncpg.Connection, web_client: dict[str, Any]
) -> None:
    """Developer tokens issued at the same time still leave exactly one alive."""
    path = f"/clients/{web_client['client_id']}/developer-token"
    responses = await asyncio.gather(*(admin.post(path) for _ in range(6)))
    assert [r.status_code for r in responses] == [201] * 6
    assert await db.fetchval("SELECT count(*) FROM grants") == 1
    assert await db.fetchval("SELECT count(*) FROM tokens WHERE developer") == 1


async def test_regenerating_keeps_other_tokens(
    admin: httpx.AsyncClient, db: asyncpg.Connection, web_client: dict[str, Any]
) -> None:
    """Regeneration kills developer tokens only, not the grant's ordinary tokens."""
    path = f"/clients/{web_client['client_id']}/developer-token"
    await admin.post(path)
    grant_id = await db.fetchval("SELECT grant_id FROM grants")
    ordinary = hashlib.sha256(b"ordinary access token").digest()
    await db.execute(
        "INSERT INTO tokens (digest, kind, client_id, user_id, grant_id, expires_at) "
        "VALUES ($1, 'access', $2, $3, $4, now() + interval '1 hour')",
        ordinary,
        web_client["client_id"],
        OWNER_ID,
        grant_id,
    )
    await admin.post(path)
    assert await db.fetchval("SELECT count(*) FROM tokens WHERE digest = $1", ordinary) == 1
    assert await db.fetchval("SELECT count(*) FROM tokens") == 2


async def test_developer_token_for_desktop_app(
    admin: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    """A desktop app's owner can have a developer token too."""
    created = await create(admin, desktop_body())
    response = await admin.post(f"/clients/{created['client_id']}/developer-token")
    assert response.status_code == 201


async def test_developer_token_unknown_client_is_404(
    admin: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    """A developer token for an unknown client answers 404 and stores nothing."""
    response = await admin.post("/clients/no-such-client/developer-token")
    assert response.status_code == 404
    assert await db.fetchval("SELECT count(*) FROM tokens") == 0


# audit


async def _events(db: asyncpg.Connection, kind: str) -> list[asyncpg.Record]:
    return await db.fetch("SELECT * FROM audit_events WHERE kind = $1", kind)


async def test_create_is_audited(
    admin: httpx.AsyncClient, db: asyncpg.Connection, web_client: dict[str, Any]
) -> None:
    """Creating an app records client.created with the app and its owner, and no secret."""
    events = await _events(db, "client.created")
    assert [(e["client_id"], e["user_id"]) for e in events] == [(web_client["client_id"], OWNER_ID)]
    everything = json.dumps(
        [dict(e) for e in await db.fetch("SELECT * FROM audit_events")], default=str
    )
    assert web_client["client_secret"] not in everything


async def test_rotation_is_audited(
    admin: httpx.AsyncClient, db: asyncpg.Connection, web_client: dict[str, Any]
) -> None:
    """Rotating a secret records client.secret_rotated, without the secret."""
    response = await admin.post(f"/clients/{web_client['client_id']}/secret")
    events = await _events(db, "client.secret_rotated")
    assert [e["client_id"] for e in events] == [web_client["client_id"]]
    assert response.json()["client_secret"] not in json.dumps(
        [dict(e) for e in events], default=str
    )


async def test_developer_token_is_audited(
    admin: httpx.AsyncClient, db: asyncpg.Connection, web_client: dict[str, Any]
) -> None:
    """Issuing a developer token records token.issued with grant_type developer."""
    await admin.post(f"/clients/{web_client['client_id']}/developer-token")
    events = await _events(db, "token.issued")
    assert len(events) == 1
    assert events[0]["client_id"] == web_client["client_id"]
    assert events[0]["user_id"] == OWNER_ID
    assert json.loads(events[0]["detail"]) == {"grant_type": "developer"}


async def test_rejected_rotation_is_not_audited(
    admin: httpx.AsyncClient, db: asyncpg.Connection, owner: dict[str, Any]
) -> None:
    """A refused rotation leaves no audit event behind."""
    created = await create(admin, desktop_body())
    await admin.post(f"/clients/{created['client_id']}/secret")
    assert await _events(db, "client.secret_rotated") == []
