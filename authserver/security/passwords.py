"""User passwords: argon2id, verified off the event loop, rehashed when parameters change.

argon2 is deliberately slow and memory-hungry (64 MiB per verify with the defaults), so every
hash and verify runs in a worker thread under its own small limiter: a burst of logins cannot
stall the event loop or use more than ``concurrency`` times memory_cost of RAM.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio
from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import Type as LowLevelType

from authserver.config import Argon2Params


@dataclass(frozen=True)
class Verified:
    ok: bool
    new_hash: str | None = None  # set when the stored hash should be replaced by this one


def is_argon2_hash(value: str) -> bool:
    """True for a well-formed argon2 (i, d or id) PHC string that this library can verify."""
    try:
        params = extract_parameters(value)
    except (InvalidHashError, ValueError):
        return False
    return params.type in (LowLevelType.ID, LowLevelType.I, LowLevelType.D)


class Passwords:
    def __init__(self, params: Argon2Params, concurrency: int = 2) -> None:
        self._hasher = PasswordHasher(
            time_cost=params.time_cost,
            memory_cost=params.memory_cost,
            parallelism=params.parallelism,
            type=Type.ID,
        )
        self._limiter = anyio.CapacityLimiter(concurrency)
        # Verified for unknown users, so that "no such user" costs what "wrong password" costs.
        self._dummy_hash = self._hasher.hash("authserver dummy password")

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hasher.hash, password, limiter=self._limiter)

    async def verify(self, stored_hash: str | None, password: str) -> Verified:
        """Check ``password``; ``stored_hash`` None (unknown user, no password) always fails."""
        return await anyio.to_thread.run_sync(
            self._verify_sync, stored_hash, password, limiter=self._limiter
        )

    def _verify_sync(self, stored_hash: str | None, password: str) -> Verified:
        candidate = stored_hash if stored_hash is not None else self._dummy_hash
        try:
            self._hasher.verify(candidate, password)
        except (VerificationError, InvalidHashError):
            return Verified(ok=False)
        if stored_hash is None:
            return Verified(ok=False)
        if self._hasher.check_needs_rehash(stored_hash):
            return Verified(ok=True, new_hash=self._hasher.hash(password))
        return Verified(ok=True)
