"""One import run: read the appbox, apply the rules, write stage by stage, report.

Users, applications and accounts are read whole (they decide what every token maps to); tokens,
the bulk, are streamed in key order. The rules are applied to every source row on every run, so
a dry run, a full run and a resumed run give the same report; only the writing resumes after the
last batch a previous run committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from authserver.config import Settings
from authserver.db.store import Store
from authserver.phraseanet.mapping import (
    SYNTHETIC_OWNER,
    TokenRules,
    plan_clients,
    plan_grants,
    plan_token,
    plan_users,
)
from authserver.phraseanet.progress import Progress
from authserver.phraseanet.report import Report
from authserver.phraseanet.source import COUNTED, Appbox, AppboxUrl, SourceToken
from authserver.phraseanet.writer import Batches, OnBatch, Run, Writer
from authserver.security.client_secrets import SecretHasher
from authserver.security.keys import Keyring
from authserver.security.passwords import argon2id
from authserver.validation import normalize_login

DEFAULT_TOKEN_TTL = 90 * 86400  # D8: flow tokens live this long after the import


@dataclass(frozen=True)
class ImportOptions:
    dry_run: bool = False
    legacy_token_ttl: int = DEFAULT_TOKEN_TTL  # seconds
    batches: Batches = field(default_factory=Batches)
    on_batch: OnBatch | None = None


async def import_appbox(
    store: Store,
    url: AppboxUrl,
    settings: Settings,
    options: ImportOptions,
    progress: Progress,
) -> Report:
    """Import the appbox at ``url`` into ``store``'s database (or only report, in a dry run)."""
    site_key = settings.phraseanet_site_key
    report = Report(str(url), options.dry_run, site_key is not None)
    appbox = await asyncio.to_thread(Appbox, url)
    writer: Writer | None = None
    try:
        counts = {table: await asyncio.to_thread(appbox.count, table) for table in COUNTED}
        users = await asyncio.to_thread(appbox.users)
        apps = await asyncio.to_thread(appbox.applications)
        accounts = await asyncio.to_thread(appbox.accounts)
        history = await asyncio.to_thread(appbox.code_redirects)
        report.not_imported = {"ApiOauthCodes": counts["ApiOauthCodes"]}

        ids = [str(user.id) for user in users]
        logins = [normalize_login(user.login) for user in users]
        taken = {login.lower() for login in await store.phraseanet.taken_logins(logins, ids)}
        user_plans = plan_users(users, site_key, taken, report)
        imported = {plan.user_id for plan in user_plans}
        client_plans = plan_clients(apps, imported, history, settings.issuer, report)
        client_ids = {plan.application_id: plan.client_id for plan in client_plans}
        grants = plan_grants(accounts, imported, client_ids, report)
        used = taken | {plan.login.lower() for plan in user_plans}
        owner = _owner(used) if any(p.owner_id == SYNTHETIC_OWNER for p in client_plans) else None

        run = None if options.dry_run else await Run.open(store)
        started = run.started_at if run is not None else datetime.now(UTC)
        rules = TokenRules(
            accounts={account.id: account for account in accounts},
            grants=grants,
            clients={plan.application_id: plan for plan in client_plans},
            creators={app.id: app.creator_id for app in apps},
            flow_expiry=started + timedelta(seconds=options.legacy_token_ttl),
        )
        application_of = {client_id: app_id for app_id, client_id in client_ids.items()}
        keyed = sorted(
            (
                ((int(plan.user_id), application_of[plan.client_id]), plan)
                for plan in grants.values()
            ),
            key=lambda item: item[0],
        )
        if run is not None:
            writer = Writer(
                store,
                run,
                SecretHasher(Keyring(settings.secret_keys)),
                argon2id(settings.argon2),
                progress,
                options.batches,
                options.on_batch,
            )
            if "users" not in run.finished:
                await writer.users(user_plans)
                await writer.finish("users")
            if "clients" not in run.finished:
                await writer.clients(client_plans, owner)
                await writer.finish("clients")
            if "grants" not in run.finished:
                await writer.grants(keyed)
                await writer.finish("grants")
        await _tokens(
            appbox,
            rules,
            report,
            writer,
            run,
            counts["ApiOauthTokens"],
            progress,
            options.batches.tokens,
        )
        if writer is not None:
            await writer.finish("tokens")
            await store.audit.record(
                "phraseanet.imported",
                detail={"source": str(url), "imported": dict(report.imported)},
            )
        progress.finish()
        return report
    finally:
        if writer is not None:
            writer.close()
        await asyncio.to_thread(appbox.close)


async def _tokens(
    appbox: Appbox,
    rules: TokenRules,
    report: Report,
    writer: Writer | None,
    run: Run | None,
    total: int,
    progress: Progress,
    size: int,
) -> None:
    """Map every token (the report needs them all); write those after the stage's position."""
    position = run.positions["tokens"] if run is not None else ""
    progress.stage("tokens", total)
    if position:
        # Written by the interrupted run: mapped again for the report, not written again.
        async with _batches(appbox.tokens(through=position, batch=size)) as done:
            async for batch in done:
                for token in batch:
                    plan_token(token, rules, report)
                progress.advance(len(batch))
    async with _batches(appbox.tokens(after=position or None, batch=size)) as todo:
        async for batch in todo:
            plans = [plan for token in batch if (plan := plan_token(token, rules, report))]
            if writer is not None:
                await writer.tokens(plans, batch[-1].token, len(batch))
            else:
                progress.advance(len(batch))


@asynccontextmanager
async def _batches(
    rows: Generator[list[SourceToken], None, None],
) -> AsyncIterator[AsyncIterator[list[SourceToken]]]:
    """The batches of a streamed read, the next one read from MySQL while this one is
    written. The read under way is waited for on the way out, so the connection is never used
    by two threads at once, and the stream is closed even when the writing fails."""
    pending: asyncio.Future[list[SourceToken] | None] | None = None

    async def each() -> AsyncIterator[list[SourceToken]]:
        nonlocal pending
        pending = asyncio.ensure_future(asyncio.to_thread(next, rows, None))
        while True:
            batch = await pending
            if batch is None:
                return
            pending = asyncio.ensure_future(asyncio.to_thread(next, rows, None))
            yield batch

    try:
        yield each()
    finally:
        if pending is not None and not pending.done():
            await asyncio.wait([pending])
        await asyncio.to_thread(rows.close)  # the cursor, before the connection closes


def _owner(used: set[str]) -> tuple[str, str]:
    """The synthetic owner's id and a login no user has (D6)."""
    login = SYNTHETIC_OWNER
    while login.lower() in used:
        login += "#"
    return SYNTHETIC_OWNER, login
