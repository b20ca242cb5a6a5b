"""``python -m bench``: the whole benchmark, or ``--quick`` to try it out. See README.md."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
from dataclasses import replace
from pathlib import Path

from bench.config import FULL, OUT_DIR, QUICK, RESULTS_FILE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark authserver against a bare Starlette + asyncpg floor, and "
        "against its peers.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="short runs at 10^4 and 10^5 rows only"
    )
    parser.add_argument("--output", type=Path, default=RESULTS_FILE, help="results JSON path")
    parser.add_argument(
        "--slices", type=int, help="2-second slices per side of each paired run (default 5)"
    )
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per side (default 3)")
    parser.add_argument("--connections", type=int, help="wrk's concurrent connections (default 32)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a budget is missed")
    parser.add_argument(
        "--no-peers",
        dest="peers",
        action="store_false",
        help="skip the peers (the ASGI ceiling, django-oauth-toolkit, oidc-provider)",
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        default=(1,),
        help="authserver's worker counts, e.g. 2 or 1,2: the first for every run, each for a "
        "comparison with the peers (default 1; more needs `authserver serve --workers`)",
    )
    parser.add_argument(
        "--introspection-cache",
        type=int,
        metavar="ENTRIES",
        help="authserver's AUTHSERVER_INTROSPECTION_CACHE_ENTRIES (0: off; default: its own)",
    )
    return parser


def _workers(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of counts, e.g. 1,2") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("worker counts are 1 or more")
    return counts


def _interrupt(signum: int, frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C, so every finally block stops what the bench started.
    raise KeyboardInterrupt


def main() -> int:
    args = _parser().parse_args()
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        import httpx  # noqa: F401 -- only to fail early with a useful message
    except ImportError:
        print("bench: httpx is missing: .venv/bin/pip install -e '.[bench]'", file=sys.stderr)
        return 2
    # Imported after the check above: these modules need httpx.
    from bench.peers.install import PeerError
    from bench.report import all_met, compare_peers, judge, notes, table, write_results
    from bench.run import Bench
    from bench.servers import ServerError
    from bench.wrk import WrkError, ensure_wrk

    profile = (QUICK if args.quick else FULL).with_overrides(
        args.warmup, args.slices, args.connections
    )
    profile = replace(profile, introspection_cache_entries=args.introspection_cache)
    try:
        wrk = ensure_wrk()
        # Logs, request files and raw wrk output of the latest run only (ignored by git).
        shutil.rmtree(OUT_DIR, ignore_errors=True)
        OUT_DIR.mkdir(parents=True)
        bench = Bench(profile, wrk, OUT_DIR, peers=args.peers, workers=args.workers)
        outcome = asyncio.run(bench.run())
    except (WrkError, ServerError, PeerError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; servers and database stopped", file=sys.stderr)
        return 130
    verdicts = judge(outcome.runs, outcome.final_rss, outcome.cache_entries)
    write_results(args.output, outcome.meta, outcome.runs, verdicts, outcome.peer_runs)
    print()
    print(table(verdicts))
    if outcome.peer_runs:
        print("\npeers: each over authserver in the same slices")
        print(table(compare_peers(outcome.peer_runs)))
    for note in notes(outcome.runs + outcome.peer_runs):
        print(f"note: {note}")
    met = all_met(verdicts)
    total = outcome.meta["phases_s"].get("total", 0.0)
    print(
        f"\n{'all budgets met' if met else 'budgets missed'}; "
        f"{total:.0f} s; results in {args.output}, logs in {OUT_DIR}"
    )
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
