"""User passwords: argon2id, verified off the event loop, rehashed when parameters change.

argon2 is deliberately slow and memory-hungry (64 MiB per verify with the defaults), so every
hash and verify runs in a worker thread under its own small limiter: a burst of logins cannot
stall the event loop or use more than ``concurrency`` times memory_cost of RAM. A burst larger
than can be verified within ``max_wait`` seconds is shed at once (``admit``) rather than queued
for longer than a client waits (checklist R-20).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import anyio
from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import Type as LowLevelType

from authserver.config import Argon2Params
from authserver.errors import Overloaded


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


def argon2id(params: Argon2Params) -> PasswordHasher:
    """The hasher every password hash is made with (the importer's wrapping included)."""
    return PasswordHasher(
        time_cost=params.time_cost,
        memory_cost=params.memory_cost,
        parallelism=params.parallelism,
        type=Type.ID,
    )


class Passwords:
    def __init__(self, params: Argon2Params, concurrency: int = 2, max_wait: float = 2.0) -> None:
        self._hasher = argon2id(params)
        self._concurrency = concurrency
        self._limiter = anyio.CapacityLimiter(concurrency)
        self._max_wait = max_wait
        self._queued = 0  # admitted verifications, waiting for the limiter or running
        # Verified for unknown users, so that "no such user" costs what "wrong password" costs;
        # the first verify also tells how long one takes on this machine.
        started = time.perf_counter()
        self._dummy_hash = self._hasher.hash("authserver dummy password")
        self._seconds = time.perf_counter() - started  # one verify, averaged as they happen

    @contextmanager
    def admitted(self) -> Iterator[None]:
        """A place in the queue of verifications for the block's work, or ``Overloaded`` at
        once when it would wait longer than ``max_wait`` for the ones before it."""
        waits = self._queued // self._concurrency * self._seconds
        if waits > self._max_wait:
            raise Overloaded(
                "too many sign-ins at once; retry shortly", retry_after=max(1, round(waits))
            )
        self._queued += 1
        try:
            yield
        finally:
            self._queued -= 1

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hasher.hash, password, limiter=self._limiter)

    async def verify(self, stored_hash: str | None, password: str) -> Verified:
        """Check ``password``; ``stored_hash`` None (unknown user, no password) always fails."""
        return await anyio.to_thread.run_sync(
            self._timed_verify, stored_hash, password, limiter=self._limiter
        )

    def _timed_verify(self, stored_hash: str | None, password: str) -> Verified:
        started = time.perf_counter()
        try:
            return self._verify_sync(stored_hash, password)
        finally:
            # A moving average: the machine's load, and the parameters of stored hashes, vary.
            self._seconds = 0.8 * self._seconds + 0.2 * (time.perf_counter() - started)

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
