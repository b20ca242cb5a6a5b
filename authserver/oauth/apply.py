"""The store phase: apply what the decide phase recorded, in one transaction.

Single-use things (codes, refresh tokens, device codes) are claimed first, by conditional
writes; if a claim is lost to a concurrent request, nothing else of this request is written,
what was issued from the claimed thing is revoked (RFC 6749 §4.1.2, RFC 9700 §4.14.2; not for a
device code, which only its device holds and may poll twice at once), and the answer becomes
``invalid_grant``. Nothing is sent to the client before this succeeded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from authserver.db.device_codes import NewDeviceCode
from authserver.db.rows import ExchangedToken, Issue, IssuedToken
from authserver.db.store import Store
from authserver.db.throttles import ClientFailures
from authserver.errors import InvalidGrant
from authserver.oauth.exchange import TOKEN_EXCHANGE
from authserver.oauth.flow import Flow
from authserver.oauth.intents import (
    Audit,
    ClaimCode,
    CountAuthFailure,
    Intent,
    IssueDeviceCode,
    IssueExchanged,
    IssueTokens,
    RevokeCodeFamilies,
    RevokeFamily,
    RevokeToken,
)
from authserver.security.tokens import token_digest
from authserver.security.user_codes import UserCodeHasher

# Sends an issue with others made in the same turn of the event loop (authserver.db.batches).
IssueBatch = Callable[[Issue], Awaitable[None]]

_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
_ATTEMPTS = 3


@dataclass(frozen=True)
class Lifetimes:
    access_token: int  # seconds
    refresh_token: int


@dataclass(frozen=True)
class DeviceTiming:
    expires_in: int  # seconds a device code waits for the user
    interval: int  # seconds between polls, at least


@dataclass(frozen=True)
class ClientPause:
    max_failures: int  # failed client authentications within the window before a pause
    window: int  # seconds


class _ClaimLost(InvalidGrant):
    def __init__(self, revoke: RevokeCodeFamilies | RevokeFamily | None, audit: Audit) -> None:
        super().__init__(audit.kind)
        self.revoke = revoke
        self.audit = audit


class _SubjectGone(InvalidGrant):
    """Token exchange: the subject token was revoked or expired before the store phase."""


class Applier:
    def __init__(
        self,
        store: Store,
        issues: IssueBatch,
        lifetimes: Lifetimes,
        pause: ClientPause,
        device: DeviceTiming,
        user_codes: UserCodeHasher,
    ) -> None:
        self._store = store
        self._issues = issues
        self._lifetimes = lifetimes
        self._pause = pause
        self._device = device
        self._user_codes = user_codes

    async def apply(self, flow: Flow) -> bool:
        """Apply the flow's intents; False when a single-use claim was lost."""
        if len(flow.intents) == 1 and isinstance(flow.intents[0], IssueExchanged):
            # One statement, atomic by itself: the exchanged token, its subject checked.
            return await self._store.tokens.issue_exchanged(_exchanged(flow, flow.intents[0]))
        issue = self._issue_alone(flow)
        if issue is not None:
            # Tokens with nothing to claim first (client credentials, above all): one statement
            # is atomic by itself, without BEGIN and COMMIT, and may carry other requests' too.
            await self._issues(issue)
            return True
        try:
            await self._in_transaction(lambda tx: self._apply(tx, flow))
        except _ClaimLost as exc:
            lost = exc
        except _SubjectGone:
            return False
        else:
            return True
        # Someone else redeemed it first: what was issued from it can no longer be trusted.
        await self._in_transaction(lambda tx: _after_lost_claim(tx, lost))
        return False

    def _issue_alone(self, flow: Flow) -> Issue | None:
        """The flow's issue, if issuing is all it writes and needs no grant created first."""
        if len(flow.intents) != 1 or flow.client is None:
            return None
        intent = flow.intents[0]
        if not isinstance(intent, IssueTokens) or intent.rotated_from is not None:
            return None
        if intent.device_digest is not None:
            return None  # the device code is claimed first
        if intent.user_id is not None and intent.grant_id is None:
            return None  # the password grant's grant may have to be created
        return self._issue_of(flow.client.client_id, intent, intent.grant_id)

    async def _in_transaction(self, work: Callable[[Store], Awaitable[None]]) -> None:
        """Run ``work`` in one transaction, again from the start if PostgreSQL aborted it.

        Concurrent revocations of one family (refresh reuse, code replay, RFC 7009) can lock
        the same rows in different orders; PostgreSQL then aborts one of them (40P01). The
        rolled-back transaction wrote nothing, so running it again is safe (checklist R-04,
        R-11).
        """
        for attempt in range(_ATTEMPTS):
            try:
                async with self._store.transaction() as tx:
                    await work(tx)
                return
            except _RETRYABLE:
                if attempt == _ATTEMPTS - 1:
                    raise

    async def _apply(self, tx: Store, flow: Flow) -> None:
        client_id = flow.client.client_id if flow.client is not None else None
        # Claims first: if one is lost, nothing else of this request may be written.
        for intent in flow.intents:
            await _claim(tx, intent, client_id)
            if isinstance(intent, IssueExchanged) and not await tx.tokens.issue_exchanged(
                _exchanged(flow, intent)
            ):
                raise _SubjectGone("the subject token is no longer live")
        for intent in flow.intents:
            await self._write(tx, intent, client_id)

    async def _write(self, tx: Store, intent: Intent, client_id: str | None) -> None:
        if isinstance(intent, IssueTokens):
            assert client_id is not None
            grant_id = intent.grant_id
            if intent.user_id is not None and grant_id is None:
                # The password grant never shows a consent page; it still leaves a grant the
                # user can see and revoke among their authorized apps.
                grant_id = await tx.grants.ensure(intent.user_id, client_id, intent.scope.split())
            await tx.tokens.issue([self._issue_of(client_id, intent, grant_id)])
        elif isinstance(intent, IssueDeviceCode):
            assert client_id is not None
            await self._store_device_code(tx, intent, client_id)
        elif isinstance(intent, (RevokeCodeFamilies, RevokeFamily)):
            await _revoke(tx, intent)
        elif isinstance(intent, RevokeToken):
            revoked = await tx.tokens.revoke(intent.digest, intent.client_id)
            if revoked is not None and revoked[0] == "refresh" and revoked[1] is not None:
                # RFC 7009 §2.1: revoking a refresh token revokes the access tokens it begot.
                await tx.tokens.revoke_family(revoked[1], intent.digest)
        elif isinstance(intent, CountAuthFailure):
            pause = self._pause
            failure = ClientFailures(
                intent.client_id, "secret", intent.address[:100], 1, pause.max_failures
            )
            await tx.throttles.record_client_failures([failure], window=pause.window)
        elif isinstance(intent, Audit):
            await tx.audit.record(
                intent.kind,
                client_id=intent.client_id,
                user_id=intent.user_id,
                detail=intent.detail,
            )

    async def _store_device_code(self, tx: Store, intent: IssueDeviceCode, client_id: str) -> None:
        device = self._device
        stored = await tx.device_codes.insert(
            NewDeviceCode(
                digest=token_digest(intent.device_code),
                user_code_digest=self._user_codes.digest(intent.user_code),
                client_id=client_id,
                scope=intent.scope,
                expires_in=device.expires_in,
                interval=device.interval,
            )
        )
        if not stored:
            # One pending user code in 2^34 is taken: the bridge answers with fresh codes.
            raise _ClaimLost(None, Audit("device_code.user_code_taken", client_id))

    def _issue_of(self, client_id: str, intent: IssueTokens, grant_id: int | None) -> Issue:
        lifetimes = self._lifetimes
        end = intent.not_after
        tokens = [
            IssuedToken(
                token_digest(intent.access_token),
                "access",
                intent.scope,
                lifetimes.access_token,
                end,
            )
        ]
        if intent.refresh_token is not None:
            scope = intent.scope if intent.refresh_scope is None else intent.refresh_scope
            tokens.append(
                IssuedToken(
                    token_digest(intent.refresh_token),
                    "refresh",
                    scope,
                    lifetimes.refresh_token,
                    end,
                )
            )
        return Issue(
            grant_type=intent.grant_type,
            client_id=client_id,
            user_id=intent.user_id,
            grant_id=grant_id,
            family_id=intent.family_id,
            code_digest=intent.code_digest,
            tokens=tuple(tokens),
            auth_time=intent.auth_time,
        )


def _exchanged(flow: Flow, intent: IssueExchanged) -> ExchangedToken:
    assert flow.client is not None  # the acting client authenticated
    detail: dict[str, object] = {"grant_type": TOKEN_EXCHANGE}
    if intent.audience is not None:
        detail["audience"] = intent.audience
    return ExchangedToken(
        digest=token_digest(intent.access_token),
        subject_digest=intent.subject_digest,
        client_id=flow.client.client_id,
        user_id=intent.user_id,
        grant_id=intent.grant_id,
        scope=intent.scope,
        expires_in=intent.lifetime,
        audience=intent.audience,
        actors=intent.actors,
        detail=detail,
    )


async def _claim(tx: Store, intent: Intent, client_id: str | None) -> None:
    if isinstance(intent, IssueTokens) and intent.device_digest is not None:
        if not await tx.device_codes.claim(intent.device_digest):
            raise _ClaimLost(None, Audit("device_code.reuse_detected", client_id, intent.user_id))
    elif isinstance(intent, ClaimCode):
        if not await tx.codes.claim(intent.digest):
            raise _ClaimLost(
                RevokeCodeFamilies(intent.digest), Audit("code.replay_detected", client_id)
            )
    elif (
        isinstance(intent, IssueTokens)
        and intent.rotated_from is not None
        and not await tx.tokens.claim_refresh(intent.rotated_from)
    ):
        assert intent.family_id is not None  # refresh tokens always belong to a family
        raise _ClaimLost(
            RevokeFamily(intent.family_id, intent.rotated_from),
            Audit("refresh.reuse_detected", client_id, intent.user_id),
        )


async def _after_lost_claim(tx: Store, lost: _ClaimLost) -> None:
    if lost.revoke is not None:
        await _revoke(tx, lost.revoke)
    await tx.audit.record(
        lost.audit.kind,
        client_id=lost.audit.client_id,
        user_id=lost.audit.user_id,
        detail=lost.audit.detail,
    )


async def _revoke(tx: Store, intent: RevokeCodeFamilies | RevokeFamily) -> None:
    if isinstance(intent, RevokeFamily):
        await tx.tokens.revoke_family(intent.family_id, intent.presented)
    else:
        await tx.tokens.revoke_code_families(intent.code_digest)
