"""RFC 7662 answers, shared by the public endpoint (through oauthlib) and the admin listener."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from authserver.answer import JSON, NO_STORE, Answer
from authserver.models import TokenRow
from authserver.oauth.flow import Flow
from authserver.oauth.legacy import LegacyTokens
from authserver.oauth.responses import OAUTHLIB_JSON_HEADERS, oauth_response
from authserver.security.tokens import TokenCodec, TokenKind, token_digest

INACTIVE: dict[str, Any] = {"active": False}
json_string = json.encoder.encode_basestring_ascii  # a str as json.dumps writes it

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


def introspected(flow: Flow, token: str) -> TokenRow | None:
    """The row the load phase fetched for ``token`` if it is an active access token (what
    introspection answers for), and note the verdict."""
    row = flow.token
    if row is None or row.digest != token_digest(token) or not row.active or row.kind != "access":
        row = None
    flow.introspected_active = row is not None
    return row


def loaded_claims(flow: Flow, token: str, issuer: str) -> dict[str, Any] | None:
    """The claims for ``token`` from the row the load phase fetched, and note the verdict."""
    row = introspected(flow, token)
    return None if row is None else introspection_claims(row, issuer)


INACTIVE_ANSWER = oauth_response(OAUTHLIB_JSON_HEADERS, json.dumps(INACTIVE), 200)
_ACTIVE_HEADERS = (*NO_STORE, JSON)  # oauth_response's order for OAUTHLIB_JSON_HEADERS


class ActiveAnswers:
    """oauthlib's answer for an active access token, ``{"active": true, **claims}`` as
    ``introspection_claims`` and json.dumps make it, written out directly: introspection is
    the hottest request, and the dict and json.dumps cost more than the rest of an answer
    from memory. tests/test_bridge.py compares it with oauthlib's, byte for byte."""

    def __init__(self, issuer: str) -> None:
        self._issued_by = f', "iss": {json_string(issuer)}'

    def of_row(self, row: TokenRow) -> Answer:
        expires = None if row.expires_at is None else row.expires_at.timestamp()
        return self.answer(
            row.scope,
            row.client_id,
            row.created_at.timestamp(),
            expires,
            row.user_id,
            row.username,
            row.audience,
            row.actors,
        )

    def answer(
        self,
        scope: str,
        client_id: str,
        created: float,
        expires: float | None,
        user_id: str | None,
        username: str | None,
        audience: str | None,
        actors: tuple[str, ...],
    ) -> Answer:
        """The answer from the token's fields (times in epoch seconds)."""
        parts = [
            '{"active": true, "scope": ',
            json_string(scope),
            ', "client_id": ',
            json_string(client_id),
            f', "token_type": "Bearer", "iat": {int(created)}',
            self._issued_by,
        ]
        if expires is not None:
            parts.append(f', "exp": {int(expires)}')
        if user_id is not None:
            parts += (', "sub": ', json_string(user_id), ', "username": ')
            parts.append("null" if username is None else json_string(username))
        if audience is not None:
            parts += (', "aud": ', json_string(audience))
        if actors:
            parts += (', "act": ', json.dumps(actor_claim(actors)))
        body = "".join((*parts, "}")).encode()
        return Answer(200, [*_ACTIVE_HEADERS, (b"content-length", b"%d" % len(body))], body)


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
