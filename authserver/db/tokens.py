"""Access and refresh tokens, and authorization codes: stored and looked up by digest only."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from authserver.db.executor import QueryGroup, columns, dumps
from authserver.db.rows import (
    AuditInsert,
    ClientAuditInsert,
    ClientTokenInsert,
    ExchangedToken,
    Issue,
    IssuedToken,
    NewCode,
    TokenInsert,
)
from authserver.models import CodeRow, TokenRow

_TOKEN_FIELDS = len(TokenInsert._fields)
_AUDIT_FIELDS = len(AuditInsert._fields)
_CLIENT_TOKEN_FIELDS = len(ClientTokenInsert._fields)
_CLIENT_AUDIT_FIELDS = len(ClientAuditInsert._fields)


class TokenQueries(QueryGroup):
    __slots__ = ()

    async def issue(self, issues: Sequence[Issue]) -> None:
        """Store the tokens of these issues, and audit each issue, in one statement: the lean
        one when they are all a client's own (``Issue.clients_own``), which sends only the
        arrays those fill."""
        if all(issue.clients_own for issue in issues):
            await self._db.execute(self._q["issue_client_tokens"], *_client_arrays(issues))
        else:
            await self._db.execute(self._q["issue_tokens"], *_arrays(issues))
        for issue in issues:
            self._audited("token.issued", {"grant_type": issue.grant_type})

    async def issue_each(self, issues: list[Issue]) -> list[Exception | None]:
        """Concurrent requests' issues in one statement (authserver.db.batches). If PostgreSQL
        refuses it for its data (a client deleted meanwhile), each is tried alone, so one
        request's problem does not become the others'."""
        try:
            await self.issue(issues)
        except asyncpg.PostgresError:
            if len(issues) == 1:
                raise
        else:
            return [None] * len(issues)
        results: list[Exception | None] = []
        for issue in issues:
            try:
                await self.issue([issue])
            except asyncpg.PostgresError as exc:
                results.append(exc)
            else:
                results.append(None)
        return results

    async def issue_exchanged(self, token: ExchangedToken) -> bool:
        """Issue an exchanged token and audit it; False when the subject token is no longer
        live (revoked or expired since it was read)."""
        issued = await self._db.fetchval(
            self._q["issue_exchanged_token"],
            token.digest,
            token.subject_digest,
            token.client_id,
            token.user_id,
            token.grant_id,
            token.scope,
            float(token.expires_in),
            token.audience,
            list(token.actors),
            dumps(token.detail),
        )
        if issued is None:
            return False
        self._audited("token.issued", token.detail)
        return True

    async def by_digests(self, digests: list[bytes]) -> list[TokenRow | None]:
        """The token of each digest, or None, in the order asked (authserver.db.batches)."""
        rows = await self._db.fetch(self._q["tokens_by_digests"], digests)
        found = {row["digest"]: TokenRow.from_row(row) for row in rows}
        return [found.get(digest) for digest in digests]

    async def legacy_by_digests(self, digests: list[bytes]) -> list[TokenRow | None]:
        """Like ``by_digests``, among the tokens imported from Phraseanet only."""
        rows = await self._db.fetch(self._q["legacy_tokens_by_digests"], digests)
        found = {row["digest"]: TokenRow.from_row(row) for row in rows}
        return [found.get(digest) for digest in digests]

    async def any_legacy(self) -> bool:
        """Whether any token imported from Phraseanet is stored."""
        return bool(await self._db.fetchval(self._q["any_legacy_token"]))

    async def claim_refresh(self, digest: bytes) -> bool:
        """Rotate a refresh token out; False when it was already used or revoked."""
        return await self._db.fetchrow(self._q["claim_refresh_token"], digest) is not None

    async def revoke_family(self, family_id: UUID, presented: bytes) -> None:
        """Revoke a family, locking the token whose use or revocation set this off first."""
        await self._db.execute(self._q["revoke_family"], family_id, presented)

    async def revoke_code_families(self, code_digest: bytes) -> None:
        await self._db.execute(self._q["revoke_code_families"], code_digest)

    async def revoke(self, digest: bytes, client_id: str) -> tuple[str, UUID | None] | None:
        """Revoke a client's own token; its kind and family, or None if nothing was revoked."""
        row = await self._db.fetchrow(self._q["revoke_token"], digest, client_id)
        return None if row is None else (row["kind"], row["family_id"])

    async def revoke_of_user(self, user_id: str) -> int:
        """Revoke every live token of a user; how many."""
        return int(await self._db.fetchval(self._q["revoke_user_tokens"], user_id))

    async def revoke_of_client(self, client_id: str) -> int:
        """Revoke every live token of a client; how many."""
        return int(await self._db.fetchval(self._q["revoke_client_tokens"], client_id))

    async def delete_developer_tokens(self, grant_id: int) -> None:
        await self._db.execute(self._q["delete_developer_tokens"], grant_id)


class CodeQueries(QueryGroup):
    __slots__ = ()

    async def insert(self, code: NewCode) -> bool:
        """Store a code; whether another code of its client had the same PKCE challenge."""
        return bool(
            await self._db.fetchval(
                self._q["insert_code"],
                code.digest,
                code.client_id,
                code.user_id,
                code.grant_id,
                code.redirect_uri,
                code.scope,
                code.code_challenge,
                None if code.code_challenge is None else "S256",
                float(code.expires_in),
                code.nonce,
                code.auth_time,
            )
        )

    async def by_digest(self, digest: bytes) -> CodeRow | None:
        row = await self._db.fetchrow(self._q["code_by_digest"], digest)
        return None if row is None else CodeRow.from_row(row)

    async def claim(self, digest: bytes) -> bool:
        """Consume a code; False when another request (or an earlier one) already did."""
        return await self._db.fetchval(self._q["claim_code"], digest) is not None

    async def delete_unredeemed(
        self, *, user_id: str | None = None, client_id: str | None = None
    ) -> None:
        """Codes of a user, or of a client, that were not redeemed yet never will be."""
        if user_id is not None:
            await self._db.execute(self._q["delete_unredeemed_codes_of_user"], user_id)
        if client_id is not None:
            await self._db.execute(self._q["delete_unredeemed_codes_of_client"], client_id)


def _arrays(issues: Sequence[Issue]) -> list[list[Any]]:
    """``issue_tokens``'s arguments: its token arrays, then its audit arrays."""
    rows = [
        TokenInsert(
            digest=token.digest,
            kind=token.kind,
            client_id=issue.client_id,
            user_id=issue.user_id,
            grant_id=issue.grant_id,
            family_id=issue.family_id,
            code_digest=issue.code_digest,
            scope=token.scope,
            expires_in=None if token.expires_in is None else float(token.expires_in),
            developer=issue.grant_type == "developer",
            not_after=token.not_after,
            auth_time=issue.auth_time,
        )
        for issue in issues
        for token in issue.tokens
    ]
    events = [
        AuditInsert(issue.client_id, issue.user_id, _issued_json(issue.grant_type))
        for issue in issues
    ]
    return [*columns(rows, _TOKEN_FIELDS), *columns(events, _AUDIT_FIELDS)]


def _client_arrays(issues: Sequence[Issue]) -> list[list[Any]]:
    """``issue_client_tokens``'s arguments, for issues that are all a client's own."""
    rows = [_client_row(issue, token) for issue in issues for token in issue.tokens]
    events = [
        ClientAuditInsert(issue.client_id, _issued_json(issue.grant_type)) for issue in issues
    ]
    return [*columns(rows, _CLIENT_TOKEN_FIELDS), *columns(events, _CLIENT_AUDIT_FIELDS)]


def _client_row(issue: Issue, token: IssuedToken) -> ClientTokenInsert:
    if token.expires_in is None:  # Issue.clients_own rules this out
        raise ValueError("a client's own token expires")
    return ClientTokenInsert(
        token.digest, token.kind, issue.client_id, token.scope, float(token.expires_in)
    )


@functools.cache
def _issued_json(grant_type: str) -> str:
    """A ``token.issued`` event's detail, encoded once per grant type (issues are the hot
    write)."""
    return dumps({"grant_type": grant_type})
