"""Introspection answered from memory: the hottest request, settled without a wait.

Resource servers introspect every API request, mostly with the same few clients and tokens a
moment apart. When the caller's client is in the client cache (db.client_cache) and the token
in the token cache (db.token_cache), nothing is left to wait for, so the connection answers at
once (authserver.http.protocol) instead of starting the load → decide → store path. The answer
is the one that path gives, to the byte (tests/test_memory_answers.py); any request this module
is not sure of (another parameter, another way to authenticate, a client paused for anything,
a token not cached and not forged) gets None and goes the full way. A forged token (its MAC
fails) is answered inactive from memory too, and noted as a guess, as the full path does.

Two steps of the full path are shortened, not skipped:
- the client's secret: a Basic header that proved a secret is remembered by its SHA-256 along
  with the cached client entry it was checked against; it counts only while the cache still
  holds that very entry (a changed or rotated secret is a new entry);
- the token's MAC: a token whose digest the cache holds is a stored token (finding another
  string with that digest is out of reach), so its MAC was checked when it was first looked up.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable

from authserver.answer import Answer
from authserver.db.client_cache import ClientCache
from authserver.db.token_cache import TokenCache
from authserver.errors import ProtocolError
from authserver.models import ClientAuth
from authserver.oauth.guesses import Guesses
from authserver.oauth.introspection import INACTIVE_ANSWER, ActiveAnswers
from authserver.oauth.legacy import LegacyTokens
from authserver.oauth.load import LOOKED_UP
from authserver.oauth.params import client_credentials
from authserver.security.client_secrets import SecretHasher
from authserver.security.tokens import TokenCodec, token_digest

_PARAMS = frozenset({"token", "token_type_hint"})
_REMEMBERED = 1024  # Basic headers remembered at most; past it the memo starts over


class Forgeries:
    """Tokens whose MAC fails, and that are not shaped like Phraseanet's while some of those are
    stored: inactive without a lookup, and noted as the client's guesses, as the full path does
    (authserver.oauth.load)."""

    def __init__(self, codec: TokenCodec, legacy: LegacyTokens, guesses: Guesses) -> None:
        self._codec = codec
        self._legacy = legacy
        self._guesses = guesses

    def forged(self, token: str, client_id: str) -> bool:
        if self._codec.kind_of(token) in LOOKED_UP or self._legacy.recognises(token):
            return False
        # A confidential client's guesses are counted for the client as a whole ("").
        self._guesses.note(client_id, "introspection", "", "introspect", "forged")
        return True


class MemoryIntrospection:
    def __init__(
        self,
        clients: ClientCache,
        tokens: TokenCache,
        secrets: SecretHasher,
        issuer: str,
        forgeries: Forgeries,
        *,
        on_introspected: Callable[[bool], None],
    ) -> None:
        self._clients = clients
        self._tokens = tokens
        self._secrets = secrets
        self._forgeries = forgeries
        self._active = ActiveAnswers(issuer)
        self._on_introspected = on_introspected
        self._proved: dict[bytes, ClientAuth] = {}  # SHA-256 of a Basic header → its client

    @property
    def enabled(self) -> bool:
        return self._tokens.enabled

    def answer(self, authorization: bytes, params: dict[str, str]) -> tuple[Answer, str] | None:
        """The answer and the caller's client id, or None: "answer it the full way".
        ``authorization`` is the request's Authorization header, as sent."""
        if not _PARAMS.issuperset(params):
            return None
        token = params.get("token")
        if not token:
            return None
        auth = self._caller(authorization, params)
        if auth is None:
            return None
        client_id = auth.client.client_id
        entry = self._tokens.hit(token_digest(token))
        if entry is None:
            if not self._forgeries.forged(token, client_id):
                return None  # a token worth a lookup
            self._on_introspected(False)
            return INACTIVE_ANSWER, client_id
        self._on_introspected(True)
        expires, created, issued_to, user_id, scope, username, _, _, audience, actors = entry
        answer = self._active.answer(
            scope,
            issued_to,
            created,
            None if expires == math.inf else expires,
            user_id,
            username,
            audience,
            actors,
        )
        return answer, client_id

    def _caller(self, authorization: bytes, params: dict[str, str]) -> ClientAuth | None:
        """The client that this Basic header proves, if it may introspect unpaused."""
        key = hashlib.sha256(authorization).digest()
        auth = self._proved.get(key)
        if auth is not None and self._clients.peek(auth.client.client_id) is auth:
            return auth
        self._proved.pop(key, None)
        if authorization[:6].lower() != b"basic ":
            return None
        try:
            credentials = client_credentials(authorization.decode("latin-1"), params)
        except ProtocolError:
            return None  # a malformed header: the full path says why
        if credentials.client_id is None or credentials.secret is None:
            return None
        auth = self._clients.peek(credentials.client_id)
        if auth is None or auth.paused_for:
            return None
        client = auth.client
        if not (client.active and client.introspection):
            return None
        if not self._secrets.verify(credentials.secret, auth.secrets):
            return None
        if len(self._proved) >= _REMEMBERED:
            self._proved.clear()
        self._proved[key] = auth
        return auth
