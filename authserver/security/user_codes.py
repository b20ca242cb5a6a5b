"""RFC 8628 user codes: short, typed by a person, stored only as a keyed digest.

Eight characters from twenty consonants (RFC 8628 §6.1's example): no vowels, so no words, no
digits, so no 0/O or 1/I look-alikes. 20^8 is about 2^34.6 codes; that is little
against guessing, so the verification page throttles lookups (§5.1) and codes live minutes.
A person sees ``WDJB-MJHT``; the dash, spaces and case do not count when they type it back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from authserver.security.keys import Keyring

ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
LENGTH = 8
_ALLOWED = frozenset(ALPHABET)


def generate_user_code() -> str:
    """A fresh user code, grouped for reading (``WDJB-MJHT``)."""
    code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return display(code)


def display(code: str) -> str:
    """A normalized code as a person reads it."""
    half = LENGTH // 2
    return f"{code[:half]}-{code[half:]}"


def normalize(typed: str) -> str | None:
    """The code a person typed, without dashes, spaces and case; None if it cannot be one."""
    code = "".join(ch for ch in typed.upper() if ch not in "- \t")
    if len(code) != LENGTH or not set(code) <= _ALLOWED:
        return None
    return code


class UserCodeHasher:
    """Keyed digests of user codes: the newest server key stores, every known key finds."""

    def __init__(self, keyring: Keyring) -> None:
        self._keys = tuple(key.secret for key in keyring.derive("user-code"))

    def digest(self, code: str) -> bytes:
        """What a new code is stored under (``code`` normalized or displayed)."""
        return self._mac(self._keys[0], code)

    def candidates(self, code: str) -> list[bytes]:
        """What a stored code may be found under, one digest per server key."""
        return [self._mac(key, code) for key in self._keys]

    @staticmethod
    def _mac(key: bytes, code: str) -> bytes:
        normalized = normalize(code)
        if normalized is None:
            raise ValueError("not a user code")
        return hmac.new(key, normalized.encode(), hashlib.sha256).digest()
