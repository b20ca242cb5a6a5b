"""Settings: read once from ``AUTHSERVER_*`` environment variables into a frozen object.

Every value is parsed and checked here, at the edge, so that a bad deployment fails at start-up
with one line naming the variable instead of at the first request that needs it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from authserver.cpus import available_cpus
from authserver.errors import ConfigError, Malformed

PREFIX = "AUTHSERVER_"
MIN_KEY_LENGTH = 32  # characters; a shorter server key or admin token is a typo, not a secret

T = TypeVar("T")


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Argon2Params:
    time_cost: int = 3
    memory_cost: int = 65536  # KiB, i.e. 64 MiB: argon2-cffi's RFC 9106 low-memory profile
    parallelism: int = 4


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment.

    ``secret_keys`` and ``admin_tokens`` are kept out of ``repr`` so a logged settings object
    cannot leak them.
    """

    database_url: str | None = field(repr=False)  # may carry a password
    data_dir: Path
    issuer: str
    public_addr: Address
    admin_addr: Address
    secret_keys: tuple[str, ...] = field(repr=False)  # newest first: the first one signs
    admin_tokens: tuple[str, ...] = field(repr=False)
    code_ttl: int = 60  # seconds
    device_code_ttl: int = 600  # seconds a device code waits for the user (RFC 8628 expires_in)
    device_poll_interval: int = 5  # seconds a device waits between polls (RFC 8628 interval)
    access_token_ttl: int = 3600
    refresh_token_ttl: int = 30 * 24 * 3600
    secret_overlap: int = 24 * 3600  # how long a rotated-out client secret keeps working
    session_ttl: int = 12 * 3600
    login_max_failures: int = 5  # per account, within login_lockout
    login_max_failures_per_address: int = 50  # per client address, within login_lockout
    login_lockout: int = 15 * 60
    client_max_failures: int = 20  # failed client authentications per address, within the window
    client_max_guesses: int = 100  # unknown codes and tokens per client, within the window
    introspection_max_guesses: int = 0  # the same at the introspection endpoint; 0: no pause
    client_cache_ttl: int = 30  # seconds a replica trusts a cached client row; 0 turns it off
    # Active access tokens a replica answers introspection for from memory; 0 turns it off.
    introspection_cache_entries: int = 100_000
    introspection_cache_bytes: int = 64 * 1024 * 1024  # estimated memory those entries may use
    janitor_interval: int = 300  # seconds between in-server janitor runs; 0 turns it off
    janitor_batch: int = 5000  # rows per DELETE, so no statement holds locks for long
    audit_retention: int = 90 * 86400
    shutdown_grace: int = 20  # seconds in-flight requests get after SIGTERM
    drain_delay: int = 0  # seconds a listener still accepts after SIGTERM, answering not ready
    startup_timeout: int = 60  # seconds to wait for the database at start-up
    request_timeout: int = 5  # seconds any request may take before it is answered 503
    db_acquire_timeout: int = 2  # seconds a request waits for a pooled connection
    db_statement_timeout: int = 3  # seconds any one statement may run
    db_lock_timeout: int = 2  # seconds a statement waits for a row another one holds
    header_timeout: int = 10  # seconds a client has to send a request's head
    body_timeout: int = 10  # seconds more to send its body
    max_connections: int = 2048  # open connections per listener
    max_header_bytes: int = 16384  # request line and headers of one request
    max_headers: int = 100  # headers of one request
    argon2_max_wait: int = 2  # seconds a password check may queue before it is shed (503)
    argon2: Argon2Params = Argon2Params()
    pool_min_size: int = 2
    pool_max_size: int = 10  # per worker process, within its share of pool_budget
    pool_budget: int = 50  # connections all workers' pools may hold together
    workers: int = 1  # server processes sharing the listeners
    migrate_on_start: bool = True
    allow_http_redirects: bool = False
    pkce_required_for_all: bool = True  # RFC 9700 §2.1.1: new clients' require_pkce default
    log_level: str = "INFO"
    # Phraseanet's main.key, exactly as its configuration.yml has it (D1, D3): verifies the
    # HMAC-SHA512 hashes of imported users. Kept out of repr like every key.
    phraseanet_site_key: str | None = field(default=None, repr=False)
    id_token_ttl: int = 3600  # seconds an ID token is valid (OpenID Connect Core §2 exp)
    # Seconds a new signing key is published before it signs: at least a replica's reload
    # (10 s) plus the minute for which openid-client trusts its copy of the JWKS.
    key_propagation: int = 120

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from an environment mapping; raise ConfigError on the first bad value."""
        env = _Env(environ)
        public_addr = env.get("PUBLIC_ADDR", parse_address, Address("0.0.0.0", 8080))  # noqa: S104
        database_url = env.get("DATABASE_URL", _parse_database_url, None)
        pool_budget = env.get("POOL_BUDGET", _int(1, 100_000), 50)
        return cls(
            database_url=database_url,
            data_dir=env.get("DATA_DIR", Path, Path(".authserver")),
            issuer=env.require("ISSUER", parse_issuer),
            public_addr=public_addr,
            admin_addr=env.get("ADMIN_ADDR", parse_address, Address("127.0.0.1", 8081)),
            secret_keys=env.require("SECRET_KEYS", _parse_key_list),
            admin_tokens=env.require("ADMIN_TOKENS", _parse_key_list),
            code_ttl=env.get("CODE_TTL", _duration(1, 600), 60),
            device_code_ttl=env.get("DEVICE_CODE_TTL", _duration(60, 1800), 600),
            device_poll_interval=env.get("DEVICE_POLL_INTERVAL", _duration(1, 60), 5),
            access_token_ttl=env.get("ACCESS_TOKEN_TTL", _duration(1, 86400), 3600),
            refresh_token_ttl=env.get("REFRESH_TOKEN_TTL", _duration(60, 366 * 86400), 30 * 86400),
            secret_overlap=env.get("SECRET_OVERLAP", _duration(0, 90 * 86400), 86400),
            session_ttl=env.get("SESSION_TTL", _duration(60, 90 * 86400), 12 * 3600),
            login_max_failures=env.get("LOGIN_MAX_FAILURES", _int(1, 1000), 5),
            login_max_failures_per_address=env.get(
                "LOGIN_MAX_FAILURES_PER_ADDRESS", _int(1, 100000), 50
            ),
            login_lockout=env.get("LOGIN_LOCKOUT", _duration(1, 86400), 15 * 60),
            client_max_failures=env.get("CLIENT_MAX_FAILURES", _int(1, 100000), 20),
            client_max_guesses=env.get("CLIENT_MAX_GUESSES", _int(0, 1_000_000), 100),
            introspection_max_guesses=env.get("INTROSPECTION_MAX_GUESSES", _int(0, 1_000_000), 0),
            client_cache_ttl=env.get("CLIENT_CACHE_TTL", _duration(0, 3600), 30),
            introspection_cache_entries=env.get(
                "INTROSPECTION_CACHE_ENTRIES", _int(0, 10_000_000), 100_000
            ),
            introspection_cache_bytes=env.get(
                "INTROSPECTION_CACHE_BYTES", _int(0, 4 * 1024**3), 64 * 1024 * 1024
            ),
            janitor_interval=env.get("JANITOR_INTERVAL", _duration(0, 86400), 300),
            janitor_batch=env.get("JANITOR_BATCH", _int(100, 1_000_000), 5000),
            audit_retention=env.get("AUDIT_RETENTION", _duration(3600, 3650 * 86400), 90 * 86400),
            shutdown_grace=env.get("SHUTDOWN_GRACE", _duration(0, 3600), 20),
            drain_delay=env.get("DRAIN_DELAY", _duration(0, 600), 0),
            startup_timeout=env.get("STARTUP_TIMEOUT", _duration(0, 3600), 60),
            request_timeout=env.get("REQUEST_TIMEOUT", _duration(1, 600), 5),
            db_acquire_timeout=env.get("DB_ACQUIRE_TIMEOUT", _duration(1, 600), 2),
            db_statement_timeout=env.get("DB_STATEMENT_TIMEOUT", _duration(1, 600), 3),
            db_lock_timeout=env.get("DB_LOCK_TIMEOUT", _duration(1, 600), 2),
            header_timeout=env.get("HEADER_TIMEOUT", _duration(1, 600), 10),
            body_timeout=env.get("BODY_TIMEOUT", _duration(1, 600), 10),
            max_connections=env.get("MAX_CONNECTIONS", _int(16, 1_000_000), 2048),
            max_header_bytes=env.get("MAX_HEADER_BYTES", _int(1024, 1_048_576), 16384),
            max_headers=env.get("MAX_HEADERS", _int(8, 10000), 100),
            argon2_max_wait=env.get("ARGON2_MAX_WAIT", _duration(1, 600), 2),
            argon2=Argon2Params(
                time_cost=env.get("ARGON2_TIME_COST", _int(1, 100), 3),
                memory_cost=env.get("ARGON2_MEMORY_COST", _int(8, 4 * 1024 * 1024), 65536),
                parallelism=env.get("ARGON2_PARALLELISM", _int(1, 64), 4),
            ),
            pool_min_size=env.get("POOL_MIN_SIZE", _int(0, 1000), 2),
            pool_max_size=env.get("POOL_MAX_SIZE", _int(1, 1000), 10),
            pool_budget=pool_budget,
            # Unset: one per CPU, but never so many that a worker would get no connection.
            workers=env.get("WORKERS", _int(1, 1024), None) or min(available_cpus(), pool_budget),
            migrate_on_start=env.get("MIGRATE_ON_START", parse_bool, True),
            allow_http_redirects=env.get("ALLOW_HTTP_REDIRECTS", parse_bool, False),
            pkce_required_for_all=env.get("PKCE_REQUIRED_FOR_ALL", parse_bool, True),
            log_level=env.get("LOG_LEVEL", _parse_log_level, "INFO"),
            phraseanet_site_key=env.exact("PHRASEANET_SITE_KEY", _parse_site_key),
            id_token_ttl=env.get("ID_TOKEN_TTL", _duration(60, 86400), 3600),
            key_propagation=env.get("KEY_PROPAGATION", _duration(0, 86400), 120),
        ).checked()

    def checked(self) -> Settings:
        if self.pool_min_size > self.pool_max_size:
            raise ConfigError(
                f"{PREFIX}POOL_MIN_SIZE ({self.pool_min_size}) is larger than "
                f"{PREFIX}POOL_MAX_SIZE ({self.pool_max_size})"
            )
        if self.pool_budget < self.workers:
            raise ConfigError(
                f"{PREFIX}POOL_BUDGET ({self.pool_budget}) is smaller than the number of "
                f"workers ({self.workers}): each worker needs at least one connection"
            )
        return self

    def per_worker(self) -> Settings:
        """The settings one worker process runs with: its pool gets the smaller of
        ``pool_max_size`` and an even share of ``pool_budget``, so all the pools together
        never hold more than the budget."""
        size = min(self.pool_max_size, self.pool_budget // self.workers)
        return replace(self, pool_max_size=size, pool_min_size=min(self.pool_min_size, size))


class _Env:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get(self, name: str, parse: Callable[[str], T], default: T) -> T:
        raw = self._environ.get(PREFIX + name, "").strip()
        if not raw:
            return default
        return self._parse(name, parse, raw)

    def exact(self, name: str, parse: Callable[[str], T]) -> T | None:
        """The value as it is, spaces included (None when unset or empty): for a key that
        another program uses verbatim."""
        raw = self._environ.get(PREFIX + name, "")
        if not raw:
            return None
        return self._parse(name, parse, raw)

    def require(self, name: str, parse: Callable[[str], T]) -> T:
        raw = self._environ.get(PREFIX + name, "").strip()
        if not raw:
            raise ConfigError(f"{PREFIX}{name} is required but not set")
        return self._parse(name, parse, raw)

    @staticmethod
    def _parse(name: str, parse: Callable[[str], T], raw: str) -> T:
        try:
            return parse(raw)
        except Malformed as exc:
            raise ConfigError(f"{PREFIX}{name} is malformed: {exc}") from None
        except (ValueError, TypeError):
            # A library's message may quote the value (urlsplit does), and it may be a secret.
            raise ConfigError(f"{PREFIX}{name} is malformed") from None


def parse_address(raw: str) -> Address:
    """``host:port`` or ``[ipv6]:port``."""
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:([0-9]{1,5})|([^:\s\[\]]+):([0-9]{1,5})", raw)
    if match is None:
        raise Malformed("expected host:port")
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if match.group(1):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            # ipaddress's own message quotes the address; ours must not repeat the value.
            raise Malformed("malformed IPv6 address in brackets") from None
    if not 0 < port < 65536:
        raise Malformed("port must be between 1 and 65535")
    return Address(host, port)


def parse_issuer(raw: str) -> str:
    """RFC 8414 §2: an https URL with no query or fragment (http only for loopback hosts)."""
    parts = urlsplit(raw)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise Malformed("expected an absolute https URL")
    if parts.query or parts.fragment or "?" in raw or "#" in raw:
        raise Malformed("the issuer must not have a query or fragment")
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise Malformed("http is only allowed for localhost; use https")
    return raw.rstrip("/")


def parse_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise Malformed("expected true or false")


def parse_duration(raw: str) -> int:
    """Seconds, optionally with a unit: ``90``, ``90s``, ``15m``, ``12h``, ``30d``."""
    match = re.fullmatch(r"([0-9]{1,9})\s*([smhd]?)", raw.lower())
    if match is None:
        raise Malformed("expected a duration such as 3600, 60m, 12h or 30d")
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return int(match.group(1)) * unit


def _duration(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        return _bounded(parse_duration(raw), low, high, "seconds")

    return parse


def _int(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        if not re.fullmatch(r"[0-9]{1,10}", raw):
            raise Malformed("expected a whole number")
        return _bounded(int(raw), low, high, "")

    return parse


def _bounded(value: int, low: int, high: int, unit: str) -> int:
    if not low <= value <= high:
        raise Malformed(f"must be between {low} and {high}{' ' + unit if unit else ''}")
    return value


def _parse_key_list(raw: str) -> tuple[str, ...]:
    keys = tuple(key.strip() for key in raw.split(","))
    if any(not key for key in keys):
        raise Malformed("empty entry in the comma-separated list")
    if any(len(key) < MIN_KEY_LENGTH for key in keys):
        raise Malformed(f"every entry must be at least {MIN_KEY_LENGTH} characters")
    return keys


def _parse_site_key(raw: str) -> str:
    """Phraseanet hashes with main.key as its YAML has it, surrounding spaces included, so the
    value is not trimmed; a blank one is refused, as Phraseanet's PasswordEncoder refuses it."""
    if not raw.strip():
        raise Malformed("the site key is blank")
    return raw


def _parse_database_url(raw: str) -> str:
    if urlsplit(raw).scheme not in ("postgres", "postgresql"):
        raise Malformed("expected a postgresql:// URL")
    return raw


def _parse_log_level(raw: str) -> str:
    level = raw.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise Malformed("expected DEBUG, INFO, WARNING or ERROR")
    return level
