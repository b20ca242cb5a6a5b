"""``authserver serve --workers N``: real supervisor and worker processes over real HTTP.

Which worker answered is read from /metrics (``authserver_worker_requests``, one line per live
worker pid), the worker processes from /proc (the supervisor's children). Every server is
stopped in a ``finally`` by live_server; the config checks at the end need no server.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from authserver.config import Settings
from authserver.cpus import available_cpus
from authserver.errors import ConfigError
from authserver.metrics import DELAY
from authserver.oidc.keys import ALGORITHMS
from tests.conftest import ADMIN_TOKEN, register_client, server_environ
from tests.live_server import LiveServer, free_port, live_server
from tests.test_janitor import fill_expired_tokens
from tests.token_support import web_auth

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
EXPIRED = 5000  # expired tokens for the janitor to find
WAIT = 20.0  # seconds for a replaced worker to serve, a spread to show, a drain to end


def children(pid: int) -> set[int]:
    """Live processes whose parent is ``pid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.add(int(entry.name))
    return found


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def all_ready(server: LiveServer) -> None:
    """Wait for the supervisor's word that every first worker accepts (live_server only
    waited for one of them to answer)."""
    deadline = time.monotonic() + WAIT
    while "workers ready" not in server.output():
        assert time.monotonic() < deadline, server.output()
        await asyncio.sleep(0.05)


def supervisor(server: LiveServer) -> int:
    assert server.process is not None
    return server.process.pid


async def samples(server: LiveServer, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of ``name`` on /metrics, by their labels."""
    async with httpx.AsyncClient(timeout=10.0) as http:
        response = await http.get(server.admin_url + "/metrics", headers=ADMIN)
    assert response.status_code == 200
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def answered_by(server: LiveServer) -> dict[int, float]:
    """Requests each live worker answered so far, by pid."""
    by_labels = await samples(server, "authserver_worker_requests")
    return {int(dict(labels)["pid"]): value for labels, value in by_labels.items()}


async def healthz_burst(server: LiveServer, count: int) -> None:
    """``count`` concurrent requests, each on a new connection, all answered 200."""
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=10.0, limits=limits) as http:
        answers = await asyncio.gather(
            *(http.get(server.public_url + "/healthz") for _ in range(count))
        )
    assert [a.status_code for a in answers] == [200] * count


async def spread(server: LiveServer, workers: int) -> dict[int, float]:
    """Send bursts until ``workers`` workers have answered (or the wait is over)."""
    deadline = time.monotonic() + WAIT
    while True:
        await healthz_burst(server, 20)
        counts = await answered_by(server)
        if sum(1 for value in counts.values() if value > 0) >= workers:
            return counts
        if time.monotonic() > deadline:
            return counts


async def test_two_workers_serve_both_listeners(database_url: str, tmp_path: Path) -> None:
    """With --workers 2 the supervisor has two worker children; both listeners answer."""
    async with live_server(database_url, tmp_path / "server.log", workers="2") as server:
        assert len(children(supervisor(server))) == 2
        async with httpx.AsyncClient(timeout=10.0) as http:
            public = await http.get(server.public_url + "/readyz")
            admin = await http.get(server.admin_url + "/clients?owner_id=nobody", headers=ADMIN)
        assert (public.status_code, admin.status_code) == (200, 200)


async def test_requests_are_spread_across_workers(database_url: str, tmp_path: Path) -> None:
    """New connections are answered by both workers, each a child of the supervisor."""
    async with live_server(database_url, tmp_path / "server.log", workers="2") as server:
        counts = await spread(server, 2)
        assert set(counts) == children(supervisor(server))
        assert all(value > 0 for value in counts.values()), counts


async def test_metrics_add_up_across_workers(database_url: str, tmp_path: Path) -> None:
    """/metrics counts every worker's requests, whichever worker answers the scrape."""
    async with live_server(database_url, tmp_path / "server.log", workers="2") as server:
        counts = await spread(server, 2)
        assert len([value for value in counts.values() if value > 0]) == 2
        key = (("listener", "public"), ("route", "/healthz"), ("status", "200"))
        first = (await samples(server, "authserver_http_requests_total"))[key]
        await healthz_burst(server, 30)
        # A worker counts its requests up to DELAY after answering them (authserver.metrics).
        await asyncio.sleep(DELAY + 0.2)
        for _ in range(4):  # four scrapes: whichever worker answers, the same sum
            totals = await samples(server, "authserver_http_requests_total")
            assert totals[key] == first + 30
        pool = await samples(server, "authserver_db_pool_connections")
        assert sum(pool.values()) >= 2  # both workers' pools (min size 1 each)


async def test_introspection_cache_metrics_under_workers(database_url: str, tmp_path: Path) -> None:
    """Each worker's introspection cache counts reach the one /metrics view."""
    async with live_server(
        database_url, tmp_path / "server.log", workers="2", introspection_cache_entries="1000"
    ) as server:
        await all_ready(server)
        deadline = time.monotonic() + WAIT
        while True:
            lookups = await samples(server, "authserver_introspection_cache_lookups_total")
            entries = await samples(server, "authserver_introspection_cache_entries")
            if lookups and entries:
                break
            assert time.monotonic() < deadline, "no cache metrics on /metrics"
            await asyncio.sleep(0.2)
        assert set(lookups) == {(("result", "hit"),), (("result", "miss"),)}
        assert list(entries.values()) == [0.0]


async def test_sigterm_drains_in_flight_request(database_url: str, tmp_path: Path) -> None:
    """A request in flight at SIGTERM is answered; then every process exits, status 0."""
    user_id = f"u-{uuid.uuid4().hex[:10]}"
    body = f'{{"login": "{user_id}", "email": "{user_id}@example.com"}}'.encode()
    head = (
        f"PUT /users/{user_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    async with live_server(database_url, tmp_path / "server.log", workers="2") as server:
        assert server.process is not None
        workers = children(server.process.pid)
        port = int(server.admin_url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(head + body[:10])  # the request has begun; its body is on its way
            await writer.drain()
            await asyncio.sleep(0.5)
            server.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(1.0)
            writer.write(body[10:])
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 10.0)
        finally:
            writer.close()
        status = await asyncio.wait_for(server.process.wait(), WAIT)
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:200]
    assert status == 0
    assert not any(running(pid) for pid in workers)


async def test_killed_worker_is_replaced(database_url: str, tmp_path: Path) -> None:
    """kill -9 of a worker: the server keeps answering, and a new worker pid takes its place."""
    async with live_server(database_url, tmp_path / "server.log", workers="2") as server:
        await all_ready(server)
        before = children(supervisor(server))
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + WAIT
        while (now := children(supervisor(server))) in (before, before - {victim}):
            assert time.monotonic() < deadline, server.output()
            await healthz_burst(server, 5)  # answered meanwhile by the survivor
            await asyncio.sleep(0.1)
        new = now - before
        assert len(now) == 2
        assert victim not in now
        assert len(new) == 1
        counts = await spread(server, 2)
        assert set(counts) == now  # the dead worker's line is gone, the new one serves
        assert counts[new.pop()] > 0
        assert f"worker {victim} was killed by SIGKILL" in server.output()


async def client_credentials(server: LiveServer, client: dict[str, Any], count: int) -> list[int]:
    """Statuses of ``count`` concurrent client-credentials requests, each on a new connection."""
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=10.0, limits=limits) as http:
        answers = await asyncio.gather(
            *(
                http.post(
                    server.public_url + "/oauth2/token",
                    data={"grant_type": "client_credentials"},
                    headers=web_auth(client),
                )
                for _ in range(count)
            )
        )
    return [answer.status_code for answer in answers]


async def listeners(database_url: str) -> int:
    """Connections to this database that listen for client changes (one per caching worker)."""
    conn = await asyncpg.connect(database_url)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'authserver-listen-authserver_client_changed'"
        )
    finally:
        await conn.close()
    return count


async def test_every_worker_follows_client_changes(database_url: str, tmp_path: Path) -> None:
    """With the client cache on, each worker listens for changes: a deleted client is refused
    by all of them at once, though the cache would keep it 300 s."""
    async with live_server(
        database_url, tmp_path / "server.log", workers="2", client_cache_ttl="300"
    ) as server:
        await all_ready(server)
        deadline = time.monotonic() + WAIT
        while await listeners(database_url) < 2:
            assert time.monotonic() < deadline, "not every worker listens for client changes"
            await asyncio.sleep(0.1)
        async with httpx.AsyncClient(base_url=server.admin_url, headers=ADMIN) as admin:
            user_id = f"u-{uuid.uuid4().hex[:10]}"
            owner = await admin.put(
                f"/users/{user_id}", json={"login": user_id, "email": f"{user_id}@example.com"}
            )
            assert owner.status_code == 201
            client = await register_client(
                admin,
                owner.json(),
                name="Cached",
                website="https://cached.example",
                type="web",
                redirect_uris=["https://cached.example/cb"],
            )
            # Both workers must have cached it. Which worker accepts a connection is the
            # kernel's choice (one may take a whole burst), so bursts go until both answered.
            before = await answered_by(server)
            deadline = time.monotonic() + WAIT
            while True:
                assert await client_credentials(server, client, 40) == [200] * 40
                after = await answered_by(server)
                if len(after) >= 2 and all(after[pid] > before.get(pid, 0) for pid in after):
                    break
                assert time.monotonic() < deadline, f"not both workers issued: {after}"
            assert (await admin.delete(f"/clients/{client['client_id']}")).status_code == 204
        await asyncio.sleep(1.0)  # notifications take milliseconds; the cache would keep 300 s
        assert await client_credentials(server, client, 40) == [401] * 40


async def test_janitor_purges_once_under_workers(
    database_url: str, db: asyncpg.Connection, introspector: dict[str, Any], tmp_path: Path
) -> None:
    """Both workers run the janitor; its lock lets each expired row be deleted and counted once."""
    await fill_expired_tokens(db, introspector["client_id"], EXPIRED)
    expired = "SELECT count(*) FROM tokens WHERE expires_at < now()"
    async with live_server(
        database_url,
        tmp_path / "server.log",
        workers="2",
        janitor_interval="1",
        janitor_batch="1000",
    ) as server:
        deadline = time.monotonic() + WAIT
        while await db.fetchval(expired) > 0:
            assert time.monotonic() < deadline, server.output()
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.5)  # both workers' timers have fired again since
        deleted = await samples(server, "authserver_janitor_deleted_rows_total")
        output = server.output()
    assert deleted[(("table", "tokens"),)] == EXPIRED
    assert "janitor run failed" not in output


async def test_migrations_and_first_keys_made_once(empty_database_url: str, tmp_path: Path) -> None:
    """On an empty database the supervisor migrates once and makes one set of signing keys."""
    async with live_server(empty_database_url, tmp_path / "server.log", workers="2") as server:
        output = server.output()
    conn = await asyncpg.connect(empty_database_url)
    try:
        keys = await conn.fetchval("SELECT count(*) FROM signing_keys")
    finally:
        await conn.close()
    assert output.count("applied migrations") == 1
    assert keys == len(ALGORITHMS)


async def test_one_worker_is_one_process(database_url: str, tmp_path: Path) -> None:
    """--workers 1 serves from the started process itself: no children, no per-worker lines."""
    async with live_server(database_url, tmp_path / "server.log", workers="1") as server:
        assert children(supervisor(server)) == set()
        assert await samples(server, "authserver_worker_requests") == {}


def run_serve(
    tmp_path: Path, *args: str, database_url: str | None = None, **overrides: str
) -> subprocess.CompletedProcess[str]:
    """``serve`` run to completion (by default against a database that is never reached)."""
    unreachable = f"postgresql://authserver@127.0.0.1:{free_port()}/authserver"
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHSERVER_")}
    env.update(
        server_environ(
            database_url or unreachable,
            **{
                "startup_timeout": "1",
                "public_addr": f"127.0.0.1:{free_port()}",
                "admin_addr": f"127.0.0.1:{free_port()}",
                **overrides,
            },
        )
    )
    return subprocess.run(
        [sys.executable, "-m", "authserver", "serve", *args],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("value", ["0", "abc", "-2", "2000"])
def test_bad_workers_setting_exits_2(tmp_path: Path, value: str) -> None:
    """AUTHSERVER_WORKERS that is not 1 to 1024 stops serve with one line naming it."""
    done = run_serve(tmp_path, workers=value)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("authserver: configuration error: AUTHSERVER_WORKERS")


def test_bad_workers_option_exits_2(tmp_path: Path) -> None:
    """--workers 0 is refused by the command line, naming the option."""
    done = run_serve(tmp_path, "--workers", "0")
    assert done.returncode == 2
    assert "--workers" in done.stderr
    assert "Traceback" not in done.stderr


def test_budget_smaller_than_workers_exits_2(tmp_path: Path) -> None:
    """--workers 4 with AUTHSERVER_POOL_BUDGET=3 cannot give each worker a connection."""
    done = run_serve(tmp_path, "--workers", "4", pool_budget="3")
    assert done.returncode == 2
    assert done.stderr.startswith("authserver: configuration error: AUTHSERVER_POOL_BUDGET")


def test_port_in_use_exits_1_with_workers(database_url: str, tmp_path: Path) -> None:
    """With --workers 2 a listener address in use stops serve with status 1, no traceback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_serve(
            tmp_path, "--workers", "2", database_url=database_url, admin_addr=f"127.0.0.1:{port}"
        )
    assert done.returncode == 1
    assert "address already in use" in done.stdout  # the JSON log, on stdout
    assert "Traceback" not in done.stderr + done.stdout


def test_database_unreachable_exits_1_with_workers(tmp_path: Path) -> None:
    """With --workers 2 an unreachable database fails the start once, in one line."""
    done = run_serve(tmp_path, "--workers", "2")
    assert done.returncode == 1
    assert done.stderr.startswith("authserver: cannot reach the database"), done.stderr
    assert done.stderr.count("\n") == 1


# the settings


def settings(**env: str) -> Settings:
    environ = server_environ("postgresql://x@localhost/x", **env)
    if "workers" not in env:
        del environ["AUTHSERVER_WORKERS"]  # the tests' pin to one process
    return Settings.from_env(environ)


def test_pool_is_shared_out_under_the_budget() -> None:
    """Each worker's pool is the smaller of POOL_MAX_SIZE and an even share of POOL_BUDGET."""
    small = settings(workers="4", pool_max_size="10", pool_min_size="4", pool_budget="20")
    assert (small.per_worker().pool_max_size, small.per_worker().pool_min_size) == (5, 4)
    tight = settings(workers="8", pool_max_size="10", pool_min_size="4", pool_budget="20")
    assert (tight.per_worker().pool_max_size, tight.per_worker().pool_min_size) == (2, 2)
    roomy = settings(workers="2", pool_max_size="10", pool_budget="50")
    assert roomy.per_worker().pool_max_size == 10
    assert roomy.workers * roomy.per_worker().pool_max_size <= roomy.pool_budget


def test_one_worker_keeps_its_pool() -> None:
    """One worker with the default budget keeps POOL_MAX_SIZE as it is (as before workers)."""
    one = settings(workers="1", pool_max_size="10")
    assert one.per_worker() == one


def test_budget_below_workers_is_refused() -> None:
    """POOL_BUDGET smaller than WORKERS is a configuration error naming POOL_BUDGET."""
    with pytest.raises(ConfigError, match="AUTHSERVER_POOL_BUDGET"):
        settings(workers="6", pool_budget="5")


def test_workers_default_to_available_cpus() -> None:
    """Unset, AUTHSERVER_WORKERS is the number of CPUs this process may use."""
    assert settings().workers == available_cpus()


def test_default_workers_stay_within_the_budget() -> None:
    """Unset, AUTHSERVER_WORKERS never exceeds POOL_BUDGET (a worker needs a connection)."""
    assert settings(pool_budget="1").workers == 1


def cgroup(tmp_path: Path, files: dict[str, str], own: str = "0::/\n") -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (tmp_path / "self-cgroup").write_text(own)
    return root, tmp_path / "self-cgroup"


@pytest.mark.parametrize(
    ("files", "own", "affinity", "expected"),
    [
        ({"cpu.max": "max 100000\n"}, "0::/\n", 8, 8),  # no quota: the affinity mask
        ({"cpu.max": "200000 100000\n"}, "0::/\n", 8, 2),  # v2 quota of 2 CPUs
        ({"cpu.max": "150000 100000\n"}, "0::/\n", 8, 2),  # 1.5 CPUs round up
        ({"cpu.max": "50000 100000\n"}, "0::/\n", 8, 1),  # half a CPU: still one worker
        ({"cpu.max": "400000 100000\n"}, "0::/\n", 3, 3),  # affinity tighter than quota
        ({"app.slice/cpu.max": "300000 100000\n"}, "0::/app.slice\n", 16, 3),  # host cgroup
        (
            {"cpu/cpu.cfs_quota_us": "250000\n", "cpu/cpu.cfs_period_us": "100000\n"},
            "4:cpu,cpuacct:/\n",
            16,
            3,
        ),  # v1
        (
            {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"},
            "4:cpu,cpuacct:/\n",
            6,
            6,
        ),  # v1 without a quota
        ({}, "", 4, 4),  # nothing readable
    ],
)
def test_available_cpus_reads_cgroup_quota(
    tmp_path: Path, files: dict[str, str], own: str, affinity: int, expected: int
) -> None:
    """The default worker count is the affinity mask capped by the CFS quota, rounded up."""
    root, self_cgroup = cgroup(tmp_path, files, own)
    assert available_cpus(root, self_cgroup, affinity=affinity) == expected
