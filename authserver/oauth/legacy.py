"""Tokens imported from Phraseanet (D9, D12): 32 characters of [0-9A-Za-z], no kind, no MAC.

Our own tokens are refused before any query when their MAC fails; these cannot be, so a value of
their shape costs a lookup, by the SHA-256 digest of its exact value (no case folding) and among
the imported rows only. That lookup is made only while imported rows exist: whether they do is
read at start-up and every ``REFRESH`` seconds (one indexed EXISTS), so once none are left a
forged value costs nothing again. Unknown values count as guesses like any other token's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from authserver.models import TokenRow
from authserver.periodic import every
from authserver.security.tokens import is_legacy_shaped, token_digest

log = logging.getLogger("authserver.oauth")

REFRESH = 60.0  # seconds: how soon tokens imported into a running server are recognised

LegacyLookup = Callable[[bytes], Awaitable[TokenRow | None]]


class LegacyTokens:
    def __init__(
        self,
        lookup: LegacyLookup,
        exists: Callable[[], Awaitable[bool]],
        introspect: LegacyLookup | None = None,
    ) -> None:
        self._lookup = lookup
        self._introspect = lookup if introspect is None else introspect  # may answer from memory
        self._exists = exists
        # Until the first look says otherwise, look them up: a wrong "none" would refuse
        # every imported token, a wrong "some" only costs queries.
        self.present = True

    def recognises(self, token: str) -> bool:
        """Is ``token`` worth a lookup among the imported tokens?"""
        return self.present and is_legacy_shaped(token)

    async def find(self, token: str) -> TokenRow | None:
        return await self._lookup(token_digest(token))

    async def introspect(self, token: str) -> TokenRow | None:
        """Like ``find``, for introspection only (authserver.db.token_cache)."""
        return await self._introspect(token_digest(token))

    async def refresh(self) -> None:
        self.present = await self._exists()

    async def follow(self, interval: float = REFRESH) -> None:
        """Refresh every ``interval`` seconds until cancelled; a failed look keeps the last."""
        await every(
            interval, self.refresh, "cannot tell whether Phraseanet tokens remain", at_once=True
        )
