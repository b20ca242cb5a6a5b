"""The consent page and what it issues: the whole flow to tokens, CSRF, the signed request,
single use, remembered consent and prompt, the oob page, page hygiene (checklist S-08,
S-54 … S-59, S-65)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import pytest

from authserver.http.session import REQUEST_TTL
from tests.authorize_support import (
    ALIAS,
    COOKIE,
    FORM,
    ISSUER,
    LOGOUT,
    LOOPBACK,
    METADATA,
    OOB,
    TOKEN,
    WEB_REDIRECT,
    Client,
    approve,
    assert_error_page,
    browser,
    code_count,
    consent_page,
    decide,
    flip,
    hidden_fields,
    location_base,
    location_params,
    login_form,
    post_form,
    query,
    sign_in,
    signed_in_with_grant,
    submit_login,
    url,
)
from tests.conftest import Clock
from tests.oauth_support import pkce_pair


async def redeem(
    public: httpx.AsyncClient,
    client: Client,
    code: str,
    verifier: str,
    redirect_uri: str = WEB_REDIRECT,
) -> httpx.Response:
    """Exchange a code at the token endpoint (client_secret_post for confidential clients)."""
    params = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        "client_id": str(client["client_id"]),
    }
    if client.get("client_secret"):
        params["client_secret"] = str(client["client_secret"])
    return await public.post(TOKEN, content=urlencode(params), headers={"Content-Type": FORM})


def is_consent(response: httpx.Response) -> bool:
    return response.status_code == 200 and 'value="consent"' in response.text


# The whole flow (S-08)


async def test_full_flow_ends_in_tokens(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """S-08: login 303, consent 303 to the client with a code, and the code buys tokens."""
    verifier, challenge = pkce_pair()
    raw = query(web_client, challenge=challenge, scope="read write")
    login = await sign_in(public, raw)
    assert login.status_code == 303
    page = await public.get(login.headers["location"])
    assert is_consent(page)
    allowed = await decide(public, page.text)
    assert allowed.status_code == 303
    assert location_base(allowed) == WEB_REDIRECT
    token = await redeem(public, web_client, location_params(allowed)["code"], verifier)
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == "read write"
    assert token.json()["access_token"].startswith("phrat_")


async def test_full_flow_through_phraseanet_alias(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """/api/oauthv2/authorize runs the same flow and its code redeems."""
    verifier, challenge = pkce_pair()
    raw = query(web_client, challenge=challenge)
    await sign_in(public, raw, path=ALIAS)
    page = await public.get(url(raw, ALIAS))
    assert is_consent(page)
    assert f'action="{ALIAS}"' in page.text
    allowed = await decide(public, page.text, path=ALIAS)
    assert allowed.status_code == 303
    token = await redeem(public, web_client, location_params(allowed)["code"], verifier)
    assert token.status_code == 200, token.text


async def test_code_is_stored_with_its_request(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """The stored code keeps the client, user, redirect URI, scope and S256 challenge."""
    _, challenge = pkce_pair()
    await approve(public, query(web_client, challenge=challenge, scope="write"))
    row = await db.fetchrow("SELECT * FROM authorization_codes")
    assert row is not None
    assert row["client_id"] == web_client["client_id"]
    assert row["user_id"] == alice["user_id"]
    assert row["redirect_uri"] == WEB_REDIRECT
    assert row["scope"] == "write"
    assert row["code_challenge"] == challenge
    assert row["code_challenge_method"] == "S256"


async def test_consent_page_describes_the_app(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """S-56: consent names the app, its description, website link, owner and scopes in words."""
    page = (await consent_page(public, query(web_client, scope="read write"))).text
    assert "Photo Sync" in page
    assert "Syncs your photos" in page
    assert '<a href="https://photosync.example"' in page
    assert "Olivia" in page
    assert "See your documents" in page
    assert "Add, change and delete" in page


async def test_deny_redirects_access_denied(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-04: Deny answers 303 to the client with access_denied, state and iss, and no code."""
    page = await consent_page(public, query(web_client))
    response = await decide(public, page.text, "deny")
    assert response.status_code == 303
    assert location_base(response) == WEB_REDIRECT
    params = location_params(response)
    assert params["error"] == "access_denied"
    assert params["state"] == "st-123"
    assert params["iss"] == (await public.get(METADATA)).json()["issuer"]
    assert "code" not in params
    assert await code_count(db) == 0


async def test_unknown_decision_issues_nothing(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """A consent form with neither allow nor deny is 400 and issues nothing."""
    page = await consent_page(public, query(web_client))
    response = await decide(public, page.text, "maybe")
    assert response.status_code == 400
    assert await code_count(db) == 0


# CSRF on the consent form (S-54)


async def test_consent_without_csrf_token_is_400(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-54: a consent form without its CSRF token is 400 and issues no code."""
    page = await consent_page(public, query(web_client))
    fields = {**hidden_fields(page.text), "decision": "allow"}
    del fields["csrf_token"]
    response = await post_form(public, fields)
    assert response.status_code == 400
    assert await code_count(db) == 0


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("garbage", id="garbage"),
        pytest.param("cookie", id="session-cookie-value"),
        pytest.param("request", id="signed-request-value"),
        pytest.param("other-session", id="other-session"),
    ],
)
async def test_consent_with_wrong_csrf_token_is_403(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: Client,
    alice: Client,
    token: str,
) -> None:
    """S-54: a wrong CSRF token, one signed for another purpose, or another session's, is 403
    and issues no code."""
    page = await consent_page(public, query(web_client))
    fields = {**hidden_fields(page.text), "decision": "allow"}
    if token == "cookie":
        token = public.cookies[COOKIE]
    elif token == "request":
        token = fields["request"]
    elif token == "other-session":
        async with browser(public) as other:
            token = hidden_fields(await login_form(other, query(web_client)))["csrf_token"]
    response = await post_form(public, {**fields, "csrf_token": token})
    assert response.status_code == 403
    assert await code_count(db) == 0


async def test_consent_from_another_origin_is_403(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-54: a consent form posted cross-site (Origin: https://evil.example) is 403."""
    page = await consent_page(public, query(web_client))
    response = await decide(public, page.text, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert await code_count(db) == 0


async def test_consent_from_sandboxed_cross_site_frame_is_403(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-54: Origin: null sent by a cross-site (e.g. sandboxed) document is refused."""
    page = await consent_page(public, query(web_client))
    headers = {"Origin": "null", "Sec-Fetch-Site": "cross-site"}
    response = await decide(public, page.text, headers=headers)
    assert response.status_code == 403
    assert await code_count(db) == 0


async def test_consent_with_expired_form_is_refused(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: Client,
    alice: Client,
    clock: Clock,
) -> None:
    """S-54: a consent form past its lifetime (CSRF token and signed request) is refused."""
    page = await consent_page(public, query(web_client))
    clock.advance(REQUEST_TTL + 60)
    response = await decide(public, page.text)
    assert response.status_code == 403
    assert await code_count(db) == 0


async def test_consent_with_expired_request_and_fresh_token_is_400(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: Client,
    alice: Client,
    clock: Clock,
) -> None:
    """S-55: a fresh CSRF token does not revive an expired signed request."""
    raw = query(web_client)
    page = await consent_page(public, raw)
    clock.advance(REQUEST_TTL + 60)
    fresh = hidden_fields((await consent_page(public, raw)).text)
    fields = {**hidden_fields(page.text), "decision": "allow", "csrf_token": fresh["csrf_token"]}
    response = await post_form(public, fields)
    assert response.status_code == 400
    assert await code_count(db) == 0


# The signed request (S-55)


async def test_tampered_signed_request_is_400(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-55: one flipped character in the signed request: 400, no code, no grant."""
    page = await consent_page(public, query(web_client))
    fields = {**hidden_fields(page.text), "decision": "allow"}
    fields["request"] = flip(fields["request"])
    response = await post_form(public, fields)
    assert response.status_code == 400
    assert await code_count(db) == 0
    assert await db.fetchval("SELECT count(*) FROM grants") == 0


async def test_signed_request_swapped_for_login_form_is_refused(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-55: the login form's signed request (no consent nonce) cannot approve anything."""
    raw = query(web_client)
    page = await login_form(public, raw)
    await submit_login(public, page)
    consent = await consent_page(public, raw)
    fields = {**hidden_fields(consent.text), "decision": "allow"}
    fields["request"] = hidden_fields(page)["request"]
    response = await post_form(public, fields)
    assert response.status_code == 400
    assert await code_count(db) == 0


async def test_posted_request_fields_are_ignored(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-55: client_id, redirect_uri, scope, challenge or state added to the form change
    nothing: the code follows the signed request."""
    _, challenge = pkce_pair()
    page = await consent_page(public, query(web_client, challenge=challenge))
    fields = {
        **hidden_fields(page.text),
        "decision": "allow",
        "client_id": "someone-else",
        "redirect_uri": "https://evil.example/cb",
        "scope": "read write",
        "code_challenge": pkce_pair()[1],
        "state": "forged",
    }
    response = await post_form(public, fields)
    assert response.status_code == 303
    assert location_base(response) == WEB_REDIRECT
    assert location_params(response)["state"] == "st-123"
    row = await db.fetchrow("SELECT scope, code_challenge FROM authorization_codes")
    assert row is not None
    assert (row["scope"], row["code_challenge"]) == ("read", challenge)


@pytest.fixture
async def bob(admin: httpx.AsyncClient) -> dict[str, Any]:
    response = await admin.put(
        "/users/bob-1", json={"login": "bob", "email": "bob@example.com", "password": "bob pw 123"}
    )
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    "own_csrf",
    [
        pytest.param(False, id="alices-whole-form"),
        pytest.param(True, id="alices-request-bobs-csrf"),
    ],
)
async def test_alices_consent_from_bobs_session_is_refused(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: Client,
    alice: Client,
    bob: Client,
    own_csrf: bool,
) -> None:
    """S-55: alice's consent form posted from bob's signed-in session issues nothing."""
    raw = query(web_client)
    alices = hidden_fields((await consent_page(public, raw)).text)
    async with browser(public) as bobs_browser:
        page = await login_form(bobs_browser, raw)
        await submit_login(bobs_browser, page, "bob", "bob pw 123")
        bobs = hidden_fields((await bobs_browser.get(url(raw))).text)
        fields = {**alices, "decision": "allow"}
        if own_csrf:
            fields["csrf_token"] = bobs["csrf_token"]
        response = await post_form(bobs_browser, fields)
    assert response.status_code in (400, 403)
    if not own_csrf:
        assert response.status_code == 403
    assert await code_count(db) == 0


# Single use (S-55, R-05)


async def test_double_submit_issues_one_code(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-55: the same consent form submitted twice issues one code; the second is refused."""
    page = await consent_page(public, query(web_client))
    first = await decide(public, page.text)
    second = await decide(public, page.text)
    assert first.status_code == 303
    assert second.status_code == 400
    assert "location" not in second.headers
    assert await code_count(db) == 1


async def test_concurrent_double_submit_issues_at_most_one_code(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-55, R-05: five concurrent submissions of one consent form issue at most one code."""
    page = await consent_page(public, query(web_client))
    responses = await asyncio.gather(*(decide(public, page.text) for _ in range(5)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [303, 400, 400, 400, 400]
    assert await code_count(db) == 1


async def test_deny_then_allow_issues_nothing(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-55: after Deny, replaying the same form with Allow issues no code."""
    page = await consent_page(public, query(web_client))
    assert (await decide(public, page.text, "deny")).status_code == 303
    replay = await decide(public, page.text, "allow")
    assert replay.status_code == 400
    assert await code_count(db) == 0


# Remembered consent and prompt (S-57)


async def test_remembered_consent_skips_the_page(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """S-57: after allowing read, a confidential client asking read again gets a code at once."""
    await approve(public, query(web_client))
    response = await public.get(url(query(web_client)))
    assert response.status_code == 302
    assert "code" in location_params(response)
    assert await code_count(db) == 2


async def test_remembered_consent_covers_fewer_scopes(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """S-57: after allowing read write, asking for read alone is answered without a page."""
    await approve(public, query(web_client, scope="read write"))
    response = await public.get(url(query(web_client, scope="read")))
    assert response.status_code == 302
    assert "code" in location_params(response)


async def test_more_scopes_ask_again(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """S-57: after allowing read, a request for read write shows the consent page again."""
    await approve(public, query(web_client))
    assert is_consent(await public.get(url(query(web_client, scope="read write"))))


async def test_prompt_consent_forces_the_page(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """prompt=consent shows the consent page even when consent is remembered."""
    await approve(public, query(web_client))
    assert is_consent(await public.get(url(query(web_client, prompt="consent"))))


async def test_prompt_login_forces_the_login_page(
    public: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """prompt=login shows the login page even to a signed-in user with remembered consent."""
    await approve(public, query(web_client))
    response = await public.get(url(query(web_client, prompt="login")))
    assert response.status_code == 200
    assert 'name="password"' in response.text


async def test_prompt_none_without_session_is_login_required(
    public: httpx.AsyncClient, web_client: Client
) -> None:
    """prompt=none from a signed-out browser redirects login_required with state and iss."""
    response = await public.get(url(query(web_client, prompt="none")))
    assert response.status_code in (302, 303)
    assert location_base(response) == WEB_REDIRECT
    params = location_params(response)
    assert params["error"] == "login_required"
    assert params["state"] == "st-123"
    assert params["iss"] == ISSUER
    assert "code" not in params


async def test_prompt_none_without_grant_is_consent_required(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """prompt=none from a signed-in user who never consented redirects consent_required."""
    await signed_in_with_grant(public, db, alice)
    response = await public.get(url(query(web_client, prompt="none")))
    assert response.status_code in (302, 303)
    assert location_params(response)["error"] == "consent_required"
    assert await code_count(db) == 0


async def test_prompt_none_with_remembered_consent_issues_code(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> None:
    """prompt=none with a session and remembered consent is answered with a code."""
    await signed_in_with_grant(public, db, alice, web_client)
    response = await public.get(url(query(web_client, prompt="none")))
    assert response.status_code == 302
    assert "code" in location_params(response)


@pytest.mark.parametrize(
    "redirect_uri",
    [
        pytest.param(LOOPBACK, id="loopback"),
        pytest.param("http://127.0.0.1:50123/callback", id="loopback-other-port"),
        pytest.param(OOB, id="oob"),
    ],
)
async def test_public_client_is_always_asked(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    desktop_client: Client,
    alice: Client,
    redirect_uri: str,
) -> None:
    """S-57: a desktop (public) client is shown the consent page even after being allowed."""
    await signed_in_with_grant(public, db, alice, desktop_client, ("read", "write"))
    response = await public.get(url(query(desktop_client, redirect_uri=redirect_uri)))
    assert is_consent(response)
    assert await code_count(db) == 0


async def test_revoked_grant_asks_again(
    public: httpx.AsyncClient, admin: httpx.AsyncClient, web_client: Client, alice: Client
) -> None:
    """Revoking the app through the admin API makes the next authorize show consent again."""
    await approve(public, query(web_client))
    revoked = await admin.delete(f"/users/{alice['user_id']}/grants/{web_client['client_id']}")
    assert revoked.status_code in (200, 204)
    assert is_consent(await public.get(url(query(web_client))))


# The oob page for desktop applications


async def _oob_code_page(
    public: httpx.AsyncClient, desktop_client: Client, challenge: str
) -> httpx.Response:
    page = await consent_page(public, query(desktop_client, redirect_uri=OOB, challenge=challenge))
    return await decide(public, page.text)


async def test_oob_shows_the_code(
    public: httpx.AsyncClient, desktop_client: Client, alice: Client
) -> None:
    """The oob URN gets a 200 page showing the code to copy, not a redirect."""
    response = await _oob_code_page(public, desktop_client, pkce_pair()[1])
    assert response.status_code == 200
    assert "location" not in response.headers
    assert re.search(r"phrac_[A-Za-z0-9_-]+", response.text)
    assert "Desk Uploader" in response.text


async def test_oob_code_redeems_with_verifier(
    public: httpx.AsyncClient, desktop_client: Client, alice: Client
) -> None:
    """The code on the oob page redeems at the token endpoint with the PKCE verifier."""
    verifier, challenge = pkce_pair()
    response = await _oob_code_page(public, desktop_client, challenge)
    found = re.search(r"phrac_[A-Za-z0-9_-]+", response.text)
    assert found is not None
    token = await redeem(public, desktop_client, found.group(0), verifier, OOB)
    assert token.status_code == 200, token.text
    assert token.json()["refresh_token"].startswith("phrrt_")


async def test_oob_deny_shows_a_page(
    public: httpx.AsyncClient, db: asyncpg.Connection, desktop_client: Client, alice: Client
) -> None:
    """Deny on an oob request shows a page: there is nowhere to redirect to."""
    page = await consent_page(public, query(desktop_client, redirect_uri=OOB))
    response = await decide(public, page.text, "deny")
    assert_error_page(response)
    assert await code_count(db) == 0


async def test_oob_prompt_none_shows_a_page(
    public: httpx.AsyncClient, desktop_client: Client
) -> None:
    """prompt=none on a signed-out oob request shows a page, not a 500 or a redirect."""
    response = await public.get(url(query(desktop_client, redirect_uri=OOB, prompt="none")))
    assert_error_page(response)


async def test_oob_error_shows_a_page(public: httpx.AsyncClient, desktop_client: Client) -> None:
    """A bad scope on an oob request shows an error page, not a redirect to the URN."""
    assert_error_page(await public.get(url(query(desktop_client, redirect_uri=OOB, scope="x"))))


# Page hygiene (S-56, S-58, S-59, S-65)

Page = Callable[[httpx.AsyncClient, Client, Client], Awaitable[httpx.Response]]


async def _login_page(public: httpx.AsyncClient, web: Client, desk: Client) -> httpx.Response:
    return await public.get(url(query(web)))


async def _failed_login(public: httpx.AsyncClient, web: Client, desk: Client) -> httpx.Response:
    page = await login_form(public, query(web))
    return await submit_login(public, page, "alice", "wrong")


async def _consent(public: httpx.AsyncClient, web: Client, desk: Client) -> httpx.Response:
    return await consent_page(public, query(web))


async def _error(public: httpx.AsyncClient, web: Client, desk: Client) -> httpx.Response:
    return await public.get(url(query(web, redirect_uri="https://evil.example/cb")))


async def _form_refused(public: httpx.AsyncClient, web: Client, desk: Client) -> httpx.Response:
    return await post_form(public, {"action": "login"})


async def _oob(public: httpx.AsyncClient, web: Client, desk: Client) -> httpx.Response:
    return await _oob_code_page(public, desk, pkce_pair()[1])


async def _logout_signed_in(public: httpx.AsyncClient, web: Client, desk: Client) -> httpx.Response:
    await sign_in(public, query(web))
    return await public.get(LOGOUT)


async def _logout_signed_out(
    public: httpx.AsyncClient, web: Client, desk: Client
) -> httpx.Response:
    return await public.get(LOGOUT)


PAGES = [
    pytest.param(_login_page, id="login"),
    pytest.param(_failed_login, id="failed-login"),
    pytest.param(_consent, id="consent"),
    pytest.param(_error, id="error"),
    pytest.param(_form_refused, id="form-refused"),
    pytest.param(_oob, id="oob"),
    pytest.param(_logout_signed_in, id="logout-form"),
    pytest.param(_logout_signed_out, id="logged-out"),
]


@pytest.mark.parametrize("make", PAGES)
async def test_pages_carry_security_headers(
    public: httpx.AsyncClient, web_client: Client, desktop_client: Client, alice: Client, make: Page
) -> None:
    """S-58, S-59, S-65: every HTML page forbids framing, inline script, caching, sniffing and
    referrers, sends HSTS, and allows no cross-origin reads."""
    response = await make(public, web_client, desktop_client)
    assert response.headers["content-type"].startswith("text/html")
    headers = response.headers
    csp = [part.strip() for part in headers["content-security-policy"].split(";")]
    assert "frame-ancestors 'none'" in csp
    script = [part for part in csp if part.startswith(("script-src", "default-src"))]
    assert script, csp
    assert all("'unsafe-inline'" not in part and "*" not in part for part in script)
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert "no-store" in headers["cache-control"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["strict-transport-security"].startswith("max-age=")
    assert "access-control-allow-origin" not in headers


@pytest.mark.parametrize("make", PAGES)
async def test_pages_load_nothing_from_elsewhere(
    public: httpx.AsyncClient, web_client: Client, desktop_client: Client, alice: Client, make: Page
) -> None:
    """S-59: pages have no script and load styles, images and form targets only from here."""
    page = (await make(public, web_client, desktop_client)).text
    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert "<iframe" not in page.lower()
    for attribute in re.findall(r'<(?:link|form)[^>]*(?:href|action)="([^"]*)"', page):
        assert attribute.startswith("/"), attribute
        assert not attribute.startswith("//"), attribute


async def test_stylesheet_is_served(public: httpx.AsyncClient) -> None:
    """S-59: the pages' stylesheet is served by this server as CSS."""
    response = await public.get("/oauth2/assets/authserver.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.fixture
async def hostile_client(admin: httpx.AsyncClient, owner: dict[str, Any]) -> dict[str, Any]:
    """An application whose name and description are HTML."""
    response = await admin.post(
        "/clients",
        json={
            "name": "<img src=x onerror=alert(1)>",
            "description": "<script>alert(2)</script>",
            "website": "https://hostile.example",
            "type": "web",
            "redirect_uris": [WEB_REDIRECT],
            "owner_id": owner["user_id"],
        },
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    "which", [pytest.param("login", id="login"), pytest.param("consent", id="consent")]
)
async def test_app_name_is_escaped(
    public: httpx.AsyncClient, hostile_client: Client, alice: Client, which: str
) -> None:
    """S-56: an application named <img src=x onerror=alert(1)> is shown as text."""
    raw = query(hostile_client)
    if which == "login":
        page = (await public.get(url(raw))).text
    else:
        page = (await consent_page(public, raw)).text
    assert "<img" not in page
    assert "<script>alert(2)" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
