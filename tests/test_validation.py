"""Input checks: URLs, redirect URIs, identifiers, JSON bodies and object fields."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authserver.errors import InvalidInput
from authserver.validation import (
    MAX_JSON_DEPTH,
    OOB_URI,
    Field,
    check_client_id,
    check_fields,
    check_redirect_uri,
    check_user_id,
    check_website,
    is_loopback_uri,
    parse_json_object,
    redirect_matches,
)

# Put into submitted values: an error message that repeats the value would contain it.
MARKER = "Zq7Marker"
CLIENT_TYPES = ("web", "desktop")

_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,15}[a-z0-9])?", fullmatch=True)
_HOST = st.lists(_LABEL, min_size=1, max_size=3).map(lambda labels: ".".join([*labels, "example"]))
_PORT = st.one_of(st.just(""), st.integers(min_value=1, max_value=65535).map(lambda p: f":{p}"))
_PATH = st.from_regex(r"(/[A-Za-z0-9._~-]{0,12}){0,3}", fullmatch=True)
_QUERY = st.one_of(st.just(""), st.from_regex(r"\?[A-Za-z0-9=&_-]{0,16}", fullmatch=True))
_HTTPS_URL = st.builds("https://{}{}{}{}".format, _HOST, _PORT, _PATH, _QUERY)
_LOOPBACK_URL = st.builds(
    "http://{}{}{}".format, st.sampled_from(["127.0.0.1", "[::1]"]), _PORT, _PATH
)
_PRIVATE_SCHEME = st.builds(
    "{}.{}".format, st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True), _LABEL
)
_PRIVATE_URI = st.builds("{}:{}".format, _PRIVATE_SCHEME, _PATH.filter(bool))
_ANY_ACCEPTED = st.one_of(_HTTPS_URL, _LOOPBACK_URL, _PRIVATE_URI, st.just(OOB_URI))
_FORBIDDEN_CHAR = st.one_of(
    st.just("#"),
    st.sampled_from(" \t\n\r\x0b\x0c"),
    st.characters(codec="ascii", categories=["Cc"]),
    st.characters(min_codepoint=0x80),
)
_USERINFO = st.from_regex(r"[A-Za-z0-9]{1,8}(:[A-Za-z0-9]{0,8})?", fullmatch=True)


def refused(check: Any, *args: Any) -> InvalidInput:
    """The InvalidInput that ``check(*args)`` raises."""
    with pytest.raises(InvalidInput) as caught:
        check(*args)
    return caught.value


def error_of(check: Any, *args: Any) -> InvalidInput | None:
    """The InvalidInput that ``check(*args)`` raises, or None when it accepts."""
    try:
        check(*args)
    except InvalidInput as exc:
        return exc
    return None


# redirect URIs


@given(uri=_ANY_ACCEPTED, char=_FORBIDDEN_CHAR, data=st.data())
def test_redirect_uri_with_forbidden_char_refused(uri: str, char: str, data: st.DataObject) -> None:
    """A URI with '#', whitespace, a control or non-ASCII character is never accepted."""
    at = data.draw(st.integers(min_value=0, max_value=len(uri)))
    bad = uri[:at] + char + uri[at:]
    for client_type in CLIENT_TYPES:
        for allow_http in (False, True):
            refused(check_redirect_uri, bad, client_type, allow_http)


@given(
    scheme=st.one_of(st.sampled_from(["https", "http"]), _PRIVATE_SCHEME),
    userinfo=_USERINFO,
    host=st.one_of(_HOST, st.sampled_from(["127.0.0.1", "[::1]"])),
    path=_PATH,
)
def test_redirect_uri_with_user_info_refused(
    scheme: str, userinfo: str, host: str, path: str
) -> None:
    """A URI carrying user information is never accepted, whatever its scheme."""
    uri = f"{scheme}://{userinfo}@{host}{path}"
    for client_type in CLIENT_TYPES:
        for allow_http in (False, True):
            refused(check_redirect_uri, uri, client_type, allow_http)


@given(uri=_HTTPS_URL)
def test_https_redirect_uri_accepted(uri: str) -> None:
    """An https URL with a host is accepted for both client types."""
    for client_type in CLIENT_TYPES:
        assert check_redirect_uri(uri, client_type, False) == uri


@given(uri=_LOOPBACK_URL)
def test_loopback_http_accepted_for_desktop(uri: str) -> None:
    """Plain http to a loopback IP literal is accepted for desktop applications."""
    assert check_redirect_uri(uri, "desktop", False) == uri


@given(uri=_LOOPBACK_URL)
def test_loopback_http_refused_for_web(uri: str) -> None:
    """Plain http, even to loopback, is refused for web applications by default."""
    refused(check_redirect_uri, uri, "web", False)


@given(uri=st.builds("http://{}{}{}".format, _HOST, _PORT, _PATH))
def test_http_allowed_for_web_when_configured(uri: str) -> None:
    """With allow_http, a web application may register a plain http URL."""
    assert check_redirect_uri(uri, "web", True) == uri


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("http://localhost/cb", id="localhost"),
        pytest.param("http://localhost:8080/cb", id="localhost-port"),
        pytest.param("http://app.example/cb", id="remote"),
        pytest.param("http://127.0.0.1.evil.example/cb", id="loopback-prefix"),
    ],
)
@pytest.mark.parametrize(
    "allow_http", [pytest.param(False, id="strict"), pytest.param(True, id="lax")]
)
def test_desktop_http_only_for_loopback_literals(uri: str, allow_http: bool) -> None:
    """A desktop application's plain http URL must be to 127.0.0.1 or [::1]."""
    refused(check_redirect_uri, uri, "desktop", allow_http)


def test_oob_accepted_for_desktop() -> None:
    """The legacy oob URN is accepted for desktop applications."""
    assert check_redirect_uri(OOB_URI, "desktop", False) == OOB_URI


@pytest.mark.parametrize(
    "allow_http", [pytest.param(False, id="strict"), pytest.param(True, id="lax")]
)
def test_oob_refused_for_web(allow_http: bool) -> None:
    """The oob URN is refused for web applications."""
    refused(check_redirect_uri, OOB_URI, "web", allow_http)


@given(uri=_PRIVATE_URI)
def test_private_scheme_accepted_for_desktop(uri: str) -> None:
    """A reverse-domain private-use scheme is accepted for desktop applications."""
    assert check_redirect_uri(uri, "desktop", False) == uri


@given(uri=_PRIVATE_URI, allow_http=st.booleans())
def test_private_scheme_refused_for_web(uri: str, allow_http: bool) -> None:
    """A private-use scheme is refused for web applications."""
    refused(check_redirect_uri, uri, "web", allow_http)


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("myapp:/cb", id="scheme-without-dot"),
        pytest.param("javascript:alert(1)", id="javascript"),
        pytest.param("data:text/html,hi", id="data"),
        pytest.param("file:///etc/passwd", id="file"),
        pytest.param("https:///cb", id="https-no-host"),
        pytest.param("//app.example/cb", id="scheme-relative"),
        pytest.param("/cb", id="relative"),
        pytest.param("", id="empty"),
        pytest.param("https://app.example:99999/cb", id="port-out-of-range"),
        pytest.param("https://app.example:http/cb", id="port-not-number"),
        pytest.param("https://[zz::1]/cb", id="bad-ipv6"),
        pytest.param("https://app..example/cb", id="empty-label"),
        pytest.param("https://" + "a" * 2050 + ".example/", id="too-long"),
    ],
)
def test_malformed_redirect_uri_refused(uri: str) -> None:
    """Relative, dangerous-scheme and malformed URIs are refused for every client type."""
    for client_type in CLIENT_TYPES:
        refused(check_redirect_uri, uri, client_type, True)


@given(
    prefix=st.text(max_size=20),
    suffix=st.text(max_size=20),
    client_type=st.sampled_from(CLIENT_TYPES),
    allow_http=st.booleans(),
)
def test_redirect_uri_error_never_echoes(
    prefix: str, suffix: str, client_type: str, allow_http: bool
) -> None:
    """A refused redirect URI's error never contains the submitted URI."""
    error = error_of(check_redirect_uri, f"{prefix}{MARKER}{suffix}", client_type, allow_http)
    assert error is None or MARKER not in str(error)


# loopback


@given(uri=_LOOPBACK_URL)
def test_loopback_literals_with_any_port(uri: str) -> None:
    """http://127.0.0.1 and http://[::1], with or without a port, are loopback URIs."""
    assert is_loopback_uri(uri)


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("http://localhost/cb", id="localhost"),
        pytest.param("http://localhost:8080/cb", id="localhost-port"),
        pytest.param("http://127.0.0.1.evil.example/cb", id="suffix-domain"),
        pytest.param("http://127.0.0.1.evil.example:80/cb", id="suffix-domain-port"),
        pytest.param("http://user@127.0.0.1/cb", id="user-info"),
        pytest.param("http://user:pw@[::1]:8080/cb", id="user-info-ipv6"),
        pytest.param("http://evil.example@127.0.0.1/cb", id="user-info-host"),
        pytest.param("https://127.0.0.1/cb", id="https"),
        pytest.param("http://127.0.0.2/cb", id="other-loopback"),
        pytest.param("http://[::2]/cb", id="other-ipv6"),
        pytest.param("http://0.0.0.0/cb", id="any-address"),
        pytest.param("com.example.app://127.0.0.1/cb", id="private-scheme"),
    ],
)
def test_not_loopback(uri: str) -> None:
    """Host names, look-alike domains, user info and other schemes are not loopback URIs."""
    assert not is_loopback_uri(uri)


# websites


@given(url=_HTTPS_URL)
def test_https_website_accepted(url: str) -> None:
    """An https URL with a host is a valid website."""
    assert check_website(url) == url


@given(url=st.builds("http://{}{}{}".format, _HOST, _PORT, _PATH))
def test_http_website_accepted(url: str) -> None:
    """A plain http URL with a host is a valid website."""
    assert check_website(url) == url


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(f"ftp://{MARKER}.example/", id="ftp"),
        pytest.param(f"https://user:{MARKER}@app.example/", id="user-info"),
        pytest.param(f"https:///{MARKER}", id="no-host"),
        pytest.param(f"{MARKER}.example", id="relative"),
        pytest.param(f"https://app.example/{MARKER} x", id="space"),
        pytest.param(f"https://app.example/{MARKER}\u00e9", id="non-ascii"),
        pytest.param(f"javascript:{MARKER}", id="javascript"),
        pytest.param(f"https://{MARKER}_x.example/", id="underscore-host"),
    ],
)
def test_bad_website_refused_without_echo(url: str) -> None:
    """A malformed website is refused, and the error names the field, not the value."""
    error = refused(check_website, url)
    assert "website" in str(error)
    assert MARKER not in str(error)


# identifiers


@given(value=st.from_regex(r"[A-Za-z0-9._@:-]{1,64}", fullmatch=True))
def test_user_id_accepted(value: str) -> None:
    """1 to 64 letters, digits or . _ @ : - make a user id."""
    assert check_user_id(value) == value


@given(value=st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True))
def test_client_id_accepted(value: str) -> None:
    """1 to 64 letters, digits or _ - make a client id."""
    assert check_client_id(value) == value


_USER_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@:-")
_CLIENT_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


@given(value=st.text(max_size=70))
def test_user_id_outside_shape_refused(value: str) -> None:
    """Anything that is not 1 to 64 allowed characters is refused as a user id."""
    if 1 <= len(value) <= 64 and set(value) <= _USER_ID_CHARS:
        assert check_user_id(value) == value
    else:
        refused(check_user_id, value)


@given(value=st.text(max_size=70))
def test_client_id_outside_shape_refused(value: str) -> None:
    """Anything that is not 1 to 64 allowed characters is refused as a client id."""
    if 1 <= len(value) <= 64 and set(value) <= _CLIENT_ID_CHARS:
        assert check_client_id(value) == value
    else:
        refused(check_client_id, value)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("a" * 65, id="too-long"),
        pytest.param(f"{MARKER} x", id="space"),
        pytest.param(f"{MARKER}\n", id="trailing-newline"),
        pytest.param(f"{MARKER}/x", id="slash"),
        pytest.param(f"{MARKER}\u00e9", id="non-ascii"),
        pytest.param(f"{MARKER}\x00", id="nul"),
    ],
)
def test_bad_ids_refused_without_echo(value: str) -> None:
    """A malformed user or client id is refused without repeating it."""
    for check in (check_user_id, check_client_id):
        assert MARKER not in str(refused(check, value))


def test_client_id_refuses_user_id_punctuation() -> None:
    """Dots, '@' and ':' are allowed in user ids but not in client ids."""
    for value in ("a.b", "a@b", "a:b"):
        assert check_user_id(value) == value
        refused(check_client_id, value)


# JSON bodies


def _json_text(min_size: int = 0) -> st.SearchStrategy[str]:
    # Brackets inside strings count towards the cheap nesting bound, so keep them out.
    return st.text(st.characters(exclude_characters="[]{}"), min_size=min_size, max_size=12)


_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    _json_text(),
)


def _json_value(depth: int) -> st.SearchStrategy[Any]:
    if depth == 0:
        return _SCALAR
    inner = _json_value(depth - 1)
    return st.one_of(
        _SCALAR,
        st.lists(inner, max_size=3),
        st.dictionaries(_json_text(), inner, max_size=3),
    )


_JSON_OBJECT = st.dictionaries(_json_text(), _json_value(MAX_JSON_DEPTH - 1), max_size=5)


@given(value=_JSON_OBJECT, indent=st.sampled_from([None, 2]))
def test_json_object_round_trip(value: dict[str, Any], indent: int | None) -> None:
    """Any JSON object within the nesting limit decodes to what was encoded."""
    assert parse_json_object(json.dumps(value, indent=indent).encode()) == value


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"a": 1, "a": 2}', id="duplicate-key"),
        pytest.param(b'{"o": {"k": 1, "k": 1}}', id="nested-duplicate-key"),
        pytest.param(b'{"a": NaN}', id="nan"),
        pytest.param(b'{"a": Infinity}', id="infinity"),
        pytest.param(b'{"a": -Infinity}', id="minus-infinity"),
        pytest.param(b'{"a": 1e400}', id="huge-float"),
        pytest.param(b'{"a": -1e400}', id="huge-negative-float"),
        pytest.param(b'{"a": ' + b"[" * 20 + b"]" * 20 + b"}", id="deep-lists"),
        pytest.param(b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, id="very-deep"),
        pytest.param(b"[1, 2]", id="array"),
        pytest.param(b'"text"', id="string"),
        pytest.param(b"42", id="number"),
        pytest.param(b"null", id="null"),
        pytest.param(b"", id="empty"),
        pytest.param(b"{", id="truncated"),
        pytest.param(b'{"a": 1} x', id="trailing-data"),
        pytest.param(b'{"a": "\xff"}', id="invalid-utf8"),
        pytest.param(b'{"a": "\xed\xa0\x80"}', id="encoded-surrogate"),
        pytest.param(b"\xef\xbb\xbf{}", id="bom"),
        pytest.param(b"{'a': 1}", id="single-quotes"),
    ],
)
def test_bad_json_refused(raw: bytes) -> None:
    """Duplicate keys, non-finite numbers, deep nesting, non-objects and bad bytes are refused."""
    refused(parse_json_object, raw)


def test_nesting_at_limit_accepted() -> None:
    """An object nested exactly to the limit is accepted."""
    raw = '{"a": ' * (MAX_JSON_DEPTH - 1) + "{}" + "}" * (MAX_JSON_DEPTH - 1)
    assert parse_json_object(raw.encode())


def test_nesting_over_limit_refused() -> None:
    """An object nested one level past the limit is refused."""
    raw = '{"a": ' * MAX_JSON_DEPTH + "{}" + "}" * MAX_JSON_DEPTH
    refused(parse_json_object, raw.encode())


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(f'{{"a": "{MARKER}", "b": {MARKER}}}', id="bare-word"),
        pytest.param(f'{{"a": "{MARKER}"', id="truncated"),
        pytest.param(f'["{MARKER}"]', id="array"),
        pytest.param(f'{{"a": NaN, "b": "{MARKER}"}}', id="nan"),
        pytest.param(f'{{"a": 1e999, "b": "{MARKER}"}}', id="huge-float"),
    ],
)
def test_json_error_never_echoes(raw: str) -> None:
    """The error for a refused body never contains the submitted values."""
    assert MARKER not in str(refused(parse_json_object, raw.encode()))


# object fields


SPEC = {
    "name": Field(str, required=True, max_length=8),
    "note": Field(str, nullable=True),
    "tags": Field(list, max_length=2),
    "enabled": Field(bool),
}


def test_fields_valid_object_returned() -> None:
    """A valid object comes back with the members it had."""
    data = {"name": "app", "note": None, "tags": ["a", "b"], "enabled": False}
    assert check_fields(data, SPEC) == data


def test_fields_absent_optional_left_out() -> None:
    """Optional members that are absent are not added to the result."""
    assert check_fields({"name": "app"}, SPEC) == {"name": "app"}


def test_fields_unknown_refused() -> None:
    """An unknown member is refused, not ignored."""
    error = refused(check_fields, {"name": "app", "nmae": "typo"}, SPEC)
    assert "nmae" in str(error)


def test_fields_required_missing_refused() -> None:
    """A required member that is missing is refused, naming it."""
    assert "name" in str(refused(check_fields, {"enabled": True}, SPEC))


def test_fields_partial_skips_required() -> None:
    """In partial mode a missing required member is fine."""
    assert check_fields({"enabled": True}, SPEC, partial=True) == {"enabled": True}


def test_fields_partial_still_checks_present() -> None:
    """In partial mode the members that are present are still checked."""
    refused(lambda: check_fields({"name": 7}, SPEC, partial=True))


def test_fields_null_refused_when_not_nullable() -> None:
    """null is refused for a member that is not nullable."""
    refused(check_fields, {"name": None}, SPEC)


def test_fields_max_length_string() -> None:
    """A string longer than max_length is refused; one at max_length is accepted."""
    assert check_fields({"name": "x" * 8}, SPEC) == {"name": "x" * 8}
    refused(check_fields, {"name": "x" * 9}, SPEC)


def test_fields_max_length_list() -> None:
    """A list with more items than max_length is refused."""
    refused(check_fields, {"name": "a", "tags": ["1", "2", "3"]}, SPEC)


@pytest.mark.parametrize(
    ("member", "value"),
    [
        pytest.param("name", True, id="bool-for-str"),
        pytest.param("name", 1, id="int-for-str"),
        pytest.param("name", ["a"], id="list-for-str"),
        pytest.param("enabled", "true", id="str-for-bool"),
        pytest.param("enabled", 1, id="int-for-bool"),
        pytest.param("enabled", 0, id="zero-for-bool"),
        pytest.param("tags", "a", id="str-for-list"),
        pytest.param("tags", [1], id="int-item"),
        pytest.param("tags", [True], id="bool-item"),
        pytest.param("tags", ["a\x00"], id="nul-item"),
        pytest.param("name", "a\x00", id="nul-in-str"),
        pytest.param("name", "\ud800", id="lone-surrogate"),
    ],
)
def test_fields_wrong_type_refused(member: str, value: Any) -> None:
    """A member of the wrong type, or holding NUL or a lone surrogate, is refused."""
    refused(check_fields, {"name": "app", member: value}, SPEC)


def test_fields_check_runs() -> None:
    """A member's extra check runs on its value, and its error propagates."""
    spec = {"website": Field(str, check=check_website)}
    refused(check_fields, {"website": "ftp://x.example"}, spec)


@given(value=st.one_of(st.text(), st.integers(), st.booleans(), st.lists(st.text(), max_size=5)))
def test_fields_error_never_echoes(value: Any) -> None:
    """A refused member's error never contains the submitted value."""
    spec = {"name": Field(str, max_length=4), "tags": Field(list, max_length=1)}
    marked: Any = value
    if isinstance(value, str):
        marked = MARKER + value
    elif isinstance(value, list):
        marked = [MARKER + item for item in value]
    for member in ("name", "tags"):
        error = error_of(check_fields, {member: marked}, spec)
        assert error is None or MARKER not in str(error)


# Redirect URI matching (RFC 9700 §4.1.3, RFC 8252 §7.3)


@given(st.lists(_HTTPS_URL, min_size=1, max_size=4), st.data())
def test_registered_uri_matches_itself(registered: list[str], data: st.DataObject) -> None:
    """Every registered URI matches, for confidential and public clients alike."""
    given_uri = data.draw(st.sampled_from(registered))
    assert redirect_matches(tuple(registered), given_uri, False)
    assert redirect_matches(tuple(registered), given_uri, True)


@given(_HTTPS_URL, st.sampled_from(["/", "x", "?", "%2F", "#f"]))
def test_anything_more_does_not_match(registered: str, extra: str) -> None:
    """Simple string comparison: a longer URI (a prefix match) never passes."""
    assert not redirect_matches((registered,), registered + extra, True)


@given(_HTTPS_URL.filter(lambda uri: any(c.isalpha() for c in uri)))
def test_case_is_not_folded(registered: str) -> None:
    """Upper case is another URI: nothing is normalised before comparing."""
    assert not redirect_matches((registered,), registered.upper(), True)


@given(st.sampled_from(["127.0.0.1", "[::1]"]), st.integers(1, 65535), _PATH)
def test_public_loopback_matches_any_port(host: str, port: int, path: str) -> None:
    """A native app's loopback redirect may come back on any port (RFC 8252 §7.3)."""
    registered = f"http://{host}{path}"
    assert redirect_matches((registered,), f"http://{host}:{port}{path}", True)


@given(st.integers(1, 65535))
def test_confidential_loopback_port_must_match(port: int) -> None:
    """Only public clients get the port leniency."""
    assert not redirect_matches(("http://127.0.0.1/cb",), f"http://127.0.0.1:{port}/cb", False)


@pytest.mark.parametrize(
    "given_uri",
    [
        "http://127.0.0.1:5000/other",
        "http://localhost:5000/cb",
        "https://127.0.0.1:5000/cb",
        "http://127.0.0.2:5000/cb",
        "http://user@127.0.0.1:5000/cb",
    ],
    ids=["path", "localhost", "https", "other address", "userinfo"],
)
def test_loopback_leniency_is_the_port_only(given_uri: str) -> None:
    """Path, host name, scheme and user info still have to match exactly."""
    assert not redirect_matches(("http://127.0.0.1/cb",), given_uri, True)
