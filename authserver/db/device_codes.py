"""Device codes (RFC 8628): stored by digest, decided once by the user, redeemed once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from authserver.db.executor import QueryGroup
from authserver.models import DeviceCodeRow, PendingDevice


@dataclass(frozen=True)
class NewDeviceCode:
    digest: bytes = field(repr=False)
    user_code_digest: bytes = field(repr=False)
    client_id: str
    scope: str
    expires_in: int  # seconds
    interval: int  # seconds between polls, at least


class DeviceCodeQueries(QueryGroup):
    __slots__ = ()

    async def insert(self, code: NewDeviceCode) -> bool:
        """Store a device code; False when its user code is taken by another one."""
        stored = await self._db.fetchval(
            self._q["insert_device_code"],
            code.digest,
            code.user_code_digest,
            code.client_id,
            code.scope,
            float(code.expires_in),
            code.interval,
        )
        return stored is not None

    async def poll(self, digest: bytes, client_id: str) -> DeviceCodeRow | None:
        """A client's device code, with this poll stamped on it; None if it has none such."""
        row = await self._db.fetchrow(self._q["poll_device_code"], digest, client_id)
        return None if row is None else DeviceCodeRow.from_row(row)

    async def pending(self, user_code_digests: list[bytes]) -> PendingDevice | None:
        """The device a user code names, while it waits for a decision."""
        row = await self._db.fetchrow(self._q["pending_device"], user_code_digests)
        return None if row is None else PendingDevice.from_row(row)

    async def decide(
        self,
        digest: bytes,
        user_id: str,
        *,
        grant_id: int | None,
        auth_time: datetime | None,
    ) -> bool:
        """Approve (with the grant) or deny (without); False if it was no longer pending."""
        decided = await self._db.fetchval(
            self._q["decide_device"], digest, user_id, grant_id is not None, grant_id, auth_time
        )
        return decided is not None

    async def claim(self, digest: bytes) -> bool:
        """Redeem an approved device code; False when another request already did."""
        return await self._db.fetchval(self._q["claim_device_code"], digest) is not None

    async def delete_unredeemed(
        self, *, user_id: str | None = None, client_id: str | None = None
    ) -> None:
        if user_id is not None:
            await self._db.execute(self._q["delete_unredeemed_device_codes_of_user"], user_id)
        if client_id is not None:
            await self._db.execute(self._q["delete_unredeemed_device_codes_of_client"], client_id)

    async def grant_enabled(self) -> bool:
        """Whether any active application may use the device grant."""
        return bool(await self._db.fetchval(self._q["device_grant_enabled"]))
