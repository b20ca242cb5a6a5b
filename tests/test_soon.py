"""authserver.periodic.Soon: work put off a moment and done once for all that asked."""

from __future__ import annotations

import asyncio

from authserver.periodic import Soon


def test_asks_within_a_loop_run_it_once_after_the_delay() -> None:
    """Many asks in one loop run the work once, after the delay, not before."""
    runs: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        soon = Soon(lambda: runs.append(loop.time()), 0.05)
        asked = loop.time()
        for _ in range(100):
            soon.ask()
        assert runs == []
        await asyncio.sleep(0.2)
        assert len(runs) == 1
        assert runs[0] - asked >= 0.04

    asyncio.run(main())


def test_a_loop_closed_before_it_ran_no_longer_counts() -> None:
    """Asked on a loop that closed before the delay, the work is scheduled again on the next."""
    runs: list[str] = []
    soon = Soon(lambda: runs.append("ran"), 0.05)

    async def ask_and_leave() -> None:
        soon.ask()

    async def ask_and_wait() -> None:
        soon.ask()
        await asyncio.sleep(0.2)

    asyncio.run(ask_and_leave())
    assert runs == []
    asyncio.run(ask_and_wait())
    assert runs == ["ran"]


def test_outside_a_loop_it_runs_at_once() -> None:
    """With no event loop running, asking runs the work there and then."""
    runs: list[str] = []
    Soon(lambda: runs.append("ran"), 10.0).ask()
    assert runs == ["ran"]
