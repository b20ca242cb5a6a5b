"""The authorization endpoint's errors: an error page where the client cannot be trusted with a
redirect, an error redirect carrying ``state`` and ``iss`` everywhere else (RFC 6749 §4.1.2.1,
RFC 9207, RFC 8252 §7.3; checklist S-01 to S-07, S-09)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import asyncpg
import httpx
import pytest

from tests.authorize_support import (
    AUTHORIZE,
    LOOPBACK,
    METADATA,
    WEB_REDIRECT,
    Client,
    approve,
    assert_error_page,
    code_count,
    consent_page,
    decide,
    location_base,
    location_params,
    login_form,
    query,
    signed_in_with_grant,
    url,
)
from tests.oauth_support import pkce_pair


@pytest.fixture
async def remembered(
    public: httpx.AsyncClient, db: asyncpg.Connection, web_client: Client, alice: Client
) -> int:
    """Alice is signed in and once allowed the web client ``read``: a request the server accepted
    would now be answered with a code at once. The number of codes issued so far."""
    await signed_in_with_grant(public, db, alice, web_client)
    return 0


async def issuer(public: httpx.AsyncClient) -> str:
    response = await public.get(METADATA)
    value: str = response.json()["issuer"]
    return value


# Error pages: never a redirect (S-01, S-02, S-06)

S01_VARIANTS = [
    pytest.param(WEB_REDIRECT + "/x", id="path-suffix"),
    pytest.param(WEB_REDIRECT + "/", id="trailing-slash"),
    pytest.param(WEB_REDIRECT + "x", id="cbx"),
    pytest.param(WEB_REDIRECT + "/..", id="dot-dot"),
    pytest.param(WEB_REDIRECT + "/../cb", id="dot-dot-back"),
    pytest.param(WEB_REDIRECT + "%2F..%2Fevil", id="encoded-slashes"),
    pytest.param(WEB_REDIRECT + "/%2e%2e/evil", id="encoded-dots"),
    pytest.param(WEB_REDIRECT + "%252F..%252Fevil", id="double-encoded"),
    pytest.param(WEB_REDIRECT + ";x", id="semicolon"),
    pytest.param(WEB_REDIRECT + "%3B/../x", id="encoded-semicolon"),
    pytest.param(WEB_REDIRECT + "%0A%0D/../x", id="encoded-newline"),
    pytest.param(WEB_REDIRECT + "?x=1", id="query-added"),
    pytest.param(WEB_REDIRECT + "?code=attacker", id="code-pollution"),
    pytest.param(WEB_REDIRECT + "#x", id="fragment"),
    pytest.param("https://photosync.example@evil.example/cb", id="userinfo"),
    pytest.param("https://photosync.example.evil.example/cb", id="host-suffix"),
    pytest.param("https://evil.example/photosync.example/cb", id="host-in-path"),
    pytest.param("https://photosync.example./cb", id="trailing-dot-host"),
    pytest.param("https://photosync.example:443/cb", id="port-443"),
    pytest.param("https://photosync.example:8443/cb", id="port-8443"),
    pytest.param("http://photosync.example/cb", id="http-scheme"),
    pytest.param("HTTPS://PHOTOSYNC.EXAMPLE/cb", id="upper-case"),
    pytest.param("https://photosync.example/CB", id="upper-case-path"),
    pytest.param("https://photosync.example/%63b", id="encoded-unreserved"),
    pytest.param("https://photosync.example\\@evil.example/cb", id="backslash"),
    pytest.param("https://photosync.example\uff0fcb", id="fullwidth-solidus"),
    pytest.param(WEB_REDIRECT + "\t", id="tab"),
    pytest.param(" " + WEB_REDIRECT, id="leading-space"),
    pytest.param(WEB_REDIRECT + " ", id="trailing-space"),
    pytest.param(WEB_REDIRECT + "\r\n", id="crlf"),
]


@pytest.mark.parametrize("redirect_uri", S01_VARIANTS)
async def test_unregistered_redirect_uri_shows_error_page(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: Client,
    remembered: int,
    redirect_uri: str,
) -> None:
    """S-01: a redirect URI that is not exactly the registered one gets an error page, no code."""
    response = await public.get(url(query(web_client, redirect_uri=redirect_uri)))
    assert_error_page(response)
    assert await code_count(db) == remembered


def _unknown_client(web: Client, desktop: Client) -> str:
    return query({"client_id": "no-such-client"})


def _malformed_client_id(web: Client, desktop: Client) -> str:
    return query({"client_id": "bad id!<>"})


def _missing_client_id(web: Client, desktop: Client) -> str:
    return query(None)


def _missing_redirect_two_registered(web: Client, desktop: Client) -> str:
    return query(desktop, redirect_uri=None)


def _other_clients_redirect(web: Client, desktop: Client) -> str:
    return query(web, redirect_uri=LOOPBACK)


def _duplicated_client_id(web: Client, desktop: Client) -> str:
    return query(web) + "&" + urlencode({"client_id": web["client_id"]})


def _duplicated_redirect_uri(web: Client, desktop: Client) -> str:
    return query(web) + "&" + urlencode({"redirect_uri": WEB_REDIRECT})


def _duplicated_client_id_other_value(web: Client, desktop: Client) -> str:
    return query(web) + "&" + urlencode({"client_id": desktop["client_id"]})


def _unknown_client_bad_scope(web: Client, desktop: Client) -> str:
    return query({"client_id": "no-such-client"}, scope="bogus")


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(_unknown_client, id="unknown-client"),
        pytest.param(_malformed_client_id, id="malformed-client-id"),
        pytest.param(_missing_client_id, id="missing-client-id"),
        pytest.param(_missing_redirect_two_registered, id="missing-redirect-two-registered"),
        pytest.param(_other_clients_redirect, id="other-clients-redirect-uri"),
        pytest.param(_duplicated_client_id, id="duplicated-client-id"),
        pytest.param(_duplicated_client_id_other_value, id="duplicated-client-id-differing"),
        pytest.param(_duplicated_redirect_uri, id="duplicated-redirect-uri"),
        pytest.param(_unknown_client_bad_scope, id="unknown-client-and-bad-scope"),
    ],
)
async def test_untrusted_client_or_redirect_shows_error_page(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: Client,
    desktop_client: Client,
    remembered: int,
    build: Any,
) -> None:
    """S-02, S-06: an unknown or missing client, or no usable redirect URI, gets a 400 HTML error
    page with no Location and no code."""
    response = await public.get(url(build(web_client, desktop_client)))
    assert_error_page(response)
    assert "photosync.example/cb?" not in response.text
    assert await code_count(db) == remembered


async def test_inactive_client_shows_error_page(
    public: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: Client,
    remembered: int,
) -> None:
    """S-02: a deactivated application's requests get a 400 error page, no redirect, no code."""
    patched = await admin.patch(f"/clients/{web_client['client_id']}", json={"active": False})
    assert patched.status_code == 200
    assert_error_page(await public.get(url(query(web_client))))
    assert await code_count(db) == remembered


async def test_malformed_query_shows_error_page(
    public: httpx.AsyncClient, web_client: Client
) -> None:
    """S-06: a query that is not UTF-8 cannot be trusted to name a redirect: error page."""
    response = await public.get(url(query(web_client) + "&state=%FF%FE"))
    assert_error_page(response)


# Error redirects (S-04, S-05, S-10 … S-13)

REDIRECT_ERRORS = [
    pytest.param({"scope": "bogus"}, "invalid_scope", id="unknown-scope"),
    pytest.param({"scope": "read bogus"}, "invalid_scope", id="one-unknown-scope"),
    pytest.param({"response_type": "token"}, "unsupported_response_type", id="token"),
    pytest.param({"response_type": "code token"}, "unsupported_response_type", id="code-token"),
    pytest.param({"response_type": "id_token"}, "unsupported_response_type", id="id-token"),
    pytest.param({"response_type": "foo"}, "unsupported_response_type", id="foo"),
    pytest.param({"response_type": None}, "invalid_request", id="response-type-missing"),
    pytest.param({"response_type": ""}, "invalid_request", id="response-type-empty"),
    pytest.param({"challenge": "", "method": None}, "invalid_request", id="no-pkce"),
    pytest.param({"challenge": ""}, "invalid_request", id="no-challenge-with-method"),
    pytest.param({"method": "plain"}, "invalid_request", id="method-plain"),
    pytest.param({"method": None}, "invalid_request", id="method-missing"),
    pytest.param({"method": "S512"}, "invalid_request", id="method-s512"),
    pytest.param({"method": "s256"}, "invalid_request", id="method-lower-case"),
    pytest.param({"challenge": "a" * 42}, "invalid_request", id="challenge-42"),
    pytest.param({"challenge": "a" * 44}, "invalid_request", id="challenge-44"),
    pytest.param({"challenge": "a" * 42 + "+"}, "invalid_request", id="challenge-plus"),
    pytest.param({"challenge": "a" * 42 + "="}, "invalid_request", id="challenge-equals"),
    pytest.param({"challenge": "a" * 42 + "/"}, "invalid_request", id="challenge-slash"),
]

ODD_STATE = "S t+a/t=e&é~%41;"


@pytest.mark.parametrize(("overrides", "error"), REDIRECT_ERRORS)
async def test_request_error_redirects_to_client(
    public: httpx.AsyncClient,
    db: asyncpg.Connection,
    web_client: Client,
    remembered: int,
    overrides: dict[str, Any],
    error: str,
) -> None:
    """S-04, S-05, S-10…S-13: a bad request from a known client and registered URI redirects
    there with the error, state byte-for-byte, the metadata issuer, and no code."""
    response = await public.get(url(query(web_client, state=ODD_STATE, **overrides)))
    assert response.status_code in (302, 303)
    assert response.headers["location"].startswith(WEB_REDIRECT + "?")
    assert location_base(response) == WEB_REDIRECT
    params = location_params(response)
    assert params["error"] == error
    assert params["state"] == ODD_STATE
    assert params["iss"] == await issuer(public)
    assert "code" not in params
    assert await code_count(db) == remembered


async def test_public_client_without_pkce_is_refused(
    public: httpx.AsyncClient, desktop_client: Client
) -> None:
    """S-10: a desktop application's request without a code challenge redirects with
    invalid_request."""
    response = await public.get(
        url(query(desktop_client, redirect_uri=LOOPBACK, challenge="", method=None))
    )
    assert response.status_code in (302, 303)
    assert location_base(response) == LOOPBACK
    assert location_params(response)["error"] == "invalid_request"


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("response_type", id="response_type"),
        pytest.param("scope", id="scope"),
        pytest.param("code_challenge", id="code_challenge"),
        pytest.param("code_challenge_method", id="code_challenge_method"),
    ],
)
async def test_duplicated_parameter_redirects_invalid_request(
    public: httpx.AsyncClient, web_client: Client, remembered: int, name: str
) -> None:
    """S-06: a repeated protocol parameter is invalid_request at the client, with state."""
    values = {
        "response_type": "code",
        "scope": "read",
        "code_challenge": pkce_pair()[1],
        "code_challenge_method": "S256",
    }
    response = await public.get(url(query(web_client) + "&" + urlencode({name: values[name]})))
    assert response.status_code in (302, 303)
    assert location_base(response) == WEB_REDIRECT
    params = location_params(response)
    assert params["error"] == "invalid_request"
    assert params["state"] == "st-123"
    assert "code" not in params


async def test_duplicated_state_is_not_echoed(
    public: httpx.AsyncClient, web_client: Client, remembered: int
) -> None:
    """S-06: a repeated state gives invalid_request without any state in the redirect."""
    response = await public.get(url(query(web_client, state="one") + "&state=two"))
    assert response.status_code in (302, 303)
    params = location_params(response)
    assert params["error"] == "invalid_request"
    assert "state" not in params
    assert "code" not in params


async def test_empty_state_is_as_if_omitted(
    public: httpx.AsyncClient, web_client: Client, remembered: int
) -> None:
    """S-06: an empty state behaves like none: the code comes back without a state."""
    response = await public.get(url(query(web_client, state="")))
    assert response.status_code == 302
    params = location_params(response)
    assert "code" in params
    assert "state" not in params


async def test_empty_redirect_uri_is_as_if_omitted(
    public: httpx.AsyncClient, web_client: Client, remembered: int
) -> None:
    """S-06: an empty redirect_uri for a client with one registered URI falls back to it."""
    response = await public.get(url(query(web_client, redirect_uri="")))
    assert response.status_code == 302
    assert location_base(response) == WEB_REDIRECT
    assert "code" in location_params(response)


async def test_unknown_parameters_are_ignored(
    public: httpx.AsyncClient, web_client: Client, remembered: int
) -> None:
    """S-06: unknown parameters change nothing and are not copied into the redirect."""
    raw = query(web_client, foo="bar", next="https://evil.example/", nonce="n-1")
    response = await public.get(url(raw))
    assert response.status_code == 302
    assert location_base(response) == WEB_REDIRECT
    assert set(location_params(response)) == {"code", "state", "iss"}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="plain"),
        pytest.param({"Origin": "https://evil.example"}, id="cross-origin"),
    ],
)
async def test_authorize_has_no_cors(
    public: httpx.AsyncClient, web_client: Client, headers: dict[str, str]
) -> None:
    """S-06: no Access-Control-Allow-Origin on /authorize, even when asked cross-origin."""
    response = await public.get(url(query(web_client)), headers=headers)
    assert "access-control-allow-origin" not in response.headers
    preflight = await public.options(
        AUTHORIZE, headers={**headers, "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers


# iss (S-09)


async def _success(public: httpx.AsyncClient, web_client: Client) -> httpx.Response:
    return await approve(public, query(web_client))


async def _denied(public: httpx.AsyncClient, web_client: Client) -> httpx.Response:
    page = await consent_page(public, query(web_client))
    return await decide(public, page.text, "deny")


async def _invalid_scope(public: httpx.AsyncClient, web_client: Client) -> httpx.Response:
    return await public.get(url(query(web_client, scope="bogus")))


async def _silent(public: httpx.AsyncClient, web_client: Client) -> httpx.Response:
    await approve(public, query(web_client))
    return await public.get(url(query(web_client)))


@pytest.mark.parametrize(
    ("flow", "key"),
    [
        pytest.param(_success, "code", id="success"),
        pytest.param(_silent, "code", id="remembered-consent"),
        pytest.param(_denied, "error", id="access-denied"),
        pytest.param(_invalid_scope, "error", id="invalid-scope"),
    ],
)
async def test_every_redirect_carries_iss(
    public: httpx.AsyncClient, web_client: Client, alice: Client, flow: Any, key: str
) -> None:
    """S-09: success and error redirects carry iss, string-identical to the metadata issuer."""
    response = await flow(public, web_client)
    assert response.status_code in (302, 303)
    params = location_params(response)
    assert key in params
    assert params["iss"] == await issuer(public)


# state and reflected values (S-07)

UNICODE_STATE = ("é中😀ü\u200bß∑ק" * 120)[:900]  # about 2 KB of UTF-8

STATES = [
    pytest.param("<script>alert(1)</script>", id="script"),
    pytest.param("\"'><img src=x onerror=alert(1)>", id="img-onerror"),
    pytest.param(UNICODE_STATE, id="2kb-unicode"),
    pytest.param("%0d%0aSet-Cookie:x=1", id="encoded-crlf-text"),
    pytest.param("a+b c&d=e#f", id="delimiters"),
]


@pytest.mark.parametrize("state", STATES)
async def test_state_is_echoed_exactly_on_error(
    public: httpx.AsyncClient, web_client: Client, state: str
) -> None:
    """S-07: state comes back exactly, URL-encoded, in an error redirect."""
    assert len(UNICODE_STATE.encode()) >= 2048
    response = await public.get(url(query(web_client, state=state, scope="bogus")))
    assert response.status_code in (302, 303)
    assert response.headers["location"].isascii()
    assert location_params(response)["state"] == state


@pytest.mark.parametrize("state", STATES)
async def test_state_is_echoed_exactly_with_code(
    public: httpx.AsyncClient, web_client: Client, alice: Client, state: str
) -> None:
    """S-07: state survives the login and consent forms and comes back exactly with the code."""
    response = await approve(public, query(web_client, state=state))
    params = location_params(response)
    assert params["state"] == state
    assert "code" in params


@pytest.mark.parametrize("state", STATES[:2])
async def test_state_is_not_reflected_raw_in_pages(
    public: httpx.AsyncClient, web_client: Client, alice: Client, state: str
) -> None:
    """S-07: the login and consent pages never carry state as raw HTML."""
    login = await public.get(url(query(web_client, state=state)))
    assert state not in login.text
    consent = await consent_page(public, query(web_client, state=state))
    assert state not in consent.text
    assert "<script" not in consent.text
    assert "<img" not in consent.text


async def test_crlf_in_state_cannot_inject_headers(
    public: httpx.AsyncClient, web_client: Client
) -> None:
    """S-07: a real CR LF in state is refused with a page; no header is injected."""
    response = await public.get(url(query(web_client, state="a\r\nSet-Cookie: x=1")))
    assert_error_page(response)
    assert all("x=1" not in value for value in response.headers.get_list("set-cookie"))
    assert "x" not in response.cookies


async def test_error_page_escapes_reflected_parameter_name(
    public: httpx.AsyncClient, web_client: Client
) -> None:
    """S-07: an error page does not repeat a parameter name the caller made up, escaped or not."""
    name = "<script>alert(1)</script>"
    response = await public.get(url(query(web_client) + f"&{quote(name)}=%01"))
    assert_error_page(response)
    assert "<script>" not in response.text
    assert "alert(1)" not in response.text


# Desktop applications: loopback redirects (S-03)


@pytest.mark.parametrize(
    "redirect_uri",
    [
        pytest.param("http://127.0.0.1:51004/callback", id="high-port"),
        pytest.param("http://127.0.0.1:80/callback", id="port-80"),
        pytest.param(LOOPBACK, id="no-port"),
    ],
)
async def test_loopback_redirect_accepts_any_port(
    public: httpx.AsyncClient, desktop_client: Client, alice: Client, redirect_uri: str
) -> None:
    """S-03: the registered loopback URI matches on any port, and the code goes to that port."""
    response = await approve(public, query(desktop_client, redirect_uri=redirect_uri))
    assert location_base(response) == redirect_uri
    assert "code" in location_params(response)


@pytest.mark.parametrize(
    "redirect_uri",
    [
        pytest.param("http://127.0.0.1:51004/callbackx", id="path-suffix"),
        pytest.param("http://127.0.0.1:51004/other", id="other-path"),
        pytest.param("http://127.0.0.1:51004/callback?x=1", id="query-added"),
        pytest.param("http://localhost:51004/callback", id="localhost"),
        pytest.param("http://127.0.0.1.evil.example:51004/callback", id="host-suffix"),
        pytest.param("http://user@127.0.0.1:51004/callback", id="userinfo"),
        pytest.param("http://127.0.0.2:51004/callback", id="other-loopback-ip"),
        pytest.param("https://127.0.0.1:51004/callback", id="https-scheme"),
        pytest.param("ftp://127.0.0.1:51004/callback", id="ftp-scheme"),
        pytest.param("http://[::1]:51004/callback", id="ipv6-not-registered"),
    ],
)
async def test_loopback_redirect_rejects_other_variations(
    public: httpx.AsyncClient, desktop_client: Client, redirect_uri: str
) -> None:
    """S-03: only the port may vary: other paths, hosts, schemes get an error page."""
    assert_error_page(await public.get(url(query(desktop_client, redirect_uri=redirect_uri))))


async def test_web_client_gets_no_port_freedom_on_loopback(
    public: httpx.AsyncClient, admin: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    """S-03: loopback port freedom is for desktop applications only."""
    created = await admin.post(
        "/clients",
        json={
            "name": "Local Web",
            "website": "https://local.example",
            "type": "web",
            "redirect_uris": ["https://127.0.0.1/cb"],
            "owner_id": owner["user_id"],
        },
    )
    assert created.status_code == 201, created.text
    client = created.json()
    response = await public.get(url(query(client, redirect_uri="https://127.0.0.1:8443/cb")))
    assert_error_page(response)


async def test_ipv6_loopback_accepts_any_port_when_registered(
    public: httpx.AsyncClient, admin: httpx.AsyncClient, owner: dict[str, Any], alice: Client
) -> None:
    """S-03: http://[::1]/… matches on any port when it is the registered URI."""
    created = await admin.post(
        "/clients",
        json={
            "name": "IPv6 Desk",
            "website": "https://desk6.example",
            "type": "desktop",
            "redirect_uris": ["http://[::1]/callback"],
            "owner_id": owner["user_id"],
        },
    )
    assert created.status_code == 201, created.text
    client = created.json()
    response = await approve(public, query(client, redirect_uri="http://[::1]:61023/callback"))
    assert location_base(response) == "http://[::1]:61023/callback"
    page = await public.get(url(query(client, redirect_uri="http://127.0.0.1:61023/callback")))
    assert_error_page(page)


async def test_login_page_shown_for_valid_request(
    public: httpx.AsyncClient, web_client: Client
) -> None:
    """A valid request from a signed-out browser gets the login page naming the app."""
    page = await login_form(public, query(web_client))
    assert "Photo Sync" in page
    assert "https://photosync.example" in page
