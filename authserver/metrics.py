"""Prometheus metrics, served on the admin listener at /metrics.

One registry per process, owned by the shared resources (not the module-global default), so
tests that build several apps do not collide. With several worker processes (``authserver
serve --workers N``) every value lives in prometheus-client's multiprocess files, in a
directory the supervisor makes for the run, and /metrics adds up all workers' files: one view,
whichever worker answers. A request is counted up to ``DELAY`` seconds after its answer,
together with the others of that moment; a worker's /metrics counts its own first, so only
another worker's latest requests may be that late on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from authserver.periodic import Soon

# Seconds a request's counts wait to be counted with others' (see Metrics.request_done).
DELAY = 0.05
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class _PoolCollector(Collector):
    def __init__(self, sizes: Callable[[], tuple[int, int] | None]) -> None:
        self._sizes = sizes

    def collect(self) -> Iterable[Metric]:
        sizes = self._sizes()
        gauge = GaugeMetricFamily(
            "authserver_db_pool_connections", "Database pool connections", labels=["state"]
        )
        if sizes is not None:
            size, idle = sizes
            gauge.add_metric(["in_use"], size - idle)
            gauge.add_metric(["idle"], idle)
        yield gauge


class CacheStats(Protocol):
    hits: int
    misses: int
    bytes: int

    def __len__(self) -> int: ...


class _TokenCacheCollector(Collector):
    """Counts kept by the cache itself: a hit adds one to an int, nothing more."""

    def __init__(self, cache: CacheStats) -> None:
        self._cache = cache

    def collect(self) -> Iterable[Metric]:
        cache = self._cache
        lookups = CounterMetricFamily(
            "authserver_introspection_cache_lookups",
            "Token lookups for introspection, answered from memory (hit) or not (miss)",
            labels=["result"],
        )
        lookups.add_metric(["hit"], cache.hits)
        lookups.add_metric(["miss"], cache.misses)
        yield lookups
        yield GaugeMetricFamily(
            "authserver_introspection_cache_entries", "Active tokens cached", value=len(cache)
        )
        yield GaugeMetricFamily(
            "authserver_introspection_cache_bytes",
            "Estimated memory of the cached tokens",
            value=cache.bytes,
        )


class Metrics:
    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        """``multiprocess_dir``: this process is one of several workers; its values go to files
        there (the directory must also be in PROMETHEUS_MULTIPROC_DIR, where the library
        looks for it when it opens them)."""
        self._multiprocess_dir = multiprocess_dir
        if multiprocess_dir is not None:
            # prometheus-client picks its value class once, at import, from the environment;
            # a worker learns it is one after that, so it picks again before any metric exists.
            prometheus_values.ValueClass = prometheus_values.MultiProcessValue()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "authserver_http_requests",
            "HTTP requests",
            ["listener", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "authserver_http_request_duration_seconds",
            "HTTP request latency",
            ["listener", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens_issued = Counter(
            "authserver_tokens_issued", "Tokens issued", ["grant_type"], registry=r
        )
        self.introspections = Counter(
            "authserver_introspections", "Introspection answers", ["result"], registry=r
        )
        self.reuse_detections = Counter(
            "authserver_refresh_reuse_detections", "Refresh-token reuse detected", registry=r
        )
        self.code_replays = Counter(
            "authserver_code_replays", "Authorization-code replays detected", registry=r
        )
        self.login_failures = Counter(
            "authserver_login_failures", "Failed user logins", ["via"], registry=r
        )
        self.client_auth_failures = Counter(
            "authserver_client_auth_failures", "Failed client authentications", registry=r
        )
        self.revocations = Counter("authserver_revocations", "Tokens revoked", registry=r)
        self.guesses = Counter(
            "authserver_failed_guesses",
            "Codes and tokens presented that matched nothing",
            ["endpoint", "reason"],
            registry=r,
        )
        self.paused = Counter(
            "authserver_paused_requests",
            "Requests refused because their caller was paused",
            ["endpoint"],
            registry=r,
        )
        self.pkce_reuses = Counter(
            "authserver_pkce_challenge_reuses",
            "Authorization requests reusing a PKCE challenge of the same client",
            registry=r,
        )
        self.janitor_deleted = Counter(
            "authserver_janitor_deleted_rows", "Rows the janitor deleted", ["table"], registry=r
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._done: list[tuple[str, str, int, float]] = []  # requests not counted yet
        self._introspected_now = {True: 0, False: 0}
        self._issued_now: dict[str, int] = {}  # tokens issued per grant type, not counted yet
        self._soon = Soon(self.count, DELAY)
        self._introspected = {
            True: self.introspections.labels("active"),
            False: self.introspections.labels("inactive"),
        }
        self._pool_sizes: Callable[[], tuple[int, int] | None] = lambda: None
        self._worker_requests: Any = None
        self._pool_gauge: Any = None
        self._samplers: list[Callable[[], None]] = []
        if multiprocess_dir is None:
            r.register(_PoolCollector(lambda: self._pool_sizes()))
        else:
            # Per live worker (a pid label), so an operator sees how the load is spread and
            # which workers run; a dead worker's line goes when the supervisor buries it.
            self._worker_requests = Gauge(
                "authserver_worker_requests",
                "Requests answered by each live worker process",
                registry=r,
                multiprocess_mode="liveall",
            )
            self._pool_gauge = Gauge(
                "authserver_db_pool_connections",
                "Database pool connections",
                ["state"],
                registry=r,
                multiprocess_mode="livesum",
            )

    def request_done(self, listener: str, route: str, status: int, seconds: float) -> None:
        """Count one request: noted now, counted with the others of the next ``DELAY``
        seconds (authserver.periodic.Soon); this process's /metrics counts them first."""
        self._done.append((listener, route, status, seconds))
        self._soon.ask()

    def introspected(self, active: bool) -> None:
        self._introspected_now[active] += 1
        self._soon.ask()

    def count(self) -> None:
        """Count what was noted; the labelled children are looked up once, not per request."""
        done, self._done = self._done, []
        for listener, route, status, seconds in done:
            key = (listener, route, status)
            children = self._children.get(key)
            if children is None:
                children = (
                    self.requests.labels(listener, route, str(status)),
                    self.latency.labels(listener, route),
                )
                self._children[key] = children
            children[0].inc()
            children[1].observe(seconds)
        if done and self._worker_requests is not None:
            self._worker_requests.inc(len(done))
        for active, times in self._introspected_now.items():
            if times:
                self._introspected[active].inc(times)
                self._introspected_now[active] = 0
        issued, self._issued_now = self._issued_now, {}
        for grant_type, times in issued.items():
            self.tokens_issued.labels(grant_type).inc(times)

    def guessed(self, endpoint: str, reason: str) -> None:
        self.guesses.labels(endpoint, reason).inc()

    def refused_paused(self, endpoint: str) -> None:
        self.paused.labels(endpoint).inc()

    def watch_token_cache(self, cache: CacheStats) -> None:
        if self._multiprocess_dir is None:
            self.registry.register(_TokenCacheCollector(cache))
            return
        # Workers: each cache's counts are copied into the shared files at every sample, and
        # the scrape sums them (a collector would only show the worker that answers).
        r = self.registry
        lookups = Counter(
            "authserver_introspection_cache_lookups",
            "Token lookups for introspection, answered from memory (hit) or not (miss)",
            ["result"],
            registry=r,
        )
        entries = Gauge(
            "authserver_introspection_cache_entries",
            "Active tokens cached",
            registry=r,
            multiprocess_mode="livesum",
        )
        size = Gauge(
            "authserver_introspection_cache_bytes",
            "Estimated memory of the cached tokens",
            registry=r,
            multiprocess_mode="livesum",
        )
        hits, misses = lookups.labels("hit"), lookups.labels("miss")
        copied = [0, 0]  # hits and misses already added to the counters

        def sample() -> None:
            hits.inc(cache.hits - copied[0])
            misses.inc(cache.misses - copied[1])
            copied[:] = [cache.hits, cache.misses]
            entries.set(len(cache))
            size.set(cache.bytes)

        self._samplers.append(sample)

    def watch_pool(self, sizes: Callable[[], tuple[int, int] | None]) -> None:
        self._pool_sizes = sizes

    @property
    def multiprocess(self) -> bool:
        return self._multiprocess_dir is not None

    async def sample_pool(self) -> None:
        """Write this worker's pool sizes (and cache counts) where the other workers' /metrics
        can read them (a single process reads them live at each scrape instead)."""
        for sample in self._samplers:
            sample()
        sizes = self._pool_sizes()
        if self._pool_gauge is not None and sizes is not None:
            size, idle = sizes
            self._pool_gauge.labels("in_use").set(size - idle)
            self._pool_gauge.labels("idle").set(idle)

    def observe_audit(self, kind: str, detail: Mapping[str, Any]) -> None:
        """Security events are counted where they are audited: one place sees them all."""
        if kind == "token.issued":
            # The busiest write: counted with the requests, a moment later (``count``).
            grant_type = str(detail.get("grant_type", "unknown"))
            self._issued_now[grant_type] = self._issued_now.get(grant_type, 0) + 1
            self._soon.ask()
        elif kind == "refresh.reuse_detected":
            self.reuse_detections.inc()
        elif kind == "code.replay_detected":
            self.code_replays.inc()
        elif kind == "login.failed":
            self.login_failures.labels(str(detail.get("via", "unknown"))).inc()
        elif kind == "client.auth_failed":
            self.client_auth_failures.inc()
        elif kind == "token.revoked":
            self.revocations.inc()
        elif kind == "pkce.challenge_reused":
            self.pkce_reuses.inc()

    def observe_janitor(self, table: str, rows: int) -> None:
        self.janitor_deleted.labels(table).inc(rows)

    def exposition(self) -> bytes:
        self.count()
        if self._multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self._multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(registry)
