"""The person's side of the device grant (RFC 8628 §3.3): the verification page, its sign-in,
consent and throttle, the user codes themselves, and the janitor's purge of device codes."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from authserver import janitor
from authserver.config import Settings
from authserver.security.keys import Keyring
from authserver.security.user_codes import (
    ALPHABET,
    UserCodeHasher,
    display,
    generate_user_code,
    normalize,
)
from authserver.services import open_services
from tests.authorize_support import (
    assert_error_page,
    browser,
    hidden_fields,
    post_form,
    public_app,
    signed_in_with_grant,
)
from tests.conftest import ALICE_PASSWORD, register_client, server_environ
from tests.device_support import VERIFY, codes, consent, decide, enter_code, poll

NO_VOWELS_OR_DIGITS = "AEIOUY0123456789"


@pytest.fixture
async def tv_app(admin: httpx.AsyncClient, owner: dict[str, Any]) -> dict[str, Any]:
    """A desktop application that enabled the device grant."""
    return await register_client(
        admin,
        owner,
        name="Living Room Viewer",
        description="Shows your photos on the television",
        website="https://viewer.example",
        type="desktop",
        device_grant=True,
    )


# User codes (RFC 8628 §6.1)


def test_generated_codes_are_grouped_and_unambiguous() -> None:
    """A user code is 8 characters of the consonant alphabet, shown as XXXX-XXXX."""
    for _ in range(200):
        code = generate_user_code()
        assert len(code) == 9
        assert code[4] == "-"
        assert set(code.replace("-", "")) <= set(ALPHABET)
        assert not set(code) & set(NO_VOWELS_OR_DIGITS)


@given(st.text(alphabet=ALPHABET, min_size=8, max_size=8), st.sampled_from(["", "-", " "]))
def test_typing_ignores_case_and_separators(code: str, separator: str) -> None:
    """A code typed in lower case, with or without its dash or a space, is the same code."""
    typed = (code[:4] + separator + code[4:]).lower()
    assert normalize(typed) == code
    assert normalize(display(code)) == code


@given(st.text(max_size=12))
def test_only_codes_of_the_alphabet_normalize(typed: str) -> None:
    """Anything but 8 letters of the alphabet (separators aside) is no code."""
    normalized = normalize(typed)
    assert normalized is None or (len(normalized) == 8 and set(normalized) <= set(ALPHABET))


def test_digest_is_keyed_and_found_under_older_keys() -> None:
    """A code stored under an older server key is still found after a rotation."""
    old = UserCodeHasher(Keyring(["k" * 40]))
    rotated = UserCodeHasher(Keyring(["n" * 40, "k" * 40]))
    assert old.digest("WDJB-MJHT") in rotated.candidates("wdjbmjht")
    assert old.digest("WDJB-MJHT") != rotated.digest("WDJB-MJHT")


# The verification page


async def test_code_page_has_a_csrf_protected_form(public: httpx.AsyncClient) -> None:
    """GET /device shows the code form, with a CSRF token and a session cookie."""
    response = await public.get(VERIFY)
    assert response.status_code == 200
    assert 'name="user_code"' in response.text
    assert hidden_fields(response.text)["csrf_token"]
    assert "set-cookie" in response.headers
    assert response.headers["x-frame-options"] == "DENY"


async def test_complete_uri_prefills_the_code(public: httpx.AsyncClient) -> None:
    """verification_uri_complete's user_code is filled into the form."""
    response = await public.get(VERIFY, params={"user_code": "WDJB-MJHT"})
    assert 'value="WDJB-MJHT"' in response.text


async def test_entered_code_leads_to_sign_in(public: httpx.AsyncClient, tv_app: Any) -> None:
    """A valid code from someone not signed in shows the login page, naming the app."""
    body = await codes(public, tv_app)
    response = await enter_code(public, body["user_code"])
    assert response.status_code == 200
    assert 'name="password"' in response.text
    assert "Living Room Viewer" in response.text


async def test_code_is_compared_without_case_or_dash(
    public: httpx.AsyncClient, tv_app: Any
) -> None:
    """The code typed in lower case and without its dash finds the device."""
    body = await codes(public, tv_app)
    response = await enter_code(public, body["user_code"].replace("-", "").lower())
    assert 'name="password"' in response.text


async def test_unknown_code_is_refused(public: httpx.AsyncClient, tv_app: Any) -> None:
    """A code no device holds shows the form again with a 400 and a message."""
    await codes(public, tv_app)
    response = await enter_code(public, "BBBB-BBBB")
    assert response.status_code == 400
    assert "not valid" in response.text
    assert 'name="user_code"' in response.text


async def test_consent_page_shows_the_app_and_the_code(
    public: httpx.AsyncClient, tv_app: Any, alice: Any
) -> None:
    """The consent page names the app, its description, website and owner, says a device is
    asking, and shows the code to compare."""
    body = await codes(public, tv_app)
    page = (await consent(public, body["user_code"])).text
    for shown in (
        "Living Room Viewer",
        "Shows your photos on the television",
        "https://viewer.example",
        "Olivia",
        "A device is asking",
        body["user_code"],
    ):
        assert shown in page


async def test_signed_in_person_goes_straight_to_consent(
    public: httpx.AsyncClient, db: asyncpg.Connection, tv_app: Any, alice: Any
) -> None:
    """verification_uri_complete opened while signed in shows the consent page at once."""
    body = await codes(public, tv_app)
    await signed_in_with_grant(public, db, alice)
    response = await public.get(body["verification_uri_complete"].removeprefix(public_base()))
    assert response.status_code == 200
    assert 'value="consent"' in response.text


async def test_wrong_password_keeps_the_login_page(
    public: httpx.AsyncClient, tv_app: Any, alice: Any
) -> None:
    """A wrong password on the device login page is 400 with the page again."""
    body = await codes(public, tv_app)
    page = await enter_code(public, body["user_code"])
    fields = {**hidden_fields(page.text), "username": "alice", "password": "wrong"}
    response = await post_form(public, fields, path=VERIFY)
    assert response.status_code == 400
    assert 'name="password"' in response.text


async def test_sign_in_is_audited_as_the_device_page(
    public: httpx.AsyncClient, db: asyncpg.Connection, tv_app: Any, alice: Any
) -> None:
    """A failed sign-in there goes through the sign-in policy, which audits it."""
    body = await codes(public, tv_app)
    page = await enter_code(public, body["user_code"])
    fields = {**hidden_fields(page.text), "username": "alice", "password": "wrong"}
    await post_form(public, fields, path=VERIFY)
    detail = await db.fetchval("SELECT detail FROM audit_events WHERE kind = 'login.failed'")
    assert "device_page" in detail


async def test_consent_without_csrf_token_is_refused(
    public: httpx.AsyncClient, db: asyncpg.Connection, tv_app: Any, alice: Any
) -> None:
    """The consent form without its CSRF token decides nothing."""
    body = await codes(public, tv_app)
    page = await consent(public, body["user_code"])
    fields = {**hidden_fields(page.text), "decision": "allow"}
    del fields["csrf_token"]
    response = await post_form(public, fields, path=VERIFY)
    assert_error_page(response, 400)
    assert await db.fetchval("SELECT status FROM device_codes") == "pending"


async def test_consent_from_another_origin_is_refused(
    public: httpx.AsyncClient, db: asyncpg.Connection, tv_app: Any, alice: Any
) -> None:
    """A consent post from another site is 403, and nothing is decided."""
    body = await codes(public, tv_app)
    page = await consent(public, body["user_code"])
    fields = {**hidden_fields(page.text), "decision": "allow"}
    response = await post_form(
        public, fields, path=VERIFY, headers={"Origin": "https://evil.example"}
    )
    assert_error_page(response, 403)
    assert await db.fetchval("SELECT status FROM device_codes") == "pending"


async def test_consent_in_another_browser_is_refused(
    public: httpx.AsyncClient, db: asyncpg.Connection, tv_app: Any, alice: Any
) -> None:
    """A consent form lifted into another browser session decides nothing."""
    body = await codes(public, tv_app)
    page = await consent(public, body["user_code"])
    fields = {**hidden_fields(page.text), "decision": "allow"}
    async with browser(public) as other:
        await other.get(VERIFY)
        response = await post_form(other, fields, path=VERIFY)
    assert response.status_code == 403
    assert await db.fetchval("SELECT status FROM device_codes") == "pending"


async def test_consent_form_works_once(public: httpx.AsyncClient, tv_app: Any, alice: Any) -> None:
    """Submitting the same consent form twice: the second is refused."""
    body = await codes(public, tv_app)
    page = await consent(public, body["user_code"])
    fields = {**hidden_fields(page.text), "decision": "allow"}
    assert (await post_form(public, fields, path=VERIFY)).status_code == 200
    again = await post_form(public, fields, path=VERIFY)
    assert_error_page(again, 400)


async def test_decided_code_is_no_longer_found(
    public: httpx.AsyncClient, tv_app: Any, alice: Any
) -> None:
    """Once approved, the user code leads nowhere: a device is decided once."""
    body = await codes(public, tv_app)
    await decide(public, body["user_code"])
    response = await enter_code(public, body["user_code"])
    assert response.status_code == 400


async def test_allow_page_says_the_device_is_connected(
    public: httpx.AsyncClient, tv_app: Any, alice: Any
) -> None:
    """Allow ends on a page that says the device is connected."""
    body = await codes(public, tv_app)
    response = await decide(public, body["user_code"], "allow")
    assert "Your device is connected" in response.text


async def test_denial_is_audited_and_grants_nothing(
    public: httpx.AsyncClient, db: asyncpg.Connection, tv_app: Any, alice: Any
) -> None:
    """Deny leaves a device.denied event and no grant."""
    body = await codes(public, tv_app)
    await decide(public, body["user_code"], "deny")
    assert await db.fetchval("SELECT count(*) FROM grants") == 0
    kinds = {r["kind"] for r in await db.fetch("SELECT kind FROM audit_events")}
    assert "device.denied" in kinds


async def test_code_of_an_app_that_turned_the_grant_off_is_not_found(
    public: httpx.AsyncClient, admin: httpx.AsyncClient, tv_app: Any
) -> None:
    """Turning the grant off stops its pending devices from being approved."""
    body = await codes(public, tv_app)
    await admin.patch(f"/clients/{tv_app['client_id']}", json={"device_grant": False})
    assert (await enter_code(public, body["user_code"])).status_code == 400


async def test_code_guessing_is_throttled(database_url: str, admin: httpx.AsyncClient) -> None:
    """RFC 8628 §5.1: wrong codes from one address pause lookups (429 with Retry-After)."""
    async with public_app(database_url, login_max_failures_per_address="3") as public:
        statuses = [(await enter_code(public, "BBBB-BBBB")).status_code for _ in range(4)]
        paused = await enter_code(public, "BBBB-BBBB")
    assert statuses[:3] == [400, 400, 400]
    assert paused.status_code == 429
    assert int(paused.headers["retry-after"]) > 0


async def test_right_codes_do_not_count_towards_the_throttle(
    database_url: str, admin: httpx.AsyncClient, tv_app: Any
) -> None:
    """Lookups that find a device are given back: only wrong codes add up."""
    async with public_app(database_url, login_max_failures_per_address="2") as public:
        body = await codes(public, tv_app)
        statuses = [(await enter_code(public, body["user_code"])).status_code for _ in range(5)]
    assert statuses == [200] * 5


async def test_approval_through_the_page_lets_the_device_poll(
    public: httpx.AsyncClient, tv_app: Any, alice: Any
) -> None:
    """The whole flow in process: code, sign in as alice, allow, and the poll gets tokens."""
    body = await codes(public, tv_app)
    async with browser(public) as person:
        signed_in = await person.get(VERIFY)
        fields = {**hidden_fields(signed_in.text), "user_code": body["user_code"]}
        login = await post_form(person, fields, path=VERIFY)
        fields = {**hidden_fields(login.text), "username": "alice", "password": ALICE_PASSWORD}
        back = await post_form(person, fields, path=VERIFY)
        assert back.status_code == 303
        page = await person.get(back.headers["location"])
        fields = {**hidden_fields(page.text), "decision": "allow"}
        assert (await post_form(person, fields, path=VERIFY)).status_code == 200
    assert (await poll(public, tv_app, body["device_code"])).status_code == 200


# The janitor


async def test_janitor_purges_device_codes_an_hour_after_expiry(
    database_url: str, db: asyncpg.Connection, public: httpx.AsyncClient, tv_app: Any
) -> None:
    """Device codes expired over an hour ago go; recent and live ones stay."""
    for _ in range(3):
        await codes(public, tv_app)
    digests = [r["digest"] for r in await db.fetch("SELECT digest FROM device_codes")]
    await db.execute(
        "UPDATE device_codes SET expires_at = now() - interval '61 minutes' WHERE digest = $1",
        digests[0],
    )
    await db.execute(
        "UPDATE device_codes SET expires_at = now() - interval '59 minutes' WHERE digest = $1",
        digests[1],
    )
    settings = Settings.from_env(server_environ(database_url))
    async with open_services(settings) as services:
        report = await janitor.run_once(services.store, settings)
    assert report.deleted["device_codes"] == 1
    left = {r["digest"] for r in await db.fetch("SELECT digest FROM device_codes")}
    assert left == {digests[1], digests[2]}


def public_base() -> str:
    return "https://auth.example.test"
