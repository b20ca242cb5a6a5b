"""ID token signing keys: the admin API's view and rotation, publication before use, old keys
still verifying, every replica following, and the private parts never in clear."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from joserfc import jwt

from authserver.config import Settings
from authserver.db.store import Store
from authserver.oidc.keys import KeyLifecycle, KeyVault, SigningKeys
from authserver.security.keys import Keyring
from authserver.services import create_apps
from tests.authorize_support import ISSUER, Client
from tests.conftest import SECRET_KEY, Clock
from tests.openid_support import JWKS, openid_tokens, published_keys

PROPAGATION = 120  # the default AUTHSERVER_KEY_PROPAGATION


async def published_kids(public: httpx.AsyncClient) -> set[str]:
    return {key["kid"] for key in (await public.get(JWKS)).json()["keys"]}


async def rotate(admin: httpx.AsyncClient) -> list[str]:
    response = await admin.post("/keys/rotate")
    assert response.status_code == 201, response.text
    made: list[str] = response.json()["rotated"]
    return made


# The admin API


async def test_keys_lists_one_signing_key_per_algorithm(admin: httpx.AsyncClient) -> None:
    """GET /keys shows an RS256 and an ES256 key that sign now."""
    keys = (await admin.get("/keys")).json()["keys"]
    signing = {key["alg"] for key in keys if key["signing"]}
    assert signing == {"RS256", "ES256"}


async def test_keys_shows_only_public_facts(admin: httpx.AsyncClient) -> None:
    """Each key is described by its id, algorithm and dates: no key material."""
    keys = (await admin.get("/keys")).json()["keys"]
    assert all(
        set(key) == {"kid", "alg", "active_from", "retired_at", "expires_at", "signing"}
        for key in keys
    )


async def test_rotate_adds_a_key_per_algorithm(admin: httpx.AsyncClient) -> None:
    """POST /keys/rotate answers 201 with two new kids, not yet signing."""
    made = await rotate(admin)
    keys = {key["kid"]: key for key in (await admin.get("/keys")).json()["keys"]}
    assert len(made) == 2
    assert {keys[kid]["alg"] for kid in made} == {"RS256", "ES256"}
    assert not any(keys[kid]["signing"] for kid in made)


async def test_rotate_needs_the_admin_token(served: tuple[Any, Any]) -> None:
    """Without the admin token rotation is 401 and nothing changes."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=served[1]), base_url="http://admin.test"
    ) as anonymous:
        response = await anonymous.post("/keys/rotate")
    assert response.status_code == 401


async def test_rotation_is_audited(admin: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    """A rotation leaves an audit event naming the new kids."""
    made = await rotate(admin)
    detail = await db.fetchval(
        "SELECT detail FROM audit_events WHERE kind = 'signing_keys.rotated'"
    )
    assert set(json.loads(detail)["kids"]) == set(made)


# Publication before use, old keys after


async def test_new_keys_are_published_at_once(
    admin: httpx.AsyncClient, public: httpx.AsyncClient
) -> None:
    """The JWKS lists the new keys as soon as the rotation answers."""
    made = await rotate(admin)
    assert set(made) <= await published_kids(public)


async def test_old_key_signs_until_propagation(
    admin: httpx.AsyncClient, public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """Until the propagation delay has passed, ID tokens are signed by the old key."""
    before = (await openid_tokens(public, web_client, scope="openid")).header["kid"]
    made = await rotate(admin)
    public.cookies.clear()
    after = (await openid_tokens(public, web_client, scope="openid")).header["kid"]
    assert after == before
    assert after not in made


async def test_new_key_signs_after_propagation(
    admin: httpx.AsyncClient,
    public: httpx.AsyncClient,
    web_client: Client,
    alice: Client,
    clock: Clock,
) -> None:
    """Once the propagation delay has passed, the new RS256 key signs."""
    made = await rotate(admin)
    clock.advance(PROPAGATION + 1)
    header = (await openid_tokens(public, web_client, scope="openid")).header
    assert header["kid"] in made


async def test_old_tokens_still_verify_after_rotation(
    admin: httpx.AsyncClient,
    public: httpx.AsyncClient,
    web_client: Client,
    alice: Client,
    clock: Clock,
) -> None:
    """An ID token signed before the rotation verifies with the JWKS published after it."""
    old = (await openid_tokens(public, web_client, scope="openid")).id_token
    await rotate(admin)
    clock.advance(PROPAGATION + 1)
    claims = jwt.decode(old, await published_keys(public), algorithms=["RS256"]).claims
    assert claims["iss"] == ISSUER


async def test_retired_key_stays_published_for_its_tokens_lifetime(
    admin: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    """A retired key expires no sooner than an ID token lifetime after it stops signing."""
    old = {key["kid"] for key in (await admin.get("/keys")).json()["keys"]}
    await rotate(admin)
    rows = await db.fetch(
        "SELECT retired_at, expires_at FROM signing_keys WHERE kid = any($1::text[])", list(old)
    )
    assert all(row["expires_at"] - row["retired_at"] >= timedelta(seconds=3600) for row in rows)


# Every replica


@pytest.fixture
async def second_replica(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Another server's public app on the same database."""
    public_app, _ = create_apps(settings, clock=Clock())
    async with (
        LifespanManager(public_app) as started,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=started.app), base_url=ISSUER) as c,
    ):
        yield c


async def test_second_replica_publishes_a_rotation(
    admin: httpx.AsyncClient, second_replica: httpx.AsyncClient
) -> None:
    """A replica that did not rotate publishes the new keys within its reload interval."""
    made = set(await rotate(admin))
    for _ in range(60):
        if made <= await published_kids(second_replica):
            return
        await asyncio.sleep(0.25)
    pytest.fail("the second replica did not publish the new keys within 15 s")


# Private parts


async def test_private_keys_are_encrypted_at_rest(db: asyncpg.Connection) -> None:
    """No stored private key reads as a JWK: each is AES-GCM ciphertext."""
    rows = await db.fetch("SELECT private_jwk, public_jwk::text AS public FROM signing_keys")
    assert rows
    for row in rows:
        sealed = bytes(row["private_jwk"])
        assert b'"d"' not in sealed
        assert b'"kty"' not in sealed
        assert '"d"' not in row["public"]


async def test_rotation_logs_no_key_material(
    admin: httpx.AsyncClient, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    """The log lines of a rotation name kids, never a key's parameters."""
    caplog.set_level(logging.DEBUG)
    made = await rotate(admin)
    text = caplog.text
    assert made[0] in text
    public = await db.fetch("SELECT public_jwk FROM signing_keys WHERE kid = any($1)", made)
    for row in public:
        jwk = json.loads(row["public_jwk"])
        assert (jwk.get("n") or jwk["x"]) not in text
    assert '"d"' not in text


# Reloading


@pytest.fixture
def lifecycle(db: asyncpg.Connection, clock: Clock) -> KeyLifecycle:
    """A replica's key lifecycle of its own, on the test's database and clock."""
    return KeyLifecycle(
        Store(db),
        KeyVault(Keyring([SECRET_KEY])),
        SigningKeys(clock),
        propagation=PROPAGATION,
        token_lifetime=3600,
    )


async def test_reload_keeps_imported_keys(lifecycle: KeyLifecycle) -> None:
    """A reload (every 10 s) reuses the keys it imported: importing an RSA key costs ms."""
    await lifecycle.load()
    first = lifecycle.keys.signer("RS256").key
    await lifecycle.load()
    assert lifecycle.keys.signer("RS256").key is first


async def test_reload_imports_a_rotation_made_elsewhere(
    lifecycle: KeyLifecycle, admin: httpx.AsyncClient, clock: Clock
) -> None:
    """Keys another replica made are imported at the next reload, and sign in their time."""
    await lifecycle.load()
    made = await rotate(admin)
    await lifecycle.load()
    clock.advance(PROPAGATION + 1)
    assert lifecycle.keys.signer("RS256").kid in made
    assert lifecycle.keys.signer("ES256").kid in made
