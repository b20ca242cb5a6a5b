"""Where the CPU went during a run: the server under load, PostgreSQL, and anything else.

A server is its whole process tree (a pre-forking server's workers count as its own). The load
generator is the bench's finished children during the run (wrk, the flow generator). "Other" is
the machine's busy time minus everything the bench accounts for (its own process, the load
generator, the servers, the PostgreSQL cluster). Anything well above zero means another program
competed for the two cores and the run's figures are noisy.
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
    trees: dict[int, frozenset[int]]  # each server's process and its descendants
    children: float  # seconds of our own finished children (wrk, the flow generator)


@dataclass(frozen=True)
class CpuUse:
    """Cores used over a run: 1.0 is one core busy the whole time."""

    server: float
    postgres: float | None  # None: not our cluster, so not seen (then counted in other)
    other: float
    machine: float  # all of it, of the machine's cores (the same unit)
    seconds: float = 0.0  # the wall time it was measured over
    client: float = 0.0  # the load generator (wrk or the flow generator)

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
        client=mean([use.client for use in parts]),
    )


class CpuWatch:
    def __init__(self, server_pids: Sequence[int], postmaster_pid: int | None) -> None:
        self._servers = tuple(server_pids)
        self._postmaster = postmaster_pid

    def watching(self, server_pid: int) -> CpuWatch:
        """The same watch, also accounting for ``server_pid`` (a server started later)."""
        return CpuWatch([*self._servers, server_pid], self._postmaster)

    def snapshot(self) -> CpuSnapshot:
        parents = _parents()
        postgres = _tree(self._postmaster, parents) if self._postmaster else set()
        trees = {pid: frozenset(_tree(pid, parents)) for pid in self._servers}
        pids = {os.getpid(), *postgres, *(pid for tree in trees.values() for pid in tree)}
        busy, total = _machine()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return CpuSnapshot(
            at=time.monotonic(),
            machine_busy=busy,
            machine_total=total,
            per_process={pid: ticks for pid in pids if (ticks := _ticks(pid)) is not None},
            postgres=frozenset(postgres),
            trees=trees,
            children=usage.ru_utime + usage.ru_stime,
        )

    def use(self, before: CpuSnapshot, after: CpuSnapshot, server_pid: int) -> CpuUse:
        wall = max(1e-9, after.at - before.at)

        def cores(ticks: float) -> float:
            return ticks / _TICKS / wall

        def spent(pid: int) -> int:
            # A process that appeared during the run (a new pooled connection) spent it all.
            return after.per_process.get(pid, 0) - before.per_process.get(pid, 0)

        # A worker that exited during the run took its ticks with it: counted in other.
        accounted: float = sum(spent(pid) for pid in after.per_process)
        client = (after.children - before.children) * _TICKS
        accounted += client
        machine_busy = after.machine_busy - before.machine_busy
        postgres = sum(spent(pid) for pid in after.postgres)
        server = sum(spent(pid) for pid in after.trees.get(server_pid, {server_pid}))
        return CpuUse(
            server=cores(server),
            postgres=cores(postgres) if self._postmaster else None,
            other=max(0.0, cores(machine_busy - accounted)),
            machine=cores(machine_busy),
            seconds=wall,
            client=cores(client),
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


def _parents() -> dict[int, int]:
    """Every process's parent, from one pass over /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        found[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])  # field 4: ppid
    return found


def _tree(root: int, parents: dict[int, int]) -> set[int]:
    """``root`` and its descendants: the postmaster's backends, a server's workers."""
    found = {root}
    grew = True
    while grew:
        added = {pid for pid, parent in parents.items() if parent in found} - found
        found |= added
        grew = bool(added)
    return found


def tree_pids(root: int) -> set[int]:
    return _tree(root, _parents())
