"""Checks on what callers send: URLs, redirect URIs, identifiers and JSON objects.

Pure functions, so they are property-tested on their own; the admin API and the CLI both go
through them. Every failure is an ``InvalidInput`` whose message names the field and never
repeats the submitted value.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from authserver.errors import InvalidInput

MAX_URL_LENGTH = 2048
OOB_URI = "urn:ietf:wg:oauth:2.0:oob"  # Phraseanet's desktop apps: the code is shown to copy
LOOPBACK_HOSTS = ("127.0.0.1", "[::1]")

USER_ID = re.compile(r"[A-Za-z0-9._@:-]{1,64}")
CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Printable ASCII except space, '"', '<', '>', '\\', '^', '`', '{', '|', '}' (RFC 3986 §2).
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_PRIVATE_SCHEME = re.compile(r"[a-z][a-z0-9+\-]*(\.[a-z0-9+\-]+)+")  # RFC 8252 §7.1


def normalize_login(login: str) -> str:
    """NFKC, so look-alike spellings (fullwidth letters, ligatures) are one login; case is
    ignored separately, by the database's unique index on lower(login)."""
    return unicodedata.normalize("NFKC", login)


def login_throttle_key(login: str) -> str:
    """The failed-sign-in counter of an account, shared by the login page and the password
    grant. One per account however its login is spelt (case, fullwidth: NFKC), as it is looked
    up: otherwise each spelling would get its own allowance of failures."""
    return f"account:{normalize_login(login).lower()[:255]}"


def check_user_id(value: str) -> str:
    if not USER_ID.fullmatch(value):
        raise InvalidInput("a user id is 1 to 64 letters, digits or . _ @ : -")
    return value


def check_client_id(value: str) -> str:
    if not CLIENT_ID.fullmatch(value):
        raise InvalidInput("a client id is 1 to 64 letters, digits or _ -")
    return value


def check_website(url: str, field: str = "website") -> str:
    """An absolute http(s) URL with a host and no user info."""
    parts = _split_uri(url, field)
    # Spelled in lower case, as the clients.website CHECK requires: "HTTPS://" would be a 500.
    if not url.startswith(("http://", "https://")) or not parts.hostname:
        raise InvalidInput(f"{field} must be an absolute http:// or https:// URL")
    _check_authority(parts.netloc, field)
    return url


def check_redirect_uri(
    uri: str, client_type: str, allow_http: bool, field: str = "redirect_uris"
) -> str:
    """A redirect URI an application may register (RFC 6749 §3.1.2, RFC 8252 §7, RFC 9700 §2.1).

    Web apps register https URLs (http only where the operator allows it). Desktop apps may
    also register loopback IP literals over http, private-use schemes and the legacy oob URN.
    Fragments are never allowed, and matching later is by exact string comparison.
    """
    if uri == OOB_URI:
        if client_type != "desktop" or field != "redirect_uris":
            raise InvalidInput(f"{field}: the oob URN is only for desktop applications")
        return uri
    parts = _split_uri(uri, field)
    if "#" in uri:
        raise InvalidInput(f"{field} must not contain a fragment")
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise InvalidInput(f"{field} must be absolute URLs with a host")
        _check_authority(parts.netloc, field)
        if (
            parts.scheme == "https"
            or (client_type == "desktop" and is_loopback_uri(uri))
            or (client_type == "web" and allow_http)
        ):
            return uri
        raise InvalidInput(
            f"{field} must use https (plain http only for the loopback IP literals "
            "127.0.0.1 and [::1] of desktop applications)"
        )
    if client_type == "desktop" and _PRIVATE_SCHEME.fullmatch(parts.scheme):
        if "@" in parts.netloc:
            raise InvalidInput(f"{field} must not contain user information")
        return uri
    raise InvalidInput(f"{field} must use https")


def is_loopback_uri(uri: str) -> bool:
    """http://127.0.0.1… or http://[::1]…, where RFC 8252 §7.3 lets the port vary."""
    parts = urlsplit(uri)
    if parts.scheme != "http" or "@" in parts.netloc:
        return False
    host = parts.netloc.rsplit(":", 1)[0] if not parts.netloc.endswith("]") else parts.netloc
    return host in LOOPBACK_HOSTS


def _split_uri(uri: str, field: str) -> Any:
    if len(uri) > MAX_URL_LENGTH:
        raise InvalidInput(f"{field} must be at most {MAX_URL_LENGTH} characters")
    if not _URI_CHARS.fullmatch(uri):
        raise InvalidInput(f"{field} must be a URL of printable ASCII without spaces")
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        raise InvalidInput(f"{field} must be a well-formed URL") from None
    if not parts.scheme:
        raise InvalidInput(f"{field} must be absolute URLs")
    return parts


def _check_authority(netloc: str, field: str) -> None:
    if "@" in netloc:
        raise InvalidInput(f"{field} must not contain user information")
    host = netloc.rsplit(":", 1)[0] if not netloc.endswith("]") else netloc
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise InvalidInput(f"{field} has a malformed IPv6 host") from None
    elif not re.fullmatch(r"[A-Za-z0-9.-]+", host) or host.startswith(".") or ".." in host:
        raise InvalidInput(f"{field} has a malformed host")


# JSON bodies


MAX_JSON_DEPTH = 8


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Decode a JSON object; reject duplicate keys, NaN/Infinity, deep nesting, non-objects."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the body is not valid UTF-8") from None
    if _nesting(text) > MAX_JSON_DEPTH:
        raise InvalidInput("the JSON body is nested too deeply")
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constant,
            parse_float=_finite_float,
        )
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"the body is not a JSON document: {_safe_reason(exc)}") from None
    if not isinstance(value, dict):
        raise InvalidInput("the body must be a JSON object")
    return value


def _nesting(text: str) -> int:
    # An upper bound (brackets inside strings count too), cheap enough to run before parsing.
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key[:64]!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _safe_reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at position {exc.pos}"
    return str(exc)


@dataclass(frozen=True)
class Field:
    """One member of a JSON object: its type, bounds and an extra check."""

    kind: type
    required: bool = False
    nullable: bool = False
    max_length: int | None = None  # characters for strings, items for lists
    check: Callable[[Any], Any] | None = None


def check_fields(
    data: Mapping[str, Any], spec: Mapping[str, Field], *, partial: bool = False
) -> dict[str, Any]:
    """Validate ``data`` against ``spec``; return only the members present.

    Unknown members are refused rather than ignored: a typo in a field name must not silently
    leave a setting at its old value.
    """
    unknown = sorted(set(data) - set(spec))
    if unknown:
        # Names are echoed, so a lone surrogate is escaped: it cannot be encoded in the answer.
        names = (name[:64].encode("utf-8", "backslashreplace").decode() for name in unknown)
        raise InvalidInput(f"unknown field(s): {', '.join(names)}")
    result: dict[str, Any] = {}
    for name, field in spec.items():
        if name not in data:
            if field.required and not partial:
                raise InvalidInput(f"{name} is required")
            continue
        result[name] = _check_value(name, data[name], field)
    return result


def _check_value(name: str, value: Any, field: Field) -> Any:
    if value is None:
        if not field.nullable:
            raise InvalidInput(f"{name} must not be null")
        return None
    if field.kind is list:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise InvalidInput(f"{name} must be a list of strings")
        if field.max_length is not None and len(value) > field.max_length:
            raise InvalidInput(f"{name} must have at most {field.max_length} items")
        items: Sequence[str] = value
        if any(len(item) > MAX_URL_LENGTH or "\x00" in item for item in items):
            raise InvalidInput(f"{name} has an item that is too long or holds a NUL")
    elif field.kind is bool:
        if not isinstance(value, bool):
            raise InvalidInput(f"{name} must be true or false")
    elif field.kind is str:
        if not isinstance(value, str):
            raise InvalidInput(f"{name} must be a string")
        if field.max_length is not None and len(value) > field.max_length:
            raise InvalidInput(f"{name} must be at most {field.max_length} characters")
        if "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            raise InvalidInput(f"{name} must not contain NUL or unpaired surrogates")
    return field.check(value) if field.check is not None else value


def redirect_matches(registered: tuple[str, ...], given: str, loopback_any_port: bool) -> bool:
    """Is ``given`` one of the registered redirect URIs?

    Simple string comparison (RFC 9700 §4.1.3, RFC 3986 §6.2.1), except that a native app's
    loopback IP redirect may use any port (RFC 8252 §7.3): with ``loopback_any_port`` the port
    is ignored on both sides, and nothing else.
    """
    if given in registered:
        return True
    if not loopback_any_port or not is_loopback_uri(given):
        return False
    bare = _without_port(given)
    return any(is_loopback_uri(uri) and _without_port(uri) == bare for uri in registered)


def _without_port(uri: str) -> str:
    # Cut the port out of the string itself: re-assembling parsed parts would normalise other
    # characters (case, empty query) and loosen the comparison.
    netloc = urlsplit(uri).netloc
    host = netloc.rsplit(":", 1)[0] if not netloc.endswith("]") else netloc
    start = len("http://")
    return uri[:start] + host + uri[start + len(netloc) :]
