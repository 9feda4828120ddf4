"""Memory per live session against a sent ``View(timeout=180)`` with one button.

Bytes are tracemalloc's: what is still allocated after ``count`` sessions (started, TTL
armed) or Views (in discord.py's view store under a message id, as a sent view is,
timeout timer running) came to life, everything they keep counted. By default a session
drops its start interaction once ``start()`` returns, as a View keeps none; with
``keep_start_interaction=True`` it keeps that interaction (about 1.6 KB) for its whole
life, measured as a second figure.
Tasks (``asyncio.all_tasks()``) and timer handles (``loop._scheduled``) are counted as
the numbers grow.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from typing import Any

import discord

from bench.common import BenchSession, PayloadKit, bench_view, new_manager
from bench.report import Row, fmt_bytes, report, section
from nyx_sessions.testing import OfflineDiscord

TARGET = 1 / 5
TTL = 180.0


def traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def loop_load() -> tuple[int, int]:
    """(live asyncio tasks, scheduled timer handles) of the running loop."""
    loop: Any = asyncio.get_running_loop()
    return len(asyncio.all_tasks()), len(loop._scheduled)


async def measure_sessions(
    offline: OfflineDiscord, kit: PayloadKit, count: int, checkpoints: set[int], *, keep: bool
) -> tuple[float, dict[int, tuple[int, int]]]:
    """(bytes per live session, loop load at each checkpoint), started from fresh commands."""
    manager = new_manager(offline.client, keep_start_interaction=keep)
    await manager.open()
    load = {0: loop_load()}
    tracemalloc.start()
    try:
        base = traced()
        for done in range(1, count + 1):
            await manager.start(BenchSession(kit.command()))
            if done in checkpoints:
                await _listeners_done()
                load[done] = loop_load()
        await _listeners_done()
        with_sessions = traced()
    finally:
        tracemalloc.stop()
    await manager.aclose()
    return (with_sessions - base) / count, load


async def _listeners_done() -> None:
    """Let the START listeners (the offline Discord's among them) finish their tasks."""
    for _ in range(3):
        await asyncio.sleep(0)


async def measure_views(
    state: Any, kit: PayloadKit, count: int, checkpoints: set[int]
) -> tuple[float, dict[int, tuple[int, int]]]:
    """(bytes per registered View, loop load at each checkpoint)."""
    load = {0: loop_load()}
    views: list[discord.ui.View | None] = [None] * count
    message_ids = [kit.new_id() for _ in range(count)]
    tracemalloc.start()
    try:
        base = traced()
        for index in range(count):
            view = bench_view(f"bench:{index:016d}:go", TTL, None)
            state.store_view(view, message_ids[index])
            views[index] = view
            if index + 1 in checkpoints:
                await asyncio.sleep(0)  # the timeout tasks start and arm their timers
                load[index + 1] = loop_load()
        await asyncio.sleep(0)
        with_views = traced()
    finally:
        tracemalloc.stop()
    for registered in views:
        if registered is not None:
            registered.stop()
    await asyncio.sleep(0)
    return (with_views - base) / count, load


async def run(quick: bool) -> list[Row]:
    sizes = (10_000,) if quick else (10_000, 100_000)
    section("memory per live session vs per registered View(timeout=180)")
    rows: list[Row] = []
    async with OfflineDiscord() as offline:
        views_client = discord.Client(intents=discord.Intents.none())
        await offline.login(views_client)
        kit = PayloadKit(offline, offline.add_member("alice"))
        for count in sizes:
            checkpoints = {n for n in (1_000, 10_000, 100_000) if n <= count}
            session, session_load = await measure_sessions(
                offline, kit, count, checkpoints, keep=False
            )
            keeping, _ = await measure_sessions(offline, kit, count, set(), keep=True)
            view, view_load = await measure_views(views_client._connection, kit, count, checkpoints)
            report(f"{count:,} live: per session", fmt_bytes(session))
            report(f"{count:,} live: per session keeping its start interaction", fmt_bytes(keeping))
            report(f"{count:,} live: per registered View", fmt_bytes(view))
            rows.append(_row(f"memory per live session, {count:,} live", session, view))
            rows.append(
                Row(
                    f"same, keep_start_interaction=True, {count:,}",
                    fmt_bytes(keeping),
                    fmt_bytes(view),
                    f"{keeping / view:.2f}x",
                )
            )
        print("\n  live asyncio tasks / timer handles as sessions and Views grow:")
        report("live", "nyx tasks", "nyx timers", "View tasks", "View timers")
        for live in sorted(session_load):
            report(f"{live:,}", *map(str, session_load[live] + view_load[live]))
    top = max(session_load)
    rows.append(_per_live("asyncio tasks per live session", session_load, view_load, top, 0))
    rows.append(_per_live("timer handles per live session", session_load, view_load, top, 1))
    return rows


def _row(name: str, nyx: float, view: float) -> Row:
    ratio = nyx / view
    return Row(name, fmt_bytes(nyx), fmt_bytes(view), f"{ratio:.2f}x", "<= 0.20x", ratio <= TARGET)


def _per_live(
    name: str, nyx: dict[int, tuple[int, int]], views: dict[int, tuple[int, int]], top: int, at: int
) -> Row:
    """Growth from 0 to ``top`` live; a constant few (one scheduler timer) is not per session."""
    nyx_added = nyx[top][at] - nyx[0][at]
    view_added = views[top][at] - views[0][at]
    return Row(
        name,
        f"{nyx_added / top:.3f} (+{nyx_added} at {top:,})",
        f"{view_added / top:.3f} (+{view_added} at {top:,})",
        "-",
        "0 per session",
        nyx_added <= 2,
    )
