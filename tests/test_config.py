"""Settings: read from AUTHSERVER_* variables, checked at the edge, failing with one clear line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authserver.cli import main
from authserver.config import (
    Address,
    Argon2Params,
    Settings,
    parse_address,
    parse_duration,
)
from authserver.errors import ConfigError

KEY_NEW = "new-secret-key-0123456789abcdefghijklmnop"
KEY_OLD = "old-secret-key-0123456789abcdefghijklmnop"
TOKEN_A = "admin-token-a-0123456789abcdefghijklmnopq"
TOKEN_B = "admin-token-b-0123456789abcdefghijklmnopq"
# Appears in every malformed value below, so an error message that echoes it is caught.
MARKER = "Zq7Marker"

BASE = {
    "AUTHSERVER_DATABASE_URL": "postgresql://authserver@db.example.test:5432/authserver",
    "AUTHSERVER_ISSUER": "https://auth.example.test",
    "AUTHSERVER_SECRET_KEYS": KEY_NEW,
    "AUTHSERVER_ADMIN_TOKENS": TOKEN_A,
}


def settings_with(**overrides: str) -> Settings:
    """Settings from the base environment with ``AUTHSERVER_<NAME>`` overrides."""
    env = dict(BASE)
    env.update({f"AUTHSERVER_{name}": value for name, value in overrides.items()})
    return Settings.from_env(env)


def test_complete_environment_gives_values() -> None:
    """A complete valid environment gives exactly the configured values."""
    settings = settings_with(
        SECRET_KEYS=f"{KEY_NEW},{KEY_OLD}",
        ADMIN_TOKENS=f"{TOKEN_A}, {TOKEN_B}",
        DATA_DIR="/var/lib/authserver",
        PUBLIC_ADDR="[::]:9000",
        ADMIN_ADDR="10.0.0.5:9001",
        CODE_TTL="2m",
        ACCESS_TOKEN_TTL="2h",
        REFRESH_TOKEN_TTL="7d",
        SECRET_OVERLAP="0",
        SESSION_TTL="3600s",
        ARGON2_TIME_COST="2",
        ARGON2_MEMORY_COST="1024",
        ARGON2_PARALLELISM="2",
        POOL_MIN_SIZE="1",
        POOL_MAX_SIZE="5",
        MIGRATE_ON_START="no",
        ALLOW_HTTP_REDIRECTS="yes",
        LOG_LEVEL="debug",
    )
    assert settings.database_url == BASE["AUTHSERVER_DATABASE_URL"]
    assert settings.issuer == "https://auth.example.test"
    assert settings.data_dir == Path("/var/lib/authserver")
    assert settings.public_addr == Address("::", 9000)
    assert settings.admin_addr == Address("10.0.0.5", 9001)
    assert settings.secret_keys == (KEY_NEW, KEY_OLD)
    assert settings.admin_tokens == (TOKEN_A, TOKEN_B)
    assert (settings.code_ttl, settings.access_token_ttl) == (120, 7200)
    assert (settings.refresh_token_ttl, settings.secret_overlap) == (7 * 86400, 0)
    assert settings.session_ttl == 3600
    assert settings.argon2 == Argon2Params(time_cost=2, memory_cost=1024, parallelism=2)
    assert (settings.pool_min_size, settings.pool_max_size) == (1, 5)
    assert settings.migrate_on_start is False
    assert settings.allow_http_redirects is True
    assert settings.log_level == "DEBUG"


def test_defaults() -> None:
    """Only the required variables set: listeners, TTLs and the rest take their defaults."""
    settings = Settings.from_env(
        {key: value for key, value in BASE.items() if key != "AUTHSERVER_DATABASE_URL"}
    )
    assert settings.database_url is None
    assert settings.data_dir == Path(".authserver")
    assert settings.public_addr == Address("0.0.0.0", 8080)  # noqa: S104
    assert settings.admin_addr == Address("127.0.0.1", 8081)
    assert settings.code_ttl == 60
    assert settings.access_token_ttl == 3600
    assert settings.refresh_token_ttl == 30 * 86400
    assert settings.secret_overlap == 86400
    assert settings.session_ttl == 12 * 3600
    assert settings.argon2 == Argon2Params()
    assert (settings.pool_min_size, settings.pool_max_size) == (2, 10)
    assert settings.migrate_on_start is True
    assert settings.allow_http_redirects is False
    assert settings.log_level == "INFO"


def test_blank_optional_variable_takes_default() -> None:
    """An optional variable set to blanks counts as unset."""
    assert settings_with(CODE_TTL="   ").code_ttl == 60


def test_issuer_trailing_slash_is_dropped() -> None:
    """The issuer is kept without a trailing slash, so metadata URLs join cleanly."""
    assert settings_with(ISSUER="https://auth.example.test/tenant/").issuer == (
        "https://auth.example.test/tenant"
    )


@pytest.mark.parametrize(
    "issuer",
    [
        pytest.param("http://localhost:8080", id="localhost"),
        pytest.param("http://127.0.0.1:8080", id="ipv4-loopback"),
        pytest.param("http://[::1]:8080", id="ipv6-loopback"),
    ],
)
def test_http_issuer_allowed_for_loopback(issuer: str) -> None:
    """A plain http issuer is accepted for a loopback host, for local development."""
    assert settings_with(ISSUER=issuer).issuer == issuer


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("ISSUER", id="issuer"),
        pytest.param("SECRET_KEYS", id="secret-keys"),
        pytest.param("ADMIN_TOKENS", id="admin-tokens"),
    ],
)
def test_missing_required_variable(name: str) -> None:
    """Each required variable missing raises ConfigError naming it."""
    env = {key: value for key, value in BASE.items() if key != f"AUTHSERVER_{name}"}
    with pytest.raises(ConfigError, match=f"AUTHSERVER_{name}"):
        Settings.from_env(env)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("ISSUER", id="issuer"),
        pytest.param("SECRET_KEYS", id="secret-keys"),
        pytest.param("ADMIN_TOKENS", id="admin-tokens"),
    ],
)
def test_blank_required_variable(name: str) -> None:
    """A required variable holding only blanks is as good as missing."""
    with pytest.raises(ConfigError, match=f"AUTHSERVER_{name}"):
        settings_with(**{name: "  "})


MALFORMED = [
    pytest.param("PUBLIC_ADDR", f"{MARKER}", id="addr-no-port"),
    pytest.param("PUBLIC_ADDR", f"{MARKER}:99999", id="addr-port-too-big"),
    pytest.param("PUBLIC_ADDR", f"{MARKER}:0", id="addr-port-zero"),
    pytest.param("ADMIN_ADDR", f"{MARKER}:http", id="addr-port-not-number"),
    pytest.param("ADMIN_ADDR", "[dead:beef:cafe]:8081", id="addr-bad-ipv6"),
    pytest.param("ADMIN_ADDR", "[1::2::3]:8081", id="addr-ipv6-double-colons"),
    pytest.param("ISSUER", f"https://{MARKER}.example/?tenant=1", id="issuer-query"),
    pytest.param("ISSUER", f"https://{MARKER}.example/#top", id="issuer-fragment"),
    pytest.param("ISSUER", f"https://{MARKER}.example/?", id="issuer-empty-query"),
    pytest.param("ISSUER", f"http://{MARKER}.example", id="issuer-http-not-localhost"),
    pytest.param("ISSUER", f"ftp://{MARKER}.example", id="issuer-scheme"),
    pytest.param("ISSUER", f"/{MARKER}/relative", id="issuer-relative"),
    pytest.param("SECRET_KEYS", f"{MARKER}-short", id="secret-key-short"),
    pytest.param("SECRET_KEYS", f"{KEY_NEW},{MARKER}-short", id="secret-key-second-short"),
    pytest.param("SECRET_KEYS", f"{MARKER}-0123456789abcdefghijklmnop,,", id="secret-key-empty"),
    pytest.param("ADMIN_TOKENS", f"{MARKER}-short", id="admin-token-short"),
    pytest.param("ADMIN_TOKENS", f",{MARKER}-0123456789abcdefghijklmno", id="admin-token-empty"),
    pytest.param("CODE_TTL", f"10{MARKER}", id="duration-marker-unit"),
    pytest.param("CODE_TTL", "10x", id="duration-unknown-unit"),
    pytest.param("ACCESS_TOKEN_TTL", "-1", id="duration-negative"),
    pytest.param("ACCESS_TOKEN_TTL", "1.5h", id="duration-fraction"),
    pytest.param("CODE_TTL", "0", id="duration-below-range"),
    pytest.param("CODE_TTL", "601", id="duration-above-range"),
    pytest.param("REFRESH_TOKEN_TTL", "367d", id="duration-refresh-above-range"),
    pytest.param("SESSION_TTL", "59s", id="duration-session-below-range"),
    pytest.param("SECRET_OVERLAP", "91d", id="duration-overlap-above-range"),
    pytest.param("MIGRATE_ON_START", "maybe", id="bool-maybe"),
    pytest.param("ALLOW_HTTP_REDIRECTS", MARKER, id="bool-marker"),
    pytest.param("ARGON2_TIME_COST", "0", id="int-below-range"),
    pytest.param("ARGON2_MEMORY_COST", "4", id="int-memory-below-range"),
    pytest.param("ARGON2_PARALLELISM", "65", id="int-above-range"),
    pytest.param("POOL_MAX_SIZE", f"{MARKER}", id="int-not-number"),
    pytest.param("POOL_MIN_SIZE", "-1", id="int-negative"),
    pytest.param("POOL_MAX_SIZE", "2.5", id="int-fraction"),
    pytest.param("LOG_LEVEL", f"{MARKER}", id="log-level"),
    pytest.param("LOG_LEVEL", "TRACE", id="log-level-unknown"),
    pytest.param("DATABASE_URL", f"mysql://{MARKER}:pw@db/app", id="database-url-scheme"),
    pytest.param("DATABASE_URL", f"{MARKER}", id="database-url-not-url"),
]


@pytest.mark.parametrize(("name", "value"), MALFORMED)
def test_malformed_variable_is_named(name: str, value: str) -> None:
    """A malformed variable raises ConfigError naming the variable."""
    with pytest.raises(ConfigError, match=f"AUTHSERVER_{name}"):
        settings_with(**{name: value})


# Each value holds a distinctive fragment that must not come back in the error message.
ECHOED = [
    pytest.param("PUBLIC_ADDR", f"{MARKER}:99999", MARKER, id="addr"),
    pytest.param("ADMIN_ADDR", "[dead:beef:cafe]:8081", "beef:cafe", id="addr-bad-ipv6"),
    pytest.param("ADMIN_ADDR", "[1::2::3]:8081", "1::2::3", id="addr-ipv6-double-colons"),
    pytest.param("ISSUER", f"https://{MARKER}.example/?tenant=1", MARKER, id="issuer-query"),
    pytest.param("ISSUER", f"http://{MARKER}.example", MARKER, id="issuer-http"),
    pytest.param("SECRET_KEYS", f"{MARKER}-short", MARKER, id="secret-key-short"),
    pytest.param("SECRET_KEYS", f"{MARKER}-0123456789abcdefghijklmnop,,", MARKER, id="key-empty"),
    pytest.param("ADMIN_TOKENS", f"{MARKER}-short", MARKER, id="admin-token-short"),
    pytest.param("CODE_TTL", f"10{MARKER}", MARKER, id="duration"),
    pytest.param("CODE_TTL", "987654321", "987654321", id="duration-out-of-range"),
    pytest.param("MIGRATE_ON_START", MARKER, MARKER, id="bool"),
    pytest.param("POOL_MAX_SIZE", MARKER, MARKER, id="int"),
    pytest.param("ARGON2_MEMORY_COST", "987654321", "987654321", id="int-out-of-range"),
    pytest.param("LOG_LEVEL", MARKER, MARKER.upper(), id="log-level"),
    pytest.param("DATABASE_URL", f"mysql://{MARKER}:pw@db/app", MARKER, id="database-url"),
]


@pytest.mark.parametrize(("name", "value", "fragment"), ECHOED)
def test_malformed_variable_is_not_echoed(name: str, value: str, fragment: str) -> None:
    """The error for a malformed variable never repeats the submitted value: it may be secret."""
    with pytest.raises(ConfigError) as caught:
        settings_with(**{name: value})
    assert f"AUTHSERVER_{name}" in str(caught.value)
    assert fragment.lower() not in str(caught.value).lower()


def test_pool_min_above_max() -> None:
    """A pool minimum larger than its maximum raises ConfigError naming both variables."""
    with pytest.raises(ConfigError) as caught:
        settings_with(POOL_MIN_SIZE="7", POOL_MAX_SIZE="3")
    assert "AUTHSERVER_POOL_MIN_SIZE" in str(caught.value)
    assert "AUTHSERVER_POOL_MAX_SIZE" in str(caught.value)


def test_pool_min_equal_max_accepted() -> None:
    """A pool whose minimum equals its maximum is fine."""
    settings = settings_with(POOL_MIN_SIZE="4", POOL_MAX_SIZE="4")
    assert (settings.pool_min_size, settings.pool_max_size) == (4, 4)


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        pytest.param("90", 90, id="bare"),
        pytest.param("90s", 90, id="seconds"),
        pytest.param("15m", 900, id="minutes"),
        pytest.param("12h", 43200, id="hours"),
        pytest.param("30d", 2592000, id="days"),
        pytest.param("15M", 900, id="upper-case-unit"),
    ],
)
def test_duration_units(raw: str, seconds: int) -> None:
    """Durations take seconds bare or with an s, m, h or d unit."""
    assert parse_duration(raw) == seconds


@given(
    amount=st.integers(min_value=0, max_value=999_999_999),
    unit=st.sampled_from([("", 1), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]),
)
def test_duration_round_trip(amount: int, unit: tuple[str, int]) -> None:
    """Any amount with any unit parses to the amount times the unit's seconds."""
    suffix, factor = unit
    assert parse_duration(f"{amount}{suffix}") == amount * factor


def test_key_lists_split_newest_first() -> None:
    """Key lists split on commas, trimmed, keeping the given order: the first one is newest."""
    settings = settings_with(SECRET_KEYS=f" {KEY_NEW} ,\t{KEY_OLD}")
    assert settings.secret_keys == (KEY_NEW, KEY_OLD)


def test_repr_hides_secrets() -> None:
    """repr(settings) contains neither server keys nor admin tokens."""
    settings = settings_with(
        SECRET_KEYS=f"{KEY_NEW},{KEY_OLD}", ADMIN_TOKENS=f"{TOKEN_A},{TOKEN_B}"
    )
    text = repr(settings)
    for secret in (KEY_NEW, KEY_OLD, TOKEN_A, TOKEN_B):
        assert secret not in text


def test_settings_are_frozen() -> None:
    """Settings cannot be changed after they are read."""
    settings = settings_with()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.issuer = "https://evil.example"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("CODE_TTL", f"10{MARKER}", id="duration"),
        pytest.param("SECRET_KEYS", f"{MARKER}-short", id="secret-keys"),
        pytest.param("DATABASE_URL", f"mysql://{MARKER}@db/app", id="database-url"),
    ],
)
def test_cli_reports_config_error_in_one_line(
    capsys: pytest.CaptureFixture[str], name: str, value: str
) -> None:
    """`authserver migrate` with a malformed variable exits 2 with one stderr line naming it."""
    env = {**BASE, f"AUTHSERVER_{name}": value}
    assert main(["migrate"], environ=env) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert f"AUTHSERVER_{name}" in lines[0]
    assert MARKER not in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""


_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
_HOSTNAME = st.lists(_LABEL, min_size=1, max_size=4).map(".".join)
_IPV4 = st.ip_addresses(v=4).map(str)
_IPV6 = st.ip_addresses(v=6).map(str)


@given(host=st.one_of(_HOSTNAME, _IPV4, _IPV6), port=st.integers(min_value=1, max_value=65535))
def test_address_round_trip(host: str, port: int) -> None:
    """Any host (name, IPv4 or bracketed IPv6) with a valid port parses and prints back."""
    address = Address(host, port)
    assert parse_address(str(address)) == address


def test_database_url_never_quoted_in_an_error() -> None:
    """A URL that urlsplit rejects (its message quotes the netloc) is refused without its
    password appearing in the error."""
    with pytest.raises(ConfigError) as raised:
        settings_with(DATABASE_URL="postgresql://user:p\uff03ssw0rd@db.internal/authserver")
    assert "ssw0rd" not in str(raised.value)
    assert "AUTHSERVER_DATABASE_URL" in str(raised.value)


# Phraseanet's site key (docs/phraseanet.md)


def test_site_key_is_taken_exactly() -> None:
    """main.key is used verbatim by Phraseanet, so surrounding spaces are kept."""
    assert settings_with(PHRASEANET_SITE_KEY=" key with spaces ").phraseanet_site_key == (
        " key with spaces "
    )


def test_site_key_unset_or_empty_is_none() -> None:
    """Without the variable (or with it empty) there is no site key."""
    assert settings_with().phraseanet_site_key is None
    assert settings_with(PHRASEANET_SITE_KEY="").phraseanet_site_key is None


def test_blank_site_key_is_refused() -> None:
    """A key of spaces only is refused, as Phraseanet's PasswordEncoder refuses it."""
    with pytest.raises(ConfigError, match="AUTHSERVER_PHRASEANET_SITE_KEY"):
        settings_with(PHRASEANET_SITE_KEY="   ")


def test_repr_hides_the_site_key() -> None:
    """repr(settings) does not show the site key."""
    assert MARKER not in repr(settings_with(PHRASEANET_SITE_KEY=MARKER + "-site-key"))
