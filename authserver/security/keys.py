"""Server keys, and one derived key per purpose.

The operator configures a list of server keys, newest first. Every purpose (token MACs, client
secret digests, cookie signing) gets its own key derived from each server key, so a value made
for one purpose never verifies for another, and rotating the server keys rotates them all.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class DerivedKey:
    key_id: str  # names the server key it came from, so stored digests know their key
    secret: bytes


class Keyring:
    def __init__(self, server_keys: Sequence[str]) -> None:
        if not server_keys:
            raise ValueError("at least one server key is needed")
        self._server_keys = tuple(key.encode() for key in server_keys)

    def derive(self, purpose: str) -> tuple[DerivedKey, ...]:
        """One key per server key for ``purpose``, newest first."""
        label = b"authserver/" + purpose.encode()
        return tuple(
            DerivedKey(
                key_id=hashlib.sha256(b"authserver/key-id\x00" + key).hexdigest()[:16],
                secret=hmac.new(key, label, hashlib.sha256).digest(),
            )
            for key in self._server_keys
        )
