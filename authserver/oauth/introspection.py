"""RFC 7662 answers, shared by the public endpoint (through oauthlib) and the admin listener."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from authserver.models import TokenRow
from authserver.oauth.flow import Flow
from authserver.oauth.legacy import LegacyTokens
from authserver.security.tokens import TokenCodec, TokenKind, token_digest

INACTIVE: dict[str, Any] = {"active": False}

# Finds a token's row by its digest (batched with the lookups made at the same time).
Lookup = Callable[[bytes], Awaitable[TokenRow | None]]


def introspection_claims(row: TokenRow, issuer: str) -> dict[str, Any] | None:
    """RFC 7662 §2.2 members for an active access token; None for anything else.

    A refresh token is never "active" here: only its client may use it, at the token endpoint,
    and a resource server that checked nothing but ``active`` would otherwise take a month-long
    refresh token for an access token.
    """
    if not row.active or row.kind != "access":
        return None
    claims: dict[str, Any] = {
        "scope": row.scope,
        "client_id": row.client_id,
        "token_type": "Bearer",
        "iat": int(row.created_at.timestamp()),
        "iss": issuer,
    }
    if row.expires_at is not None:
        claims["exp"] = int(row.expires_at.timestamp())
    if row.user_id is not None:
        claims["sub"] = row.user_id
        claims["username"] = row.username
    if row.audience is not None:
        claims["aud"] = row.audience
    if row.actors:
        claims["act"] = actor_claim(row.actors)  # RFC 8693 §4.1, for an exchanged token
    return claims


def actor_claim(actors: tuple[str, ...]) -> dict[str, Any] | None:
    """RFC 8693 §4.1 ``act``: the latest actor outermost, each earlier one nested inside."""
    claim: dict[str, Any] | None = None
    for actor in reversed(actors):
        claim = {"sub": actor} if claim is None else {"sub": actor, "act": claim}
    return claim


def loaded_claims(flow: Flow, token: str, issuer: str) -> dict[str, Any] | None:
    """The claims for ``token`` from the row the load phase fetched, and note the verdict."""
    row = flow.token
    claims = None
    if row is not None and row.digest == token_digest(token):
        claims = introspection_claims(row, issuer)
    flow.introspected_active = claims is not None
    return claims


class Introspector:
    """The full introspection answer for a token as a resource server received it (the admin
    listener's ``POST /introspect``)."""

    def __init__(
        self, codec: TokenCodec, lookup: Lookup, issuer: str, legacy: LegacyTokens
    ) -> None:
        self._codec = codec
        self._lookup = lookup
        self._issuer = issuer
        self._legacy = legacy

    async def introspect(self, token: str) -> dict[str, Any]:
        """A token whose MAC does not verify is answered without a database query (unless it
        may be one imported from Phraseanet, while some are stored)."""
        if self._codec.kind_of(token) in (TokenKind.ACCESS, TokenKind.REFRESH):
            row = await self._lookup(token_digest(token))
        elif self._legacy.recognises(token):
            row = await self._legacy.introspect(token)
        else:
            return INACTIVE
        claims = None if row is None else introspection_claims(row, self._issuer)
        return INACTIVE if claims is None else {"active": True, **claims}
