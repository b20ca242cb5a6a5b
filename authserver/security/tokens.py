"""Opaque tokens: a kind prefix, 256 random bits and a short MAC under a server key.

The prefix makes a leaked token recognisable (secret scanners, logs). The MAC lets the server
reject a forged or mistyped token without a database query. Only the SHA-256 digest of a token
is stored, and lookups are by that digest.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
import secrets

from authserver.security.keys import Keyring

_RANDOM_CHARS = 43  # base64url of 32 random bytes, unpadded
_MAC_BYTES = 12
_MAC_CHARS = 16  # base64url of 12 bytes


class TokenKind(enum.Enum):
    ACCESS = "phrat"
    REFRESH = "phrrt"
    CODE = "phrac"
    DEVICE = "phrdc"  # RFC 8628 device code


_KINDS = {kind.value: kind for kind in TokenKind}
# Phraseanet's access tokens (D9): md5 hex from its flows, RandomLib alphanumerics for developer
# tokens, imported as they are. They carry no MAC, so only a lookup can tell a real one.
_LEGACY_SHAPE = re.compile(r"[0-9A-Za-z]{32}")
_SHAPE = re.compile(rf"(phrat|phrrt|phrac|phrdc)_([A-Za-z0-9_-]{{{_RANDOM_CHARS + _MAC_CHARS}}})")


class TokenCodec:
    def __init__(self, keyring: Keyring) -> None:
        keys = keyring.derive("token-mac")
        self._signing = keys[0].secret
        self._verifying = tuple(key.secret for key in keys)

    def mint(self, kind: TokenKind) -> str:
        body = f"{kind.value}_{secrets.token_urlsafe(32)}"
        return body + _mac(self._signing, body)

    def kind_of(self, token: str) -> TokenKind | None:
        """The token's kind if it is well formed and its MAC verifies under a known key."""
        match = _SHAPE.fullmatch(token)
        if match is None:
            return None
        body, mac = token[:-_MAC_CHARS], token[-_MAC_CHARS:]
        valid = False
        for key in self._verifying:
            valid |= hmac.compare_digest(_mac(key, body), mac)
        return _KINDS[match.group(1)] if valid else None


def is_legacy_shaped(token: str) -> bool:
    """Could this be a token imported from Phraseanet? (Never one of ours: those have a '_'.)"""
    return _LEGACY_SHAPE.fullmatch(token) is not None


def token_digest(token: str) -> bytes:
    """What the database stores and looks tokens up by."""
    return hashlib.sha256(token.encode()).digest()


def _mac(key: bytes, body: str) -> str:
    mac = hmac.new(key, body.encode(), hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(mac).decode()
