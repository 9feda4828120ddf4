"""A bounded soak on loopback: several bot processes, one Redis, thousands of clicks.

Run it with ``pytest tests/reliability -m slow -s`` to see the figures. The sizes can be
raised from the environment: ``NYX_SOAK_SESSIONS``, ``NYX_SOAK_CLICKS``,
``NYX_SOAK_MANAGERS``, ``NYX_SOAK_CONCURRENCY`` (clicks awaiting their answer at once).

Everything runs in one event loop on one core: the offline Discord's REST server, every
discord.py client and every manager. The figures measure the library and that loop, not
Discord.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from collections import Counter
from typing import TYPE_CHECKING

import pytest

from nyx_sessions import EndCode

from .support import (
    Process,
    Tally,
    already_acknowledged,
    callbacks_by_interaction,
    ends_per_session,
    start_tally,
    succeeded,
    wait_idle,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from redis.asyncio import Redis

    from nyx_sessions.testing import InteractionResult, ManualClock, OfflineDiscord

pytestmark = [pytest.mark.slow, pytest.mark.redis]

SESSIONS = int(os.environ.get("NYX_SOAK_SESSIONS", "400"))
CLICKS = int(os.environ.get("NYX_SOAK_CLICKS", "5000"))
MANAGERS = int(os.environ.get("NYX_SOAK_MANAGERS", "3"))
CONCURRENCY = int(os.environ.get("NYX_SOAK_CONCURRENCY", "48"))
USERS = 25
QUIET = 200


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def test_soak(
    offline: OfflineDiscord,
    spawn: Callable[..., Awaitable[Process]],
    redis_client: Redis,
    clock: ManualClock,
) -> None:
    began = time.perf_counter()
    processes = [
        await spawn(first=index == 0, lease=5.0, lease_wait=5.0, poll_interval=0.05)
        for index in range(MANAGERS)
    ]
    users = [offline.add_member(f"user{index}") for index in range(USERS)]
    chooser = random.Random(20240611)

    # Sessions, started across the processes (a few at a time, as commands arrive).
    starting = asyncio.Semaphore(16)

    async def start(index: int) -> Tally:
        async with starting:
            return await start_tally(offline, processes[index % MANAGERS], users[index % USERS])

    started_at = time.perf_counter()
    sessions = list(await asyncio.gather(*(start(index) for index in range(SESSIONS))))
    start_seconds = time.perf_counter() - started_at

    # Clicks: random session, random process, at most CONCURRENCY in flight.
    plan = [(chooser.choice(sessions), chooser.choice(processes)) for _ in range(CLICKS)]
    owners = {user.id: user for user in users}
    gate = asyncio.Semaphore(CONCURRENCY)

    async def click(session: Tally, process: Process) -> InteractionResult:
        async with gate:
            result = await offline.click(
                owners[session.owner_id],
                offline.message(session.message_id or 0),
                label="+1",
                client=process.client,
                wait=False,
            )
            await result.wait_answered(10)
            return result

    # A quiet warm-up, one click at a time (uncontended latency), then the burst.
    quiet = [await click(session, process) for session, process in plan[:QUIET]]
    clicked_at = time.perf_counter()
    burst = await asyncio.gather(*(click(session, process) for session, process in plan[QUIET:]))
    click_seconds = time.perf_counter() - clicked_at
    results = [*quiet, *burst]
    managers = [process.manager for process in processes]
    await wait_idle(*managers)

    # Every click answered, exactly once, never a 40060.
    assert all(result.answered for result in results)
    assert already_acknowledged(offline) == []
    callbacks = callbacks_by_interaction(offline)
    for result in results:
        assert len([c for c in callbacks[result.id] if c.status < 300]) == 1

    # No lost update: each stored count is the number of edits its users saw.
    edits = Counter(
        session.id for (session, _), result in zip(plan, results, strict=True) if succeeded(result)
    )
    retries = len(results) - sum(edits.values())
    store = processes[0].manager.store
    for session in sessions:
        record = await store.get(session.id)
        assert record is not None
        assert record.data["count"] == edits[session.id], session.id
    assert [process.failed_commits() for process in processes] == [[]] * MANAGERS
    errors = sum(len(process.errors) for process in processes)

    # Expiry of everything at once: end() exactly once per session, in some process.
    expired_at = time.perf_counter()
    await clock.advance(Tally.ttl + 1)
    ends = await asyncio.wait_for(
        asyncio.gather(*(session.end_promise for session in sessions)), 30
    )
    expiry_seconds = time.perf_counter() - expired_at
    await asyncio.sleep(0.3)  # room for a second end() to show up, if there were one
    await wait_idle(*managers)

    per_session = ends_per_session()
    assert set(per_session) == {session.id for session in sessions}
    assert set(per_session.values()) == {1}
    assert {code for _, code, _ in Tally.ends} == {EndCode.EXPIRED.value}
    for session, end in zip(sessions, ends, strict=True):
        assert (end.code, end.result) == (EndCode.EXPIRED, edits[session.id])
    assert await processes[0].manager.active() == {}
    for manager in managers:
        assert len([e for e in manager._live.values() if e.session is not None]) == 0
        assert len(manager._scheduler) == 0

    def latencies(of: list[InteractionResult]) -> list[float]:
        return [(r.response.time - r.fed_at) * 1000 for r in of if r.response is not None]

    alone, loaded = latencies(quiet), latencies(burst)
    print(
        f"\n[soak] {MANAGERS} managers, 1 Redis, {SESSIONS} sessions, {CLICKS} clicks, "
        f"concurrency {CONCURRENCY}\n"
        f"[soak] starts: {SESSIONS / start_seconds:.0f}/s; burst of {len(burst)} clicks: "
        f"{len(burst) / click_seconds:.0f}/s ({click_seconds:.1f} s)\n"
        f"[soak] answer latency (feed to callback), one at a time: p50 "
        f"{statistics.median(alone):.1f} ms, p99 {percentile(alone, 0.99):.1f} ms\n"
        f"[soak] answer latency (feed to callback), in the burst: p50 "
        f"{statistics.median(loaded):.1f} ms, p99 {percentile(loaded, 0.99):.1f} ms, "
        f"max {max(loaded):.1f} ms\n"
        f"[soak] edits {sum(edits.values())}, 'try again' {retries}, 40060 0, "
        f"unanswered 0, lost updates 0, ERROR events {errors}\n"
        f"[soak] expiry of {SESSIONS}: {expiry_seconds:.2f} s, end() once each; "
        f"total {time.perf_counter() - began:.1f} s"
    )
