"""What ID tokens and the UserInfo endpoint say about a user, by the scopes granted (OpenID
Connect Core §5.1, §5.4), and the ID token's own claims (§2)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from authserver.models import User

IDENTITY_SCOPES = ("openid", "profile", "email")

# Core §5.4: the claims each scope asks for (those this server has).
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "openid": ("sub",),
    "profile": ("name", "preferred_username"),
    "email": ("email", "email_verified"),
}
CLAIMS_SUPPORTED = (
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "azp",
    "name",
    "preferred_username",
    "email",
    "email_verified",
)


def user_claims(user: User, scopes: Collection[str]) -> dict[str, Any]:
    """``sub`` and what the granted scopes let the client read of the user."""
    claims: dict[str, Any] = {"sub": user.user_id}
    if "profile" in scopes:
        claims["name"] = user.display_name or user.login
        claims["preferred_username"] = user.login
    if "email" in scopes and user.email is not None:
        claims["email"] = user.email
        claims["email_verified"] = user.email_verified
    return claims


def id_token_claims(
    started: dict[str, Any],
    *,
    issuer: str,
    client_id: str,
    user: User,
    scopes: Collection[str],
    auth_time: datetime | None,
    lifetime: int,
) -> dict[str, Any]:
    """Core §2, §3.1.3.6: oauthlib's start (``aud``, ``iat``, ``nonce``, ``at_hash``) with the
    rest of what an ID token says."""
    claims = dict(started)
    claims.update(user_claims(user, scopes))
    claims["iss"] = issuer
    claims["aud"] = client_id
    claims["azp"] = client_id  # the party the token was issued to (§2), the audience here
    claims["exp"] = int(claims["iat"]) + lifetime
    if auth_time is not None:
        claims["auth_time"] = int(auth_time.timestamp())
    return claims
