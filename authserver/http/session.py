"""Signed browser state: the session cookie, CSRF tokens and signed authorization requests.

The cookie holds only a signed random session id; whether it is signed in, and as whom, is a
row in the database, so signing out ends a session on every replica and an old cookie is
worth nothing afterwards. Everything is signed with itsdangerous under keys derived from the
server keys, one salt per purpose, so a value made for one purpose never passes for another.
Expiry is checked against a timestamp in the payload rather than itsdangerous's own, which
rejects values signed by a replica whose clock runs a few seconds ahead.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from authserver.security.keys import Keyring
from authserver.security.tokens import token_digest

REQUEST_TTL = 15 * 60  # seconds a login or consent form stays valid


def cookie_name(secure: bool) -> str:
    # The __Host- prefix makes browsers refuse the cookie unless it is Secure, host-only and
    # for Path=/, so no sibling subdomain can plant one; it needs https to be set at all.
    return "__Host-authserver_session" if secure else "authserver_session"


@dataclass(frozen=True)
class Session:
    sid: str  # random per browser session, replaced at sign-in (no fixation)

    @staticmethod
    def new() -> Session:
        return Session(secrets.token_urlsafe(24))

    @property
    def digest(self) -> bytes:
        """What the database knows the session by: a stolen table holds no usable cookie."""
        return token_digest(self.sid)


@dataclass(frozen=True)
class SignedRequest:
    query: str
    nonce: str | None


class Signer:
    def __init__(self, keyring: Keyring, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock  # wall-clock seconds: expiry stamps travel between replicas
        # itsdangerous wants keys oldest first; the last one signs.
        keys = [key.secret for key in reversed(keyring.derive("browser"))]
        self._session = URLSafeSerializer(keys, salt="session")
        self._csrf = URLSafeSerializer(keys, salt="csrf")
        self._request = URLSafeSerializer(keys, salt="authorize-request")

    def dump_session(self, session: Session) -> str:
        return self._session.dumps(session.sid)

    def load_session(self, value: str | None) -> Session | None:
        sid = _loads(self._session, value)
        return Session(sid) if isinstance(sid, str) and 16 <= len(sid) <= 64 else None

    def csrf_token(self, session: Session) -> str:
        return self._csrf.dumps([session.sid, int(self._clock()) + REQUEST_TTL])

    def csrf_ok(self, token: str | None, session: Session | None) -> bool:
        data = _loads(self._csrf, token)
        if session is None or not (isinstance(data, list) and len(data) == 2):
            return False
        sid, expires = data
        if not isinstance(sid, str) or not isinstance(expires, int) or expires < self._clock():
            return False
        return hmac.compare_digest(sid.encode(), session.sid.encode())

    def sign_request(
        self, query: str, session: Session, user_id: str | None, nonce: str | None = None
    ) -> str:
        """The validated authorization request, bound to this browser session and user."""
        expires = int(self._clock()) + REQUEST_TTL
        return self._request.dumps([query, session.sid, user_id, nonce, expires])

    def load_request(
        self, value: str | None, session: Session, user_id: str | None
    ) -> SignedRequest | None:
        data = _loads(self._request, value)
        if not (isinstance(data, list) and len(data) == 5):
            return None
        query, sid, signed_user, nonce, expires = data
        if not isinstance(query, str) or not isinstance(expires, int) or expires < self._clock():
            return None
        if sid != session.sid or signed_user != user_id:
            return None  # made for another session, or for another user
        return SignedRequest(query, nonce if isinstance(nonce, str) else None)


def _loads(serializer: URLSafeSerializer, value: str | None) -> Any:
    if not value or len(value) > 8192:
        return None
    try:
        return serializer.loads(value)
    except BadSignature:
        return None
