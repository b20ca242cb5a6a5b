"""Strict decoding of OAuth request parameters and client credentials.

oauthlib rejects duplicates of only a few parameters and silently treats a body it cannot
decode as empty. Everything reaching it goes through here first: UTF-8 only, no NUL, no
parameter twice (RFC 6749 §3.1, §3.2), and empty values treated as absent.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote_to_bytes, urlencode

from authserver.errors import InvalidClient, InvalidRequest

MAX_PARAMS = 32  # more than any OAuth request needs; bounds the work a body can cause

# The parameter names this server reads. An error message may name one of these; a name the
# caller made up is never repeated back (checklist S-07: nothing the caller wrote reaches an
# answer, a log line or a client's redirect).
KNOWN_NAMES = frozenset(
    {
        "grant_type",
        "code",
        "redirect_uri",
        "client_id",
        "client_secret",
        "client_assertion",
        "client_assertion_type",
        "scope",
        "state",
        "refresh_token",
        "username",
        "password",
        "token",
        "token_type_hint",
        "code_verifier",
        "code_challenge",
        "code_challenge_method",
        "response_type",
        "response_mode",
        "prompt",
        "nonce",
        "max_age",
        "login_hint",
        "id_token_hint",
        "device_code",
        "subject_token",
        "subject_token_type",
        "actor_token",
        "actor_token_type",
        "requested_token_type",
        "audience",
        "resource",
    }
)
MAX_VALUE = 4096  # characters; a redirect URI or state is the longest legitimate value
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # C0 controls but tab, and DEL


def parse_form(raw: bytes | str) -> dict[str, str]:
    """Decode ``application/x-www-form-urlencoded`` text into a dict, strictly."""
    params, repeated = parse_query(raw)
    if repeated:
        raise InvalidRequest(f"{named(sorted(repeated)[0])} is repeated")
    return params


def parse_query(raw: bytes | str) -> tuple[dict[str, str], set[str]]:
    """Decode form-encoded text; the first value of each name, and the names sent twice.

    The authorization endpoint needs to know which parameters were repeated to decide between
    an error page and an error redirect; everywhere else a repeat is simply refused.
    """
    data = raw.encode("latin-1", "replace") if isinstance(raw, str) else raw
    params: dict[str, str] = {}
    repeated: set[str] = set()
    for count, pair in enumerate(pair for pair in data.split(b"&") if pair):
        if count >= MAX_PARAMS:
            raise InvalidRequest("too many parameters")
        name_raw, _, value_raw = pair.partition(b"=")
        name = _decode(name_raw)
        value = _decode(value_raw, name)
        if name in params or name in repeated:
            repeated.add(name)
        params.setdefault(name, value)
    # RFC 6749 §3.1: "Parameters sent without a value MUST be treated as if they were omitted".
    return {name: value for name, value in params.items() if value}, repeated


def encode_form(params: dict[str, str]) -> str:
    return urlencode(params)


def _decode(raw: bytes, name: str | None = None, label: str | None = None) -> str:
    """One form-encoded string: the value of parameter ``name``, else what ``label`` says, else
    a parameter name. Errors name it; the description is built only then."""
    try:
        if b"%" in raw or b"+" in raw:
            raw = unquote_to_bytes(raw.replace(b"+", b" "))
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest(f"{_what(name, label)} is not valid UTF-8") from None
    if len(text) > MAX_VALUE:
        raise InvalidRequest(f"{_what(name, label)} is too long")
    if _CONTROL.search(text):
        raise InvalidRequest(f"{_what(name, label)} contains control characters")
    return text


def named(name: str) -> str:
    """How an error message names a parameter: by its name if it is one of ours."""
    return f"parameter {name}" if name in KNOWN_NAMES else "a parameter"


def _what(name: str | None, label: str | None) -> str:
    if name is not None:
        return named(name)
    return label or "a parameter name"


AuthMethod = Literal["basic", "post", "none"]


@dataclass(frozen=True)
class ClientCredentials:
    """Who the caller says it is, and how it said so (RFC 6749 §2.3.1)."""

    client_id: str | None
    secret: str | None = field(repr=False)  # never in a repr, a log or a traceback
    method: AuthMethod


def client_credentials(authorization: str | None, params: dict[str, str]) -> ClientCredentials:
    """Read client credentials from HTTP Basic or the body, refusing to mix the two.

    Raises ``InvalidRequest`` for two methods at once, and ``InvalidClient`` for a malformed Basic
    header or a body naming a client other than the one authenticated by Basic (S-28: a
    malformed header is a failed authentication, not a 500).
    """
    assertion = "client_assertion" in params or "client_assertion_type" in params
    basic = authorization is not None and authorization[:6].lower() == "basic "
    if assertion:
        # RFC 7521 §4.2 assertions are not a method this server offers; next to another
        # method they are two methods at once (RFC 6749 §2.3, checklist S-26).
        if basic or "client_secret" in params:
            raise InvalidRequest("use one client authentication method, not two")
        raise InvalidClient("client assertions are not a supported authentication method")
    if authorization is not None and basic:
        if "client_secret" in params:
            raise InvalidRequest("use one client authentication method, not two")
        client_id, secret = _basic(authorization[6:].strip())
        if "client_id" in params and params["client_id"] != client_id:
            raise InvalidClient("client_id does not match the authenticated client")
        return ClientCredentials(client_id, secret, "basic")
    if "client_secret" in params:
        return ClientCredentials(params.get("client_id"), params["client_secret"], "post")
    return ClientCredentials(params.get("client_id"), None, "none")


def _basic(encoded: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidClient("the Basic authorization header is malformed") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise InvalidClient("the Basic authorization header is malformed")
    # RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined.
    try:
        client_id = _decode(client_id.encode(), label="the Basic client id")
        secret = _decode(secret.encode(), label="the Basic client secret")
    except InvalidRequest as exc:
        raise InvalidClient(exc.description) from None
    if not client_id:
        raise InvalidClient("the Basic authorization header has no client id")
    return client_id, secret
