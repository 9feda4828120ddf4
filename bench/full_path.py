"""Full path: gateway payload to finished handler, sessions against persistent Views.

Both sides get the same button clicks, parsed by discord.py's own
``ConnectionState.parse_interaction_create``. Sessions are served by a manager attached to
one logged-in client; the Views are registered on a second client of the same offline
Discord that has no manager, so that side is pure discord.py. Every handler answers
without HTTP, so only the layer between the parser and the handler differs. A third
figure, the parse floor, feeds clicks whose custom id nobody claims.

Each run times the three one after the other, and the ratio is the median of the runs'
own ratios: on a shared machine, two figures taken a second apart move together more
than figures taken a minute apart. The runs are ``RUNS + 4`` (nine), and the range of
the per-run ratios is printed too.

The manager runs on a ``ManualClock`` so that its deferral, which looks at every
interaction still unanswered 2.5 s after it came, does that sweep inside the session
side's timing (the clock is moved on past it) rather than during a later View run.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import pstats
import random
import time
from typing import TYPE_CHECKING, Any

import discord

from bench.common import (
    RUNS,
    SEED,
    BenchSession,
    PayloadKit,
    Tally,
    bench_view,
    clock_ns,
    frozen_heap,
    gc_paused,
    median,
    new_manager,
    no_http,
    settle,
    start_sessions,
)
from bench.report import Row, fmt_ns, fmt_rate, report, section
from nyx_sessions.testing import ManualClock, OfflineDiscord

if TYPE_CHECKING:
    from collections.abc import Callable, Sized

BATCH = 100  # payloads parsed between two turns of the event loop, like a busy gateway
TARGET = 1.0
AIM = 1.2
GROUPS = (
    ("/nyx_sessions/", "nyx-sessions"),
    ("/cachetools/", "cachetools (the memory store's Cache)"),
    ("/discord/", "discord.py (parse, dispatch, views)"),
    ("/asyncio/", "asyncio (tasks, loop)"),
    ("/bench/", "the bench's handlers"),
    ("/logging/", "logging"),
)


async def feed(
    parse: Callable[[Any], None],
    batch: list[Any],
    tally: Tally | None,
    tasks: Sized,
    after: Callable[[], None] | None = None,
) -> int:
    """Parse every payload; return the ns until every handler, task and ``after`` is done."""
    started = clock_ns()
    for first in range(0, len(batch), BATCH):
        for payload in batch[first : first + BATCH]:
            parse(payload)
        await asyncio.sleep(0)
    if tally is not None:
        await tally.done.wait()
    await settle(tasks)
    if after is not None:
        after()
    return clock_ns() - started


async def timed_feed(
    parse: Callable[[Any], None],
    batch: list[Any],
    tally: Tally | None,
    tasks: Sized,
    after: Callable[[], None] | None = None,
) -> int:
    with gc_paused():
        return await feed(parse, batch, tally, tasks, after)


async def run(quick: bool, profile: bool = False) -> list[Row]:
    live = 2_000 if quick else 10_000
    clicks = 4_000 if quick else 20_000
    section(f"full path: {clicks:,} clicks over {live:,} sessions vs {live:,} persistent Views")
    async with OfflineDiscord() as offline:
        views_client = discord.Client(intents=discord.Intents.none())
        await offline.login(views_client)
        alice = offline.add_member("alice")
        kit = PayloadKit(offline, alice)
        clock = ManualClock(start=time.time())
        manager = new_manager(offline.client, clock=clock)
        await manager.open()

        def sweep() -> None:
            clock.advance_nowait(manager.defer_after + 0.5)

        sessions = await start_sessions(manager, kit, live)
        session_targets = []
        for session in sessions:
            custom_id = session.custom_id.push("go").build()
            session_targets.append((custom_id, kit.message(kit.new_id(), custom_id)))

        view_targets = []
        view_tally = Tally(clicks)
        for index in range(live):
            custom_id = f"bench:{index:016d}:go"  # as long as a session's custom id
            message = kit.message(kit.new_id(), custom_id)
            view = bench_view(custom_id, None, view_tally)
            views_client.add_view(view, message_id=int(message["id"]))
            view_targets.append((custom_id, message))

        rng = random.Random(SEED)
        picks = [rng.randrange(live) for _ in range(clicks)]
        session_parse = offline.client._connection.parse_interaction_create
        view_parse = views_client._connection.parse_interaction_create
        view_store: Any = views_client._connection._view_store
        view_tasks = view_store._ViewStore__tasks  # its tasks, to wait for
        nyx_ns, view_ns, floor_ns = [], [], []
        with frozen_heap(), no_http(offline):
            for _ in range(RUNS + 4):
                BenchSession.tally = tally = Tally(clicks)
                batch = [kit.click(*session_targets[i]) for i in picks]
                nyx_ns.append(await timed_feed(session_parse, batch, tally, manager._tasks, sweep))
                view_tally.count, view_tally.done = 0, asyncio.Event()
                batch = [kit.click(*view_targets[i]) for i in picks]
                view_ns.append(await timed_feed(view_parse, batch, view_tally, view_tasks))
                batch = [kit.click(f"nobody:{i:016d}:go", view_targets[i][1]) for i in picks]
                floor_ns.append(await timed_feed(view_parse, batch, None, view_tasks))
            BenchSession.tally = None
            if profile:
                sides = [
                    ("nyx-sessions", session_parse, session_targets, manager._tasks, sweep),
                    ("discord.py View", view_parse, view_targets, view_tasks, None),
                ]
                for side in sides:
                    await profile_side(kit, picks, *side)
        await manager.aclose()

    nyx_rate = clicks / (median(nyx_ns) / 1e9)
    view_rate = clicks / (median(view_ns) / 1e9)
    floor = median(floor_ns) / clicks
    report("nyx-sessions", fmt_rate(nyx_rate), fmt_ns(1e9 / nyx_rate) + "/interaction")
    report("discord.py View", fmt_rate(view_rate), fmt_ns(1e9 / view_rate) + "/interaction")
    report("parse floor (nobody claims the click)", fmt_ns(floor) + "/interaction")
    report("session layer on top of the floor", fmt_ns(1e9 / nyx_rate - floor))
    report("View layer on top of the floor", fmt_ns(1e9 / view_rate - floor))
    ratios = sorted(view / nyx for nyx, view in zip(nyx_ns, view_ns, strict=True))
    ratio = median(ratios)
    report(
        "sessions over Views, median of the runs' ratios",
        f"{ratio:.2f}x",
        f"(per run {ratios[0]:.2f}x..{ratios[-1]:.2f}x)",
    )
    # The most any router could reach: parsing alone, with a router that costs nothing.
    ceiling = median([view / floor for floor, view in zip(floor_ns, view_ns, strict=True)])
    report("ceiling: parsing alone over Views", f"{ceiling:.2f}x")
    return [
        Row(
            f"full path, {live:,} live, interactions/s",
            fmt_rate(nyx_rate),
            fmt_rate(view_rate),
            f"{ratio:.2f}x (ceiling {ceiling:.2f}x)",
            f">= {TARGET:.1f}x (aim {AIM:.1f}x)",
            ratio >= TARGET,
        )
    ]


async def profile_side(
    kit: PayloadKit,
    picks: list[int],
    label: str,
    parse: Callable[[Any], None],
    targets: list[Any],
    tasks: Sized,
    after: Callable[[], None] | None,
) -> None:
    """Print where one side of the full path spends its time (cProfile, own time)."""
    batch = [kit.click(*targets[i]) for i in picks]
    profiler = cProfile.Profile()
    gc.disable()
    profiler.enable()
    await feed(parse, batch, None, tasks, after)
    profiler.disable()
    gc.enable()
    stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in stats.values())
    groups: dict[str, float] = {}
    for (filename, _, _), row in stats.items():
        group = next((name for part, name in GROUPS if part in filename), "builtins (C code)")
        groups[group] = groups.get(group, 0.0) + row[2]
    print(f"\n  cProfile of the full path, {label}: own time by package")
    for group, seconds in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"    {100 * seconds / total:5.1f}%  {group}")
    print("  top 10 functions by own time")
    for (filename, line, name), row in sorted(stats.items(), key=lambda kv: -kv[1][2])[:10]:
        where = f"{filename.rsplit('/', 1)[-1]}:{line}" if line else "builtin"
        print(f"    {100 * row[2] / total:5.1f}%  {row[1]:>8,}  {name[:44]:<44} {where}")
