"""The composition root: where the server's parts are built and wired, and nowhere else.

Everything below takes what it needs as constructor or function parameters; only this module
knows the whole graph. ``open_services`` opens the pool and builds every part (commands use
it as it is); ``public_app``/``admin_app`` assemble the two ASGI apps from those parts (what
``authserver serve`` runs); ``create_apps`` wraps both for an ASGI server that starts them
itself through the lifespan protocol (tests, embedding).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from starlette.types import ASGIApp

from authserver import janitor
from authserver.audit import AuditTrail
from authserver.clients import ClientRules, Clients
from authserver.config import Settings
from authserver.db.batches import Batches
from authserver.db.client_cache import ClientCache
from authserver.db.kept import KEEP_FROM, KeptConnection
from authserver.db.migrate import migrate
from authserver.db.pool import create_pool
from authserver.db.rows import Issue
from authserver.db.store import Store
from authserver.db.token_cache import TokenCache
from authserver.http import apps
from authserver.http.admin import AdminApi
from authserver.http.admin_auth import AdminTokens
from authserver.http.authorize import AuthorizePages
from authserver.http.browser import Browser
from authserver.http.device import DevicePages
from authserver.http.health import Health
from authserver.http.logout import LogoutPages
from authserver.http.oauth_posts import OAuthPosts
from authserver.http.observe import Observer
from authserver.http.openid import OpenIDRoutes
from authserver.http.pages import Pages
from authserver.http.session import Signer
from authserver.metrics import Metrics
from authserver.models import TokenRow
from authserver.oauth.apply import Applier, ClientPause, DeviceTiming, Lifetimes
from authserver.oauth.authorization import Authorization
from authserver.oauth.bridge import Bridge
from authserver.oauth.decide import Decider
from authserver.oauth.endpoints import build_endpoints
from authserver.oauth.guesses import Guesses, GuessLimits
from authserver.oauth.introspection import Introspector
from authserver.oauth.legacy import LegacyTokens
from authserver.oauth.load import Loader
from authserver.oauth.memory import Forgeries, MemoryIntrospection
from authserver.oauth.metadata import DeviceGrantAdvert, metadata
from authserver.oauth.openid import IdTokenSigner
from authserver.oauth.userinfo import UserInfo
from authserver.oauth.verification import LookupLimits, Verification
from authserver.oidc.keys import KeyLifecycle, KeyVault, SigningKeys
from authserver.oidc.logout import Logouts
from authserver.periodic import every
from authserver.security.client_secrets import SecretHasher
from authserver.security.keys import Keyring
from authserver.security.passwords import Passwords
from authserver.security.tokens import TokenCodec
from authserver.security.user_codes import UserCodeHasher
from authserver.signin import SignInLimits, SignInPolicy
from authserver.users import Users

log = logging.getLogger("authserver")

Clock = Callable[[], float]

POOL_SAMPLE = 1.0  # seconds between a worker's writes of its pool sizes for the others' /metrics


@dataclass(frozen=True)
class Services:
    """The built parts, for the apps and the commands that use them."""

    settings: Settings
    store: Store
    metrics: Metrics
    legacy_tokens: LegacyTokens
    signing_keys: KeyLifecycle
    users: Users
    clients: Clients
    bridge: Bridge
    memory: MemoryIntrospection  # introspection answered from memory, when its cache is on
    introspector: Introspector
    authorize: AuthorizePages
    device: DevicePages
    logout: LogoutPages
    openid: OpenIDRoutes
    health: Health


@asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    background: bool = False,
    clock: Clock = time.time,
    metrics_dir: Path | None = None,
) -> AsyncIterator[Services]:
    """Open the pool and build every part; ``background`` also runs the janitor and follows
    client changes (a server does, a one-off command does not). ``metrics_dir``: this is one
    of several worker processes, whose metrics are added up from the files there."""
    pool = await create_pool(settings)
    tasks: list[asyncio.Task[None]] = []
    # The batch senders (token lookups, issues) keep a connection while they send one batch
    # after another, where the pool has room for that beside everything else.
    kept = [KeptConnection(pool) for _ in range(2)] if pool.get_max_size() >= KEEP_FROM else []
    try:
        if settings.migrate_on_start:
            async with pool.acquire() as conn:
                try:
                    applied = await migrate(conn)
                finally:
                    await conn.reset()  # the migration lock is session state
            if applied:
                log.info("applied migrations: %s", ", ".join(applied))
        metrics = Metrics(metrics_dir)
        metrics.watch_pool(lambda: (pool.get_size(), pool.get_idle_size()))
        if background and metrics.multiprocess:
            sample = every(POOL_SAMPLE, metrics.sample_pool, "cannot sample the pool", at_once=True)
            tasks.append(asyncio.create_task(sample))
        store = Store(pool, on_audit=metrics.observe_audit)
        client_cache = ClientCache(store, settings.client_cache_ttl if background else 0)
        if background and settings.client_cache_ttl > 0:
            assert settings.database_url is not None  # create_pool needed it
            tasks.append(asyncio.create_task(client_cache.listen(settings.database_url)))
        token_cache = TokenCache(
            settings.introspection_cache_entries if background else 0,
            settings.introspection_cache_bytes,
        )
        if token_cache.enabled:
            assert settings.database_url is not None
            tasks.append(asyncio.create_task(token_cache.listen(settings.database_url)))
            metrics.watch_token_cache(token_cache)
        if background and settings.janitor_interval > 0:
            tasks.append(
                asyncio.create_task(janitor.run_forever(store, settings, metrics.observe_janitor))
            )
        senders = [store.kept(sender) for sender in kept] or [store, store]
        services = _build(settings, store, senders, metrics, client_cache, token_cache, clock)
        await services.signing_keys.start(make=background)
        if background:
            tasks.append(asyncio.create_task(services.legacy_tokens.follow()))
            tasks.append(asyncio.create_task(services.signing_keys.follow()))
        yield services
    finally:
        for task in tasks:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        for sender in kept:
            await sender.close()
        await pool.close()


def _build(
    settings: Settings,
    store: Store,
    senders: list[Store],  # for the lookups' and the issues' batches
    metrics: Metrics,
    client_cache: ClientCache,
    token_cache: TokenCache,
    clock: Clock,
) -> Services:
    keyring = Keyring(settings.secret_keys)
    codec = TokenCodec(keyring)
    secrets = SecretHasher(keyring)
    passwords = Passwords(settings.argon2, max_wait=settings.argon2_max_wait)
    lookups: Batches[bytes, TokenRow | None] = Batches(senders[0].tokens.by_digests)
    legacy_lookups = Batches(store.tokens.legacy_by_digests)
    legacy = LegacyTokens(
        legacy_lookups,
        store.tokens.any_legacy,
        introspect=token_cache.cached(legacy_lookups, legacy=True),
    )
    introspect_lookup = token_cache.cached(lookups)
    issues: Batches[Issue, None] = Batches(senders[1].tokens.issue_each)
    sign_in = SignInPolicy(
        store,
        passwords,
        SignInLimits(
            per_account=settings.login_max_failures,
            per_address=settings.login_max_failures_per_address,
            window=settings.login_lockout,
        ),
        site_key=settings.phraseanet_site_key,
    )
    signing_keys = KeyLifecycle(
        store,
        KeyVault(keyring),
        SigningKeys(clock),
        propagation=settings.key_propagation,
        token_lifetime=settings.id_token_ttl,
    )
    endpoints = build_endpoints(
        settings.issuer,
        access_token_ttl=settings.access_token_ttl,
        codec=codec,
        id_tokens=IdTokenSigner(signing_keys.keys, settings.id_token_ttl),
        device_code_ttl=settings.device_code_ttl,
        device_poll_interval=settings.device_poll_interval,
    )
    user_codes = UserCodeHasher(keyring)
    guesses = Guesses(
        store,
        GuessLimits(
            settings.client_max_guesses, settings.introspection_max_guesses, settings.login_lockout
        ),
        metrics.guessed,
    )
    bridge = Bridge(
        Loader(
            store=store,
            clients=client_cache,
            secrets=secrets,
            codec=codec,
            lookup=lookups,
            introspect_lookup=introspect_lookup,
            sign_in=sign_in,
            legacy=legacy,
        ),
        Decider(endpoints, settings.issuer),
        Applier(
            store,
            issues,
            Lifetimes(settings.access_token_ttl, settings.refresh_token_ttl),
            ClientPause(settings.client_max_failures, settings.login_lockout),
            DeviceTiming(settings.device_code_ttl, settings.device_poll_interval),
            user_codes,
        ),
        guesses,
        on_introspected=metrics.introspected,
        on_paused=metrics.refused_paused,
        on_revoked=token_cache.forget,
    )
    browser = Browser(
        store,
        Signer(keyring, clock),
        Pages(https=settings.issuer.startswith("https://")),
        issuer=settings.issuer,
        session_ttl=settings.session_ttl,
    )
    authorization = Authorization(
        endpoints, client_cache, store, issuer=settings.issuer, code_ttl=settings.code_ttl
    )
    return Services(
        settings=settings,
        store=store,
        metrics=metrics,
        legacy_tokens=legacy,
        signing_keys=signing_keys,
        users=Users(store, passwords),
        clients=Clients(
            store,
            secrets,
            codec,
            ClientRules(
                settings.secret_overlap,
                settings.allow_http_redirects,
                require_pkce=settings.pkce_required_for_all,
            ),
        ),
        bridge=bridge,
        introspector=Introspector(codec, introspect_lookup, settings.issuer, legacy),
        authorize=AuthorizePages(
            authorization, browser, sign_in, store, code_ttl=settings.code_ttl
        ),
        device=DevicePages(
            Verification(
                store,
                user_codes,
                LookupLimits(settings.login_max_failures_per_address, settings.login_lockout),
            ),
            browser,
            sign_in,
            store,
        ),
        logout=LogoutPages(
            browser, Logouts(signing_keys.keys, client_cache, issuer=settings.issuer)
        ),
        openid=OpenIDRoutes(
            UserInfo(endpoints.userinfo, store, codec, lookups, issuer=settings.issuer),
            signing_keys.keys,
            lambda device_grant: metadata(settings.issuer, device_grant=device_grant),
            device_grant_enabled=DeviceGrantAdvert(
                store.device_codes.grant_enabled, refresh=settings.client_cache_ttl
            ).enabled,
            key_propagation=settings.key_propagation,
        ),
        health=Health(store.ping),
        memory=MemoryIntrospection(
            client_cache,
            token_cache,
            secrets,
            settings.issuer,
            Forgeries(codec, legacy, guesses),
            on_introspected=metrics.introspected,
        ),
    )


def public_app(services: Services) -> OAuthPosts:
    return apps.public_app(
        bridge=services.bridge,
        observer=Observer(services.metrics, "public"),
        health=services.health,
        authorize=services.authorize,
        device=services.device,
        logout=services.logout,
        openid=services.openid,
        deadline=services.settings.request_timeout,
        memory=services.memory,
    )


def admin_app(services: Services) -> ASGIApp:
    metrics = services.metrics
    return apps.admin_app(
        api=AdminApi(
            services.users,
            services.clients,
            AuditTrail(services.store),
            services.introspector,
            metrics.introspected,
            services.signing_keys,
        ),
        health=services.health,
        metrics=metrics,
        tokens=AdminTokens(services.settings.admin_tokens),
        observer=Observer(metrics, "admin"),
        deadline=services.settings.request_timeout,
    )


class _Shared:
    """One set of services for the public and the admin app of one process: the first app to
    start opens it (with the janitor), the last one to stop closes it."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._lock = asyncio.Lock()
        self._users = 0
        self._stack: AsyncExitStack | None = None
        self._services: Services | None = None

    @asynccontextmanager
    async def app(self, build: Callable[[Services], ASGIApp]) -> AsyncIterator[ASGIApp]:
        async with self._lock:
            if self._services is None:
                stack = AsyncExitStack()
                self._services = await stack.enter_async_context(
                    open_services(self._settings, background=True, clock=self._clock)
                )
                self._stack = stack
            self._users += 1
            services = self._services
        try:
            yield build(services)
        finally:
            async with self._lock:
                self._users -= 1
                if self._users == 0 and self._stack is not None:
                    stack, self._stack, self._services = self._stack, None, None
                    await stack.aclose()


def create_apps(settings: Settings, *, clock: Clock = time.time) -> tuple[ASGIApp, ASGIApp]:
    """The public and the admin app, started and stopped by the ASGI lifespan protocol."""
    shared = _Shared(settings, clock)
    return (
        apps.Started(lambda: shared.app(public_app)),
        apps.Started(lambda: shared.app(admin_app)),
    )
