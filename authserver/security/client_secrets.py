"""Client secrets: generated here, shown once, stored as HMAC-SHA-256 under a server key.

A generated secret carries 256 random bits, so a slow KDF would add nothing but latency on every
token request; a keyed hash keeps a stolen table useless without the server key.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from hashlib import sha256

from authserver.models import SecretDigest
from authserver.security.keys import Keyring

SECRET_PREFIX = "phrcs_"  # noqa: S105 -- a prefix, not a secret; recognisable in a leak, like the token prefixes


def generate_client_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


class SecretHasher:
    def __init__(self, keyring: Keyring) -> None:
        keys = keyring.derive("client-secret")
        self._newest = keys[0]
        self._by_id = {key.key_id: key.secret for key in keys}

    def digest(self, secret: str) -> SecretDigest:
        mac = hmac.new(self._newest.secret, secret.encode(), sha256).digest()
        return SecretDigest(self._newest.key_id, mac)

    def verify(self, secret: str, stored: Iterable[SecretDigest]) -> bool:
        """True when ``secret`` matches one of the stored digests.

        Every candidate is compared, without stopping at the first match, so the time taken does
        not say which one matched. A digest made under a key that is no longer configured
        cannot match: removing a server key retires the secrets hashed under it.
        """
        raw = secret.encode()
        matched = False
        for candidate in stored:
            key = self._by_id.get(candidate.key_id)
            if key is None:
                continue
            mac = hmac.new(key, raw, sha256).digest()
            matched |= hmac.compare_digest(mac, candidate.digest)
        return matched
