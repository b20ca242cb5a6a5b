"""R-19: hostile requests to the token, revocation and introspection endpoints never get a 5xx.

Hypothesis cannot re-run function-scoped fixtures per example, so each test builds the public app
once (in an event loop of its own) and drives it from a nested ``@given`` function. The bodies
mix real credentials and tokens with hostile values, so requests also reach the database and
oauthlib instead of all stopping at the parser.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from authserver.config import Settings
from authserver.services import create_apps
from tests.conftest import ALICE_PASSWORD

TOKEN_PATHS = ("/oauth2/token", "/api/oauthv2/token")
ALL_PATHS = (*TOKEN_PATHS, "/oauth2/revoke", "/oauth2/introspect")
FORM = "application/x-www-form-urlencoded"
EXAMPLES = 150

FIELDS = (
    "grant_type",
    "client_id",
    "client_secret",
    "code",
    "code_verifier",
    "redirect_uri",
    "refresh_token",
    "scope",
    "username",
    "password",
    "token",
    "token_type_hint",
    "state",
    "subject_token",
    "subject_token_type",
    "requested_token_type",
    "actor_token",
    "audience",
    "resource",
    "client",  # oauthlib request attributes a body must not be able to set
    "user",
    "request_validator",
)
HOSTILE = (
    "",
    "%00",
    "a%00b",
    "%FF%FE",
    "%C0%AF",
    "%ED%B2%80",
    "%",
    "%2",
    "%%",
    "+",
    "%0D%0A",
    "%09",
    "\x00",
    "\u202e",
    "A" * 4097,
    "A" * 20_000,
    "read\twrite",
    " ".join(["read"] * 2000),
    "http://127.0.0.1:1/callback",
    "urn:ietf:wg:oauth:2.0:oob",
)
WORDS = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "password",
    "implicit",
    "urn:ietf:params:oauth:grant-type:device_code",
    "access_token",
    "read",
    "write",
    "read write",
    "S256",
    "plain",
    "alice",
    ALICE_PASSWORD,
    "https://photosync.example/cb",
)
PRINTABLE = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
LATIN1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")


@dataclass(frozen=True)
class Known:
    """Real credentials and tokens, so fuzzed requests get past the first checks."""

    values: tuple[str, ...]
    credentials: tuple[tuple[str, str], ...]  # (client_id, secret or "")
    access_token: str = ""
    refresh_token: str = ""


def _basic(client_id: str, secret: str) -> str:
    joined = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return "Basic " + base64.b64encode(joined.encode()).decode()


def _pair(name: str, value: str, encode: bool) -> bytes:
    raw_name, raw_value = (text.encode("utf-8", "surrogatepass") for text in (name, value))
    if encode:
        return f"{quote_plus(raw_name)}={quote_plus(raw_value)}".encode()
    return raw_name + b"=" + raw_value


GRANT_TYPES = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "password",
    "urn:ietf:params:oauth:grant-type:token-exchange",
)
TOKEN_TYPES = (
    "urn:ietf:params:oauth:token-type:access_token",
    "urn:ietf:params:oauth:token-type:refresh_token",
)
CONTENT_TYPES = (
    f"{FORM}; charset=utf-8",
    f"{FORM}; charset=ISO-8859-1",
    f"{FORM}; charset=utf-16",
    FORM.upper(),
    f"{FORM};;;",
    "application/json",
    "multipart/form-data; boundary=x",
    "text/plain",
    "",
)
SCHEMES = ("Basic", "basic", "BASIC", "Bearer", "OAuth", "Digest", "")
SURROGATES = ("\ud800", "a\udc80b", "\udfff")  # lone surrogates: invalid UTF-8 once encoded


def values(known: Known, hostile: bool) -> st.SearchStrategy[str]:
    """Parameter values: real ones and OAuth words, plus hostile or arbitrary ones if asked."""
    clean = st.sampled_from(known.values) | st.sampled_from(WORDS) | st.text(PRINTABLE, max_size=30)
    if not hostile:
        return clean
    return clean | st.sampled_from(HOSTILE) | st.text(max_size=60) | st.sampled_from(SURROGATES)


TOKEN_FIELDS = (
    "grant_type",
    "code",
    "code_verifier",
    "redirect_uri",
    "refresh_token",
    "scope",
    "username",
    "password",
    "subject_token",
    "subject_token_type",
    "audience",
)
TOKEN_HINT_FIELDS = ("token", "token_type_hint")


def clean_forms(known: Known, path: str) -> st.SearchStrategy[bytes]:
    """Well-formed bodies: each OAuth parameter at most once, properly encoded, usually with a
    plausible value, so that requests reach oauthlib and the database."""
    value = values(known, hostile=False)
    likely = {
        "grant_type": st.sampled_from(GRANT_TYPES),
        "token": st.sampled_from(known.values) | value,
        "refresh_token": st.sampled_from(known.values) | value,
        "subject_token": st.sampled_from(known.values) | value,
        "subject_token_type": st.sampled_from(TOKEN_TYPES) | value,
        "audience": st.sampled_from([pair[0] for pair in known.credentials]) | value,
        "client_id": st.sampled_from([pair[0] for pair in known.credentials]),
        "token_type_hint": st.sampled_from(("access_token", "refresh_token")) | value,
    }
    names = TOKEN_FIELDS if path in TOKEN_PATHS else TOKEN_HINT_FIELDS
    required = {name: likely.get(name, value) for name in names[:1]}
    optional = {name: likely.get(name, value) for name in (*names[1:], "client_id", "user")}
    return st.fixed_dictionaries(required, optional=optional).map(
        lambda params: b"&".join(_pair(name, text, True) for name, text in params.items())
    )


def hostile_forms(known: Known) -> st.SearchStrategy[bytes]:
    """Form-like bodies with junk parameters, repeats, raw (unencoded) pairs, NULs, broken
    UTF-8 and oversized values."""
    encode = st.sampled_from((True, True, True, False))
    named = st.tuples(st.sampled_from(FIELDS), values(known, hostile=True), encode)
    junk = st.text(max_size=12) | st.sampled_from(SURROGATES)
    noise = st.tuples(junk, values(known, hostile=True), encode)
    pairs = st.tuples(st.lists(named, max_size=8), st.lists(noise, max_size=2)).map(
        lambda parts: [pair for part in parts for pair in part]
    )
    return pairs.map(lambda items: b"&".join(_pair(*item) for item in items))


def bodies(known: Known) -> st.SearchStrategy[bytes]:
    """Anything: forms, repeated forms, raw bytes, broken UTF-8, many or huge fields."""
    form = hostile_forms(known)
    return st.one_of(
        form,
        form.map(lambda body: body + b"&" + body),  # every parameter repeated
        st.binary(max_size=300),
        st.tuples(form, st.binary(max_size=40)).map(b"".join),  # invalid UTF-8 mid-form
        st.integers(33, 5000).map(lambda n: b"&".join(b"a%d=1" % i for i in range(n))),
        st.integers(4000, 70_000).map(lambda n: b"token=" + b"A" * n),
    )


def content_types() -> st.SearchStrategy[str | None]:
    return st.one_of(
        st.sampled_from(CONTENT_TYPES), st.text(alphabet=LATIN1, max_size=60), st.none()
    )


def authorizations(known: Known) -> st.SearchStrategy[str | None]:
    """Authorization headers: real Basic credentials, wrong secrets, random Basic payloads,
    random schemes, or none."""
    credentials = st.sampled_from(known.credentials)
    return st.one_of(
        st.none(),
        credentials.map(lambda pair: _basic(*pair)),
        st.tuples(credentials, st.sampled_from(HOSTILE + WORDS) | st.text(max_size=20)).map(
            lambda item: _basic(item[0][0], item[1])
        ),
        st.binary(max_size=80).map(lambda raw: "Basic " + base64.b64encode(raw).decode()),
        st.text(alphabet=LATIN1, max_size=80).map(lambda text: "Basic " + text),
        st.tuples(
            st.sampled_from(SCHEMES) | st.text(alphabet=LATIN1, max_size=10),
            st.text(alphabet=LATIN1, max_size=120) | st.sampled_from(known.values),
        ).map(" ".join),
    )


def headers(
    content_type: st.SearchStrategy[str | None], authorization: st.SearchStrategy[str | None]
) -> st.SearchStrategy[dict[str, str]]:
    both = st.tuples(content_type, authorization)
    return both.map(
        lambda pair: {
            name: value
            for name, value in zip(("content-type", "authorization"), pair, strict=True)
            if value is not None
        }
    )


def assert_sane(response: httpx.Response) -> None:
    """No server error, and any body is a JSON object."""
    assert response.status_code < 500, response.text
    if response.content:
        assert response.headers["content-type"].startswith("application/json"), response.headers
        assert isinstance(json.loads(response.content), dict)


RequestFactory = Callable[[Known], st.SearchStrategy[tuple[bytes, dict[str, str]]]]


@dataclass
class Target:
    """The public app, served in process on an event loop this test owns."""

    runner: asyncio.Runner
    http: httpx.AsyncClient

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        encoded = [(name.encode(), value.encode("latin-1")) for name, value in headers.items()]
        return self.runner.run(self.http.post(path, content=body, headers=encoded))


@contextmanager
def target(app_settings: Settings) -> Iterator[Target]:
    with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
        stack = AsyncExitStack()

        async def start() -> httpx.AsyncClient:
            app, _ = create_apps(app_settings)
            manager = await stack.enter_async_context(LifespanManager(app))
            transport = httpx.ASGITransport(app=manager.app)
            return await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="https://auth.example.test")
            )

        try:
            yield Target(runner, runner.run(start()))
        finally:
            runner.run(stack.aclose())


@pytest.fixture
async def password_client(admin: httpx.AsyncClient, owner: dict[str, Any]) -> dict[str, Any]:
    """A confidential client whose owner enabled the password grant."""
    response = await admin.post(
        "/clients",
        json={
            "name": "Script",
            "website": "https://script.example",
            "type": "web",
            "redirect_uris": ["https://script.example/cb"],
            "owner_id": owner["user_id"],
            "password_grant": True,
            "token_exchange": True,  # its password-grant tokens are subjects to exchange
            "resource_server": True,
        },
    )
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def known(
    web_client: dict[str, Any],
    desktop_client: dict[str, Any],
    introspector: dict[str, Any],
    password_client: dict[str, Any],
    alice: dict[str, Any],
) -> Known:
    confidential = (web_client, introspector, password_client)
    credentials = tuple((c["client_id"], c["client_secret"]) for c in confidential)
    credentials += ((desktop_client["client_id"], ""),)
    values = tuple(value for pair in credentials for value in pair if value)
    return Known(values=values, credentials=credentials)


def seed_tokens(app: Target, known: Known) -> Known:
    """Add live tokens from the password grant, so revocation and introspection find rows."""
    client_id, secret = known.credentials[2]  # the password client
    form = b"grant_type=password&username=alice&" + _pair("password", ALICE_PASSWORD, True)
    headers = {"content-type": FORM, "authorization": _basic(client_id, secret)}
    response = app.post("/oauth2/token", form, headers)
    assert response.status_code == 200, response.text
    issued = response.json()
    access, refresh = issued["access_token"], issued["refresh_token"]
    return replace(
        known, values=(*known.values, access, refresh), access_token=access, refresh_token=refresh
    )


FUZZ = hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def fuzz(path: str, app_settings: Settings, known: Known, requests: RequestFactory) -> None:
    """Send ``requests(known)`` to ``path`` of a freshly served app, checking every answer."""
    with target(app_settings) as app:
        seeded = seed_tokens(app, known)

        @FUZZ
        @given(request=requests(seeded))
        def run(request: tuple[bytes, dict[str, str]]) -> None:
            assert_sane(app.post(path, *request))

        run()


def form_requests(known: Known, path: str) -> st.SearchStrategy[tuple[bytes, dict[str, str]]]:
    form_type = st.sampled_from((FORM, f"{FORM}; charset=utf-8"))
    credentials = st.sampled_from(known.credentials)
    authorization = st.one_of(
        st.none(),
        credentials.map(lambda pair: _basic(*pair)),
        credentials.map(lambda pair: _basic(pair[0], "wrong-secret")),
    )
    return st.tuples(clean_forms(known, path), headers(form_type, authorization))


def hostile_form_requests(known: Known) -> st.SearchStrategy[tuple[bytes, dict[str, str]]]:
    form_type = st.sampled_from((FORM, f"{FORM}; charset=utf-8"))
    return st.tuples(hostile_forms(known), headers(form_type, authorizations(known)))


def raw_requests(known: Known) -> st.SearchStrategy[tuple[bytes, dict[str, str]]]:
    return st.tuples(bodies(known), headers(content_types(), authorizations(known)))


def header_requests(known: Known) -> st.SearchStrategy[tuple[bytes, dict[str, str]]]:
    """A well-formed form for a real token, under every kind of Authorization header."""
    body = st.sampled_from(
        (
            b"grant_type=client_credentials",
            f"grant_type=refresh_token&refresh_token={known.refresh_token}".encode(),
            f"token={known.access_token}".encode(),
            f"token={known.refresh_token}&token_type_hint=refresh_token".encode(),
        )
    )
    return st.tuples(body, headers(st.just(FORM), authorizations(known)))


@pytest.mark.parametrize("path", ALL_PATHS)
def test_fuzzed_forms_never_fail_the_server(path: str, settings: Settings, known: Known) -> None:
    """R-19: form bodies of real, hostile and random parameters never get a 5xx."""
    fuzz(path, settings, known, lambda seeded: form_requests(seeded, path))


@pytest.mark.parametrize("path", ALL_PATHS)
def test_hostile_forms_never_fail_the_server(path: str, settings: Settings, known: Known) -> None:
    """R-19: forms with NULs, broken UTF-8, repeats and huge values get a 4xx, never a 5xx."""
    fuzz(path, settings, known, hostile_form_requests)


@pytest.mark.parametrize("path", ALL_PATHS)
def test_fuzzed_bodies_never_fail_the_server(path: str, settings: Settings, known: Known) -> None:
    """R-19: arbitrary bytes under arbitrary Content-Type headers never get a 5xx."""
    fuzz(path, settings, known, raw_requests)


@pytest.mark.parametrize("path", ALL_PATHS)
def test_fuzzed_authorization_headers_never_fail_the_server(
    path: str, settings: Settings, known: Known
) -> None:
    """R-19/S-28: absurd Authorization headers on well-formed forms never get a 5xx."""
    fuzz(path, settings, known, header_requests)
