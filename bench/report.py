"""Budgets, the printed table and results.json.

Every authserver figure is divided by the figure of the floor run sliced with it (see
paired.py): the ratio, not the raw rate, is what a budget is about (raw rates move with the
machine, the ratio mostly with the code).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.cpu import CpuUse
from bench.measure import Load

MB = 1024 * 1024
RSS_BUDGET_MB = 100.0
SCALE_BUDGET = 0.8
# Minimum ratio to the floor, by run name (the budgets). Runs not named have none.
FLOOR_BUDGETS = {
    "introspect-valid": 0.8,
    "introspect-forged": 1.5,
    "client-credentials": 0.5,
}


@dataclass(frozen=True)
class Run:
    name: str
    server: str  # "authserver", "floor", or a peer's name
    rows: int  # in the tokens table during the run
    unit: str  # "req/s", or "flows/s" for the authorization-code flow (two requests each)
    load: Load
    cpu: CpuUse  # cores used during the run by the server, PostgreSQL and anything else
    server_rss_bytes: int  # after the run
    pair: int  # a measured run and the reference run sliced with it share a number
    slice_ratios: tuple[float, ...] = ()  # this run over its reference, slice by slice
    reference: bool = False  # the run the other of its pair is divided by (floor, authserver)


@dataclass(frozen=True)
class Verdict:
    name: str
    rows: int | None
    rate: float | None
    unit: str
    p50_ms: float | None
    p99_ms: float | None
    ratio: float | None  # to the paired floor (runs), to the smallest table (scale)
    ratio_error: float | None  # standard error of the per-slice ratios
    budget: str
    passed: bool | None  # None: no budget
    cpu: CpuUse | None = None
    rss_mb: float | None = None
    problems: tuple[str, ...] = ()


def judge(runs: list[Run], final_rss: int, cache_entries: int | None = None) -> list[Verdict]:
    """``final_rss``: the largest server process's, after all runs (and, when
    ``cache_entries`` is given, after filling the introspection cache to that many)."""
    verdicts = _pairs(runs, peers=False)
    verdicts.append(_scale(runs))
    name = "authserver RSS, largest process"
    if cache_entries is not None:
        name += f", {cache_entries:,} cached"
    verdicts.append(
        Verdict(
            name=name,
            rows=None,
            rate=None,
            unit="",
            p50_ms=None,
            p99_ms=None,
            ratio=None,
            ratio_error=None,
            budget=f"<= {RSS_BUDGET_MB:.0f} MB",
            passed=final_rss / MB <= RSS_BUDGET_MB,
            rss_mb=final_rss / MB,
        )
    )
    return verdicts


def compare_peers(runs: list[Run]) -> list[Verdict]:
    """Each peer's run with authserver's run in the same slices below it; no budgets."""
    return _pairs(runs, peers=True)


def _pairs(runs: list[Run], *, peers: bool) -> list[Verdict]:
    references = {run.pair: run for run in runs if run.reference}
    verdicts = []
    for run in runs:
        if run.reference:
            continue
        reference = references.get(run.pair)
        verdicts.append(_judge_run(run, reference, peers=peers))
        if reference is not None:
            verdicts.append(_reference_row(run, reference))
    return verdicts


def _judge_run(run: Run, floor: Run | None, *, peers: bool = False) -> Verdict:
    problems = tuple(run.load.problems())
    if floor is not None:
        problems += tuple(f"{floor.server}: {problem}" for problem in floor.load.problems())
    ratio = run.load.rate / floor.load.rate if floor is not None and floor.load.rate else None
    minimum = None if peers else FLOOR_BUDGETS.get(run.name)
    if minimum is None:
        budget, passed = "", None if not problems else False
    else:
        budget = f">= {minimum:.2f}x floor"
        passed = not problems and ratio is not None and ratio >= minimum
    return Verdict(
        name=f"{run.server}: {run.name}" if peers else run.name,
        rows=run.rows,
        rate=run.load.rate,
        unit=run.unit,
        p50_ms=run.load.latency_ms.get("p50"),
        p99_ms=run.load.latency_ms.get("p99"),
        ratio=ratio,
        ratio_error=_standard_error(run.slice_ratios),
        budget=budget,
        passed=passed,
        cpu=run.cpu,
        rss_mb=run.server_rss_bytes / MB,
        problems=problems,
    )


def _reference_row(run: Run, floor: Run) -> Verdict:
    # The same server under another load (the OpenID flow's plain flow) is named by its load.
    what = floor.name if floor.server == run.server else floor.server
    return Verdict(
        name=f"  {what}, in the same slices",
        rows=floor.rows,
        rate=floor.load.rate,
        unit=floor.unit,
        p50_ms=floor.load.latency_ms.get("p50"),
        p99_ms=floor.load.latency_ms.get("p99"),
        ratio=None,
        ratio_error=None,
        budget="",
        passed=None,
        cpu=floor.cpu,
        rss_mb=floor.server_rss_bytes / MB,
    )


def _scale(runs: list[Run]) -> Verdict:
    series = [
        r
        for r in runs
        if r.server == "authserver" and r.name == "introspect-valid" and not r.reference
    ]
    smallest, largest = min(series, key=lambda r: r.rows), max(series, key=lambda r: r.rows)
    ratio = largest.load.rate / smallest.load.rate if smallest.load.rate else 0.0
    return Verdict(
        name=f"scale: introspect-valid {_rows(largest.rows)} / {_rows(smallest.rows)}",
        rows=largest.rows,
        rate=None,
        unit="",
        p50_ms=None,
        p99_ms=None,
        ratio=ratio,
        ratio_error=None,
        budget=f">= {SCALE_BUDGET:.2f}x",
        passed=ratio >= SCALE_BUDGET,
    )


def notes(runs: list[Run]) -> list[str]:
    """What makes this run's figures less certain than they look."""
    found = []
    noisy = [run for run in runs if run.cpu.noisy]
    if noisy:
        worst = max(run.cpu.other for run in noisy)
        found.append(
            f"{len(noisy)} of {len(runs)} runs shared the machine with other programs (up to "
            f"{worst:.2f} cores, marked !): rerun on a quiet machine before trusting them"
        )
    floors = sorted(
        (r for r in runs if r.server == "floor" and r.name == "introspect-valid" and r.reference),
        key=lambda r: r.rows,
    )
    if len(floors) > 1 and floors[0].load.rate:
        found.append(
            f"the floor itself went from {floors[0].load.rate:,.0f} req/s at "
            f"{_rows(floors[0].rows)} rows to {floors[-1].load.rate:,.0f} at "
            f"{_rows(floors[-1].rows)} ({floors[-1].load.rate / floors[0].load.rate:.2f}x): "
            "the scale line is not sliced, so it holds the machine's drift as well as the "
            "table's growth"
        )
    return found


def table(verdicts: list[Verdict]) -> str:
    width = max([38, *(len(v.name) for v in verdicts)])
    head = (
        f"{'run':<{width}} {'rows':>7} {'rate':>8} {'unit':<7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'ratio':>5} {'+-':>4} {'budget':<15} {'result':<7} {'srv':>4} {'pg':>4} "
        f"{'gen':>4} {'other':>5} {'RSS MB':>6}"
    )
    lines = [head, "-" * len(head)]
    for v in verdicts:
        result = "" if v.passed is None else ("PASS" if v.passed else "FAIL")
        if v.problems:
            result = "INVALID"
        lines.append(
            f"{v.name:<{width}} {_rows(v.rows):>7} {_num(v.rate, 1):>8} {v.unit:<7} "
            f"{_num(v.p50_ms, 2):>7} {_num(v.p99_ms, 2):>7} {_num(v.ratio, 2):>5} "
            f"{_num(v.ratio_error, 2):>4} {v.budget:<15} {result:<7} {_cores(v.cpu):<21} "
            f"{_num(v.rss_mb, 1):>6}"
        )
        lines.extend(f"{'':<4}! {problem}" for problem in v.problems)
    return "\n".join(lines)


def write_results(
    path: Path,
    meta: dict[str, Any],
    runs: list[Run],
    verdicts: list[Verdict],
    peer_runs: list[Run] | None = None,
) -> None:
    def run_json(run: Run) -> dict[str, Any]:
        data = asdict(run)
        data["load"].pop("points")  # the pooled distribution: summarised in latency_ms
        return {**data, "rate": run.load.rate, "problems": run.load.problems()}

    payload = {
        "meta": meta,
        "runs": [run_json(run) for run in runs],
        "verdicts": [asdict(v) for v in verdicts],
        "all_budgets_met": all_met(verdicts),
        "notes": notes(runs + (peer_runs or [])),
        "peer_runs": [run_json(run) for run in peer_runs or []],
        "peer_verdicts": [asdict(v) for v in compare_peers(peer_runs or [])],
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


def all_met(verdicts: list[Verdict]) -> bool:
    return all(v.passed is not False and not v.problems for v in verdicts)


def _standard_error(values: tuple[float, ...]) -> float | None:
    if len(values) < 2:
        return None
    error: float = statistics.stdev(values) / len(values) ** 0.5
    return error


def _rows(rows: int | None) -> str:
    if rows is None:
        return ""
    exponent = len(str(rows)) - 1
    return f"10^{exponent}" if rows == 10**exponent else f"{rows:,}"


def _num(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _cores(cpu: CpuUse | None) -> str:
    if cpu is None:
        return ""
    postgres = "" if cpu.postgres is None else f"{cpu.postgres:.2f}"
    other = f"{cpu.other:.2f}" + ("!" if cpu.noisy else "")
    return f"{cpu.server:>4.2f} {postgres:>4} {cpu.client:>4.2f} {other:>5}"
