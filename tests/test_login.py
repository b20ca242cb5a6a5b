"""The login page: CSRF, throttling, enumeration, the session cookie and its lifecycle, input
limits, no open redirect, no secrets in logs (checklist S-54, S-60 … S-64)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import asyncpg
import httpx
import pytest

from authserver.http.session import REQUEST_TTL
from tests.authorize_support import (
    ALIAS,
    AUTHORIZE,
    COOKIE,
    FORM,
    ISSUER,
    LOGOUT,
    TOKEN,
    WEB_REDIRECT,
    Client,
    browser,
    consent_page,
    decide,
    flip,
    hidden_fields,
    location_params,
    login_form,
    post_form,
    public_app,
    query,
    sign_in,
    submit_login,
    url,
)
from tests.conftest import ALICE_PASSWORD, SECRET_KEY, Clock
from tests.oauth_support import pkce_pair

BOB_PASSWORD = "bob's own long password"


@pytest.fixture
async def bob(admin: httpx.AsyncClient) -> dict[str, Any]:
    """A second user with a password."""
    response = await admin.put(
        "/users/bob-1", json={"login": "bob", "email": "bob@example.com", "password": BOB_PASSWORD}
    )
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


async def session_count(db: asyncpg.Connection) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM browser_sessions")
    return count


# The happy path and where it redirects (S-08, S-60)


async def test_login_answers_303_back_to_authorize(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """S-08: the login POST answers 303 (never 307/308) to the authorize URL."""
    raw = query(web_client)
    response = await sign_in(public, raw)
    assert response.status_code == 303
    assert response.headers["location"] == url(raw)


async def test_login_signs_the_user_in(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """After login the same request shows the consent page, signed in as alice."""
    raw = query(web_client)
    await sign_in(public, raw)
    page = await public.get(url(raw))
    assert 'value="consent"' in page.text
    assert "alice" in page.text
    assert await db.fetchval("SELECT user_id FROM browser_sessions") == alice["user_id"]


async def test_login_through_phraseanet_alias_stays_on_alias(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """S-60: the login form on the Phraseanet alias path redirects back to that same path."""
    response = await sign_in(public, query(web_client), path=ALIAS)
    assert response.headers["location"].startswith(ALIAS + "?")


EVIL_TARGETS = [
    pytest.param("https://evil.example", id="absolute"),
    pytest.param("//evil.example", id="protocol-relative"),
    pytest.param("/\\evil.example", id="slash-backslash"),
    pytest.param("https:evil.example", id="scheme-only"),
    pytest.param("%2F%2Fevil.example", id="encoded-slashes"),
    pytest.param("javascript:alert(1)", id="javascript"),
]


def _same_origin_authorize(location: str) -> bool:
    target = urlsplit(urljoin(ISSUER + AUTHORIZE, location))
    return (
        f"{target.scheme}://{target.netloc}" == ISSUER
        and target.path == AUTHORIZE
        and not location.startswith("//")
    )


@pytest.mark.parametrize("target", EVIL_TARGETS)
async def test_login_never_redirects_off_site_via_query(
    public: httpx.AsyncClient, web_client: Client, alice: Client, target: str
) -> None:
    """S-60: next / return_to / continue in the request never steer the post-login redirect."""
    raw = query(web_client, next=target, return_to=target, **{"continue": target})
    response = await sign_in(public, raw)
    assert _same_origin_authorize(response.headers["location"])


@pytest.mark.parametrize("target", EVIL_TARGETS)
async def test_login_never_redirects_off_site_via_form(
    public: httpx.AsyncClient, web_client: Client, alice: Client, target: str
) -> None:
    """S-60: extra next / return_to fields in the login form are ignored."""
    page = await login_form(public, query(web_client))
    fields = {
        **hidden_fields(page),
        "username": "alice",
        "password": ALICE_PASSWORD,
        "next": target,
        "return_to": target,
    }
    response = await post_form(public, fields)
    assert response.status_code == 303
    assert _same_origin_authorize(response.headers["location"])


async def test_logout_redirects_to_same_origin(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """S-60: signing out answers 303 to the logout page on this server only."""
    await sign_in(public, query(web_client))
    page = await public.get(LOGOUT)
    response = await post_form(
        public, {**hidden_fields(page.text), "next": "https://evil.example"}, path=LOGOUT
    )
    assert response.status_code == 303
    assert response.headers["location"] == LOGOUT


# CSRF on the login form (S-54)


async def _login_fields(public: httpx.AsyncClient, web_client: Client) -> dict[str, str]:
    page = await login_form(public, query(web_client))
    return {**hidden_fields(page), "username": "alice", "password": ALICE_PASSWORD}


async def test_login_without_csrf_token_is_400(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-54: a login form without its CSRF token is refused with 400; nobody is signed in."""
    fields = await _login_fields(public, web_client)
    del fields["csrf_token"]
    response = await post_form(public, fields)
    assert response.status_code == 400
    assert await session_count(db) == 0


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("not-a-token", id="garbage"),
        pytest.param("", id="empty"),
        pytest.param("cookie", id="session-cookie-value"),
        pytest.param("request", id="signed-request-value"),
    ],
)
async def test_login_with_wrong_csrf_token_is_refused(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client, token: str
) -> None:
    """S-54: a wrong CSRF token, or a value signed for another purpose, is refused."""
    fields = await _login_fields(public, web_client)
    if token == "cookie":
        token = public.cookies[COOKIE]
    elif token == "request":
        token = fields["request"]
    response = await post_form(public, {**fields, "csrf_token": token})
    assert response.status_code in (400, 403)
    if token:
        assert response.status_code == 403
    assert await session_count(db) == 0


async def test_login_with_other_sessions_csrf_token_is_403(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-54: a CSRF token from another browser session is refused with 403."""
    fields = await _login_fields(public, web_client)
    async with browser(public) as other:
        theirs = hidden_fields(await login_form(other, query(web_client)))
    response = await post_form(public, {**fields, "csrf_token": theirs["csrf_token"]})
    assert response.status_code == 403
    assert await session_count(db) == 0


async def test_login_without_session_cookie_is_403(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-54: a login form posted without the browser session it was made for is refused."""
    fields = await _login_fields(public, web_client)
    public.cookies.clear()
    response = await post_form(public, fields)
    assert response.status_code == 403
    assert await session_count(db) == 0


async def test_login_from_another_origin_is_403(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-54: a login form posted cross-site (Origin: https://evil.example) is refused."""
    fields = await _login_fields(public, web_client)
    response = await post_form(public, fields, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert await session_count(db) == 0


async def test_login_from_own_origin_is_accepted(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """S-54: the same form with our own Origin goes through (the check is not over-broad)."""
    fields = await _login_fields(public, web_client)
    response = await post_form(public, fields, headers={"Origin": ISSUER})
    assert response.status_code == 303


async def test_login_with_expired_csrf_token_is_403(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: Client,
    alice: Client,
    clock: Clock,
) -> None:
    """S-54: a login form older than its lifetime is refused."""
    fields = await _login_fields(public, web_client)
    clock.advance(REQUEST_TTL + 60)
    response = await post_form(public, fields)
    assert response.status_code == 403
    assert await session_count(db) == 0


async def test_login_with_expired_signed_request_is_400(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: Client,
    alice: Client,
    clock: Clock,
) -> None:
    """S-55: a fresh CSRF token does not revive an expired signed request."""
    fields = await _login_fields(public, web_client)
    clock.advance(REQUEST_TTL + 60)
    fresh = hidden_fields(await login_form(public, query(web_client)))
    response = await post_form(public, {**fields, "csrf_token": fresh["csrf_token"]})
    assert response.status_code == 400
    assert await session_count(db) == 0


async def test_login_with_tampered_signed_request_is_400(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-55: one changed character in the signed request and the form is refused."""
    fields = await _login_fields(public, web_client)
    fields["request"] = flip(fields["request"])
    response = await post_form(public, fields)
    assert response.status_code == 400
    assert await session_count(db) == 0


# Throttling (S-61)


@pytest.fixture
async def throttled(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The public API locking an account after three failures."""
    async with public_app(database_url, login_max_failures="3") as client:
        yield client


async def _fail(client: httpx.AsyncClient, page: str, username: str, times: int) -> None:
    for _ in range(times):
        response = await submit_login(client, page, username, "wrong password")
        assert response.status_code == 400, response.text


async def test_login_is_paused_after_max_failures(
    throttled: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-61: after the configured failures even the right password gets 429 'Try again later'."""
    page = await login_form(throttled, query(web_client))
    await _fail(throttled, page, "alice", 3)
    response = await submit_login(throttled, page)
    assert response.status_code == 429
    assert "Try again later" in response.text
    assert int(response.headers["retry-after"]) > 0
    assert await session_count(db) == 0


async def test_failures_below_the_limit_do_not_pause(
    throttled: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """S-61: one failure short of the limit, the right password still signs in."""
    page = await login_form(throttled, query(web_client))
    await _fail(throttled, page, "alice", 2)
    assert (await submit_login(throttled, page)).status_code == 303


async def test_spelling_variants_count_against_one_account(
    throttled: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """S-61, S-64: failures under case and fullwidth spellings count against one account."""
    page = await login_form(throttled, query(web_client))
    await _fail(throttled, page, "ALICE", 1)
    await _fail(throttled, page, "\uff41\uff4c\uff49\uff43\uff45", 1)  # fullwidth alice
    await _fail(throttled, page, "Alice", 1)
    assert (await submit_login(throttled, page)).status_code == 429


async def test_other_accounts_are_not_paused(
    throttled: httpx.AsyncClient, web_client: Client, alice: Client, bob: Client
) -> None:
    """S-61: alice's lockout does not stop bob signing in from the same address."""
    page = await login_form(throttled, query(web_client))
    await _fail(throttled, page, "alice", 3)
    async with browser(throttled) as other:
        bobs = await login_form(other, query(web_client))
        response = await submit_login(other, bobs, "bob", BOB_PASSWORD)
    assert response.status_code == 303


async def test_address_is_paused_after_its_own_limit(
    database_url: str, web_client: Client, alice: Client, bob: Client
) -> None:
    """S-61: failures spread over many accounts pause the client address for everyone."""
    async with public_app(
        database_url, login_max_failures="100", login_max_failures_per_address="3"
    ) as client:
        page = await login_form(client, query(web_client))
        for name in ("carol", "dave", "erin"):
            await _fail(client, page, name, 1)
        response = await submit_login(client, page, "bob", BOB_PASSWORD)
    assert response.status_code == 429


async def test_lockout_ends_by_itself(database_url: str, web_client: Client, alice: Client) -> None:
    """S-61: no permanent lockout: after AUTHSERVER_LOGIN_LOCKOUT seconds login works again."""
    async with public_app(database_url, login_max_failures="2", login_lockout="2") as client:
        page = await login_form(client, query(web_client))
        await _fail(client, page, "alice", 2)
        assert (await submit_login(client, page)).status_code == 429
        await asyncio.sleep(2.2)
        assert (await submit_login(client, page)).status_code == 303


async def test_counters_are_shared_across_instances(
    throttled: httpx.AsyncClient, database_url: str, web_client: Client, alice: Client
) -> None:
    """S-61: failures counted by one replica pause the account on another."""
    page = await login_form(throttled, query(web_client))
    await _fail(throttled, page, "alice", 3)
    async with public_app(database_url, login_max_failures="3") as replica:
        other = await login_form(replica, query(web_client))
        assert (await submit_login(replica, other)).status_code == 429


async def test_unknown_accounts_are_paused_too(
    throttled: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """S-62: a login nobody has is paused like a real one, so the pause reveals nothing."""
    page = await login_form(throttled, query(web_client))
    await _fail(throttled, page, "mallory", 3)
    response = await submit_login(throttled, page, "mallory", "anything")
    assert response.status_code == 429


async def test_success_resets_the_account_counter(
    throttled: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """S-61: a successful login forgets earlier failures: two more do not reach the limit."""
    page = await login_form(throttled, query(web_client))
    await _fail(throttled, page, "alice", 2)
    assert (await submit_login(throttled, page)).status_code == 303
    throttled.cookies.clear()
    page = await login_form(throttled, query(web_client))
    await _fail(throttled, page, "alice", 2)
    assert (await submit_login(throttled, page)).status_code == 303


# Enumeration (S-62)


def _normalised(page: str, username: str) -> str:
    page = re.sub(r'(name="(?:csrf_token|request)" value=")[^"]*', r"\1", page)
    return page.replace(f'value="{username}"', 'value=""')


async def test_unknown_user_and_wrong_password_look_the_same(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """S-62: an unknown login and a wrong password get the same status, headers and page."""
    page = await login_form(public, query(web_client))
    unknown = await submit_login(public, page, "mallory", "wrong password")
    wrong = await submit_login(public, page, "alice", "wrong password")
    assert unknown.status_code == wrong.status_code == 400
    assert _normalised(unknown.text, "mallory") == _normalised(wrong.text, "alice")
    assert sorted(unknown.headers.keys()) == sorted(wrong.headers.keys())
    assert "mallory" not in _normalised(unknown.text, "mallory")


async def test_failed_login_escapes_echoed_username(
    public: httpx.AsyncClient, web_client: Client
) -> None:
    """S-07: the username echoed back into the login form is HTML-escaped."""
    page = await login_form(public, query(web_client))
    response = await submit_login(public, page, '"><script>alert(1)</script>', "x")
    assert response.status_code == 400
    assert "<script>" not in response.text
    assert "&lt;script&gt;" in response.text


# The session cookie (S-63)


def _session_cookie_header(response: httpx.Response) -> str:
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith(COOKIE + "=")]
    assert len(headers) == 1, response.headers
    return headers[0]


@pytest.mark.parametrize(
    "when", [pytest.param("login-page", id="login-page"), pytest.param("login", id="login")]
)
async def test_session_cookie_attributes(
    public: httpx.AsyncClient, web_client: Client, alice: Client, when: str
) -> None:
    """S-63: the session cookie is __Host-, Secure, HttpOnly, SameSite=Lax, Path=/, no Domain."""
    raw = query(web_client)
    response = await public.get(url(raw))
    if when == "login":
        response = await submit_login(public, response.text)
    attributes = {part.strip().lower() for part in _session_cookie_header(response).split(";")[1:]}
    assert "secure" in attributes
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes
    assert not any(attribute.startswith("domain") for attribute in attributes)


async def test_session_cookie_changes_at_login(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """S-63: signing in replaces the session cookie value (no fixation)."""
    page = await login_form(public, query(web_client))
    before = public.cookies[COOKIE]
    await submit_login(public, page)
    assert public.cookies[COOKIE] != before


async def test_pre_login_cookie_is_not_signed_in(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """S-63: the cookie a browser had before signing in is not signed in afterwards."""
    raw = query(web_client)
    page = await login_form(public, raw)
    before = public.cookies[COOKIE]
    await submit_login(public, page)
    async with browser(public) as attacker:
        response = await attacker.get(url(raw), headers={"Cookie": f"{COOKIE}={before}"})
    assert 'name="password"' in response.text


async def test_logout_ends_the_session(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-63: after logout, the old cookie replayed no longer signs in."""
    raw = query(web_client)
    await sign_in(public, raw)
    cookie = public.cookies[COOKIE]
    page = await public.get(LOGOUT)
    response = await post_form(public, hidden_fields(page.text), path=LOGOUT)
    assert response.status_code == 303
    assert await session_count(db) == 0
    async with browser(public) as replay:
        again = await replay.get(url(raw), headers={"Cookie": f"{COOKIE}={cookie}"})
    assert 'name="password"' in again.text


async def test_logout_clears_the_cookie(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """S-63: the logout response deletes the session cookie from the browser."""
    await sign_in(public, query(web_client))
    page = await public.get(LOGOUT)
    response = await post_form(public, hidden_fields(page.text), path=LOGOUT)
    header = _session_cookie_header(response).lower()
    assert "max-age=0" in header or "expires=thu, 01 jan 1970" in header
    assert COOKIE not in public.cookies


@pytest.mark.parametrize(
    ("drop_token", "origin", "status"),
    [
        pytest.param(True, None, 400, id="no-csrf-token"),
        pytest.param(False, "https://evil.example", 403, id="cross-origin"),
    ],
)
async def test_logout_needs_csrf(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: Client,
    alice: Client,
    drop_token: bool,
    origin: str | None,
    status: int,
) -> None:
    """S-54: a logout without the CSRF token, or from another site, is refused (no forced
    sign-out)."""
    await sign_in(public, query(web_client))
    fields = hidden_fields((await public.get(LOGOUT)).text)
    if drop_token:
        fields = {}
    headers = {"Origin": origin} if origin else {}
    response = await post_form(public, fields, path=LOGOUT, headers=headers)
    assert response.status_code == status  # refused like the login and consent forms
    assert await session_count(db) == 1


async def test_session_expires_after_its_lifetime(
    database_url: str, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-63: a session lives AUTHSERVER_SESSION_TTL seconds, then the login page is back."""
    async with public_app(database_url, session_ttl="60") as client:
        raw = query(web_client)
        response = await sign_in(client, raw)
        assert "max-age=60" in _session_cookie_header(response).lower()
        lifetime = await db.fetchval("SELECT expires_at - login_at FROM browser_sessions")
        assert 59 <= lifetime.total_seconds() <= 61
        await db.execute("UPDATE browser_sessions SET expires_at = now() - interval '1 second'")
        again = await client.get(url(raw))
    assert 'name="password"' in again.text


@pytest.mark.parametrize(
    ("keys", "signed_in"),
    [
        pytest.param(f"newer-key-0123456789abcdefghijklmnopqrstu,{SECRET_KEY}", True, id="overlap"),
        pytest.param("newer-key-0123456789abcdefghijklmnopqrstu", False, id="old-key-gone"),
    ],
)
async def test_session_across_key_rotation(
    public: httpx.AsyncClient,
    database_url: str,
    web_client: Client,
    alice: Client,
    keys: str,
    signed_in: bool,
) -> None:
    """S-63: a session survives a key rotation while the old key is listed, not after."""
    raw = query(web_client)
    await sign_in(public, raw)
    cookie = public.cookies[COOKIE]
    async with public_app(database_url, secret_keys=keys) as rotated:
        response = await rotated.get(url(raw), headers={"Cookie": f"{COOKIE}={cookie}"})
    assert ('value="consent"' in response.text) is signed_in
    assert ('name="password"' in response.text) is not signed_in


async def test_prompt_login_with_session_shows_login_page(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """prompt=login asks for the password again even when signed in, without looping."""
    await sign_in(public, query(web_client))
    raw = query(web_client, prompt="login")
    page = await login_form(public, raw)
    response = await submit_login(public, page)
    assert response.status_code == 303
    assert "prompt" not in response.headers["location"]
    after = await public.get(response.headers["location"])
    assert 'value="consent"' in after.text


# Credential input limits (S-64)


async def test_huge_password_is_400_before_any_work(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-64: a 1 MB password is refused with 400 quickly, without counting a login attempt."""
    fields = await _login_fields(public, web_client)
    started = time.monotonic()
    response = await post_form(public, {**fields, "password": "x" * 1024 * 1024})
    assert response.status_code == 400
    assert time.monotonic() - started < 2
    assert await db.fetchval("SELECT count(*) FROM login_failures") == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("password", "pass\x00word", id="nul-password"),
        pytest.param("username", "ali\x00ce", id="nul-username"),
        pytest.param("username", "\x00", id="only-nul-username"),
        pytest.param("password", "x" * 5000, id="long-password"),
    ],
)
async def test_bad_credential_characters_are_400(
    public: httpx.AsyncClient,
    web_client: Client,
    alice: Client,
    field: str,
    value: str,
) -> None:
    """S-64: NUL or an over-long value in the login form is 400, never 500."""
    fields = await _login_fields(public, web_client)
    response = await post_form(public, {**fields, field: value})
    assert response.status_code == 400


async def test_invalid_utf8_password_is_400(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """S-64: a password that is not UTF-8 is 400, never 500."""
    fields = await _login_fields(public, web_client)
    del fields["password"]
    response = await public.post(
        AUTHORIZE,
        content=urlencode(fields) + "&password=%FF%FE",
        headers={"Content-Type": FORM},
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "login",
    [
        pytest.param("\uff41\uff4c\uff49\uff43\uff45", id="fullwidth"),
        pytest.param("ALICE", id="upper-case"),
    ],
)
async def test_login_name_variants_sign_in_as_alice(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client, login: str
) -> None:
    """S-64: fullwidth and case variants of a login (NFKC, case-insensitive) are that user."""
    await sign_in(public, query(web_client), username=login)
    assert await db.fetchval("SELECT user_id FROM browser_sessions") == alice["user_id"]


# Logs (S-66)


async def test_flow_logs_no_secrets(
    public: httpx.AsyncClient,
    web_client: Client,
    alice: Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """S-66: a whole login + consent + token flow logs no password, code, CSRF token or
    session cookie."""
    caplog.set_level(logging.INFO)
    for name in ("authserver", "uvicorn", "uvicorn.access", "uvicorn.error"):
        caplog.set_level(logging.INFO, logger=name)
    verifier, challenge = pkce_pair()
    raw = query(web_client, challenge=challenge)
    page = await login_form(public, raw)
    secrets = [ALICE_PASSWORD, "wrong password", public.cookies[COOKIE]]
    secrets += hidden_fields(page).values()
    await submit_login(public, page, "alice", "wrong password")
    await submit_login(public, page)
    secrets.append(public.cookies[COOKIE])
    consent = await consent_page(public, raw)
    secrets += hidden_fields(consent.text).values()
    code = location_params(await decide(public, consent.text))["code"]
    token = await public.post(
        TOKEN,
        content=urlencode(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": WEB_REDIRECT,
                "code_verifier": verifier,
                "client_id": web_client["client_id"],
                "client_secret": web_client["client_secret"],
            }
        ),
        headers={"Content-Type": FORM},
    )
    assert token.status_code == 200
    secrets += [code, verifier, web_client["client_secret"]]
    secrets += [token.json()["access_token"], token.json()["refresh_token"]]
    logged = caplog.text + "".join(repr(record.args) for record in caplog.records)
    for secret in secrets:
        if secret not in ("login", "consent"):
            assert secret not in logged
