"""Strict decoding of OAuth parameters and client credentials, tested directly (no HTTP)."""

from __future__ import annotations

import base64
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authserver.errors import InvalidClient, InvalidRequest
from authserver.oauth.params import (
    MAX_PARAMS,
    MAX_VALUE,
    client_credentials,
    parse_form,
    parse_query,
)

# Names and values a form may carry: printable text without control characters.
_TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cc", "Cs"]), min_size=1, max_size=40)
_FORMS = st.dictionaries(_TEXT, _TEXT, max_size=10)


def basic(client_id: str, secret: str) -> str:
    joined = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return "Basic " + base64.b64encode(joined.encode()).decode()


@given(_FORMS)
def test_form_round_trips(form: dict[str, str]) -> None:
    """Whatever urlencode writes, parse_form reads back as it was."""
    assert parse_form(urlencode(form)) == form


@given(_FORMS, st.data())
def test_any_repeated_name_is_refused(form: dict[str, str], data: st.DataObject) -> None:
    """A name sent twice is refused, whichever it is (RFC 6749 §3.1, §3.2)."""
    if not form:
        return
    name = data.draw(st.sampled_from(sorted(form)))
    with pytest.raises(InvalidRequest):
        parse_form(urlencode([*form.items(), (name, "again")]))


def test_query_reports_repeats_instead_of_refusing() -> None:
    """The authorization endpoint learns which names came twice, and keeps the first value."""
    params, repeated = parse_query(b"state=a&client_id=c&state=b")
    assert params == {"state": "a", "client_id": "c"}
    assert repeated == {"state"}


def test_empty_values_count_as_absent() -> None:
    """RFC 6749 §3.1: a parameter without a value is treated as omitted."""
    assert parse_form(b"scope=&grant_type=password&state") == {"grant_type": "password"}


def test_plus_is_a_space_and_percent_escapes_decode() -> None:
    """application/x-www-form-urlencoded: '+' is a space, %XX a byte of UTF-8."""
    assert parse_form(b"scope=read+write&name=%C3%A9t%C3%A9") == {
        "scope": "read write",
        "name": "été",
    }


@pytest.mark.parametrize(
    "body",
    [b"code=%FF%FE", b"code=%C0%AF", b"%ED%B2%80=x", b"code=a%00b", b"code=a%0Ab"],
    ids=["invalid utf-8", "overlong", "lone surrogate", "nul", "newline"],
)
def test_undecodable_or_control_characters_are_refused(body: bytes) -> None:
    """Bytes that are not UTF-8 text without control characters never reach oauthlib."""
    with pytest.raises(InvalidRequest):
        parse_form(body)


def test_tab_is_allowed() -> None:
    """A tab is the one control character a value may hold (a scope list may use it)."""
    assert parse_form(b"scope=read%09write") == {"scope": "read\twrite"}


def test_too_many_parameters_are_refused() -> None:
    """The work a body can cause is bounded by its number of parameters."""
    parse_form("&".join(f"p{i}=1" for i in range(MAX_PARAMS)))
    with pytest.raises(InvalidRequest):
        parse_form("&".join(f"p{i}=1" for i in range(MAX_PARAMS + 1)))


def test_too_long_a_value_is_refused() -> None:
    """No value is longer than the longest legitimate one (a redirect URI or a state)."""
    parse_form(f"state={'a' * MAX_VALUE}")
    with pytest.raises(InvalidRequest):
        parse_form(f"state={'a' * (MAX_VALUE + 1)}")


def test_errors_do_not_repeat_long_names() -> None:
    """A description names a parameter in at most 40 characters."""
    with pytest.raises(InvalidRequest) as caught:
        parse_form(f"{'n' * 500}=%FF")
    assert "n" * 41 not in caught.value.description


# client credentials (RFC 6749 §2.3.1)


@given(_TEXT.filter(lambda t: ":" not in t), _TEXT)
def test_basic_credentials_round_trip(client_id: str, secret: str) -> None:
    """Basic credentials are form-urlencoded before base64, and read back exactly."""
    credentials = client_credentials(basic(client_id, secret), {})
    assert (credentials.client_id, credentials.secret, credentials.method) == (
        client_id,
        secret,
        "basic",
    )


def test_body_credentials() -> None:
    """client_id and client_secret in the body are the post method."""
    credentials = client_credentials(None, {"client_id": "c", "client_secret": "s"})
    assert (credentials.client_id, credentials.secret, credentials.method) == ("c", "s", "post")


def test_no_secret_is_a_public_client() -> None:
    """Without a secret the client names itself only (RFC 6749 §2.3, method none)."""
    credentials = client_credentials(None, {"client_id": "c"})
    assert (credentials.secret, credentials.method) == (None, "none")


def test_basic_and_body_secret_together_are_refused() -> None:
    """One authentication method per request (S-26)."""
    with pytest.raises(InvalidRequest):
        client_credentials(basic("c", "s"), {"client_secret": "s"})


def test_basic_with_another_client_id_in_the_body_is_refused() -> None:
    """A body naming another client than the one Basic authenticated fails authentication."""
    with pytest.raises(InvalidClient):
        client_credentials(basic("c", "s"), {"client_id": "other"})


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b":s").decode(),
    ],
    ids=["not base64", "no colon", "no client id"],
)
def test_malformed_basic_is_a_failed_authentication(header: str) -> None:
    """S-28: a malformed Basic header is invalid_client, not a server error."""
    with pytest.raises(InvalidClient):
        client_credentials(header, {})


def test_credentials_repr_hides_the_secret() -> None:
    """The secret is never in a repr, a log line or a traceback."""
    assert "s3cret" not in repr(client_credentials(basic("c", "s3cret"), {}))
