"""The decide phase is pure: oauthlib runs over loaded state with no I/O, and no validator method
may be a coroutine function."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import replace
from itertools import product
from types import SimpleNamespace
from typing import Any, cast

import pytest

from authserver.answer import Answer
from authserver.models import Client, TokenRow
from authserver.oauth.bridge import TokenRequest
from authserver.oauth.decide import FORM, Decider
from authserver.oauth.endpoints import OAuthEndpoints, assert_synchronous, build_endpoints
from authserver.oauth.flow import Flow, active
from authserver.oauth.intents import IssueCode, IssueDeviceCode, IssueExchanged, IssueTokens
from authserver.oauth.params import ClientCredentials, encode_form
from authserver.oauth.responses import Triple, oauth_response
from authserver.oauth.validator import Validator
from authserver.security.keys import Keyring
from authserver.security.tokens import TokenCodec, TokenKind, token_digest
from tests.conftest import SECRET_KEY
from tests.oauth_support import ID_TOKENS
from tests.rows import token_row, web_client

# Audit events that mean the process reached outside itself: files, sockets, other programs.
IO_EVENTS = ("open", "socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.fork")

_recording: dict[int, list[str]] = {}  # thread id → events seen while recording in that thread


def _audit(event: str, args: tuple[Any, ...]) -> None:
    seen = _recording.get(threading.get_ident())
    if seen is not None and event.startswith(IO_EVENTS):
        seen.append(event)


_hook_installed = False


@contextmanager
def io_events() -> Iterator[list[str]]:
    """Record the I/O audit events this thread raises inside the block.

    An audit hook cannot be removed, so one hook is installed once and only records while some
    thread is inside this block.
    """
    global _hook_installed
    if not _hook_installed:
        sys.addaudithook(_audit)
        _hook_installed = True
    seen: list[str] = []
    _recording[threading.get_ident()] = seen
    try:
        yield seen
    finally:
        del _recording[threading.get_ident()]


CODEC = TokenCodec(Keyring([SECRET_KEY]))
ISSUER = "https://auth.example.test"


def endpoints() -> OAuthEndpoints:
    return build_endpoints(ISSUER, access_token_ttl=3600, codec=CODEC, id_tokens=ID_TOKENS)


def decider() -> Decider:
    """The decide phase: oauthlib's endpoints and the issuer, and nothing that could reach a
    database (it is not given any)."""
    return Decider(endpoints(), ISSUER)


def client_credentials_flow() -> tuple[Flow, dict[str, str]]:
    flow = Flow("token", ClientCredentials("client-1", "secret", "basic"))
    flow.client, flow.client_authenticated = web_client(), True
    return flow, {"grant_type": "client_credentials"}


def refresh_flow() -> tuple[Flow, dict[str, str]]:
    refresh = CODEC.mint(TokenKind.REFRESH)
    flow = Flow("token", ClientCredentials("client-1", "secret", "basic"))
    flow.client, flow.client_authenticated = web_client(), True
    flow.token = token_row(refresh)
    return flow, {"grant_type": "refresh_token", "refresh_token": refresh}


def exchange_flow() -> tuple[Flow, dict[str, str]]:
    subject = CODEC.mint(TokenKind.ACCESS)
    flow = Flow("token", ClientCredentials("client-1", "secret", "basic"))
    flow.client, flow.client_authenticated = web_client(token_exchange=True), True
    flow.token = token_row(subject, kind="access")
    return flow, {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": subject,
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
    }


def device_flow() -> tuple[Flow, dict[str, str]]:
    flow = Flow("device", ClientCredentials("client-1", "secret", "basic"))
    flow.client, flow.client_authenticated = replace(web_client(), device_grant=True), True
    return flow, {"scope": "read"}


@pytest.mark.parametrize(
    "make",
    [client_credentials_flow, refresh_flow, exchange_flow, device_flow],
    ids=["cc", "refresh", "exchange", "device"],
)
def test_decide_does_no_io(make: Any) -> None:
    """The decide phase issues tokens and codes without opening a file, a socket or a process."""
    decide = decider().decide
    decide(*make())  # warm-up: lazy imports inside oauthlib read files once
    flow, params = make()
    with io_events() as seen:
        answer = decide(flow, params)
    assert answer.status == 200, answer.body
    assert seen == []
    assert any(
        isinstance(intent, (IssueTokens, IssueExchanged, IssueDeviceCode))
        for intent in flow.intents
    )


def test_io_recorder_sees_io() -> None:
    """The recorder used above does notice a file being opened (it is not vacuous)."""
    with io_events() as seen, open(__file__, "rb"):
        pass
    assert "open" in seen


def test_async_validator_method_is_refused() -> None:
    """A validator with an async def method is refused: a coroutine would pass every check."""

    class AsyncValidator(Validator):
        async def validate_code(  # type: ignore[override]
            self, client_id: str, code: str, client: Client, request: Any, *a: Any, **kw: Any
        ) -> bool:
            return False

    with pytest.raises(TypeError, match="validate_code"):
        assert_synchronous(AsyncValidator("https://auth.example.test", ID_TOKENS))


def test_shipped_validator_is_synchronous() -> None:
    """The validator the server builds passes the start-up check."""
    assert_synchronous(Validator("https://auth.example.test", ID_TOKENS))


def introspection_cases() -> Iterator[tuple[str, Flow, dict[str, str]]]:
    """Introspection requests in every state the load phase can leave them in."""
    token = CODEC.mint(TokenKind.ACCESS)
    live = replace(refresh_flow()[0].token or _never(), kind="access", digest=token_digest(token))
    rows = {
        "active": live,
        "refresh": replace(live, kind="refresh"),
        "expired": replace(live, live=False),
        "revoked": replace(live, revoked=True),
        "other digest": replace(live, digest=token_digest(token + "x")),
        "no row": None,
        "user-less": replace(live, user_id=None, username=None, expires_at=None),
        "username to escape": replace(live, username='zoë "the owner" \\ \u2028'),
        "exchanged": replace(live, audience="resource-1", actors=("client-2", "client-3")),
    }
    clients = {
        "introspector": replace(web_client(), introspection=True),
        "not allowed": web_client(),
        "inactive": replace(web_client(), introspection=True, active=False),
        "unknown": None,
    }
    bodies = {
        "token": {"token": token},
        "hint": {"token": token, "token_type_hint": "refresh_token"},
        "odd hint": {"token": token, "token_type_hint": "id_token"},
        "no token": {},
    }
    for (row_name, row), (client_name, client), (body_name, body), authenticated in product(
        rows.items(), clients.items(), bodies.items(), (True, False)
    ):
        flow = Flow("introspect", ClientCredentials("client-1", "secret", "basic"))
        flow.client, flow.client_authenticated, flow.token = client, authenticated, row
        name = f"{row_name}/{client_name}/{body_name}/{'auth' if authenticated else 'bad secret'}"
        yield name, flow, dict(body)


def _never() -> TokenRow:
    raise AssertionError("refresh_flow always loads a token")


def oauthlib_answer(
    call: Callable[[str, str, str, dict[str, str]], Triple], flow: Flow, params: dict[str, str]
) -> tuple[Answer, Flow]:
    """oauthlib's own answer (``call``, one of its endpoints) over a copy of ``flow``, and the
    copy with what the validator recorded in it."""
    theirs = deepcopy(flow)
    uri = f"{ISSUER}/oauth2/{flow.endpoint}"
    with active(theirs):
        triple = call(uri, "POST", encode_form(params), {"Content-Type": FORM})
    return oauth_response(*triple), theirs


def test_introspection_shortcut_answers_as_oauthlib() -> None:
    """decide's introspection answer, with or without oauthlib, is oauthlib's own, to the byte."""
    oauthlib = endpoints()
    decide = Decider(oauthlib, ISSUER).decide
    for name, flow, params in introspection_cases():
        expected, theirs = oauthlib_answer(
            oauthlib.introspection.create_introspect_response, flow, params
        )
        assert decide(flow, params) == expected, name
        assert flow.intents == theirs.intents, name
        assert flow.introspected_active == theirs.introspected_active, name


def untouchable_endpoints() -> OAuthEndpoints:
    """Endpoints whose every oauthlib call fails the test."""

    def untouchable(*args: Any) -> Any:
        raise AssertionError("oauthlib was called")

    endpoint = SimpleNamespace(
        create_token_response=untouchable,
        create_revocation_response=untouchable,
        create_introspect_response=untouchable,
        create_device_authorization_response=untouchable,
    )
    oauthlib = SimpleNamespace(
        token=endpoint,
        revocation=endpoint,
        introspection=endpoint,
        device=endpoint,
        mint_access=lambda: CODEC.mint(TokenKind.ACCESS),
        access_token_ttl=3600,
    )
    return cast(OAuthEndpoints, oauthlib)


def test_introspection_shortcut_is_taken() -> None:
    """A valid introspection request is decided without touching oauthlib's endpoints."""
    cases = {name: (flow, params) for name, flow, params in introspection_cases()}
    flow, params = cases["active/introspector/token/auth"]

    answer = Decider(untouchable_endpoints(), ISSUER).decide(flow, params)
    assert answer.status == 200
    assert json.loads(answer.body)["active"] is True


def client_credentials_cases() -> Iterator[tuple[str, Flow, dict[str, str]]]:
    """Client-credentials requests in every state the load phase can leave them in."""
    clients = {
        "web": web_client(),
        "public": web_client(client_type="desktop"),
        "inactive": replace(web_client(), active=False),
        "unknown": None,
    }
    scopes = {
        "default": None,
        "read": "read",
        "both, reversed": "write read",
        "repeated": "read read",
        "padded": " read ",
        "double space": "read  write",
        "openid": "openid",
        "with profile": "read profile",
        "unknown": "admin",
        "blank": " ",
    }
    extras = {"none": {}, "client_id in body": {"client_id": "client-1"}}
    for (client_name, client), (scope_name, scope), (extra_name, extra), authenticated in product(
        clients.items(), scopes.items(), extras.items(), (True, False)
    ):
        flow = Flow("token", ClientCredentials("client-1", "secret", "basic"))
        flow.client, flow.client_authenticated = client, authenticated
        params = {"grant_type": "client_credentials", **extra}
        if scope is not None:
            params["scope"] = scope
        secret = "auth" if authenticated else "bad secret"
        yield f"{client_name}/{scope_name}/{extra_name}/{secret}", flow, params


def _issued(answer: Answer, intents: list[Any]) -> tuple[Answer, list[Any]]:
    """The answer and intents with the access token (random) replaced by a fixed value."""
    if answer.status != 200:
        return answer, intents
    token = json.loads(answer.body)["access_token"]
    same = answer.body.replace(token.encode(), b"<token>")  # byte for byte otherwise
    headers = [
        (name, str(len(same)).encode() if name == b"content-length" else value)
        for name, value in answer.headers
    ]
    kept = [
        replace(intent, access_token="<token>")
        if isinstance(intent, IssueTokens) and intent.access_token == token
        else intent
        for intent in intents
    ]
    return Answer(answer.status, headers, same), kept


def test_client_credentials_shortcut_answers_as_oauthlib() -> None:
    """decide's client-credentials answer, with or without oauthlib, is oauthlib's own (the
    token aside, which is random), with the same intents."""
    oauthlib = endpoints()
    decide = Decider(oauthlib, ISSUER).decide
    for name, flow, params in client_credentials_cases():
        expected, theirs = oauthlib_answer(oauthlib.token.create_token_response, flow, params)
        ours = _issued(decide(flow, params), flow.intents)
        assert ours == _issued(expected, theirs.intents), name


def test_client_credentials_shortcut_is_taken() -> None:
    """A valid client-credentials request is decided without touching oauthlib's endpoints."""
    flow, params = client_credentials_flow()

    answer = Decider(untouchable_endpoints(), ISSUER).decide(flow, params)
    assert answer.status == 200
    assert json.loads(answer.body)["scope"] == "read write"
    assert [type(intent) for intent in flow.intents] == [IssueTokens]


def test_reprs_hold_no_secrets() -> None:
    """The request state a future log call or traceback might format shows no secret."""
    access, refresh = CODEC.mint(TokenKind.ACCESS), CODEC.mint(TokenKind.REFRESH)
    credentials = ClientCredentials("client-1", "phrcs_top_secret", "basic")
    shown = " ".join(
        repr(thing)
        for thing in (
            credentials,
            TokenRequest(
                "token", {"password": "hunter2", "code": "phrac_x"}, credentials, "127.0.0.1"
            ),
            IssueTokens("password", access, refresh, "read", "alice-1", None, None),
            IssueCode("phrac_code", "alice-1", None, "read", None),
            IssueExchanged(access, "read", "alice-1", 1, b"subject", None, ("client-1",), 60),
        )
    )
    for secret in ("phrcs_top_secret", "hunter2", "phrac_x", access, refresh, "phrac_code"):
        assert secret not in shown
