"""The Phraseanet import, rule by rule (D1 to D17), from a real MariaDB appbox into PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

import asyncpg
import pytest
from argon2 import PasswordHasher

from authserver.models import SecretDigest
from authserver.phraseanet.report import Report
from authserver.security.client_secrets import SecretHasher
from authserver.security.keys import Keyring
from authserver.security.tokens import token_digest
from tests.conftest import SECRET_KEY
from tests.phraseanet_support import Appbox, alnum, hmac_hash, nonce, run_import, sha256_hash

HASHER = SecretHasher(Keyring([SECRET_KEY]))
ARGON2 = PasswordHasher()


def findings(report: Report, table: str, decision: str) -> list[str]:
    """The reasons the report gives for one table and decision."""
    return [f.reason for f in report.findings if f.table == table and f.decision == decision]


async def user_row(db: asyncpg.Connection, user_id: int | str) -> asyncpg.Record:
    row = await db.fetchrow("SELECT * FROM users WHERE user_id = $1", str(user_id))
    assert row is not None
    return row


async def client_row(db: asyncpg.Connection, client_id: str) -> asyncpg.Record:
    row = await db.fetchrow("SELECT * FROM clients WHERE client_id = $1", client_id)
    assert row is not None
    return row


async def secrets_of(db: asyncpg.Connection, client_id: str) -> list[SecretDigest]:
    rows = await db.fetch(
        "SELECT key_id, digest FROM client_secrets WHERE client_id = $1", client_id
    )
    return [SecretDigest(row["key_id"], row["digest"]) for row in rows]


async def token_of(db: asyncpg.Connection, token: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await db.fetchrow(
        "SELECT * FROM tokens WHERE digest = $1", token_digest(token)
    )
    return row


# users (D1 to D5, D13)


async def test_user_keeps_phraseanet_id(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """D13: an imported user's user_id is Phraseanet's numeric id, as a decimal string."""
    user_id = appbox.user("carol.martin", first_name="Carol", last_name="Martin")
    await run_import(database_url, appbox)
    row = await user_row(db, user_id)
    assert (row["login"], row["email"]) == ("carol.martin", "carol.martin@example.com")
    assert row["display_name"] == "Carol Martin"


@pytest.mark.parametrize(
    ("columns", "expected"),
    [({}, "dave@example.com"), ({"email": None}, "dave")],
    ids=["email", "login"],
)
async def test_display_name_falls_back(
    appbox: Appbox, database_url: str, db: asyncpg.Connection, columns: Any, expected: str
) -> None:
    """Without first and last names the display name is the e-mail, else the login."""
    user_id = appbox.user("dave", **columns)
    await run_import(database_url, appbox)
    assert (await user_row(db, user_id))["display_name"] == expected


@pytest.mark.parametrize(
    ("login", "columns", "decision"),
    [
        ("deleted", {"deleted": 1, "email": None}, "D5"),
        ("guest123", {"guest": 1, "email": None}, "D2"),
        ("template", {"model_of": "owner"}, "D2"),
        ("guest", {"email": None}, "D2"),
        ("autoregister", {"email": None}, "D2"),
    ],
    ids=["deleted", "guest", "template", "special-guest", "special-autoregister"],
)
async def test_users_phraseanet_refuses_are_not_imported(
    appbox: Appbox,
    database_url: str,
    db: asyncpg.Connection,
    login: str,
    columns: dict[str, Any],
    decision: str,
) -> None:
    """D2, D5: deleted, guest, template and special users are skipped, and reported."""
    if columns.get("model_of") == "owner":
        columns = {**columns, "model_of": appbox.user("model-owner")}
    user_id = appbox.user(login, **columns)
    report = await run_import(database_url, appbox)
    assert await db.fetchval("SELECT count(*) FROM users WHERE user_id = $1", str(user_id)) == 0
    assert report.skipped["Users"] == 1
    assert findings(report, "Users", decision)


@pytest.mark.parametrize(
    "columns", [{"email": None}, {"mail_locked": 1}], ids=["no-email", "mail-locked"]
)
async def test_users_who_cannot_sign_in_come_without_password(
    appbox: Appbox, database_url: str, db: asyncpg.Connection, columns: dict[str, Any]
) -> None:
    """D2: no e-mail or mail_locked: imported (their tokens work), without a password."""
    user_id = appbox.user_with_password("erin", "her password", salt=nonce(64), **columns)
    report = await run_import(database_url, appbox)
    row = await user_row(db, user_id)
    assert row["password_hash"] is None
    assert row["legacy_scheme"] is None
    assert findings(report, "Users", "D2")


async def test_hash_is_wrapped_in_argon2(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """D1: the stored value is argon2id of the Phraseanet hex, with the scheme and nonce."""
    salt = nonce(64)
    user_id = appbox.user_with_password("frank", "his password", salt=salt)
    await run_import(database_url, appbox)
    row = await user_row(db, user_id)
    assert row["password_hash"].startswith("$argon2id$")
    assert ARGON2.verify(row["password_hash"], hmac_hash("his password", salt))
    assert (row["legacy_scheme"], row["legacy_salt"]) == ("phraseanet-hmac-sha512", salt)


async def test_old_sha256_hash_is_wrapped(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """D1: a salted_password = 0 row with 64 hex is the SHA-256 scheme, nonce unused."""
    user_id = appbox.user_with_password("gina", "old one", scheme="sha256", salt=alnum(16))
    await run_import(database_url, appbox)
    row = await user_row(db, user_id)
    assert ARGON2.verify(row["password_hash"], sha256_hash("old one"))
    assert (row["legacy_scheme"], row["legacy_salt"]) == ("phraseanet-sha256", None)


@pytest.mark.parametrize("password", ["a3Bf9xQ2LmN7pR4s", None], ids=["raw-characters", "null"])
async def test_hash_that_never_verifies_gives_no_password(
    appbox: Appbox, database_url: str, db: asyncpg.Connection, password: str | None
) -> None:
    """D1: a raw string (PsAuth, exclusive OpenID) or NULL verifies nothing: no password."""
    user_id = appbox.user("hank", password=password, nonce=alnum(16))
    await run_import(database_url, appbox)
    assert (await user_row(db, user_id))["password_hash"] is None


@pytest.mark.parametrize("password", ["user_tmp_pwd", "model_pwd"])
async def test_hard_coded_passwords_are_not_imported(
    appbox: Appbox, database_url: str, db: asyncpg.Connection, password: str
) -> None:
    """D3: a hash of one of Phraseanet's hard-coded passwords is dropped; the user must reset."""
    user_id = appbox.user_with_password("ivy@example.com", password, salt=nonce(64))
    report = await run_import(database_url, appbox)
    assert (await user_row(db, user_id))["password_hash"] is None
    assert findings(report, "Users", "D3")


async def test_colliding_logins_get_no_password(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """D4: logins equal under lower() are both imported, neither with a password, one renamed,
    and both reported."""
    first = appbox.user_with_password("Dupont", "pw one", salt=nonce(16))
    second = appbox.user_with_password("dupont", "pw two", salt=nonce(16), email="d2@x.example")
    report = await run_import(database_url, appbox)
    rows = [await user_row(db, first), await user_row(db, second)]
    assert [row["password_hash"] for row in rows] == [None, None]
    assert rows[0]["login"] == "Dupont"
    assert rows[1]["login"] != "dupont"
    assert len(findings(report, "Users", "D4")) == 2


async def test_login_of_an_authserver_user_is_not_taken(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """D4: a login an existing authserver user has is not given to an imported user."""
    await db.execute("INSERT INTO users (user_id, login) VALUES ('native-1', 'Jack')")
    user_id = appbox.user_with_password("jack", "pw", salt=nonce(16))
    report = await run_import(database_url, appbox)
    row = await user_row(db, user_id)
    assert row["login"].lower() != "jack"
    assert row["password_hash"] is None
    assert findings(report, "Users", "D4")


async def test_without_site_key_hmac_users_are_reported(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """D1: without the site key the import runs, wraps the hash, and names who cannot sign in."""
    user_id = appbox.user_with_password("kate", "pw", salt=nonce(64))
    report = await run_import(database_url, appbox, site_key="")
    assert (await user_row(db, user_id))["legacy_scheme"] == "phraseanet-hmac-sha512"
    assert any("SITE_KEY" in reason for reason in findings(report, "Users", "D1"))
    assert any("SITE_KEY" in line for line in report.summary())


# applications (D6, D7, D10, D11, D15, D16, D17)


async def test_web_app_keeps_client_id_and_secret(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """D11: the client_id is kept and the plaintext secret becomes its keyed digest."""
    owner = appbox.user("owner")
    app = appbox.app(owner, grant_password=1)
    await run_import(database_url, appbox)
    row = await client_row(db, app.client_id)
    assert (row["client_type"], row["owner_id"], row["password_grant"]) == ("web", str(owner), True)
    assert HASHER.verify(app.client_secret, await secrets_of(db, app.client_id))


async def test_web_app_needs_no_pkce(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """D17: an imported web app does not require PKCE (Phraseanet's SDK sends none)."""
    app = appbox.app(appbox.user("owner"))
    await run_import(database_url, appbox)
    assert (await client_row(db, app.client_id))["require_pkce"] is False


async def test_desktop_app_is_public_and_keeps_its_secret(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """D10, D17: a desktop app is a public client requiring PKCE, with loopback and oob
    redirects, and keeps the digest of the secret it was shown."""
    app = appbox.app(appbox.user("owner"), type="desktop", redirect_uri="urn:ietf:wg:oauth:2.0:oob")
    await run_import(database_url, appbox)
    row = await client_row(db, app.client_id)
    assert (row["client_type"], row["require_pkce"]) == ("desktop", True)
    assert row["redirect_uris"] == ["http://127.0.0.1/callback", "urn:ietf:wg:oauth:2.0:oob"]
    assert HASHER.verify(app.client_secret, await secrets_of(db, app.client_id))


@pytest.mark.parametrize("creator", ["none", "deleted"])
async def test_app_without_creator_gets_the_synthetic_owner(
    appbox: Appbox, database_url: str, db: asyncpg.Connection, creator: str
) -> None:
    """D6: an app whose creator is NULL or deleted is owned by one synthetic user, no password."""
    creator_id = None if creator == "none" else appbox.user("gone", deleted=1, email=None)
    app = appbox.app(creator_id)
    report = await run_import(database_url, appbox)
    owner = await user_row(db, (await client_row(db, app.client_id))["owner_id"])
    assert owner["user_id"] == "phraseanet-apps"
    assert owner["password_hash"] is None
    assert findings(report, "ApiApplications", "D6")


async def test_built_in_apps_are_dropped(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """D6: Phraseanet's \\alchemy\\ built-in apps are not imported."""
    appbox.app(None, client_id="\\alchemy\\phraseanet\\id\\4f981093aebb66.06844599")
    report = await run_import(database_url, appbox)
    assert await db.fetchval("SELECT count(*) FROM clients") == 0
    assert report.skipped["ApiApplications"] == 1


async def test_app_with_an_unusable_client_id_is_skipped(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """D12: a client_id authserver cannot hold (a space, a dot) is skipped and reported."""
    appbox.app(appbox.user("owner"), client_id="my.app id")
    report = await run_import(database_url, appbox)
    assert await db.fetchval("SELECT count(*) FROM clients") == 0
    assert findings(report, "ApiApplications", "D12")


async def test_deactivated_app_is_imported_active(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """D7: activated = 0 (which Phraseanet never read) imports as active, and is reported."""
    app = appbox.app(appbox.user("owner"), activated=0)
    report = await run_import(database_url, appbox)
    assert (await client_row(db, app.client_id))["active"] is True
    assert findings(report, "ApiApplications", "D7")


async def test_redirect_uris_come_from_codes_used(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """D15: the stored URI, then the distinct URIs codes used that pass Phraseanet's
    case-insensitive prefix test, exactly as used and first used first."""
    owner = appbox.user("owner")
    app = appbox.app(owner, redirect_uri="https://photosync.example/cb")
    account = appbox.account(owner, app)
    appbox.code(account, "https://photosync.example/cb/two", created=_at(3))
    appbox.code(account, "HTTPS://PHOTOSYNC.EXAMPLE/CB?x=1", created=_at(2))
    appbox.code(account, "https://photosync.example/cb/two", created=_at(4))
    appbox.code(account, "https://elsewhere.example/cb", created=_at(1))
    report = await run_import(database_url, appbox)
    assert (await client_row(db, app.client_id))["redirect_uris"] == [
        "https://photosync.example/cb",
        "HTTPS://PHOTOSYNC.EXAMPLE/CB?x=1",
        "https://photosync.example/cb/two",
    ]
    assert findings(report, "ApiApplications", "D15")


def _at(day: int) -> Any:
    from datetime import datetime

    return datetime(2022, 1, day)


async def test_plain_http_callback_is_kept_and_reported(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """D15: a web app whose callback is plain http keeps it, and the report says so."""
    app = appbox.app(appbox.user("owner"), redirect_uri="http://intranet.example/cb")
    report = await run_import(database_url, appbox)
    assert (await client_row(db, app.client_id))["redirect_uris"] == ["http://intranet.example/cb"]
    assert any("http" in reason for reason in findings(report, "ApiApplications", "D15"))


async def test_non_http_website_becomes_the_redirect_origin(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """D16: an ftp:// website is replaced by the redirect URI's origin, and reported."""
    app = appbox.app(
        appbox.user("owner"),
        website="ftp://files.example",
        redirect_uri="https://photosync.example:8443/cb",
    )
    report = await run_import(database_url, appbox)
    assert (await client_row(db, app.client_id))["website"] == "https://photosync.example:8443"
    assert findings(report, "ApiApplications", "D16")


async def test_long_description_is_cut(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """D16: a description over 2000 characters is cut to 2000, and reported."""
    app = appbox.app(appbox.user("owner"), description="é" * 2500)
    report = await run_import(database_url, appbox)
    assert (await client_row(db, app.client_id))["description"] == "é" * 2000
    assert findings(report, "ApiApplications", "D16")


# grants (D14)


async def test_duplicate_accounts_merge_into_one_live_grant(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """D14: two accounts of one (user, app) are one grant, live when one of them is, with the
    tokens of the live one only."""
    owner, user = appbox.user("owner"), appbox.user("lena")
    app = appbox.app(owner)
    live, revoked = appbox.account(user, app), appbox.account(user, app, revoked=True)
    kept, dropped = appbox.token(live), appbox.token(revoked)
    report = await run_import(database_url, appbox)
    grants = await db.fetch("SELECT scopes, revoked_at FROM grants WHERE user_id = $1", str(user))
    assert [(row["scopes"], row["revoked_at"]) for row in grants] == [(["read", "write"], None)]
    assert await token_of(db, kept) is not None
    assert await token_of(db, dropped) is None
    assert findings(report, "ApiAccounts", "D14")


async def test_revoked_account_is_a_revoked_grant_without_tokens(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """D14: a revoked account imports as a revoked grant, and none of its tokens."""
    user = appbox.user("mia")
    app = appbox.app(appbox.user("owner"))
    token = appbox.token(appbox.account(user, app, revoked=True))
    await run_import(database_url, appbox)
    revoked_at = await db.fetchval("SELECT revoked_at FROM grants WHERE user_id = $1", str(user))
    assert revoked_at is not None
    assert await token_of(db, token) is None


# tokens (D8, D9, D12)


async def test_flow_token_expires_after_the_grace_period(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """D8: a flow token (an expiry set, never enforced) expires at import + the TTL."""
    app = appbox.app(appbox.user("owner"))
    token = appbox.token(appbox.account(appbox.user("nina"), app), expires=1_600_000_000)
    before = time.time()
    await run_import(database_url, appbox, ttl=7 * 86400)
    row = await token_of(db, token)
    assert row is not None
    assert row["developer"] is False
    assert row["legacy"] is True
    assert abs(row["expires_at"].timestamp() - (before + 7 * 86400)) < 60


async def test_developer_token_never_expires(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """D8: a NULL expiry on the creator's own account is a developer token, kept without end."""
    owner = appbox.user("owner")
    token = appbox.token(appbox.account(owner, appbox.app(owner)), value=alnum())
    await run_import(database_url, appbox)
    row = await token_of(db, token)
    assert row is not None
    assert (row["developer"], row["expires_at"]) == (True, None)


async def test_null_expiry_of_another_user_is_a_flow_token(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """D8: 3.x tokens all have a NULL expiry; on someone else's account they are flow tokens."""
    app = appbox.app(appbox.user("owner"))
    token = appbox.token(appbox.account(appbox.user("olga"), app))
    await run_import(database_url, appbox)
    row = await token_of(db, token)
    assert row is not None
    assert row["developer"] is False
    assert row["expires_at"] is not None


async def test_token_is_stored_by_digest_of_its_exact_value(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """D9, D12: only the SHA-256 digest of the exact value is stored; another case is not it."""
    owner = appbox.user("owner")
    token = appbox.token(appbox.account(owner, appbox.app(owner)), value="AbCdEf" + alnum(26))
    await run_import(database_url, appbox)
    assert await token_of(db, token) is not None
    assert await token_of(db, token.lower()) is None
    stored = await db.fetchval("SELECT count(*) FROM tokens WHERE digest = $1", token.encode())
    assert stored == 0


async def test_tokens_of_users_not_imported_are_skipped(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """D5: tokens of a deleted user (3.x deletion left them working) are not imported."""
    app = appbox.app(appbox.user("owner"))
    gone = appbox.user("(#deleted_paul_9)", deleted=1, email=None)
    token = appbox.token(appbox.account(gone, app))
    report = await run_import(database_url, appbox)
    assert await token_of(db, token) is None
    assert report.skipped["ApiOauthTokens"] == 1


async def test_token_of_another_shape_is_skipped(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """D9: a value that is not 32 alphanumerics could never be looked up, so it is reported."""
    owner = appbox.user("owner")
    token = appbox.token(appbox.account(owner, appbox.app(owner)), value="x" * 40)
    report = await run_import(database_url, appbox)
    assert await token_of(db, token) is None
    assert findings(report, "ApiOauthTokens", "D9")


async def test_codes_are_counted_not_imported(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """Codes are read for D15 only: none becomes an authorization code."""
    owner = appbox.user("owner")
    appbox.code(appbox.account(owner, appbox.app(owner)), "https://photosync.example/cb")
    report = await run_import(database_url, appbox)
    assert await db.fetchval("SELECT count(*) FROM authorization_codes") == 0
    assert report.not_imported == {"ApiOauthCodes": 1}
