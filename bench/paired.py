"""A paired run: the floor and one authserver load (or authserver and a peer), in alternating
slices.

This VM's speed drifts by tens of percent within a minute, without any steal time to show for
it, so a floor measured a minute apart from authserver says little. Alternating short slices
(floor, authserver, authserver, floor, ...: a steady drift cancels) makes both sides see the
same machine; the spread of the per-slice ratios says how much noise is left.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bench.cpu import CpuSnapshot, CpuUse, CpuWatch, combine
from bench.measure import Load, merge
from bench.report import Run
from bench.servers import Server

# Measure slice number i; call on_go just as the load starts (CPU accounting begins there).
Measure = Callable[[int, Callable[[], object]], Awaitable[Load]]


@dataclass(frozen=True)
class Side:
    server: Server
    unit: str
    warm: Callable[[], Awaitable[object]]
    measure: Measure


async def paired(
    name: str,
    rows: int,
    floor: Side,
    auth: Side,
    slices: int,
    cpu: CpuWatch,
    pair: int,
    reference_name: str | None = None,
) -> tuple[Run, Run]:
    """Runs for the measured side (``auth``: authserver, or a peer) and its reference
    (``floor``: the floor, or authserver), in that order; each is named by its server.
    ``reference_name`` names the reference's load when it differs from ``name``."""
    await floor.warm()
    await auth.warm()
    loads: dict[str, list[Load]] = {"floor": [], "auth": []}
    uses: dict[str, list[CpuUse]] = {"floor": [], "auth": []}
    for i in range(slices):
        order = (("floor", floor), ("auth", auth))
        for key, side in order if i % 2 == 0 else reversed(order):
            started: list[CpuSnapshot] = []
            load = await side.measure(i, _marker(cpu, started))
            loads[key].append(load)
            uses[key].append(cpu.use(started[0], cpu.snapshot(), side.server.pid))
    ratios = tuple(
        a.rate / f.rate if f.rate else 0.0
        for a, f in zip(loads["auth"], loads["floor"], strict=True)
    )
    auth_run = Run(
        name=name,
        server=auth.server.name,
        rows=rows,
        unit=auth.unit,
        load=merge(loads["auth"]),
        cpu=combine(uses["auth"]),
        server_rss_bytes=auth.server.rss_bytes(),
        pair=pair,
        slice_ratios=ratios,
    )
    floor_run = Run(
        name=reference_name or name,
        server=floor.server.name,
        rows=rows,
        unit=floor.unit,
        load=merge(loads["floor"]),
        cpu=combine(uses["floor"]),
        server_rss_bytes=floor.server.rss_bytes(),
        pair=pair,
        reference=True,
    )
    return auth_run, floor_run


def _marker(cpu: CpuWatch, into: list[CpuSnapshot]) -> Callable[[], object]:
    """What a side calls as its load starts: the CPU snapshot the slice is measured from."""
    return lambda: into.append(cpu.snapshot())
