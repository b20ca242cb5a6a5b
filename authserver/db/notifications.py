"""Following a PostgreSQL NOTIFY channel on a connection of its own, for the in-process caches.

A cache kept honest by notifications may only hold what it read while a LISTEN connection was
up: ``on_up`` runs once the connection listens (anything may have changed before: start over),
``on_down`` as soon as it is lost or cannot be opened (a notification may be missed: stop
caching until the next ``on_up``). Reconnection is retried quickly, then every 2 s.

A connection can also die silently (a network partition sends no reset): the connection is
pinged every ``PING`` seconds, and one that does not answer within ``PING`` is taken as lost,
so a replica cut off from PostgreSQL's notifications stops trusting its cache within about
two pings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg

log = logging.getLogger("authserver.db")

PING = 1.0  # seconds


async def follow(
    database_url: str,
    channel: str,
    on_notify: Callable[[str], None],
    on_up: Callable[[], None],
    on_down: Callable[[], None],
) -> None:
    """Deliver each payload on ``channel`` to ``on_notify`` until cancelled."""
    delay = 0.1
    while True:
        lost = asyncio.Event()
        conn: asyncpg.Connection | None = None
        try:
            conn = await asyncpg.connect(
                database_url,
                timeout=5,
                server_settings={"application_name": f"authserver-listen-{channel}"},
            )

            def terminated(_conn: object, lost: asyncio.Event = lost) -> None:
                on_down()  # at once, not when this task next runs
                lost.set()

            conn.add_termination_listener(terminated)
            await conn.add_listener(
                channel, lambda _conn, _pid, _channel, payload: on_notify(str(payload))
            )
            on_up()
            delay = 0.1
            await _until_lost(conn, lost)
            log.warning("notifications on %s interrupted; reconnecting", channel)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database may be away: try again later
            log.warning("cannot listen on %s: %s", channel, type(exc).__name__)
        finally:
            on_down()
            if conn is not None and not conn.is_closed():
                await conn.close(timeout=2)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)


async def _until_lost(conn: asyncpg.Connection, lost: asyncio.Event) -> None:
    while not lost.is_set():
        try:
            await asyncio.wait_for(lost.wait(), PING)
        except TimeoutError:
            try:
                await conn.fetchval("SELECT 1", timeout=PING)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
                return
