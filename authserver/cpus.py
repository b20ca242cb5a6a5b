"""How many CPUs this process may really use: the default number of server workers.

``os.cpu_count()`` counts the machine's CPUs, not the process's share: a container limited to
two CPUs on a 64-CPU node would start 64 workers, each with its own database pool, and spend
its quota switching between them. The share is the smallest of the CPUs the process may run on
(its affinity mask, which cpusets set) and its CFS quota (cgroup v2 ``cpu.max``, or v1
``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), a fractional quota rounded up.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")


def available_cpus(
    cgroup_root: Path = CGROUP_ROOT,
    own_cgroup: Path = PROC_SELF_CGROUP,
    affinity: int | None = None,
) -> int:
    """CPUs this process may use, at least 1."""
    if affinity is None:
        affinity = _affinity()
    quota = cgroup_quota(cgroup_root, own_cgroup)
    return max(1, min(affinity, quota) if quota is not None else affinity)


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def cgroup_quota(
    cgroup_root: Path = CGROUP_ROOT, own_cgroup: Path = PROC_SELF_CGROUP
) -> int | None:
    """The CFS quota in whole CPUs (rounded up), or None when there is none or none is readable.

    In a container the process's cgroup is the namespace's root; on a host it is the path
    /proc/self/cgroup names. The tightest quota found on either is the one that applies.
    """
    v2 = [cgroup_root / "cpu.max"]
    v1 = [cgroup_root / "cpu", cgroup_root / "cpu,cpuacct"]
    for line in _lines(own_cgroup):
        hierarchy, _, path = line.split(":", 2) if line.count(":") >= 2 else ("", "", "")
        relative = path.strip().lstrip("/")
        if not relative:
            continue
        if hierarchy == "0":
            v2.append(cgroup_root / relative / "cpu.max")
        else:
            v1.extend(directory / relative for directory in v1[:2])
    quotas = [q for q in (_v2(path) for path in v2) if q is not None]
    quotas += [q for q in (_v1(directory) for directory in v1) if q is not None]
    return min(quotas) if quotas else None


def _v2(path: Path) -> int | None:
    """``cpu.max``: ``"max 100000"`` (no quota) or ``"200000 100000"`` (quota, period)."""
    fields = (_lines(path) or [""])[0].split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    return _whole_cpus(fields[0], fields[1])


def _v1(directory: Path) -> int | None:
    quota = (_lines(directory / "cpu.cfs_quota_us") or [""])[0].strip()
    period = (_lines(directory / "cpu.cfs_period_us") or [""])[0].strip()
    return _whole_cpus(quota, period)


def _whole_cpus(quota: str, period: str) -> int | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    if q <= 0 or p <= 0:  # v1 says -1 for "no quota"
        return None
    return max(1, math.ceil(q / p))


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
