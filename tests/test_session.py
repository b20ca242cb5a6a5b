"""Signed browser values (authserver.http.session), directly: round trips, tampering, expiry,
and one purpose never passing for another."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from authserver.http.session import REQUEST_TTL, Session, Signer
from authserver.security.keys import Keyring
from tests.conftest import SECRET_KEY


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def signer(clock: Clock | None = None, keys: tuple[str, ...] = (SECRET_KEY,)) -> Signer:
    return Signer(Keyring(keys), clock or Clock())


SESSION = Session("s" * 32)


def test_session_round_trips() -> None:
    """A dumped session id loads back as the same session."""
    made = signer()
    assert made.load_session(made.dump_session(SESSION)) == SESSION


@given(st.data())
def test_any_changed_character_is_refused(data: st.DataObject) -> None:
    """Changing any one character of a signed session makes it worthless."""
    made = signer()
    value = made.dump_session(SESSION)
    index = data.draw(st.integers(0, len(value) - 1))
    replacement = data.draw(st.sampled_from("AZaz09-_.").filter(lambda c: c != value[index]))
    assert made.load_session(value[:index] + replacement + value[index + 1 :]) is None


def test_csrf_token_is_bound_to_its_session() -> None:
    """A CSRF token made for one session does not pass for another."""
    made = signer()
    token = made.csrf_token(SESSION)
    assert made.csrf_ok(token, SESSION)
    assert not made.csrf_ok(token, Session("t" * 32))


def test_csrf_token_expires() -> None:
    """A CSRF token older than a form's lifetime is refused, by the clock it was given."""
    clock = Clock()
    made = signer(clock)
    token = made.csrf_token(SESSION)
    clock.now += REQUEST_TTL + 1
    assert not made.csrf_ok(token, SESSION)


def test_signed_request_is_bound_to_session_and_user() -> None:
    """A signed authorization request loads only for the session and user it was made for."""
    made = signer()
    value = made.sign_request("client_id=c", SESSION, "alice-1", "nonce-1")
    loaded = made.load_request(value, SESSION, "alice-1")
    assert loaded is not None
    assert (loaded.query, loaded.nonce) == ("client_id=c", "nonce-1")
    assert made.load_request(value, SESSION, "bob-1") is None
    assert made.load_request(value, Session("t" * 32), "alice-1") is None


def test_one_purpose_never_passes_for_another() -> None:
    """A CSRF token is not a session cookie, nor a signed request (one salt per purpose)."""
    made = signer()
    token = made.csrf_token(SESSION)
    assert made.load_session(token) is None
    assert made.load_request(token, SESSION, None) is None


def test_values_signed_under_a_retired_key_still_load_while_it_is_configured() -> None:
    """Rotating server keys: a value signed under the old key loads while the old key is
    still listed, and not once it is removed."""
    old_key, new_key = SECRET_KEY, "another-server-key-0123456789abcdefghij"
    value = signer(keys=(old_key,)).dump_session(SESSION)
    assert signer(keys=(new_key, old_key)).load_session(value) == SESSION
    assert signer(keys=(new_key,)).load_session(value) is None
