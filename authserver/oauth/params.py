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

MAX_PARAMS = 32  # more than any OAuth request needs; bounds the work a body can cause
MAX_VALUE = 4096  # characters; a redirect URI or state is the longest legitimate value
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # C0 controls but tab, and DEL


class BadRequest(Exception):
    """The request cannot be understood; the description is safe to show to the caller."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


def parse_form(raw: bytes | str) -> dict[str, str]:
    """Decode ``application/x-www-form-urlencoded`` text into a dict, strictly."""
    params, repeated = parse_query(raw)
    if repeated:
        raise BadRequest(f"parameter {sorted(repeated)[0][:40]!r} is repeated")
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
            raise BadRequest("too many parameters")
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
        raise BadRequest(f"{_what(name, label)} is not valid UTF-8") from None
    if len(text) > MAX_VALUE:
        raise BadRequest(f"{_what(name, label)} is too long")
    if _CONTROL.search(text):
        raise BadRequest(f"{_what(name, label)} contains control characters")
    return text


def _what(name: str | None, label: str | None) -> str:
    if name is not None:
        return f"parameter {name[:40]!r}"
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

    Raises ``BadRequest`` for two methods at once, and ``BadClientAuth`` for a malformed Basic
    header or a body naming a client other than the one authenticated by Basic.
    """
    if authorization is not None and authorization[:6].lower() == "basic ":
        if "client_secret" in params:
            raise BadRequest("use one client authentication method, not two")
        client_id, secret = _basic(authorization[6:].strip())
        if "client_id" in params and params["client_id"] != client_id:
            raise BadClientAuth("client_id does not match the authenticated client")
        return ClientCredentials(client_id, secret, "basic")
    if "client_secret" in params:
        return ClientCredentials(params.get("client_id"), params["client_secret"], "post")
    return ClientCredentials(params.get("client_id"), None, "none")


class BadClientAuth(Exception):
    """Client authentication failed before any client was looked up (RFC 6749 §5.2
    invalid_client; S-28: a malformed Basic header is a failed authentication, not a 500)."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


def _basic(encoded: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise BadClientAuth("the Basic authorization header is malformed") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise BadClientAuth("the Basic authorization header is malformed")
    # RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined.
    try:
        client_id = _decode(client_id.encode(), label="the Basic client id")
        secret = _decode(secret.encode(), label="the Basic client secret")
    except BadRequest as exc:
        raise BadClientAuth(exc.description) from None
    if not client_id:
        raise BadClientAuth("the Basic authorization header has no client id")
    return client_id, secret
