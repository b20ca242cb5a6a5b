"""Where the CPU went during a run: the server under load, PostgreSQL, and anything else.

"Other" is the machine's busy time minus everything the bench accounts for (its own process,
its finished children such as wrk, both servers, the PostgreSQL cluster). Anything well above
zero means another program competed for the two cores and the run's figures are noisy.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
NOISY_OTHER_CORES = 0.15  # foreign CPU, in cores, above which a run is flagged as noisy


@dataclass(frozen=True)
class CpuSnapshot:
    at: float
    machine_busy: int  # clock ticks, all cores
    machine_total: int
    per_process: dict[int, int]  # ticks of each process we account for
    postgres: frozenset[int]  # which of them are PostgreSQL's
    children: float  # seconds of our own finished children (wrk, the flow generator)


@dataclass(frozen=True)
class CpuUse:
    """Cores used over a run: 1.0 is one core busy the whole time."""

    server: float
    postgres: float | None  # None: not our cluster, so not seen (then counted in other)
    other: float
    machine: float  # all of it, of the machine's cores (the same unit)
    seconds: float = 0.0  # the wall time it was measured over

    @property
    def noisy(self) -> bool:
        return self.other > NOISY_OTHER_CORES


def combine(parts: Sequence[CpuUse]) -> CpuUse:
    """Several slices' use as one, each weighted by its wall time."""
    wall = sum(use.seconds for use in parts) or 1e-9

    def mean(values: Sequence[float]) -> float:
        return sum(v * use.seconds for v, use in zip(values, parts, strict=True)) / wall

    postgres = [use.postgres for use in parts]
    return CpuUse(
        server=mean([use.server for use in parts]),
        postgres=None if None in postgres else mean([p or 0.0 for p in postgres]),
        other=mean([use.other for use in parts]),
        machine=mean([use.machine for use in parts]),
        seconds=wall,
    )


class CpuWatch:
    def __init__(self, server_pids: Sequence[int], postmaster_pid: int | None) -> None:
        self._servers = tuple(server_pids)
        self._postmaster = postmaster_pid

    def snapshot(self) -> CpuSnapshot:
        postgres = _postgres_pids(self._postmaster) if self._postmaster else set()
        pids = {os.getpid(), *self._servers, *postgres}
        busy, total = _machine()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return CpuSnapshot(
            at=time.monotonic(),
            machine_busy=busy,
            machine_total=total,
            per_process={pid: ticks for pid in pids if (ticks := _ticks(pid)) is not None},
            postgres=frozenset(postgres),
            children=usage.ru_utime + usage.ru_stime,
        )

    def use(self, before: CpuSnapshot, after: CpuSnapshot, server_pid: int) -> CpuUse:
        wall = max(1e-9, after.at - before.at)

        def cores(ticks: float) -> float:
            return ticks / _TICKS / wall

        def spent(pid: int) -> int:
            # A process that appeared during the run (a new pooled connection) spent it all.
            return after.per_process.get(pid, 0) - before.per_process.get(pid, 0)

        accounted: float = sum(spent(pid) for pid in after.per_process)
        accounted += (after.children - before.children) * _TICKS
        machine_busy = after.machine_busy - before.machine_busy
        postgres = sum(spent(pid) for pid in after.postgres)
        return CpuUse(
            server=cores(spent(server_pid)),
            postgres=cores(postgres) if self._postmaster else None,
            other=max(0.0, cores(machine_busy - accounted)),
            machine=cores(machine_busy),
            seconds=wall,
        )


def postmaster_pid(data_dir: Path | None) -> int | None:
    if data_dir is None:
        return None
    try:
        return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _machine() -> tuple[int, int]:
    first = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in first[:8])
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def _ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None  # gone
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15 of proc(5))


def _postgres_pids(postmaster: int) -> set[int]:
    """The postmaster and its children (backends, checkpointer, WAL writer, ...)."""
    found = {postmaster}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == postmaster:  # field 4: ppid
            found.add(int(entry.name))
    return found
