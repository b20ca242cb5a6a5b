"""The import's rules, as pure functions from appbox rows to what authserver stores.

Each rule names the decision it applies (D1 to D17, docs/phraseanet.md) in what it reports.
Nothing here reads or writes a database, so the rules are tested row by row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from authserver.clients import DESKTOP_DEFAULT_REDIRECT_URIS, MAX_REDIRECT_URIS
from authserver.errors import InvalidInput
from authserver.models import LegacyScheme
from authserver.phraseanet.report import Report
from authserver.phraseanet.source import SourceAccount, SourceApp, SourceToken, SourceUser
from authserver.security.legacy import (
    SPECIAL_LOGINS,
    is_hard_coded,
    scheme_of,
    source_digest,
)
from authserver.security.tokens import is_legacy_shaped, token_digest
from authserver.validation import CLIENT_ID, check_website, normalize_login

MAX_DESCRIPTION = 2000  # clients.description's CHECK
SYNTHETIC_OWNER = "phraseanet-apps"  # D6: owns the applications whose creator is not imported
_BUILT_IN = "\\alchemy\\"  # Phraseanet's navigator / office / Adobe CC plug-in apps (D6)
_URI = re.compile(r"[A-Za-z0-9\-._~:/?\[\]@!$&'()*+,;=%]+")  # printable ASCII, no '#' or space
_PRIVATE_SCHEME = re.compile(r"[a-z][a-z0-9+\-]*(\.[a-z0-9+\-]+)+")  # RFC 8252 §7.1


@dataclass(frozen=True)
class LegacyPlan:
    """A Phraseanet hash to wrap in argon2 (D1)."""

    scheme: LegacyScheme
    salt: str | None
    stored: str = field(repr=False)  # the lowercase hex argon2 is computed over
    source: bytes = field(repr=False)


@dataclass(frozen=True)
class UserPlan:
    user_id: str
    login: str
    email: str | None
    display_name: str
    legacy: LegacyPlan | None  # None: imported without a password
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ClientPlan:
    application_id: int
    client_id: str
    name: str
    description: str
    website: str
    client_type: str
    redirect_uris: tuple[str, ...]
    owner_id: str
    password_grant: bool
    require_pkce: bool
    secret: str | None = field(repr=False)  # plaintext in Phraseanet: digested on writing
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class GrantPlan:
    user_id: str
    client_id: str
    revoked: bool  # D14: only if every account of the pair was
    created_at: datetime
    live_accounts: frozenset[int]  # the accounts whose tokens are imported


@dataclass(frozen=True)
class TokenPlan:
    digest: bytes
    client_id: str
    user_id: str
    developer: bool
    created_at: datetime
    expires_at: datetime | None  # None: a developer token, which never expires (D8)


def source_time(value: datetime) -> datetime:
    """A DATETIME of the appbox as an aware time. The appbox does not say which zone its PHP
    server wrote them in; they are taken as UTC (they only date grants, users and clients)."""
    return value.replace(tzinfo=UTC)


def display_name(user: SourceUser) -> str:
    """As Phraseanet's User::getDisplayName(): "first last", else the e-mail, else the login."""
    name = f"{user.first_name.strip()} {user.last_name.strip()}".strip()
    return (name or user.email or user.login)[:255]


def _login_usable(login: str) -> bool:
    return 0 < len(login) <= 255 and bool(login.strip()) and login.isprintable()


def plan_users(
    users: Iterable[SourceUser],
    site_key: str | None,
    taken: Iterable[str],
    report: Report,
) -> list[UserPlan]:
    """D1 to D5, D13: who is imported, under which login, with which password material.

    ``taken`` are the logins, lowered, of authserver users that are not being imported: an
    imported login equal to one of them would not be unique (D4).
    """
    table = "Users"
    kept: list[tuple[SourceUser, str]] = []
    for user in users:
        if user.deleted:
            report.skip(table, user.id, "D5", "deleted user")
        elif user.guest:
            report.skip(table, user.id, "D2", "guest user")
        elif user.model_of is not None:
            report.skip(table, user.id, "D2", "template user")
        elif user.login in SPECIAL_LOGINS:
            report.skip(table, user.id, "D2", "special user")
        else:
            kept.append((user, normalize_login(user.login)))
    by_login: dict[str, list[int]] = {}
    for user, login in kept:
        by_login.setdefault(login.lower(), []).append(user.id)
    outside = set(taken)
    used = set(by_login) | outside
    plans = []
    for user, login in kept:
        key = login.lower()
        usable, shared, taken_here = _login_usable(login), len(by_login[key]) > 1, key in outside
        if not usable:
            report.change(table, user.id, "D4", "login unusable here: renamed, no password")
        elif taken_here:
            report.change(table, user.id, "D4", "login of an authserver user: renamed, no password")
        elif shared:
            others = ", ".join(str(i) for i in by_login[key] if i != user.id)
            report.change(table, user.id, "D4", f"login equal under lower() to user {others}")
        if not usable or taken_here or (shared and by_login[key][0] != user.id):
            # The first of equal logins keeps it; the others get one nobody can collide with.
            login = _free_login(user, used)
            used.add(login.lower())
        password_ok = usable and not taken_here and not shared
        email = user.email if user.email is None or 3 <= len(user.email) <= 320 else None
        legacy = _legacy(user, site_key, report) if password_ok else None
        report.take(table)
        plans.append(
            UserPlan(
                str(user.id),
                login,
                email,
                display_name(user),
                legacy,
                source_time(user.created),
                source_time(user.updated),
            )
        )
    return plans


def _free_login(user: SourceUser, used: set[str]) -> str:
    base = f"{normalize_login(user.login).strip()[:200] or 'user'}#phraseanet-{user.id}"
    login = base
    while login.lower() in used:
        login += "#"
    return login


def _legacy(user: SourceUser, site_key: str | None, report: Report) -> LegacyPlan | None:
    table = "Users"
    if user.email is None:
        report.change(
            table, user.id, "D2", "no e-mail (Phraseanet refuses its sign-in): no password"
        )
        return None
    if user.mail_locked:
        report.change(table, user.id, "D2", "mail_locked: imported without a password")
        return None
    scheme = scheme_of(user.password, user.salted_password)
    if scheme is None or user.password is None:
        report.change(table, user.id, "D1", "no hash that can verify: no password")
        return None
    salt = user.nonce if scheme == "phraseanet-hmac-sha512" else None
    hard_coded = is_hard_coded(user.password, scheme, salt, site_key, user.login)
    if hard_coded:
        report.change(table, user.id, "D3", "hard-coded Phraseanet password: must reset")
        return None
    if hard_coded is None:
        report.change(
            table, user.id, "D1", "cannot sign in until AUTHSERVER_PHRASEANET_SITE_KEY is set"
        )
    return LegacyPlan(scheme, salt, user.password, source_digest(scheme, salt, user.password))


def redirect_uris(app: SourceApp, used: Sequence[str], report: Report) -> tuple[str, ...]:
    """D15: the stored URI and the distinct URIs clients used that pass Phraseanet's
    case-insensitive prefix test, first used first, as the exact list (at most 20)."""
    table = "ApiApplications"
    if app.type == "desktop":
        return DESKTOP_DEFAULT_REDIRECT_URIS
    stored = app.redirect_uri
    candidates = [stored, *(uri for uri in used if uri.lower().startswith(stored.lower()))]
    found: list[str] = []
    for uri in candidates:
        if uri in found:
            continue
        if not _redirect_ok(uri):
            report.change(table, app.id, "D15", "a redirect URI authserver cannot match: left out")
            continue
        if len(found) == MAX_REDIRECT_URIS:
            report.change(table, app.id, "D15", f"more than {MAX_REDIRECT_URIS} redirect URIs used")
            break
        found.append(uri)
    if len(found) > 1:
        report.change(table, app.id, "D15", f"{len(found)} redirect URIs, built from codes used")
    if any(uri.startswith("http://") for uri in found):
        report.change(table, app.id, "D15", "plain http callback (AUTHSERVER_ALLOW_HTTP_REDIRECTS)")
    return tuple(found)


def _redirect_ok(uri: str) -> bool:
    if len(uri) > 2048 or not _URI.fullmatch(uri):
        return False
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        return False
    if parts.scheme in ("http", "https"):
        return bool(parts.hostname) and "@" not in parts.netloc
    return bool(_PRIVATE_SCHEME.fullmatch(parts.scheme))


def _website(app: SourceApp, uris: Sequence[str], fallback: str, report: Report) -> str:
    """D16: an http(s) website stays; another is replaced by the redirect URI's origin."""
    try:
        return check_website(app.website)
    except InvalidInput:
        pass
    origins = [urlsplit(uri) for uri in uris if uri.startswith(("https://", "http://"))]
    website = f"{origins[0].scheme}://{origins[0].netloc}" if origins else fallback
    report.change("ApiApplications", app.id, "D16", "website not http(s): replaced")
    return website


def plan_clients(
    apps: Iterable[SourceApp],
    imported_users: set[str],
    history: Mapping[int, Sequence[str]],
    fallback_website: str,
    report: Report,
) -> list[ClientPlan]:
    """D6, D7, D10, D11, D15, D16, D17: every application keeps its client_id and secret."""
    table = "ApiApplications"
    plans = []
    for app in apps:
        if app.client_id.startswith(_BUILT_IN):
            report.skip(table, app.id, "D6", "Phraseanet's built-in application")
            continue
        if not CLIENT_ID.fullmatch(app.client_id):
            report.skip(table, app.id, "D12", "client_id is not 1-64 of [A-Za-z0-9_-]")
            continue
        if app.type not in ("web", "desktop"):
            report.skip(table, app.id, "D6", "unknown application type")
            continue
        uris = redirect_uris(app, history.get(app.id, ()), report)
        if not uris:
            report.skip(table, app.id, "D15", "no redirect URI authserver can match")
            continue
        owner = str(app.creator_id) if app.creator_id is not None else None
        if owner not in imported_users:
            report.change(table, app.id, "D6", "creator NULL or not imported: synthetic owner")
            owner = SYNTHETIC_OWNER
        if not app.activated:
            report.change(table, app.id, "D7", "activated = 0, imported as active")
        description = app.description
        if len(description) > MAX_DESCRIPTION:
            report.change(table, app.id, "D16", f"description cut to {MAX_DESCRIPTION} characters")
            description = description[:MAX_DESCRIPTION]
        name = app.name.strip() or app.client_id
        if not app.client_secret:
            report.change(table, app.id, "D11", "no client secret: cannot authenticate")
        report.take(table)
        plans.append(
            ClientPlan(
                application_id=app.id,
                client_id=app.client_id,
                name=name[:128],
                description=description,
                website=_website(app, uris, fallback_website, report),
                client_type=app.type,
                redirect_uris=uris,
                owner_id=owner,
                password_grant=app.grant_password,
                require_pkce=app.type == "desktop",  # D17: web apps predate PKCE
                secret=app.client_secret or None,
                created_at=source_time(app.created),
                updated_at=source_time(app.updated),
            )
        )
    return plans


def plan_grants(
    accounts: Iterable[SourceAccount],
    users: set[str],
    clients: Mapping[int, str],
    report: Report,
) -> dict[tuple[str, str], GrantPlan]:
    """D14: one grant per (user, application), revoked only if every account of it is."""
    table = "ApiAccounts"
    pairs: dict[tuple[str, str], list[SourceAccount]] = {}
    for account in accounts:
        user_id, client_id = str(account.user_id), clients.get(account.application_id)
        if user_id not in users:
            report.skip(table, account.id, "D5", "its user is not imported")
        elif client_id is None:
            report.skip(table, account.id, "D6", "its application is not imported")
        else:
            report.take(table)
            pairs.setdefault((user_id, client_id), []).append(account)
    grants = {}
    for (user_id, client_id), group in pairs.items():
        if len(group) > 1:
            ids = ", ".join(str(account.id) for account in group)
            report.change(table, group[0].id, "D14", f"accounts {ids} merged into one grant")
        live = frozenset(account.id for account in group if not account.revoked)
        grants[(user_id, client_id)] = GrantPlan(
            user_id,
            client_id,
            revoked=not live,
            created_at=min(source_time(account.created) for account in group),
            live_accounts=live,
        )
    return grants


@dataclass(frozen=True)
class TokenRules:
    """What a token's mapping needs to know of the rest of the import."""

    accounts: Mapping[int, SourceAccount]
    grants: Mapping[tuple[str, str], GrantPlan]
    clients: Mapping[int, ClientPlan]  # by application id
    creators: Mapping[int, int | None]  # application id -> Phraseanet creator_id
    flow_expiry: datetime  # D8: import time + --legacy-token-ttl


def plan_token(token: SourceToken, rules: TokenRules, report: Report) -> TokenPlan | None:
    """D8, D9, D12, D14: a live account's token, by digest, flagged legacy."""
    table = "ApiOauthTokens"
    key = f"account {token.account_id}, token {token.token[:4]}…"
    account = rules.accounts.get(token.account_id)
    client = rules.clients.get(account.application_id) if account is not None else None
    grant = (
        rules.grants.get((str(account.user_id), client.client_id))
        if account is not None and client is not None
        else None
    )
    if account is None or client is None or grant is None:
        report.skip(table, key, "D5", "its account, user or application is not imported")
        return None
    if account.id not in grant.live_accounts:
        report.skip(table, key, "D14", "its account is revoked")
        return None
    if not is_legacy_shaped(token.token):
        report.skip(table, key, "D9", "not 32 characters of [0-9A-Za-z]")
        return None
    creator = rules.creators.get(account.application_id)
    developer = token.expires is None and (creator is None or creator == account.user_id)
    report.take(table)
    return TokenPlan(
        digest=token_digest(token.token),
        client_id=client.client_id,
        user_id=str(account.user_id),
        developer=developer,
        created_at=source_time(token.created),
        expires_at=None if developer else rules.flow_expiry,
    )
