"""The sign-in policy: one set of rules for every door a password comes through.

The login page, the password grant and any later door (a device verification page, imported
users' legacy passwords) sign users in here and nowhere else, so the rules cannot drift apart:

1. An attempt is claimed in PostgreSQL before its password is checked: one call counts it
   against the account (however its login is spelt) and against the client address, or
   refuses it while either is paused (RFC 6749 §10.10, RFC 6819 §5.1.4.2.3). The count is
   shared by every replica, and concurrent attempts cannot overrun it (checklist R-05, S-61).
2. Unknown logins cost an argon2 verify like known ones, so the answer's timing does not say
   who exists.
3. A right password clears the account's count, gives the address back its attempt, and
   upgrades an outdated hash.
4. A user imported from Phraseanet whose hash is still the wrapped legacy one (D1) is checked
   the way Phraseanet checks it (``security/legacy``: the hex computed from the password, under
   the site key for HMAC rows, then argon2 over that hex) and, once it verifies, gets a plain
   argon2id of the password and loses the legacy columns. Phraseanet's hard-coded passwords
   (D3) never sign anyone in that way.
5. When more attempts wait for argon2 than can be checked before a client gives up, the
   newcomers are answered 503 at once (``Overloaded``), before anything is counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from authserver.db.store import Store
from authserver.models import User
from authserver.security.legacy import HARD_CODED_PASSWORDS, legacy_hex
from authserver.security.passwords import Passwords, Verified
from authserver.validation import normalize_login


@dataclass(frozen=True)
class SignInLimits:
    per_account: int  # failed attempts an account may have within the window
    per_address: int  # failed attempts a client address may have within the window
    window: int  # seconds: the counting window, and how long a pause lasts


@dataclass(frozen=True)
class SignInResult:
    user: User | None  # the user signed in; None when refused or paused
    paused_for: int | None = None  # seconds until the pause that refused the attempt ends


def account_key(login: str) -> str:
    """One failure counter per account however its login is spelt (case, fullwidth letters:
    NFKC), as the account is looked up; otherwise each spelling would get its own allowance."""
    return f"account:{normalize_login(login).lower()[:255]}"


def address_key(address: str) -> str:
    return f"address:{address[:100]}"


class SignInPolicy:
    def __init__(
        self,
        store: Store,
        passwords: Passwords,
        limits: SignInLimits,
        site_key: str | None = None,
    ) -> None:
        self._store = store
        self._passwords = passwords
        self._limits = limits
        self._site_key = site_key  # Phraseanet's main.key, for its HMAC-SHA512 hashes

    @property
    def window(self) -> int:
        return self._limits.window

    async def attempt(
        self, login: str, password: str, *, address: str, via: str, client_id: str | None
    ) -> SignInResult:
        """Check ``password`` for ``login`` coming from ``address`` through door ``via``."""
        # Shed before counting: an attempt refused for load is no failed attempt.
        with self._passwords.admitted():
            return await self._attempt(login, password, address, via, client_id)

    async def _attempt(
        self, login: str, password: str, address: str, via: str, client_id: str | None
    ) -> SignInResult:
        limits = self._limits
        account, origin = account_key(login), address_key(address)
        paused = await self._store.throttles.claim(
            [(account, limits.per_account), (origin, limits.per_address)], window=limits.window
        )
        if paused is not None:
            return SignInResult(None, max(1, round(paused)))
        user = await self._store.users.by_login(login) if login else None
        verified = await self._verify(user, password)
        if user is None or not verified.ok:
            await self._store.audit.record("login.failed", client_id=client_id, detail={"via": via})
            return SignInResult(None)
        await self._store.throttles.release(account, origin, address_limit=limits.per_address)
        if user.legacy is not None:
            upgraded = await self._passwords.hash(password)
            await self._store.users.upgrade_legacy_password(
                user.user_id, upgraded, user.legacy.source
            )
            await self._store.audit.record(
                "user.legacy_password_upgraded", user_id=user.user_id, detail={"via": via}
            )
        elif verified.new_hash is not None:
            await self._store.users.set_password_hash(user.user_id, verified.new_hash)
        return SignInResult(user)

    async def _verify(self, user: User | None, password: str) -> Verified:
        legacy = user.legacy if user is not None else None
        if user is None or legacy is None:
            return await self._passwords.verify(user.password_hash if user else None, password)
        candidate = legacy_hex(legacy.scheme, password, legacy.salt, self._site_key)
        if candidate is None or password in HARD_CODED_PASSWORDS:
            # No site key for an HMAC row, or a password Phraseanet's own code set: refused,
            # after the dummy verify an unknown user costs, so the timing says nothing.
            await self._passwords.verify(None, password)
            return Verified(ok=False)
        verified = await self._passwords.verify(user.password_hash, candidate)
        return Verified(ok=verified.ok)  # the upgrade replaces the hash, whatever its parameters
