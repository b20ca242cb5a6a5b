"""Phraseanet's password hashes, checked exactly as Phraseanet checks them (D1, D3).

Phraseanet 3.5 to 4.1 store ``hash_hmac('sha512', password . nonce, main.key)``; rows set
before 3.5 and never signed into since hold ``hash('sha256', password)`` with the
``salted_password`` flag off. Which one a row holds follows from the stored value's shape
(docs/phraseanet.md; reference §2.2): 128 lowercase hex is HMAC-SHA512 whatever the flag, 64
lowercase hex with the flag off is SHA-256, and anything else (NULL, raw text, 64 hex with the
flag on) never verified in Phraseanet either.

authserver never keeps these fast hashes at rest: it stores argon2id of the hex and computes the
hex from a submitted password here (``legacy_hex``), so argon2 decides.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from authserver.models import LegacyScheme

HMAC_SHA512: LegacyScheme = "phraseanet-hmac-sha512"
SHA256: LegacyScheme = "phraseanet-sha256"

_HMAC_HEX = re.compile(r"[0-9a-f]{128}")  # PHP's hash_hmac() prints lowercase; === is exact
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

# D3: passwords Phraseanet's own code sets, which anyone who knows a login can type:
# OpenID/Keycloak users are created with 'user_tmp_pwd', their template users with 'model_pwd'
# (Provider/Openid.php, PsAuth.php), and the special users' password is their login.
HARD_CODED_PASSWORDS = ("user_tmp_pwd", "model_pwd")
SPECIAL_LOGINS = ("guest", "autoregister")


def scheme_of(stored: str | None, salted_password: bool) -> LegacyScheme | None:
    """The scheme a stored Phraseanet password verifies with, or None when none can match."""
    if stored is None:
        return None
    if _HMAC_HEX.fullmatch(stored):
        return HMAC_SHA512  # tried on every row, whatever the flag (NativeAuthentication)
    if not salted_password and _SHA256_HEX.fullmatch(stored):
        return SHA256
    return None


def legacy_hex(
    scheme: LegacyScheme, password: str, salt: str | None, site_key: str | None
) -> str | None:
    """The hex Phraseanet would compare with the stored value; None without the site key that
    an HMAC row needs. The password is used byte for byte as UTF-8, never trimmed or normalised,
    as Phraseanet does."""
    if scheme == SHA256:
        return hashlib.sha256(password.encode()).hexdigest()
    if site_key is None:
        return None
    message = password.encode() + (salt or "").encode()
    return hmac.new(site_key.encode(), message, hashlib.sha512).hexdigest()


def source_digest(scheme: LegacyScheme, salt: str | None, stored: str) -> bytes:
    """What ``legacy_source`` holds: one value per (scheme, nonce, hash) a source row had."""
    text = "\x00".join((scheme, salt or "", stored))
    return hashlib.sha256(text.encode()).digest()


def is_hard_coded(
    stored: str, scheme: LegacyScheme, salt: str | None, site_key: str | None, login: str
) -> bool | None:
    """D3: does the stored hash verify with one of Phraseanet's hard-coded passwords? None
    when it cannot be told (an HMAC row without the site key)."""
    candidates = [*HARD_CODED_PASSWORDS]
    if login in SPECIAL_LOGINS:
        candidates.append(login)
    found = False
    for password in candidates:
        computed = legacy_hex(scheme, password, salt, site_key)
        if computed is None:
            return None
        found |= hmac.compare_digest(computed, stored)
    return found
