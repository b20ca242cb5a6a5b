"""The device authorization grant (RFC 8628) over HTTP, against the in-process apps and a real
PostgreSQL: the device authorization endpoint, polling the token endpoint, and what the
tokens it issues share with the code grant's (grants, revocation, disabling)."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import asyncpg
import httpx
import pytest

from authserver.oauth.metadata import FIRST_WAIT, DeviceGrantAdvert
from authserver.security.tokens import token_digest
from authserver.security.user_codes import ALPHABET
from tests.authorize_support import METADATA, browser
from tests.conftest import register_client
from tests.device_support import (
    DEVICE_AUTHORIZATION,
    DEVICE_GRANT,
    ask,
    codes,
    decide,
    poll,
)

ISSUER = "https://auth.example.test"
USER_CODE = re.compile(rf"[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}")


@pytest.fixture
async def tv_app(admin: httpx.AsyncClient, owner: dict[str, Any]) -> dict[str, Any]:
    """A desktop (public) application that enabled the device grant."""
    return await register_client(
        admin,
        owner,
        name="Living Room Viewer",
        description="Shows your photos on the television",
        website="https://viewer.example",
        type="desktop",
        device_grant=True,
    )


@pytest.fixture
async def kiosk_app(admin: httpx.AsyncClient, owner: dict[str, Any]) -> dict[str, Any]:
    """A web (confidential) application that asked for the device grant."""
    return await register_client(
        admin,
        owner,
        name="Lobby Kiosk",
        website="https://kiosk.example",
        type="web",
        redirect_uris=["https://kiosk.example/cb"],
        device_grant=True,
    )


async def approved(
    public: httpx.AsyncClient, app: dict[str, Any], alice: dict[str, Any]
) -> dict[str, Any]:
    """Device codes alice approved on the verification page (in a browser of her own)."""
    answer = await codes(public, app)
    async with browser(public) as person:
        await decide(person, answer["user_code"], "allow")
    return answer


# The device authorization endpoint (RFC 8628 §3.1, §3.2)


async def test_answer_carries_every_member(public: httpx.AsyncClient, tv_app: Any) -> None:
    """§3.2: device_code, user_code, verification_uri(_complete), expires_in and interval."""
    body = await codes(public, tv_app, scope="read")
    assert body["device_code"].startswith("phrdc_")
    assert USER_CODE.fullmatch(body["user_code"])
    assert body["verification_uri"] == f"{ISSUER}/device"
    assert body["verification_uri_complete"] == f"{ISSUER}/device?user_code={body['user_code']}"
    assert body["expires_in"] == 600
    assert body["interval"] == 5


async def test_answer_is_not_cached(public: httpx.AsyncClient, tv_app: Any) -> None:
    """§3.2 answers carry codes: Cache-Control no-store, JSON."""
    response = await ask(public, tv_app)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"].startswith("application/json")


async def test_codes_are_stored_as_digests(
    public: httpx.AsyncClient, db: asyncpg.Connection, tv_app: Any
) -> None:
    """The device code is stored by its SHA-256 digest, the user code not in clear at all."""
    body = await codes(public, tv_app)
    row = await db.fetchrow("SELECT * FROM device_codes")
    assert row is not None
    assert row["digest"] == token_digest(body["device_code"])
    stored = b"".join(v for v in row.values() if isinstance(v, bytes))
    for value in (body["device_code"], body["user_code"], body["user_code"].replace("-", "")):
        assert value.encode() not in stored
        assert value not in repr(dict(row))


async def test_scope_defaults_and_is_stored(
    public: httpx.AsyncClient, db: asyncpg.Connection, tv_app: Any
) -> None:
    """Without scope, the default scopes are what the device asks for."""
    await codes(public, tv_app)
    assert await db.fetchval("SELECT scope FROM device_codes") == "read write"


async def test_unknown_scope_is_refused(public: httpx.AsyncClient, tv_app: Any) -> None:
    """RFC 6749 §5.2: an unknown scope is invalid_scope, and nothing is stored."""
    response = await ask(public, tv_app, scope="read launch-missiles")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


async def test_client_without_the_grant_is_unauthorized(
    public: httpx.AsyncClient, desktop_client: Any, db: asyncpg.Connection
) -> None:
    """An application whose owner did not enable the grant gets unauthorized_client."""
    response = await ask(public, desktop_client)
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"
    assert await db.fetchval("SELECT count(*) FROM device_codes") == 0


async def test_confidential_client_authenticates_with_basic(
    public: httpx.AsyncClient, kiosk_app: Any
) -> None:
    """§3.1: a confidential client authenticates as at the token endpoint (HTTP Basic)."""
    body = await codes(public, kiosk_app)
    assert body["device_code"].startswith("phrdc_")


async def test_confidential_client_with_wrong_secret_is_refused(
    public: httpx.AsyncClient, kiosk_app: Any
) -> None:
    """A wrong secret is 401 invalid_client with a Basic challenge."""
    response = await ask(public, {**kiosk_app, "client_secret": "phrcs_wrong"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_confidential_client_without_secret_is_refused(
    public: httpx.AsyncClient, kiosk_app: Any
) -> None:
    """A web app naming itself without its secret does not authenticate."""
    response = await ask(public, {"client_id": kiosk_app["client_id"]})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_unknown_client_is_refused(public: httpx.AsyncClient) -> None:
    """An unknown client_id is invalid_client."""
    response = await ask(public, {"client_id": "nobody-here"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_get_is_not_allowed(public: httpx.AsyncClient) -> None:
    """The endpoint takes POST only."""
    response = await public.get(DEVICE_AUTHORIZATION)
    assert response.status_code == 405


async def test_repeated_parameter_is_refused(public: httpx.AsyncClient, tv_app: Any) -> None:
    """RFC 6749 §3.1: a repeated parameter is invalid_request."""
    response = await public.post(
        DEVICE_AUTHORIZATION,
        content=f"client_id={tv_app['client_id']}&scope=read&scope=write",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


# Polling the token endpoint (RFC 8628 §3.4, §3.5)


async def test_poll_before_the_user_decides_is_pending(
    public: httpx.AsyncClient, tv_app: Any
) -> None:
    """§3.5: authorization_pending while the user has not decided."""
    body = await codes(public, tv_app)
    response = await poll(public, tv_app, body["device_code"])
    assert response.status_code == 400
    assert response.json()["error"] == "authorization_pending"
    assert response.headers["cache-control"] == "no-store"


async def test_poll_too_soon_slows_down(
    public: httpx.AsyncClient, db: asyncpg.Connection, tv_app: Any
) -> None:
    """§3.5: a poll within the interval is slow_down, and the interval grows by 5 s."""
    body = await codes(public, tv_app)
    await poll(public, tv_app, body["device_code"])
    response = await poll(public, tv_app, body["device_code"])
    assert response.status_code == 400
    assert response.json()["error"] == "slow_down"
    assert await db.fetchval("SELECT poll_interval FROM device_codes") == 10


async def test_poll_after_the_interval_is_pending_again(
    public: httpx.AsyncClient, db: asyncpg.Connection, tv_app: Any
) -> None:
    """A poll that waited the interval is authorization_pending, and the interval stays."""
    body = await codes(public, tv_app)
    await poll(public, tv_app, body["device_code"])
    await db.execute("UPDATE device_codes SET last_polled_at = now() - interval '6 seconds'")
    response = await poll(public, tv_app, body["device_code"])
    assert response.json()["error"] == "authorization_pending"
    assert await db.fetchval("SELECT poll_interval FROM device_codes") == 5


async def test_approved_device_gets_tokens(
    public: httpx.AsyncClient, tv_app: Any, alice: Any
) -> None:
    """§3.5: once the user allowed, the poll answers access and refresh tokens."""
    body = await approved(public, tv_app, alice)
    response = await poll(public, tv_app, body["device_code"])
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["access_token"].startswith("phrat_")
    assert tokens["refresh_token"].startswith("phrrt_")
    assert tokens["token_type"] == "Bearer"
    assert tokens["scope"] == "read write"
    assert response.headers["cache-control"] == "no-store"


async def test_tokens_hang_on_the_users_grant(
    public: httpx.AsyncClient, db: asyncpg.Connection, tv_app: Any, alice: Any
) -> None:
    """The tokens belong to alice's grant to the app, in one family, like the code grant's."""
    body = await approved(public, tv_app, alice)
    await poll(public, tv_app, body["device_code"])
    grant_id = await db.fetchval(
        "SELECT grant_id FROM grants WHERE user_id = $1 AND client_id = $2",
        alice["user_id"],
        tv_app["client_id"],
    )
    rows = await db.fetch("SELECT user_id, grant_id, family_id FROM tokens")
    assert len(rows) == 2
    assert {(r["user_id"], r["grant_id"]) for r in rows} == {(alice["user_id"], grant_id)}
    assert len({r["family_id"] for r in rows}) == 1


async def test_device_code_is_redeemed_once(
    public: httpx.AsyncClient, tv_app: Any, alice: Any
) -> None:
    """The device code works once; the next poll is invalid_grant."""
    body = await approved(public, tv_app, alice)
    assert (await poll(public, tv_app, body["device_code"])).status_code == 200
    again = await poll(public, tv_app, body["device_code"])
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


async def test_concurrent_polls_get_one_answer(
    public: httpx.AsyncClient, db: asyncpg.Connection, tv_app: Any, alice: Any
) -> None:
    """20 polls at once after approval: exactly one gets tokens, the rest invalid_grant."""
    body = await approved(public, tv_app, alice)
    answers = await asyncio.gather(*(poll(public, tv_app, body["device_code"]) for _ in range(20)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [400] * 19
    assert {a.json()["error"] for a in answers if a.status_code == 400} == {"invalid_grant"}
    assert await db.fetchval("SELECT count(*) FROM tokens") == 2


async def test_denied_device_is_told_access_denied(
    public: httpx.AsyncClient, tv_app: Any, alice: Any
) -> None:
    """§3.5: access_denied once the user denied."""
    body = await codes(public, tv_app)
    async with browser(public) as person:
        await decide(person, body["user_code"], "deny")
    response = await poll(public, tv_app, body["device_code"])
    assert response.status_code == 400
    assert response.json()["error"] == "access_denied"


async def test_expired_device_code_is_expired_token(
    public: httpx.AsyncClient, db: asyncpg.Connection, tv_app: Any
) -> None:
    """§3.5: expired_token once the device code's lifetime is over."""
    body = await codes(public, tv_app)
    await db.execute("UPDATE device_codes SET expires_at = now() - interval '1 second'")
    response = await poll(public, tv_app, body["device_code"])
    assert response.status_code == 400
    assert response.json()["error"] == "expired_token"


async def test_another_clients_device_code_is_invalid_grant(
    public: httpx.AsyncClient, tv_app: Any, kiosk_app: Any, alice: Any
) -> None:
    """A device code works only for the client it was issued to."""
    body = await approved(public, tv_app, alice)
    response = await poll(public, kiosk_app, body["device_code"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert (await poll(public, tv_app, body["device_code"])).status_code == 200


async def test_forged_device_code_is_invalid_grant(public: httpx.AsyncClient, tv_app: Any) -> None:
    """A device code whose MAC fails is invalid_grant, without a lookup."""
    body = await codes(public, tv_app)
    forged = body["device_code"][:-2] + ("AA" if body["device_code"][-2:] != "AA" else "BB")
    response = await poll(public, tv_app, forged)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_missing_device_code_is_invalid_request(
    public: httpx.AsyncClient, tv_app: Any
) -> None:
    """§3.4: device_code is required."""
    response = await public.post(
        "/oauth2/token", data={"client_id": tv_app["client_id"], "grant_type": DEVICE_GRANT}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_grant_type_needs_the_clients_permission(
    public: httpx.AsyncClient, web_client: Any
) -> None:
    """A client without the device grant polling is unauthorized_client."""
    response = await poll(public, web_client, "phrdc_whatever")
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


async def test_confidential_client_redeems_with_its_secret(
    public: httpx.AsyncClient, kiosk_app: Any, alice: Any
) -> None:
    """A web app that asked for the grant polls with HTTP Basic and gets tokens."""
    body = await approved(public, kiosk_app, alice)
    response = await poll(public, kiosk_app, body["device_code"])
    assert response.status_code == 200, response.text


async def test_device_refresh_token_rotates(
    public: httpx.AsyncClient, tv_app: Any, alice: Any
) -> None:
    """The refresh token from a device works like the code grant's."""
    body = await approved(public, tv_app, alice)
    tokens = (await poll(public, tv_app, body["device_code"])).json()
    response = await public.post(
        "/oauth2/token",
        data={
            "client_id": tv_app["client_id"],
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["refresh_token"] != tokens["refresh_token"]


# What the device's tokens share with the code grant's


async def test_approved_app_is_among_the_users_apps(
    public: httpx.AsyncClient, admin: httpx.AsyncClient, tv_app: Any, alice: Any
) -> None:
    """After approval, the admin API lists the app among the apps alice authorized."""
    await approved(public, tv_app, alice)
    grants = (await admin.get(f"/users/{alice['user_id']}/grants")).json()["grants"]
    assert [grant["client_id"] for grant in grants] == [tv_app["client_id"]]


async def test_revoking_the_grant_kills_device_tokens(
    public: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    db: asyncpg.Connection,
    tv_app: Any,
    alice: Any,
) -> None:
    """Revoking alice's grant to the app takes the device's tokens with it."""
    body = await approved(public, tv_app, alice)
    await poll(public, tv_app, body["device_code"])
    revoked = await admin.delete(f"/users/{alice['user_id']}/grants/{tv_app['client_id']}")
    assert revoked.status_code == 204
    assert await db.fetchval("SELECT count(*) FROM tokens WHERE revoked_at IS NULL") == 0


async def test_revoking_the_grant_before_the_poll_kills_the_device_code(
    public: httpx.AsyncClient, admin: httpx.AsyncClient, tv_app: Any, alice: Any
) -> None:
    """A grant revoked between approval and the device's poll issues nothing."""
    body = await approved(public, tv_app, alice)
    await admin.delete(f"/users/{alice['user_id']}/grants/{tv_app['client_id']}")
    response = await poll(public, tv_app, body["device_code"])
    assert response.json()["error"] == "invalid_grant"


async def test_disabling_the_client_ends_its_device_codes(
    public: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    db: asyncpg.Connection,
    tv_app: Any,
    alice: Any,
) -> None:
    """A disabled client's unredeemed device codes are deleted, and it cannot poll."""
    body = await approved(public, tv_app, alice)
    patched = await admin.patch(f"/clients/{tv_app['client_id']}", json={"active": False})
    assert patched.status_code == 200
    assert await db.fetchval("SELECT count(*) FROM device_codes") == 0
    response = await poll(public, tv_app, body["device_code"])
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_password_change_ends_approved_device_codes(
    public: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    tv_app: Any,
    alice: Any,
) -> None:
    """A password reset before the device polled: the approval is gone."""
    body = await approved(public, tv_app, alice)
    await admin.put(
        f"/users/{alice['user_id']}",
        json={"login": "alice", "email": "alice@example.com", "password": "a new passphrase!"},
    )
    response = await poll(public, tv_app, body["device_code"])
    assert response.json()["error"] == "invalid_grant"


# Metadata (RFC 8414, RFC 8628 §4)


async def test_metadata_leaves_the_grant_out_when_no_client_has_it(
    public: httpx.AsyncClient, desktop_client: Any
) -> None:
    """No application may use the grant: neither the endpoint nor the grant is advertised."""
    document = (await public.get(METADATA)).json()
    assert "device_authorization_endpoint" not in document
    assert DEVICE_GRANT not in document["grant_types_supported"]


async def test_metadata_advertises_the_grant_when_a_client_has_it(
    public: httpx.AsyncClient, tv_app: Any
) -> None:
    """§4: with an application using it, the endpoint and the grant type are advertised."""
    document = (await public.get(METADATA)).json()
    assert document["device_authorization_endpoint"] == f"{ISSUER}/oauth2/device_authorization"
    assert DEVICE_GRANT in document["grant_types_supported"]


async def test_metadata_drops_the_grant_when_its_last_client_turns_it_off(
    public: httpx.AsyncClient, admin: httpx.AsyncClient, tv_app: Any
) -> None:
    """Turning the grant off for the last application stops advertising it."""
    await admin.patch(f"/clients/{tv_app['client_id']}", json={"device_grant": False})
    document = (await public.get(METADATA)).json()
    assert "device_authorization_endpoint" not in document


# Per-application enablement (admin API)


async def test_device_grant_is_off_by_default(desktop_client: Any, web_client: Any) -> None:
    """New applications of either type do not have the device grant unless they ask."""
    assert desktop_client["device_grant"] is False
    assert web_client["device_grant"] is False


async def test_device_grant_can_be_turned_on_later(
    public: httpx.AsyncClient, admin: httpx.AsyncClient, desktop_client: Any
) -> None:
    """PATCH device_grant=true: the application may then ask for device codes."""
    patched = await admin.patch(
        f"/clients/{desktop_client['client_id']}", json={"device_grant": True}
    )
    assert patched.json()["device_grant"] is True
    assert (await ask(public, desktop_client)).status_code == 200


async def test_device_grant_must_be_a_boolean(
    admin: httpx.AsyncClient, desktop_client: Any
) -> None:
    """A device_grant that is not a boolean is a 400."""
    response = await admin.patch(
        f"/clients/{desktop_client['client_id']}", json={"device_grant": "yes"}
    )
    assert response.status_code == 400


async def test_advert_keeps_its_last_answer_while_the_database_hangs() -> None:
    """The metadata's device-grant answer comes from memory when a fresh read hangs."""
    answers = [True]
    hang = asyncio.Event()

    async def read() -> bool:
        if not answers:
            await hang.wait()
        return answers.pop()

    advert = DeviceGrantAdvert(read, refresh=0)
    assert await advert.enabled() is True
    started = time.monotonic()
    assert await advert.enabled() is True  # the second read hangs
    assert time.monotonic() - started < FIRST_WAIT + 0.5
    hang.set()


async def test_advert_keeps_its_last_answer_when_the_read_fails() -> None:
    """A read that fails leaves the last answer in place."""
    answers: list[bool | Exception] = [OSError("database away"), True]

    async def read() -> bool:
        answer = answers.pop()
        if isinstance(answer, Exception):
            raise answer
        return answer

    advert = DeviceGrantAdvert(read, refresh=0)
    assert await advert.enabled() is True
    assert await advert.enabled() is True
