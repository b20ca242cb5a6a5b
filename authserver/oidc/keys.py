"""The keys that sign ID tokens: made, rotated, encrypted at rest, published, and used.

- Each key is a JWK with a ``kid``, RS256 (OpenID Connect Core §15.1 requires it) or ES256.
- The private part is stored encrypted with AES-256-GCM under a key derived from the server
  keys (``KeyVault``): a copy of the database, a backup, signs nothing.
- A rotation makes a new key per algorithm that signs ``propagation`` seconds later, so every
  replica (they reload every ``RELOAD`` seconds) publishes it, and every relying party has
  fetched it, before any token it signs reaches a relying party; the keys it replaces stop
  signing then and stay published until every ID token they signed has expired.
- Relying parties do not all follow Cache-Control: openid-client (oauth4webapi) keeps its copy
  of the JWKS for minutes and fetches it again for an unknown ``kid`` only once that copy is
  ``RP_REFETCH_PAUSE`` old; before then it refuses the token. So a copy taken just before the
  slowest replica reloaded, and kept by any cache for the JWKS's max-age, must be that old when
  the new key signs (``jwks_max_age``).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeyParameters, KeySet, RSAKey

from authserver.db.keys import NewKey, StoredKey
from authserver.db.pool import is_outage
from authserver.db.store import Store
from authserver.errors import AuthServerError
from authserver.periodic import every
from authserver.security.keys import Keyring

log = logging.getLogger("authserver.oidc")

ALGORITHMS = ("RS256", "ES256")  # what ID tokens may be signed with, and hints verified with
RELOAD = 10.0  # seconds between a replica's looks at the keys
RP_REFETCH_PAUSE = 60  # seconds openid-client trusts a JWKS copy that lacks the token's kid
Key = RSAKey | ECKey


def jwks_max_age(propagation: int) -> int:
    """Seconds anyone may cache the JWKS, so that a copy without a new key is at least
    ``RP_REFETCH_PAUSE`` old when that key starts signing ``propagation`` seconds after its
    rotation (0 when the propagation is too short for any caching to be safe)."""
    return max(0, min(propagation // 2, propagation - int(RELOAD) - RP_REFETCH_PAUSE))


class KeyUnavailable(AuthServerError):
    """No key can sign with the algorithm asked for (none made yet, or all retired)."""


class InvalidSignature(Exception):
    """A JWT that is not one of ours: malformed, signed with another key or algorithm."""


class KeyVault:
    """Encrypts and decrypts private keys under keys derived from the server keys."""

    def __init__(self, keyring: Keyring) -> None:
        derived = keyring.derive("signing-key-encryption")
        self._newest = derived[0]
        self._by_id = {key.key_id: AESGCM(key.secret) for key in derived}

    def seal(self, private_jwk: dict[str, Any], kid: str) -> tuple[bytes, str]:
        nonce = os.urandom(12)
        sealed = AESGCM(self._newest.secret).encrypt(
            nonce, json.dumps(private_jwk).encode(), kid.encode()
        )
        return nonce + sealed, self._newest.key_id

    def open(self, sealed: bytes, key_id: str, kid: str) -> dict[str, Any] | None:
        """The private JWK, or None when its server key is gone (the key cannot sign)."""
        aead = self._by_id.get(key_id)
        if aead is None:
            return None
        opened: dict[str, Any] = json.loads(aead.decrypt(sealed[:12], sealed[12:], kid.encode()))
        return opened


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    key: Key = field(repr=False)
    active_from: datetime
    retired_at: datetime | None
    expires_at: datetime | None

    def signs_at(self, when: datetime) -> bool:
        return self.active_from <= when and (self.retired_at is None or when < self.retired_at)


def generate(alg: str) -> Key:
    kid = secrets.token_urlsafe(12)
    parameters: KeyParameters = {"kid": kid, "use": "sig", "alg": alg}
    if alg == "RS256":
        return RSAKey.generate_key(2048, parameters=parameters)
    return ECKey.generate_key("P-256", parameters=parameters)


class SigningKeys:
    """The keys this replica publishes and signs with, in memory: nothing here does I/O, so the
    validator signs and verifies inside the decide phase."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._keys: tuple[SigningKey, ...] = ()  # newest first
        self._key_set = KeySet([])
        self._skew = timedelta(0)  # the database's clock minus ours, as of the last load
        self.jwks: dict[str, Any] = {"keys": []}

    def use(self, keys: Sequence[SigningKey], db_now: datetime | None = None) -> None:
        """Publish and sign with ``keys`` (newest first) from now on; ``db_now`` is the clock
        that set their times, if known."""
        if db_now is not None:
            self._skew = db_now - datetime.fromtimestamp(self._clock(), UTC)
        self._keys = tuple(keys)
        self._key_set = KeySet([key.key for key in keys])
        self.jwks = {"keys": [key.key.as_dict(private=False) for key in keys]}

    def now(self) -> datetime:
        """Now by the database's clock, which set every key's times."""
        return datetime.fromtimestamp(self._clock(), UTC) + self._skew

    def signing(self) -> bool:
        """Does some key sign now, or from the end of a rotation under way?"""
        return any(key.retired_at is None for key in self._keys)

    def signer(self, alg: str) -> SigningKey:
        """The newest key that signs with ``alg`` now."""
        now = self.now()
        for key in self._keys:
            if key.alg == alg and key.signs_at(now):
                return key
        raise KeyUnavailable(f"no key signs with {alg}")

    def sign(self, alg: str, claims: dict[str, Any]) -> str:
        key = self.signer(alg)
        return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"}, claims, key.key)

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a JWT one of our published keys signed, with RS256 or ES256 only (no
        ``none``, no HMAC keyed with a public key); its expiry is not checked here."""
        try:
            decoded = jwt.decode(token, self._key_set, algorithms=list(ALGORITHMS))
        except (JoseError, ValueError, TypeError, KeyError):
            raise InvalidSignature("not a JWT signed by this server") from None
        return dict(decoded.claims)

    def describe(self) -> Iterator[dict[str, Any]]:
        """What an operator sees of the keys (never a private part)."""
        now = self.now()
        for key in self._keys:
            yield {
                "kid": key.kid,
                "alg": key.alg,
                "active_from": key.active_from.isoformat(),
                "retired_at": None if key.retired_at is None else key.retired_at.isoformat(),
                "expires_at": None if key.expires_at is None else key.expires_at.isoformat(),
                "signing": key.signs_at(now),
            }


class KeyLifecycle:
    """Makes, rotates and reloads the keys from PostgreSQL into a ``SigningKeys``."""

    def __init__(
        self,
        store: Store,
        vault: KeyVault,
        keys: SigningKeys,
        *,
        propagation: int,
        token_lifetime: int,
    ) -> None:
        self._store = store
        self._vault = vault
        self.keys = keys
        self._propagation = propagation
        self._lifetime = token_lifetime
        # A key's material never changes under its kid, and importing a private RSA key costs
        # milliseconds (cryptography checks it): each is imported once, not at every reload.
        self._imported: dict[str, Key] = {}

    async def load(self) -> None:
        stored, db_now = await self._store.signing_keys.published()
        opened = [self._opened(row) for row in stored]
        self._imported = {key.kid: key.key for key in opened}
        self.keys.use(opened, db_now)

    def _opened(self, row: StoredKey) -> SigningKey:
        imported = self._imported.get(row.kid)
        if imported is not None and imported.is_private:
            return SigningKey(
                row.kid, row.alg, imported, row.active_from, row.retired_at, row.expires_at
            )
        private = self._vault.open(row.private_jwk, row.key_id, row.kid)
        if private is None:
            # Its server key was removed: publish it still (tokens it signed verify), sign not.
            public = json.loads(row.public_jwk)
            key: Key = (RSAKey if row.alg == "RS256" else ECKey).import_key(public)
            return SigningKey(row.kid, row.alg, key, row.active_from, row.active_from, None)
        imported = (RSAKey if row.alg == "RS256" else ECKey).import_key(private)
        return SigningKey(
            row.kid, row.alg, imported, row.active_from, row.retired_at, row.expires_at
        )

    async def ensure(self) -> None:
        """Keys to sign with from the first start on: made at once if none signs."""
        await self.load()
        if not self.keys.signing():
            await self.rotate(at_once=True)

    async def start(self, *, make: bool) -> None:
        """Load the keys (a server, ``make``, also makes the first ones). A database that cannot
        take them now (read-only, away) only delays that to a later turn of ``follow``."""
        try:
            await (self.ensure() if make else self.load())
        except Exception as exc:
            if not is_outage(exc):
                raise
            log.warning("signing keys not loaded yet: %s", type(exc).__name__)

    async def rotate(self, *, at_once: bool = False) -> list[str]:
        """A new key per algorithm; the ids of the new keys."""
        starts_in = 0.0 if at_once else float(self._propagation)
        made = []
        for alg in ALGORITHMS:
            key = generate(alg)
            kid = key.kid
            assert kid is not None
            sealed, key_id = self._vault.seal(key.as_dict(private=True), kid)
            public = json.dumps(key.as_dict(private=False))
            made.append(NewKey(kid, alg, public, sealed, key_id))
        async with self._store.transaction() as tx:
            await tx.signing_keys.lock()
            # The ID tokens signed until the new keys start stay verifiable as long as they live.
            await tx.signing_keys.rotate(
                made, starts_in=starts_in, outlives_by=float(self._lifetime + 60)
            )
            await tx.audit.record(
                "signing_keys.rotated", detail={"kids": [key.kid for key in made]}
            )
        await self.load()
        log.info("signing keys rotated: %s", ", ".join(key.kid for key in made))
        return [key.kid for key in made]

    async def follow(self, interval: float = RELOAD) -> None:
        """Reload every ``interval`` seconds until cancelled; a failed load keeps the last."""
        await every(interval, self.ensure, "cannot reload the signing keys")
