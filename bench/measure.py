"""What one measured load gives: counts and latency, mergeable across short slices; and a
server's resident memory."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# (latency in ms, share of the slice's requests at it): a distribution several slices can pool.
Points = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Load:
    """A fixed-duration load: completed requests (or flows) and their latency in ms."""

    completed: int
    seconds: float
    ok: int  # answered with the expected status and body
    unexpected: int  # answered, but not as expected: the run does not count
    exhausted: int = 0  # single-use inputs ran out before the duration was over
    socket_errors: dict[str, int] = field(default_factory=dict)  # connect/read/write/timeout
    latency_ms: dict[str, float] = field(default_factory=dict)  # p50, p90, p99, mean, max
    points: Points = field(default=(), repr=False)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.completed / self.seconds if self.seconds > 0 else 0.0

    def problems(self) -> list[str]:
        """Why the figure cannot be trusted; empty when it can."""
        found = []
        if self.completed == 0:
            found.append("no request completed")
        if self.unexpected:
            found.append(f"{self.unexpected} unexpected responses")
        if self.exhausted:
            found.append("ran out of single-use inputs (seed more)")
        errors = {name: count for name, count in self.socket_errors.items() if count}
        if errors:
            found.append("socket errors " + ", ".join(f"{k}={v}" for k, v in errors.items()))
        return found


def from_quantiles(quantiles_ms: Sequence[tuple[float, float]], requests: int) -> Points:
    """A slice's distribution from its latency at a grid of percentiles: the requests between
    two grid points are taken to be at the upper one (so no percentile is understated)."""
    points = []
    previous = 0.0
    for percentile, value in quantiles_ms:
        points.append((value, requests * (percentile - previous) / 100))
        previous = percentile
    return tuple(points)


def summary(points: Points) -> dict[str, float]:
    if not points:
        return {}
    ordered = sorted(points)
    total = sum(weight for _, weight in ordered)

    def percentile(p: float) -> float:
        wanted, seen = total * p / 100, 0.0
        for value, weight in ordered:
            seen += weight
            if seen >= wanted - 1e-9:
                return value
        return ordered[-1][0]

    return {
        "mean": sum(value * weight for value, weight in ordered) / total,
        "p50": percentile(50),
        "p90": percentile(90),
        "p99": percentile(99),
        "p999": percentile(99.9),
        "max": ordered[-1][0],
    }


def merge(slices: Sequence[Load]) -> Load:
    """Several slices of one load as one: counts add up, distributions pool."""
    points = tuple(point for piece in slices for point in piece.points)
    errors: dict[str, int] = {}
    for piece in slices:
        for name, count in piece.socket_errors.items():
            errors[name] = errors.get(name, 0) + count
    seconds = sum(piece.seconds for piece in slices)
    extra: dict[str, Any] = {}
    shares = [
        piece.extra["client_cpu_share"] for piece in slices if "client_cpu_share" in piece.extra
    ]
    if shares:
        extra["client_cpu_share"] = sum(shares) / len(shares)
    problems = [
        piece.extra["first_problem"] for piece in slices if piece.extra.get("first_problem")
    ]
    if problems:
        extra["first_problem"] = problems[0]
    return Load(
        completed=sum(piece.completed for piece in slices),
        seconds=seconds,
        ok=sum(piece.ok for piece in slices),
        unexpected=sum(piece.unexpected for piece in slices),
        exhausted=sum(piece.exhausted for piece in slices),
        socket_errors=errors,
        latency_ms=summary(points),
        points=points,
        extra=extra,
    )


def rss_bytes(pid: int) -> int:
    """VmRSS of one process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024  # reported in kB
    raise RuntimeError(f"no VmRSS for process {pid}")
