"""Prometheus metrics on the admin listener, and the request id every response carries.

Both in-process apps share one set of services, as ``serve`` builds them, so what
the public app counts is what the admin app's /metrics shows.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families

from authserver.config import Settings
from authserver.metrics import DELAY, Metrics
from authserver.security.tokens import TokenKind
from authserver.services import create_apps
from tests.authorize_support import ISSUER, login_form, query, submit_login
from tests.conftest import ADMIN_TOKEN, ALICE_PASSWORD, server_environ
from tests.oauth_support import CODEC
from tests.token_support import (
    basic,
    code_params,
    post_token,
    web_auth,
    web_code,
    web_tokens,
)

SERIES = {
    "authserver_http_requests_total": "counter",
    "authserver_http_request_duration_seconds": "histogram",
    "authserver_tokens_issued_total": "counter",
    "authserver_introspections_total": "counter",
    "authserver_refresh_reuse_detections_total": "counter",
    "authserver_code_replays_total": "counter",
    "authserver_login_failures_total": "counter",
    "authserver_client_auth_failures_total": "counter",
    "authserver_revocations_total": "counter",
    "authserver_janitor_deleted_rows_total": "counter",
    "authserver_db_pool_connections": "gauge",
}
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Apps:
    """The public and the admin app of one process, each behind an httpx client."""

    public: httpx.AsyncClient
    admin: httpx.AsyncClient  # sends the admin token

    async def scrape(self) -> str:
        response = await self.admin.get("/metrics", headers={"Authorization": ""})
        assert response.status_code == 200
        return response.text

    async def value(self, name: str, **labels: str) -> float:
        """The current value of one sample (0 when it has not been observed yet)."""
        return sample(await self.scrape(), name, **labels)


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return 0.0


@asynccontextmanager
async def observed_apps(database_url: str, **overrides: str) -> AsyncIterator[Apps]:
    """Both apps over one set of services, as ``authserver serve`` runs them."""
    public_app, admin_app = create_apps(
        Settings.from_env(server_environ(database_url, **overrides))
    )
    async with (
        LifespanManager(public_app) as public,
        LifespanManager(admin_app) as admin,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=public.app), base_url=ISSUER) as pc,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=admin.app),
            base_url="http://admin.test",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as ac,
    ):
        yield Apps(pc, ac)


@pytest.fixture
def apps(public: httpx.AsyncClient, admin: httpx.AsyncClient) -> Apps:
    """The public and admin clients of one server (conftest's), with a scraper."""
    return Apps(public, admin)


async def client_credentials(apps: Apps, client: dict[str, Any]) -> str:
    response = await post_token(
        apps.public, {"grant_type": "client_credentials"}, headers=web_auth(client)
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


# the exposition


async def test_requests_are_counted_within_the_delay() -> None:
    """A request noted while the loop runs is counted by itself within DELAY, scraped or not;
    the introspection counts with it."""
    metrics = Metrics()
    metrics.request_done("public", "/oauth2/introspect", 200, 0.002)
    metrics.introspected(True)
    labels = {"listener": "public", "route": "/oauth2/introspect", "status": "200"}
    total = "authserver_http_requests_total"
    assert metrics.registry.get_sample_value(total, labels) is None
    await asyncio.sleep(DELAY * 3)
    assert metrics.registry.get_sample_value(total, labels) == 1
    active = metrics.registry.get_sample_value(
        "authserver_introspections_total", {"result": "active"}
    )
    assert active == 1


async def test_issued_tokens_are_counted_within_the_delay() -> None:
    """Issued tokens are counted by grant type within DELAY of their audit, scraped or not."""
    metrics = Metrics()
    for _ in range(3):
        metrics.observe_audit("token.issued", {"grant_type": "client_credentials"})
    metrics.observe_audit("token.issued", {"grant_type": "refresh_token"})
    issued = "authserver_tokens_issued_total"
    assert metrics.registry.get_sample_value(issued, {"grant_type": "client_credentials"}) is None
    await asyncio.sleep(DELAY * 3)
    assert metrics.registry.get_sample_value(issued, {"grant_type": "client_credentials"}) == 3
    assert metrics.registry.get_sample_value(issued, {"grant_type": "refresh_token"}) == 1


async def test_metrics_lists_every_series(apps: Apps) -> None:
    """GET /metrics declares every series with its type, in Prometheus text format."""
    response = await apps.admin.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    declared = dict(re.findall(r"^# TYPE (\S+) (\S+)$", response.text, re.MULTILINE))
    assert {name: declared.get(name) for name in SERIES} == SERIES


async def test_metrics_open_without_admin_token(apps: Apps) -> None:
    """/metrics answers a scraper that sends no admin token; the admin API still wants one."""
    assert (await apps.admin.get("/metrics", headers={"Authorization": ""})).status_code == 200
    assert (await apps.admin.get("/clients", headers={"Authorization": ""})).status_code == 401


async def test_metrics_not_on_public_listener(apps: Apps) -> None:
    """The public listener has no /metrics."""
    assert (await apps.public.get("/metrics")).status_code == 404


# each series moves with its event


async def test_requests_counted_by_route_and_status(apps: Apps) -> None:
    """A request adds one to its listener/route/status counter and its latency histogram."""
    labels = {"listener": "public", "route": "/healthz"}
    before = await apps.scrape()
    assert (await apps.public.get("/healthz")).status_code == 200
    after = await apps.scrape()
    total = "authserver_http_requests_total"
    count = "authserver_http_request_duration_seconds_count"
    assert (
        sample(after, total, **labels, status="200")
        == sample(before, total, **labels, status="200") + 1
    )
    assert sample(after, count, **labels) == sample(before, count, **labels) + 1


async def test_unknown_paths_share_one_route_label(apps: Apps) -> None:
    """Requests to unknown paths are counted under route="unmatched", never their path."""
    for path in ("/nope-1", "/nope-2"):
        assert (await apps.public.get(path)).status_code == 404
    text = await apps.scrape()
    labels = {"listener": "public", "route": "unmatched", "status": "404"}
    assert sample(text, "authserver_http_requests_total", **labels) == 2
    assert "nope" not in text


async def test_tokens_issued_counted_by_grant(apps: Apps, web_client: dict[str, Any]) -> None:
    """A client-credentials token adds one to tokens_issued{grant_type="client_credentials"}."""
    before = await apps.value("authserver_tokens_issued_total", grant_type="client_credentials")
    await client_credentials(apps, web_client)
    after = await apps.value("authserver_tokens_issued_total", grant_type="client_credentials")
    assert after == before + 1


async def test_introspections_counted_by_result(apps: Apps, introspector: dict[str, Any]) -> None:
    """Introspecting a live token counts as active; an unknown token as inactive."""
    token = await client_credentials(apps, introspector)
    for asked, active in ((token, True), (CODEC.mint(TokenKind.ACCESS), False)):
        response = await apps.public.post(
            "/oauth2/introspect", data={"token": asked}, headers=web_auth(introspector)
        )
        assert response.json()["active"] is active
    text = await apps.scrape()
    assert sample(text, "authserver_introspections_total", result="active") == 1
    assert sample(text, "authserver_introspections_total", result="inactive") == 1


async def test_code_replay_counted(
    apps: Apps, db: asyncpg.Connection, web_client: dict[str, Any], alice: dict[str, Any]
) -> None:
    """Redeeming a code a second time adds one to code_replays."""
    code, verifier = await web_code(db, web_client, alice)
    first = await post_token(apps.public, code_params(code, verifier), headers=web_auth(web_client))
    assert first.status_code == 200, first.text
    again = await post_token(apps.public, code_params(code, verifier), headers=web_auth(web_client))
    assert again.status_code == 400
    assert await apps.value("authserver_code_replays_total") == 1


async def test_refresh_reuse_counted(
    apps: Apps, db: asyncpg.Connection, web_client: dict[str, Any], alice: dict[str, Any]
) -> None:
    """Presenting a rotated-out refresh token adds one to refresh_reuse_detections."""
    issued = await web_tokens(apps.public, db, web_client, alice)
    refresh = {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}
    rotated = await post_token(apps.public, refresh, headers=web_auth(web_client))
    assert rotated.status_code == 200, rotated.text
    assert await apps.value("authserver_refresh_reuse_detections_total") == 0
    reused = await post_token(apps.public, refresh, headers=web_auth(web_client))
    assert reused.status_code == 400
    assert await apps.value("authserver_refresh_reuse_detections_total") == 1


async def test_password_grant_failure_counted(apps: Apps, alice: dict[str, Any]) -> None:
    """A wrong password on the password grant adds one to login_failures{via=password_grant}."""
    created = await apps.admin.post(
        "/clients",
        json={
            "name": "Script",
            "website": "https://script.example",
            "type": "web",
            "redirect_uris": ["https://script.example/cb"],
            "owner_id": alice["user_id"],
            "password_grant": True,
        },
    )
    assert created.status_code == 201, created.text
    form = {"grant_type": "password", "username": "alice", "password": "not it"}
    refused = await post_token(apps.public, form, headers=web_auth(created.json()))
    assert refused.status_code == 400
    assert await apps.value("authserver_login_failures_total", via="password_grant") == 1
    assert await apps.value("authserver_login_failures_total", via="login_page") == 0


async def test_login_page_failure_counted(
    apps: Apps, web_client: dict[str, Any], alice: dict[str, Any]
) -> None:
    """A wrong password on the login page adds one to login_failures{via=login_page}."""
    raw_query = query(web_client)
    page = await login_form(apps.public, raw_query)
    wrong = await submit_login(apps.public, page, password=ALICE_PASSWORD + "!")
    assert wrong.status_code == 400
    assert await apps.value("authserver_login_failures_total", via="login_page") == 1
    right = await submit_login(apps.public, wrong.text)
    assert right.status_code == 303
    assert await apps.value("authserver_login_failures_total", via="login_page") == 1


async def test_client_auth_failure_counted(apps: Apps, web_client: dict[str, Any]) -> None:
    """A wrong client secret adds one to client_auth_failures."""
    response = await post_token(
        apps.public,
        {"grant_type": "client_credentials"},
        headers=basic(web_client["client_id"], "wrong-secret-0123456789"),
    )
    assert response.status_code == 401
    assert await apps.value("authserver_client_auth_failures_total") == 1


async def test_revocation_counted(apps: Apps, web_client: dict[str, Any]) -> None:
    """Revoking a live token adds one to revocations."""
    token = await client_credentials(apps, web_client)
    response = await apps.public.post(
        "/oauth2/revoke", data={"token": token}, headers=web_auth(web_client)
    )
    assert response.status_code == 200
    assert await apps.value("authserver_revocations_total") == 1


async def pool_states(apps: Apps) -> dict[str, float]:
    """The pool gauge's samples by state, as scraped (absent states are left out)."""
    return {
        found.labels["state"]: found.value
        for family in text_string_to_metric_families(await apps.scrape())
        for found in family.samples
        if found.name == "authserver_db_pool_connections"
    }


async def test_pool_gauge_counts_connections(
    apps: Apps, db: asyncpg.Connection, web_client: dict[str, Any]
) -> None:
    """The pool gauge counts a connection a request is holding as in use, within the pool."""
    async with db.transaction():
        # A token request now waits for this lock on a pool connection of its own.
        await db.execute("LOCK TABLE client_secrets IN ACCESS EXCLUSIVE MODE")
        waiting = asyncio.create_task(client_credentials(apps, web_client))
        deadline = time.monotonic() + 10.0
        states = await pool_states(apps)
        while states.get("in_use", 0) < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            states = await pool_states(apps)
    await waiting
    assert set(states) == {"in_use", "idle"}
    assert states["in_use"] >= 1
    assert states["in_use"] + states["idle"] <= 4  # AUTHSERVER_POOL_MAX_SIZE=4 in tests


async def test_janitor_deletions_counted(
    database_url: str, db: asyncpg.Connection, web_client: dict[str, Any]
) -> None:
    """Rows the in-server janitor deletes are added to janitor_deleted_rows{table}."""
    await db.execute(
        """INSERT INTO tokens (digest, kind, client_id, expires_at)
           SELECT decode(md5(i::text) || md5((i + 1)::text), 'hex'), 'access', $1,
                  now() - interval '1 hour'
           FROM generate_series(1, 7) AS i""",
        web_client["client_id"],
    )
    async with observed_apps(database_url, janitor_interval="1") as apps:
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            if await apps.value("authserver_janitor_deleted_rows_total", table="tokens") == 7:
                break
            await asyncio.sleep(0.1)
        assert await apps.value("authserver_janitor_deleted_rows_total", table="tokens") == 7
    assert await db.fetchval("SELECT count(*) FROM tokens") == 0


# the request id


async def test_sane_request_id_echoed(apps: Apps) -> None:
    """A sane X-Request-Id sent by the caller comes back unchanged."""
    given = "edge-7f3a.b2:c_d-9"
    response = await apps.public.get("/healthz", headers={"X-Request-Id": given})
    assert response.headers["x-request-id"] == given


async def test_missing_request_id_generated(apps: Apps) -> None:
    """Without X-Request-Id, each response carries a fresh generated one."""
    first = (await apps.public.get("/healthz")).headers["x-request-id"]
    second = (await apps.public.get("/healthz")).headers["x-request-id"]
    assert GENERATED_ID.fullmatch(first)
    assert GENERATED_ID.fullmatch(second)
    assert first != second


@pytest.mark.parametrize(
    "given",
    ["has spaces in it", "x" * 129, "quote\"and'<tag>", "", "é-accented"],
    ids=["spaces", "too-long", "quotes", "empty", "non-ascii"],
)
async def test_insane_request_id_replaced(apps: Apps, given: str) -> None:
    """An X-Request-Id that is too long or has odd characters is replaced by a generated one."""
    response = await apps.public.get("/healthz", headers=[(b"X-Request-Id", given.encode("utf-8"))])
    assert GENERATED_ID.fullmatch(response.headers["x-request-id"])


@pytest.mark.parametrize("path", ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"])
async def test_request_id_on_oauth_endpoints(apps: Apps, path: str) -> None:
    """The raw OAuth endpoints echo a sane request id and make one up otherwise."""
    echoed = await apps.public.post(path, data={}, headers={"X-Request-Id": "probe-2"})
    made = await apps.public.post(path, data={})
    assert echoed.headers["x-request-id"] == "probe-2"
    assert GENERATED_ID.fullmatch(made.headers["x-request-id"])


async def test_request_id_on_refused_admin_request(apps: Apps) -> None:
    """An admin request refused for want of a token still carries its request id."""
    response = await apps.admin.get(
        "/clients", headers={"Authorization": "", "X-Request-Id": "probe-1"}
    )
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "probe-1"
