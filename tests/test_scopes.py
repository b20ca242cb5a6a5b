"""Scope strings: one spelling per set, and only the scopes this server knows."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from authserver import scopes

_KNOWN = st.lists(st.sampled_from(sorted(scopes.SCOPES)), max_size=6)


@given(_KNOWN)
def test_equal_sets_have_one_spelling(names: list[str]) -> None:
    """Any order, any repeats: the same set is stored and answered as the same string."""
    assert scopes.to_string(names) == scopes.to_string(sorted(set(names)))


@given(_KNOWN)
def test_string_round_trips(names: list[str]) -> None:
    """from_string reads back what to_string wrote, as a sorted set."""
    assert scopes.from_string(scopes.to_string(names)) == tuple(sorted(set(names)))


@given(st.text(max_size=20))
def test_only_known_scopes_are_known(name: str) -> None:
    """A scope outside the table is never known, whatever its spelling."""
    assert scopes.known([name]) == (name in scopes.SCOPES)


def test_default_is_read_and_write() -> None:
    """Asking for nothing means both read and write, as Phraseanet's tokens always had."""
    assert scopes.DEFAULT_SCOPES == ("read", "write")


def test_default_has_no_identity_scope() -> None:
    """Asking for nothing never turns a plain OAuth request into an OpenID Connect sign-in."""
    assert not set(scopes.DEFAULT_SCOPES) & {"openid", "profile", "email"}


def test_whitespace_of_any_width_separates() -> None:
    """Several spaces or a tab between scopes split them like one space."""
    assert scopes.from_string("write \t  read") == ("read", "write")
