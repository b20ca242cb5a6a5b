"""The user's side of the device authorization grant (RFC 8628 §3.3), without HTTP: find the
device a user code names, and record the user's decision on it.

A user code is short by design, so lookups are throttled per address (§5.1) by the same
counters that throttle sign-ins, under a key of their own: each lookup is counted before it
is made, and one that finds a device is given back, so only wrong codes add up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from authserver.db.store import Store
from authserver.errors import NotFound
from authserver.models import Client, PendingDevice, User
from authserver.scopes import from_string
from authserver.security.user_codes import UserCodeHasher, display, normalize


@dataclass(frozen=True)
class LookupLimits:
    per_address: int  # wrong user codes one address may try within the window
    window: int  # seconds: the counting window, and how long a pause lasts


@dataclass(frozen=True)
class Found:
    """A device waiting for a decision, and the application it asks for."""

    device: PendingDevice
    client: Client
    user_code: str  # as a person reads it

    @property
    def scopes(self) -> tuple[str, ...]:
        return from_string(self.device.scope)


@dataclass(frozen=True)
class Lookup:
    found: Found | None
    paused_for: int | None = None  # seconds until this address may look codes up again


class Verification:
    def __init__(self, store: Store, user_codes: UserCodeHasher, limits: LookupLimits) -> None:
        self._store = store
        self._user_codes = user_codes
        self._limits = limits

    async def find(self, typed: str, address: str) -> Lookup:
        """The device the code a person typed names, if it still waits for a decision."""
        limits = self._limits
        key = f"user_code:{address[:100]}"
        paused = await self._store.throttles.claim(
            [(key, limits.per_address)], window=limits.window
        )
        if paused is not None:
            return Lookup(None, max(1, round(paused)))
        code = normalize(typed)
        if code is None:
            return Lookup(None)
        device = await self._store.device_codes.pending(self._user_codes.candidates(code))
        client = await self._client(device.client_id) if device is not None else None
        if device is None or client is None:
            return Lookup(None)
        await self._store.throttles.give_back(key, limit=limits.per_address)
        return Lookup(Found(device, client, display(code)))

    async def _client(self, client_id: str) -> Client | None:
        """The application, if it may still use the grant (its owner may have turned it off)."""
        try:
            client = await self._store.clients.get(client_id)
        except NotFound:
            return None
        return client if client.active and client.device_grant else None

    async def decide(
        self, found: Found, user: User, auth_time: datetime | None, *, allow: bool
    ) -> bool:
        """Approve or deny the device, once; False when it was decided already or expired."""
        client_id = found.client.client_id
        try:
            async with self._store.transaction() as tx:
                grant_id = None
                if allow:
                    # The grant the device's tokens hang on: the user sees it among their
                    # authorized apps, and revoking it kills them (like a code's grant).
                    grant_id = await tx.grants.ensure(user.user_id, client_id, found.scopes)
                decided = await tx.device_codes.decide(
                    found.device.digest, user.user_id, grant_id=grant_id, auth_time=auth_time
                )
                if not decided:
                    raise _AlreadyDecided  # rolls back the grant revived for nothing
                await tx.audit.record(
                    "device.approved" if allow else "device.denied",
                    client_id=client_id,
                    user_id=user.user_id,
                )
        except _AlreadyDecided:
            return False
        return True


class _AlreadyDecided(Exception):
    pass
