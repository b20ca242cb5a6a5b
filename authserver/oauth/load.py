"""The load phase: from a parsed token, revocation or introspection request, fetch every row the
decision needs and settle what needs I/O (secrets against their digests, a user's password,
whether the caller is paused).

Nothing is fetched for what oauthlib will refuse before it asks: no client, no query; a token
whose MAC does not verify, no query; a password grant from a client that may not use it, no
argon2. Values that match nothing are noted as guesses, for the pause that scanning earns.
"""

from __future__ import annotations

from authserver.db.client_cache import ClientCache
from authserver.db.store import Store
from authserver.models import ClientAuth, FailureKind
from authserver.oauth.device import DEVICE_GRANT
from authserver.oauth.exchange import TOKEN_EXCHANGE, may_present
from authserver.oauth.flow import Flow, Guess
from authserver.oauth.introspection import Lookup
from authserver.oauth.legacy import LegacyTokens
from authserver.security.client_secrets import SecretHasher
from authserver.security.tokens import TokenCodec, TokenKind, token_digest
from authserver.signin import SignInPolicy
from authserver.validation import CLIENT_ID

# Kinds a token presented for introspection, revocation or exchange is looked up as.
LOOKED_UP = (TokenKind.ACCESS, TokenKind.REFRESH)


class Loader:
    def __init__(
        self,
        *,
        store: Store,
        clients: ClientCache,
        secrets: SecretHasher,
        codec: TokenCodec,
        lookup: Lookup,
        introspect_lookup: Lookup,
        sign_in: SignInPolicy,
        legacy: LegacyTokens,
    ) -> None:
        self._store = store
        self._clients = clients
        self._secrets = secrets
        self._codec = codec
        self._lookup = lookup
        self._introspect_lookup = introspect_lookup  # may answer from memory (db.token_cache)
        self._sign_in = sign_in
        self._legacy = legacy

    async def load(self, flow: Flow, params: dict[str, str]) -> None:
        client_id = flow.credentials.client_id
        if client_id is None or not CLIENT_ID.fullmatch(client_id):
            return  # no such client: oauthlib refuses the request before anything else
        await self._authenticate(flow, client_id)
        if flow.paused_for is not None:
            return  # refused before anything else is read
        codec = self._codec
        if flow.endpoint == "device":
            return  # the client is all a device authorization request needs
        if flow.endpoint != "token":
            # Introspection and revocation: no query at all for a token whose MAC fails, nor
            # for one of Phraseanet's shape while none of those is stored.
            token = params.get("token")
            if token is None:
                return
            introspect = flow.endpoint == "introspect"
            if codec.kind_of(token) in LOOKED_UP:
                lookup = self._introspect_lookup if introspect else self._lookup
                flow.token = await lookup(token_digest(token))
            elif self._legacy.recognises(token):
                legacy = self._legacy
                flow.token = await (legacy.introspect(token) if introspect else legacy.find(token))
            else:
                flow.guess = Guess("token", "forged")
                return
            if flow.token is None:
                flow.guess = Guess("token", "unknown")
            return
        grant_type = params.get("grant_type")
        if grant_type == "authorization_code":
            await self._load_code(flow, params.get("code"))
        elif grant_type == "refresh_token":
            await self._load_refresh_token(flow, params.get("refresh_token"))
        elif grant_type == "password":
            await self._sign_in_user(flow, params)
        elif grant_type == TOKEN_EXCHANGE:
            await self._load_exchange(flow, params)
        elif grant_type == DEVICE_GRANT:
            await self._poll_device_code(flow, params.get("device_code"))

    async def _load_code(self, flow: Flow, code: str | None) -> None:
        if code is None:
            return
        if self._codec.kind_of(code) is not TokenKind.CODE:
            flow.guess = Guess("code", "forged")
            return
        flow.code = await self._store.codes.by_digest(token_digest(code))
        if flow.code is None:
            flow.guess = Guess("code", "unknown")
        elif flow.client is not None and flow.code.client_id != flow.client.client_id:
            flow.guess = Guess("code", "foreign")
        else:
            await self._load_identified_user(flow, flow.code.user_id, flow.code.scope)

    async def _load_refresh_token(self, flow: Flow, refresh: str | None) -> None:
        if refresh is None:
            return
        if self._codec.kind_of(refresh) is not TokenKind.REFRESH:
            flow.guess = Guess("refresh_token", "forged")
            return
        flow.token = await self._lookup(token_digest(refresh))
        if flow.token is None:
            flow.guess = Guess("refresh_token", "unknown")
        elif flow.client is not None and flow.token.client_id != flow.client.client_id:
            flow.guess = Guess("refresh_token", "foreign")
        elif flow.token.user_id is not None:
            await self._load_identified_user(flow, flow.token.user_id, flow.token.scope)

    async def _load_exchange(self, flow: Flow, params: dict[str, str]) -> None:
        """The subject token and the audience of a token exchange (RFC 8693), for a client
        that may exchange: oauthlib refuses any other before it asks about either."""
        client = flow.client
        if client is None or not client.token_exchange or not _approved(flow):
            return
        subject = params.get("subject_token")
        if subject is not None:
            if self._codec.kind_of(subject) in LOOKED_UP:
                flow.token = await self._lookup(token_digest(subject))
            elif self._legacy.recognises(subject):
                flow.token = await self._legacy.find(subject)
            else:
                flow.guess = Guess("subject_token", "forged")
                return
            if flow.token is None:
                flow.guess = Guess("subject_token", "unknown")
            elif not may_present(flow.token, client.client_id):
                flow.guess = Guess("subject_token", "foreign")
        audience = params.get("audience")
        if audience is not None and CLIENT_ID.fullmatch(audience):
            target, _ = await self._clients.get(audience)
            flow.audience = None if target is None else target.client

    async def _poll_device_code(self, flow: Flow, code: str | None) -> None:
        """The device code, with this poll stamped on it (RFC 8628 §3.5 slow_down counts the
        polls of a client that proved who it is, and only those)."""
        if code is None or flow.client is None or not _approved(flow):
            return
        if self._codec.kind_of(code) is not TokenKind.DEVICE:
            flow.guess = Guess("device_code", "forged")
            return
        flow.device = await self._store.device_codes.poll(token_digest(code), flow.client.client_id)
        if flow.device is None:
            flow.guess = Guess("device_code", "unknown")  # or another client's

    async def _load_identified_user(self, flow: Flow, user_id: str, scope: str) -> None:
        """The user an ID token will be about, for a grant of ``openid`` (OpenID Connect)."""
        if "openid" in scope.split():
            flow.user = await self._store.users.find(user_id)

    async def _authenticate(self, flow: Flow, client_id: str) -> None:
        """Find the client and check the presented secret now; the validator reads the verdict.

        A cached client is trusted only to say yes: any other verdict is checked again against
        the database, so a secret rotated in a moment ago works at once. A secret is not even
        checked from an address paused for wrong ones (RFC 6749 §2.3.1).
        """
        loaded, cached = await self._clients.get(client_id)
        self._judge(flow, loaded)
        if cached and not _approved(flow):
            loaded = await self._clients.fresh(client_id)
            self._judge(flow, loaded)
        if loaded is None:
            return
        if flow.credentials.secret is not None:
            await self._check_pause(flow, loaded, "secret", flow.address)
            if flow.paused_for is not None:
                flow.client_authenticated = False
                return
        # Scanning for codes or tokens pauses the client, or a public one's address (anyone
        # can name a public client: pausing it everywhere would be someone else's outage).
        kind: FailureKind = "introspection" if flow.endpoint == "introspect" else "guess"
        await self._check_pause(flow, loaded, kind, guess_address(flow))

    async def _check_pause(
        self, flow: Flow, loaded: ClientAuth, kind: FailureKind, address: str
    ) -> None:
        if kind not in loaded.paused_for:
            return  # nothing of this kind is paused: no query
        flow.paused_for = await self._store.throttles.client_paused_for(
            loaded.client.client_id, kind, address
        )

    def _judge(self, flow: Flow, loaded: ClientAuth | None) -> None:
        flow.auth = loaded
        if loaded is None:
            flow.client, flow.client_authenticated = None, False
            return
        flow.client = loaded.client
        secret = flow.credentials.secret
        flow.client_authenticated = secret is not None and self._secrets.verify(
            secret, loaded.secrets
        )

    async def _sign_in_user(self, flow: Flow, params: dict[str, str]) -> None:
        client = flow.client
        trusted = client is not None and (flow.client_authenticated or client.is_public)
        username, password = params.get("username"), params.get("password")
        if not (trusted and client is not None and client.password_grant and username and password):
            return  # oauthlib refuses the request before it asks about the user: no argon2 spent
        result = await self._sign_in.attempt(
            username,
            password,
            address=flow.address,
            via="password_grant",
            client_id=client.client_id,
        )
        flow.user = result.user
        flow.sign_in_paused_for = result.paused_for


def guess_address(flow: Flow) -> str:
    """Whose guesses a counter holds: a confidential client's as a whole (""), a public
    client's per address."""
    return flow.address if flow.client is not None and flow.client.is_public else ""


def _approved(flow: Flow) -> bool:
    """Would this client pass authentication as loaded?"""
    client = flow.client
    if client is None or not client.active:
        return False
    if flow.credentials.secret is None:
        return client.is_public
    return flow.client_authenticated
