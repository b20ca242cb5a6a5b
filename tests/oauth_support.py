"""Helpers for OAuth tests: PKCE pairs and authorization codes made the way the server makes
them (until a test drives the authorization endpoint itself)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from datetime import UTC, datetime, timedelta

import asyncpg

from authserver.oauth.openid import IdTokenSigner
from authserver.oidc.keys import ALGORITHMS, SigningKey, SigningKeys, generate
from authserver.security.keys import Keyring
from authserver.security.tokens import TokenCodec, TokenKind, token_digest
from tests.conftest import SECRET_KEY

CODEC = TokenCodec(Keyring([SECRET_KEY]))


def signing_keys() -> SigningKeys:
    """Signing keys in memory, one per algorithm, signing since an hour ago."""
    keys = SigningKeys(time.time)
    since = datetime.now(UTC) - timedelta(hours=1)
    keys.use(
        [
            SigningKey(key.kid or "", alg, key, since, None, None)
            for alg in ALGORITHMS
            for key in [generate(alg)]
        ]
    )
    return keys


ID_TOKENS = IdTokenSigner(signing_keys(), lifetime=3600)


def s256(verifier: str) -> str:
    """The RFC 7636 S256 challenge of a verifier."""
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def pkce_pair() -> tuple[str, str]:
    """A fresh RFC 7636 verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    return verifier, s256(verifier)


async def issue_code(
    db: asyncpg.Connection,
    client_id: str,
    user_id: str,
    *,
    redirect_uri: str | None,
    challenge: str | None,
    scope: str = "read write",
    ttl: int = 60,
) -> str:
    """Store a new authorization code under the user's grant and return it."""
    grant_id = await db.fetchval(
        """INSERT INTO grants (user_id, client_id, scopes) VALUES ($1, $2, $3)
           ON CONFLICT (user_id, client_id) DO UPDATE SET revoked_at = NULL
           RETURNING grant_id""",
        user_id,
        client_id,
        scope.split(),
    )
    code = CODEC.mint(TokenKind.CODE)
    await db.execute(
        """INSERT INTO authorization_codes (digest, client_id, user_id, grant_id, redirect_uri,
               scope, code_challenge, code_challenge_method, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9))""",
        token_digest(code),
        client_id,
        user_id,
        grant_id,
        redirect_uri,
        scope,
        challenge,
        None if challenge is None else "S256",
        float(ttl),
    )
    return code
