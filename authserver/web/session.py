"""Signed browser state: the session cookie, CSRF tokens and signed authorization requests.

Everything is signed with itsdangerous under keys derived from the server keys, one salt per
purpose, so a value made for one purpose never passes for another. Nothing is kept in process
memory: any replica can read what another one signed. Expiry is checked against a timestamp in
the payload rather than itsdangerous's own, which rejects values signed by a replica whose
clock runs a few seconds ahead.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from authserver.security.keys import Keyring

COOKIE = "authserver_session"
REQUEST_TTL = 15 * 60  # seconds a login or consent form stays valid


@dataclass(frozen=True)
class Session:
    sid: str  # random per browser session, renewed at login (no fixation)
    user_id: str | None = None
    login_at: int | None = None  # Unix time of the password check

    @staticmethod
    def anonymous() -> Session:
        return Session(sid=secrets.token_urlsafe(24))

    def signed_in(self, now: float, ttl: int) -> bool:
        return self.user_id is not None and self.login_at is not None and now < self.login_at + ttl


class Signer:
    def __init__(self, keyring: Keyring) -> None:
        # itsdangerous wants keys oldest first; the last one signs.
        keys = [key.secret for key in reversed(keyring.derive("browser"))]
        self._session = URLSafeSerializer(keys, salt="session")
        self._csrf = URLSafeSerializer(keys, salt="csrf")
        self._request = URLSafeSerializer(keys, salt="authorize-request")

    def dump_session(self, session: Session) -> str:
        return self._session.dumps([session.sid, session.user_id, session.login_at])

    def load_session(self, value: str | None) -> Session | None:
        data = _loads(self._session, value)
        if not (isinstance(data, list) and len(data) == 3 and isinstance(data[0], str)):
            return None
        sid, user_id, login_at = data
        if not (user_id is None or isinstance(user_id, str)):
            return None
        if not (login_at is None or isinstance(login_at, int)):
            return None
        return Session(sid, user_id, login_at)

    def csrf_token(self, session: Session) -> str:
        return self._csrf.dumps(session.sid)

    def csrf_ok(self, token: str | None, session: Session | None) -> bool:
        sid = _loads(self._csrf, token)
        return (
            session is not None
            and isinstance(sid, str)
            and hmac.compare_digest(sid.encode(), session.sid.encode())
        )

    def sign_request(self, query: str, session: Session, nonce: str | None = None) -> str:
        """The validated authorization request, bound to this browser session."""
        expires = int(time.time()) + REQUEST_TTL
        return self._request.dumps([query, session.sid, session.user_id, nonce, expires])

    def load_request(self, value: str | None, session: Session) -> SignedRequest | None:
        data = _loads(self._request, value)
        if not (isinstance(data, list) and len(data) == 5):
            return None
        query, sid, user_id, nonce, expires = data
        if not isinstance(query, str) or not isinstance(expires, int) or expires < time.time():
            return None
        if sid != session.sid or user_id != session.user_id:
            return None  # made for another session, or before the user changed
        return SignedRequest(query, nonce if isinstance(nonce, str) else None)


@dataclass(frozen=True)
class SignedRequest:
    query: str
    nonce: str | None


def _loads(serializer: URLSafeSerializer, value: str | None) -> Any:
    if not value or len(value) > 8192:
        return None
    try:
        return serializer.loads(value)
    except BadSignature:
        return None
