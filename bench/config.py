"""What a bench run does: the profiles, the fixed keys and the load shape.

Everything that changes a figure is fixed here, so two runs of the same profile on the same
machine are comparable.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
LUA_SCRIPT = BENCH_DIR / "lua" / "post.lua"
OUT_DIR = BENCH_DIR / "out"
RESULTS_FILE = BENCH_DIR / "results.json"

# Fixed bench keys: the seeded tokens, client secrets and session cookies are made under them
# before the server starts, and a fixed key keeps runs alike. Never a production value.
SERVER_KEY = "bench-server-key-not-secret-0123456789abcdef"
ADMIN_TOKEN = "bench-admin-token-not-secret-0123456789abcd"  # noqa: S105 -- a bench constant
# https, as in production: the session cookie is then the __Host- one browsers get.
ISSUER = "https://auth.bench.test"

INTROSPECT_PATH = "/oauth2/introspect"
TOKEN_PATH = "/oauth2/token"  # noqa: S105 -- a URL path


@dataclass(frozen=True)
class Profile:
    name: str
    sizes: tuple[int, ...]  # rows in the tokens table for each scale step, growing
    main_size: int  # the step at which every other load runs
    warmup: float  # seconds of unmeasured load on each side before a paired run
    # A paired run alternates floor and authserver slices, so both see the same machine: this
    # VM's speed drifts by tens of percent over a minute, invisibly (no steal time reported).
    slices: int  # per side
    slice_seconds: int = 2  # wrk takes whole seconds
    threads: int = 2
    # wrk's connections, always busy (a closed loop). 32 is the load issue 15 measured its
    # peers' baselines at (wrk -c32); at 16 a server that batches its writes shows less of it.
    connections: int = 32
    # The flows' generator (bench/flows.py) is one Python process: at 32 workers it spent a
    # whole core on itself and sent fewer flows than at 16 (143 against 189 flows/s).
    flow_workers: int = 16
    valid_tokens: int = 5_000  # real access tokens: the hot set introspection picks from
    refresh_tokens: int = 200_000  # single-use; far more than one run can rotate
    flow_sessions: int = 64  # signed-in browser sessions for the authorization-code flow
    # AUTHSERVER_INTROSPECTION_CACHE_ENTRIES of the server (0: off); None: its default.
    introspection_cache_entries: int | None = None

    def __post_init__(self) -> None:
        if list(self.sizes) != sorted(self.sizes) or self.main_size not in self.sizes:
            raise ValueError("sizes must grow, and main_size must be one of them")

    @property
    def duration(self) -> int:
        """Measured seconds per side of a paired run."""
        return self.slices * self.slice_seconds

    def with_overrides(
        self, warmup: float | None, slices: int | None, connections: int | None
    ) -> Profile:
        return replace(
            self,
            warmup=self.warmup if warmup is None else warmup,
            slices=self.slices if slices is None else slices,
            connections=self.connections if connections is None else connections,
        )


FULL = Profile(
    name="full",
    sizes=(10_000, 1_000_000, 10_000_000),
    main_size=1_000_000,
    warmup=3.0,
    slices=5,
)
QUICK = Profile(
    name="quick",
    sizes=(10_000, 100_000),
    main_size=100_000,
    warmup=1.0,
    slices=2,
    refresh_tokens=20_000,
)
