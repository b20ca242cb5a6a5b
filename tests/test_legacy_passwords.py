"""Phraseanet's password hashes, computed and recognised as Phraseanet does (security/legacy)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authserver.security.legacy import (
    HMAC_SHA512,
    SHA256,
    is_hard_coded,
    legacy_hex,
    scheme_of,
    source_digest,
)

# The worked example of the reference (§2.3), computed identically by PHP 8.2's hash_hmac().
KEY = "5f2b8d0e9c3a47e1b6d4f0a2c8e61b37"
PASSWORD = "Grüße-2024!"
NONCE = "q7+Vd0/ZkLw3XyB1nR8sTf2mHcJ9aEoPu4GiK6lNz5WxYbCtQe/Ur+MvDgShA0Fj"
HMAC_HEX = (
    "b873d2e63568399b3a6b06886d2e0fd45407577cc0c862ca77619db6ec0730fb"
    "7b97e4cef55871e841de7dc4961597ebe99cdee59d431533668ed2faa5c8d053"
)
SHA_HEX = "821c8c280584064f79ec4c41be9f864509696c8a6ef25b134ff9f9592e7d2bca"


def test_hmac_scheme_matches_phraseanets_worked_example() -> None:
    """HMAC-SHA512 over password‖nonce under main.key gives the reference's digest."""
    assert legacy_hex(HMAC_SHA512, PASSWORD, NONCE, KEY) == HMAC_HEX


def test_sha256_scheme_matches_phraseanets_worked_example() -> None:
    """The old scheme is unsalted SHA-256 of the password: the nonce and key play no part."""
    assert legacy_hex(SHA256, PASSWORD, NONCE, None) == SHA_HEX
    assert legacy_hex(SHA256, PASSWORD, None, KEY) == SHA_HEX


@pytest.mark.parametrize(
    "password",
    ["Gru\u0308ße-2024!", "grüße-2024!", " Grüße-2024!", "Grüße-2024! "],
    ids=["nfd", "lowercase", "leading-space", "trailing-space"],
)
def test_other_spellings_give_other_digests(password: str) -> None:
    """The password is used byte for byte: no normalisation, no trimming, case kept."""
    assert legacy_hex(HMAC_SHA512, password, NONCE, KEY) != HMAC_HEX


def test_null_nonce_concatenates_as_empty() -> None:
    """A NULL nonce is PHP's empty string in password . nonce."""
    expected = hmac.new(KEY.encode(), PASSWORD.encode(), hashlib.sha512).hexdigest()
    assert legacy_hex(HMAC_SHA512, PASSWORD, None, KEY) == expected
    assert legacy_hex(HMAC_SHA512, PASSWORD, "", KEY) == expected


def test_hmac_without_site_key_cannot_be_computed() -> None:
    """Without main.key an HMAC row cannot be checked at all."""
    assert legacy_hex(HMAC_SHA512, PASSWORD, NONCE, None) is None


def test_site_key_is_used_exactly() -> None:
    """A key with a trailing space is another key: main.key is used as the YAML has it."""
    assert legacy_hex(HMAC_SHA512, PASSWORD, NONCE, KEY + " ") != HMAC_HEX


@pytest.mark.parametrize(
    ("stored", "salted", "scheme"),
    [
        (HMAC_HEX, True, HMAC_SHA512),
        (HMAC_HEX, False, HMAC_SHA512),
        (SHA_HEX, False, SHA256),
        (SHA_HEX, True, None),
        (HMAC_HEX.upper(), True, None),
        (SHA_HEX.upper(), False, None),
        ("a3Bf9xQ2LmN7pR4s", True, None),
        (None, True, None),
        ("", False, None),
    ],
    ids=[
        "128-hex-salted",
        "128-hex-unsalted",
        "64-hex-unsalted",
        "64-hex-salted",
        "128-uppercase",
        "64-uppercase",
        "raw-16-characters",
        "null",
        "empty",
    ],
)
def test_scheme_follows_the_stored_shape(stored: str | None, salted: bool, scheme: str) -> None:
    """128 lowercase hex is HMAC whatever the flag; 64 with the flag off is SHA-256; nothing
    else can ever match in Phraseanet, so it has no scheme."""
    assert scheme_of(stored, salted) == scheme


@pytest.mark.parametrize("password", ["user_tmp_pwd", "model_pwd"])
def test_hard_coded_passwords_are_recognised_with_the_key(password: str) -> None:
    """D3: a hash of user_tmp_pwd or model_pwd under the row's nonce is recognised."""
    stored = legacy_hex(HMAC_SHA512, password, NONCE, KEY)
    assert stored is not None
    assert is_hard_coded(stored, HMAC_SHA512, NONCE, KEY, "jane@example.com") is True


def test_special_users_login_as_password_is_recognised() -> None:
    """D3: guest and autoregister were created with their login as password."""
    stored = legacy_hex(HMAC_SHA512, "guest", "abcdefgh", KEY)
    assert stored is not None
    assert is_hard_coded(stored, HMAC_SHA512, "abcdefgh", KEY, "guest") is True
    assert is_hard_coded(stored, HMAC_SHA512, "abcdefgh", KEY, "jane") is False


def test_a_real_password_is_not_hard_coded() -> None:
    """An ordinary user's hash is not taken for a hard-coded one."""
    assert is_hard_coded(HMAC_HEX, HMAC_SHA512, NONCE, KEY, "jane") is False


def test_hard_coded_sha256_needs_no_key() -> None:
    """SHA-256 rows are recognised without the site key; HMAC rows cannot be told without it."""
    stored = hashlib.sha256(b"user_tmp_pwd").hexdigest()
    assert is_hard_coded(stored, SHA256, None, None, "jane") is True
    assert is_hard_coded(HMAC_HEX, HMAC_SHA512, NONCE, None, "jane") is None


@given(st.text(max_size=20), st.text(max_size=64), st.text(min_size=1, max_size=40))
def test_hmac_is_phps_hash_hmac(password: str, nonce: str, key: str) -> None:
    """For any text, the hex is hash_hmac('sha512', password . nonce, key) on UTF-8 bytes."""
    password, nonce, key = (
        value.encode("utf-8", "ignore").decode() for value in (password, nonce, key)
    )
    message = password.encode() + nonce.encode()
    expected = hmac.new(key.encode(), message, hashlib.sha512).hexdigest()
    assert legacy_hex(HMAC_SHA512, password, nonce, key) == expected


def test_source_digest_tells_rows_apart() -> None:
    """The same hash under another nonce or scheme is another source."""
    one = source_digest(HMAC_SHA512, NONCE, HMAC_HEX)
    assert one == source_digest(HMAC_SHA512, NONCE, HMAC_HEX)
    assert one != source_digest(HMAC_SHA512, NONCE[:16], HMAC_HEX)
    assert one != source_digest(SHA256, NONCE, HMAC_HEX)
    assert len(one) == 32
