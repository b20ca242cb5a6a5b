"""What the decide phase wants written: the validator records these, the store phase applies them.

Each intent is a plain value (tokens and codes kept out of reprs); nothing here touches the
database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class IssueTokens:
    grant_type: str
    # The tokens themselves: never in a repr, a log or a traceback.
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    scope: str
    user_id: str | None
    grant_id: int | None  # None with a user: the password grant creates or reuses the grant
    family_id: UUID | None
    code_digest: bytes | None = None  # the code being redeemed, if any
    rotated_from: bytes | None = None  # the refresh token being rotated out, if any
    # RFC 6749 §6: a rotated refresh token keeps the scope of the one it replaces, even when
    # the access token was narrowed; None means the same scope as the access token.
    refresh_scope: str | None = None
    # No token of this issue outlives this instant: a rotation stays within its family's
    # lifetime, counted from the family's first issue (RFC 9700 §4.14.2).
    not_after: datetime | None = None
    auth_time: datetime | None = None  # OpenID Connect: the sign-in the family began with
    device_digest: bytes | None = None  # the device code being redeemed, if any (RFC 8628)


@dataclass(frozen=True)
class IssueExchanged:
    """RFC 8693: an access token exchanged for a live one; the store issues it only while the
    subject is still live, and never past its expiry."""

    access_token: str = field(repr=False)
    scope: str
    user_id: str
    grant_id: int  # the subject's: revoking the user's grant revokes what was exchanged
    subject_digest: bytes
    audience: str | None  # the resource server's client id
    actors: tuple[str, ...]  # the acting client first, then the subject's actors
    lifetime: int  # seconds


@dataclass(frozen=True)
class IssueCode:
    code: str = field(repr=False)
    user_id: str
    redirect_uri: str | None  # None when the request relied on the one registered URI
    scope: str
    code_challenge: str | None
    nonce: str | None = None  # OpenID Connect: echoed in the ID token
    auth_time: datetime | None = None  # when the user signed in


@dataclass(frozen=True)
class IssueDeviceCode:
    """A device authorization request answered (RFC 8628 §3.2): its codes, to store."""

    device_code: str = field(repr=False)
    user_code: str = field(repr=False)
    scope: str


@dataclass(frozen=True)
class ClaimCode:
    digest: bytes


@dataclass(frozen=True)
class RevokeFamily:
    """Refresh-token reuse: everything descended from that authorization dies."""

    family_id: UUID
    presented: bytes  # digest of the refresh token whose reuse was seen: locked first


@dataclass(frozen=True)
class RevokeCodeFamilies:
    """Code replay: what the first redemption issued dies (RFC 6749 §4.1.2)."""

    code_digest: bytes


@dataclass(frozen=True)
class RevokeToken:
    digest: bytes
    client_id: str


@dataclass(frozen=True)
class CountAuthFailure:
    """A client failed to authenticate with a secret: count it towards pausing that address
    (checklist S-29)."""

    client_id: str
    address: str


@dataclass(frozen=True)
class Audit:
    kind: str
    client_id: str | None = None
    user_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


Intent = (
    IssueTokens
    | IssueExchanged
    | IssueCode
    | IssueDeviceCode
    | ClaimCode
    | RevokeFamily
    | RevokeCodeFamilies
    | RevokeToken
    | CountAuthFailure
    | Audit
)
