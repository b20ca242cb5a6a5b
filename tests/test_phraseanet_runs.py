"""Import runs: the dry run, idempotent re-runs, an interrupted run resumed, the report, the
command line, and the appbox password that never shows."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from authserver.errors import ImportFailed
from authserver.phraseanet.progress import Progress
from authserver.phraseanet.report import Report
from authserver.phraseanet.source import AppboxUrl
from authserver.security.tokens import token_digest
from tests import conftest
from tests.mariadb_server import READER_PASSWORD
from tests.phraseanet_support import SITE_KEY, Appbox, alnum, hmac_hash, nonce, run_import
from tests.test_cli import Cli

TABLES = ("users", "clients", "client_secrets", "grants", "tokens")


class Interrupted(Exception):
    """What the test's hook raises to cut a run short."""


def fill(appbox: Appbox, users: int = 5) -> dict[str, Any]:
    """An appbox with users who have passwords, an app, their grants and tokens."""
    owner = appbox.user_with_password("owner", "owner's pw", salt=nonce(64))
    app = appbox.app(owner, description="x" * 2100)
    tokens = [appbox.token(appbox.account(owner, app), value=alnum())]
    ids = [owner]
    for number in range(users):
        user = appbox.user_with_password(f"user{number}", f"pw {number}", salt=nonce(16))
        ids.append(user)
        tokens.append(appbox.token(appbox.account(user, app)))
    return {"users": ids, "app": app, "tokens": tokens}


async def snapshot(db: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every imported row, without the columns a re-run may touch (updated_at)."""
    return {
        "users": [
            tuple(row)
            for row in await db.fetch(
                "SELECT user_id, login, email, display_name, password_hash, legacy_scheme,"
                " legacy_salt, legacy_source FROM users ORDER BY user_id"
            )
        ],
        "clients": [
            tuple(row)
            for row in await db.fetch(
                "SELECT client_id, name, description, website, redirect_uris, owner_id,"
                " require_pkce, active FROM clients ORDER BY client_id"
            )
        ],
        "client_secrets": [
            tuple(row)
            for row in await db.fetch(
                "SELECT client_id, key_id, digest, expires_at FROM client_secrets ORDER BY 1, 3"
            )
        ],
        "grants": [
            tuple(row)
            for row in await db.fetch(
                "SELECT user_id, client_id, scopes, created_at, revoked_at IS NULL FROM grants"
                " ORDER BY 1, 2"
            )
        ],
        "tokens": [
            tuple(row)
            for row in await db.fetch(
                "SELECT digest, client_id, user_id, developer, expires_at, legacy FROM tokens"
                " ORDER BY digest"
            )
        ],
    }


async def test_dry_run_writes_nothing(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """--dry-run reads everything and writes no row, not even its progress."""
    fill(appbox)
    await run_import(database_url, appbox, dry_run=True)
    for table in (*TABLES, "phraseanet_import"):
        assert await db.fetchval(f"SELECT count(*) FROM {table}") == 0, table


async def test_dry_run_reports_what_the_import_does(appbox: Appbox, database_url: str) -> None:
    """The dry run's report is the real run's, but for the dry-run flag."""
    fill(appbox)
    dry = (await run_import(database_url, appbox, dry_run=True)).json()
    real = (await run_import(database_url, appbox)).json()
    assert dry.pop("dry_run") is True
    assert real.pop("dry_run") is False
    assert dry == real


async def test_rerun_changes_nothing(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """Importing the same appbox again gives the same rows, no duplicates, no new hashes."""
    fill(appbox)
    await run_import(database_url, appbox)
    first = await snapshot(db)
    await run_import(database_url, appbox)
    assert await snapshot(db) == first


async def test_rerun_gives_the_same_report(appbox: Appbox, database_url: str) -> None:
    """A second run reports what the first did."""
    fill(appbox)
    first = (await run_import(database_url, appbox)).json()
    assert (await run_import(database_url, appbox)).json() == first


async def test_rerun_keeps_a_password_upgraded_at_sign_in(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """A password the user upgraded by signing in (no legacy columns) is never replaced."""
    user = fill(appbox)["users"][1]
    await run_import(database_url, appbox)
    await db.execute(
        "UPDATE users SET password_hash = '$argon2id$native', legacy_scheme = NULL,"
        " legacy_salt = NULL, legacy_source = NULL WHERE user_id = $1",
        str(user),
    )
    await run_import(database_url, appbox)
    row = await db.fetchrow("SELECT * FROM users WHERE user_id = $1", str(user))
    assert row is not None
    assert (row["password_hash"], row["legacy_scheme"]) == ("$argon2id$native", None)


async def test_rerun_wraps_a_password_changed_in_phraseanet(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """A hash that changed in Phraseanet since the last run is wrapped again."""
    user = fill(appbox)["users"][1]
    await run_import(database_url, appbox)
    before = await db.fetchval("SELECT legacy_source FROM users WHERE user_id = $1", str(user))
    salt = nonce(64)
    appbox.execute(
        "UPDATE Users SET password = %s, nonce = %s WHERE id = %s",
        hmac_hash("new pw", salt),
        salt,
        user,
    )
    await run_import(database_url, appbox)
    row = await db.fetchrow("SELECT * FROM users WHERE user_id = $1", str(user))
    assert row is not None
    assert row["legacy_source"] != before
    assert row["legacy_salt"] == salt


async def test_interrupted_run_resumes_where_it_stopped(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """A run cut short after some batches, run again, ends with what one whole run gives, and
    does not wrap again the users it had written."""
    fill(appbox, users=6)
    written: list[str] = []

    def cut(stage: str, rows: int) -> None:
        written.append(stage)
        if len(written) == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        await run_import(database_url, appbox, batch=2, on_batch=cut)
    early = await db.fetch("SELECT user_id, password_hash FROM users ORDER BY user_id")
    assert len(early) == 6
    await run_import(database_url, appbox, batch=2)
    resumed = await snapshot(db)
    hashes = {row[0]: row[4] for row in resumed["users"]}
    assert all(hashes[row["user_id"]] == row["password_hash"] for row in early)
    assert len(resumed["users"]) == 7
    assert len(resumed["tokens"]) == 7
    assert len(resumed["grants"]) == 7


async def test_resumed_run_reports_every_row(appbox: Appbox, database_url: str) -> None:
    """The report of a resumed run counts the rows the interrupted run wrote too."""
    fill(appbox, users=6)
    whole = (await run_import(database_url, appbox, dry_run=True)).json()

    def cut(stage: str, rows: int) -> None:
        if stage == "tokens":
            raise Interrupted

    with pytest.raises(Interrupted):
        await run_import(database_url, appbox, batch=2, on_batch=cut)
    resumed = (await run_import(database_url, appbox, batch=2)).json()
    assert resumed["tables"] == whole["tables"]
    assert resumed["rows"] == whole["rows"]


async def test_finished_run_is_recorded(
    appbox: Appbox, database_url: str, db: asyncpg.Connection
) -> None:
    """After a whole run every stage is finished, so the next run starts from the beginning."""
    fill(appbox)
    await run_import(database_url, appbox)
    assert await db.fetchval("SELECT bool_and(finished) FROM phraseanet_import")
    assert await db.fetchval("SELECT count(*) FROM audit_events WHERE kind = 'phraseanet.imported'")


# the report


@pytest.fixture
def cli(database_url: str, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The CLI with the site key, configured for this test's database."""
    environ = conftest.server_environ(database_url, phraseanet_site_key=SITE_KEY)
    return Cli(environ, capsys, monkeypatch)


def with_password(appbox: Appbox, password: str) -> str:
    """The appbox URL of the read-only account, with ``password`` for its password."""
    return appbox.server.reader_url(appbox.database, password)


def test_cli_writes_the_json_report(cli: Cli, appbox: Appbox, tmp_path: Path) -> None:
    """--report writes counts per table and every skipped or changed row with its decision."""
    fill(appbox)
    appbox.user("gone", deleted=1, email=None)
    path = tmp_path / "report.json"
    outcome = cli("import", "phraseanet", appbox.url, "--report", str(path))
    assert outcome.status == 0, outcome.stderr
    report = json.loads(path.read_text())
    assert report["tables"]["Users"] == {"read": 7, "imported": 6, "skipped": 1}
    assert {"table": "Users", "action": "skipped", "decision": "D5"}.items() <= report["rows"][
        0
    ].items()
    assert any(row["decision"] == "D16" for row in report["rows"])


def test_cli_prints_the_summary(cli: Cli, appbox: Appbox) -> None:
    """The command prints the counts per table, the same for a dry run."""
    fill(appbox)
    dry = cli("import", "phraseanet", appbox.url, "--dry-run")
    real = cli("import", "phraseanet", appbox.url)
    assert dry.status == real.status == 0
    assert "ApiOauthTokens" in real.stdout
    assert dry.stdout.splitlines()[1:] == real.stdout.splitlines()[1:]


def test_report_holds_no_secret(cli: Cli, appbox: Appbox, tmp_path: Path) -> None:
    """Neither the URL's password, a hash, a secret nor a token is in the report or output."""
    made = fill(appbox)
    path = tmp_path / "report.json"
    outcome = cli(
        "import", "phraseanet", with_password(appbox, READER_PASSWORD), "--report", str(path)
    )
    assert outcome.status == 0, outcome.stderr
    text = path.read_text() + outcome.stdout + outcome.stderr
    assert READER_PASSWORD not in text
    assert made["app"].client_secret not in text
    for token in made["tokens"]:
        assert token not in text
    assert hmac_hash("pw 0", None)[:20] not in text


@pytest.mark.parametrize(
    "url",
    [
        "mysql://root:Pa55-in-URL@127.0.0.1:1/appbox",
        "postgres://root:Pa55-in-URL@127.0.0.1/appbox",
        "mysql://root:Pa55-in-URL@127.0.0.1:99999/appbox",
        "mysql://root:Pa55-in-URL@127.0.0.1/",
    ],
    ids=["unreachable", "wrong-scheme", "bad-port", "no-database"],
)
def test_cli_errors_are_one_line_without_the_password(cli: Cli, url: str) -> None:
    """A bad or unreachable appbox is one line on stderr, exit 1, and never the password."""
    outcome = cli("import", "phraseanet", url)
    assert outcome.status == 1
    assert outcome.stderr.count("\n") == 1
    assert "Pa55-in-URL" not in outcome.stderr
    assert "Traceback" not in outcome.stderr


def test_wrong_appbox_password_never_shows(cli: Cli, appbox: Appbox) -> None:
    """MySQL refusing the password gives its error number, not the password."""
    outcome = cli("import", "phraseanet", with_password(appbox, "Pa55-in-URL"))
    assert outcome.status == 1
    assert "MySQL error 1045" in outcome.stderr
    assert "Pa55-in-URL" not in outcome.stderr


def test_url_repr_and_text_hide_the_password() -> None:
    """An AppboxUrl printed or logged never shows its password."""
    url = AppboxUrl.parse("mysql://reader:Pa55-in-URL@db.example:3307/appbox")
    assert "Pa55-in-URL" not in repr(url)
    assert str(url) == "mysql://reader@db.example:3307/appbox"


def test_url_errors_do_not_quote_it() -> None:
    """A malformed URL's error does not repeat it."""
    with pytest.raises(ImportFailed) as caught:
        AppboxUrl.parse("mysql://reader:Pa55-in-URL@db.example:port/appbox")
    assert "Pa55-in-URL" not in str(caught.value)


def test_unwritable_report_is_one_line(tmp_path: Path) -> None:
    """A report path that cannot be written is an ImportFailed, not an OSError."""
    with pytest.raises(ImportFailed):
        Report("mysql://x@y:1/z", dry_run=False, site_key=True).write(tmp_path / "no" / "r.json")


# progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_rows_rate_and_eta() -> None:
    """On a terminal each stage shows its rows, share, rate and time left."""
    terminal = Terminal()
    progress = Progress(terminal)
    progress.stage("tokens", 1000)
    progress.advance(250)
    line = progress.line()
    assert "250/1,000" in line
    assert "25.0%" in line
    assert "rows/s" in line
    assert "ETA" in line
    progress.finish()
    assert terminal.getvalue().endswith("\n")


def test_progress_is_silent_off_a_terminal() -> None:
    """Piped output gets no progress lines."""
    stream = io.StringIO()
    progress = Progress(stream)
    progress.stage("users", 10)
    progress.advance(10)
    progress.finish()
    assert stream.getvalue() == ""


def test_cli_takes_the_token_ttl(cli: Cli, appbox: Appbox, database_url: str) -> None:
    """--legacy-token-ttl 30d makes imported flow tokens expire 30 days after the import."""
    made = fill(appbox, users=1)
    assert cli("import", "phraseanet", appbox.url, "--legacy-token-ttl", "30d").status == 0
    days = fetch_days(database_url, made["tokens"][1])
    assert 29.9 < days <= 30.0


def test_cli_refuses_a_bad_token_ttl(cli: Cli, appbox: Appbox) -> None:
    """A TTL that is no duration is refused before anything is read."""
    with pytest.raises(SystemExit):
        cli("import", "phraseanet", appbox.url, "--legacy-token-ttl", "soon")


def fetch_days(database_url: str, token: str) -> float:
    """Days from now until the stored token expires."""
    from tests.test_cli import fetchval

    seconds = fetchval(
        database_url,
        "SELECT extract(epoch FROM expires_at - now()) FROM tokens WHERE digest = $1",
        token_digest(token),
    )
    return float(seconds) / 86400
