"""Scale: start, update and expiry cost per operation as live sessions grow; expiry precision.

Each level gets a fresh manager on a ``ManualClock``. Sessions start in chunks (their
start interactions are built outside the timing, one template copied with new ids), the
clock moving a little after each chunk so that deadlines spread out; then a sample of
clicks goes through ``manager.update``; then the clock advances one chunk's deadlines at a
time and every expiry (the ``end()`` hook, store removal, end promise) is timed. Figures
are medians over the chunks (start, expiry) or over runs (update). The smallest level
runs again after the largest, and the largest is compared with the median of its runs;
for updates, the most volatile figure, with the median of paired runs instead: a manager
with the smallest level's sessions lives beside the levels, and at the largest level the
two managers' update runs alternate, seconds apart.

Precision uses the real clock (``LoopClock``): sessions with TTLs spread over 3 s, each
``end()`` noting how late it ran after its deadline. The start interactions, garbage
once the sessions started, are collected before the first deadline.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from typing import Any, ClassVar

from bench.common import (
    RUNS,
    SEED,
    BenchSession,
    PayloadKit,
    Tally,
    check_answered,
    clock_ns,
    frozen_heap,
    gc_paused,
    median,
    new_manager,
    no_http,
    percentile,
    rss_bytes,
    settle,
    start_sessions,
)
from bench.report import Row, fmt_bytes, fmt_ns, report, section
from nyx_sessions.testing import ManualClock, OfflineDiscord

LEVELS = (1_000, 10_000, 100_000, 1_000_000)
TTL = 180.0
FILL_SPAN = 100.0  # virtual seconds over which a level's sessions start; less than TTL
UPDATES = 2_000
TIME_LIMIT = 180.0
RSS_LIMIT = 6 << 30
PRECISION_TARGET = 0.050
SMALL_RUNS = 6  # runs of the smallest level: one before the largest, the rest after
PAIRS = RUNS + 4  # update runs of the largest level paired with the smallest level's
_COSTS = ("start", "update", "expiry")


async def level(kit: PayloadKit, count: int, beside: UpdateProbe | None = None) -> dict[str, Any]:
    """Fill a fresh manager to ``count`` live sessions, then update and expire them.

    With ``beside``, the updates are also timed in pairs of runs with that probe's.
    """
    clock = ManualClock(start=time.time())
    manager = new_manager(clock=clock)  # sessions let go of their start interaction
    await manager.open()
    chunk = max(100, count // 100)
    step = FILL_SPAN * chunk / count
    began, stopped, rss_before = time.perf_counter(), "", rss_bytes()
    start_ns: list[float] = []
    with gc_paused():
        while len(manager._live) < count:
            interactions = [kit.command() for _ in range(chunk)]
            started = clock_ns()
            for interaction in interactions:
                await manager.start(BenchSession(interaction))
            start_ns.append((clock_ns() - started) / chunk)
            clock.advance_nowait(step)
            # Outside the timing, the collector frees the chunk's start interactions (cyclic
            # garbage: response <-> interaction), as a bot's collector does as it goes;
            # piled up over a whole level they would be what RSS measures. What survives
            # is frozen, so that each collection looks at one chunk only.
            del interactions
            gc.collect()
            gc.freeze()
            if time.perf_counter() - began > TIME_LIMIT or rss_bytes() > RSS_LIMIT:
                stopped = f"stopped at {len(manager._live):,} live after " + (
                    f"{time.perf_counter() - began:.0f} s, RSS {fmt_bytes(rss_bytes())}"
                )
                break
        live, rss = len(manager._live), rss_bytes() - rss_before
        gc.unfreeze()
        probe = UpdateProbe(manager, kit, clock)
        update_ns = median([await probe.run() for _ in range(RUNS)])
        paired = [] if beside is None else await paired_updates(probe, beside)
        expiry_ns = await expire_all(manager, clock, step)
    await manager.aclose()
    del manager
    gc.collect()  # the level's million objects go now, not in a later measurement
    return {
        "live": live,
        "start": median(start_ns),
        "update": update_ns,
        "paired": paired,
        "expiry": expiry_ns,
        "rss": rss,
        "seconds": time.perf_counter() - began,
        "stopped": stopped,
    }


class UpdateProbe:
    """Clicks on up to ``UPDATES`` random live sessions of one manager, timed a run at a time.

    Each run ends with the clock moving past the acknowledgement watchdog's delay, so its
    look at every interaction is timed too (as in the routing benchmark).
    """

    def __init__(self, manager: Any, kit: PayloadKit, clock: ManualClock) -> None:
        self.manager, self.kit, self.clock = manager, kit, clock
        rng = random.Random(SEED)
        ids = rng.sample(list(manager._live), min(UPDATES, len(manager._live)))
        self.interactions = []
        for session_id in ids:
            custom_id = manager.codec.create_builder(session_id).push("go").build()
            message = kit.message(kit.new_id(), custom_id)
            self.interactions.append(kit.click_interaction(custom_id, message))

    async def run(self) -> float:
        """One run: ns per ``manager.update``."""
        manager, interactions = self.manager, self.interactions
        self.kit.renew(interactions)
        started = clock_ns()
        for interaction in interactions:
            await manager.update(interaction)
        self.clock.advance_nowait(manager.defer_after + 0.5)
        elapsed = clock_ns() - started
        check_answered(interactions)
        return elapsed / len(interactions)


async def small_probe(kit: PayloadKit, count: int) -> UpdateProbe:
    """The probe of a manager with ``count`` live sessions, kept beside the levels."""
    clock = ManualClock(start=time.time())
    manager = new_manager(clock=clock)
    await manager.open()
    await start_sessions(manager, kit, count)
    gc.collect()
    return UpdateProbe(manager, kit, clock)


async def paired_updates(big: UpdateProbe, small: UpdateProbe) -> list[float]:
    """Per pair of runs, seconds apart: ns per update on ``big`` over that on ``small``.

    A shared machine's phases last minutes, and one level's runs take a fraction of a
    second: runs side by side see the same machine. The order alternates.
    """
    ratios = []
    for index in range(PAIRS):
        if index % 2:
            small_ns = await small.run()
            big_ns = await big.run()
        else:
            big_ns = await big.run()
            small_ns = await small.run()
        ratios.append(big_ns / small_ns)
    return ratios


async def expire_all(manager: Any, clock: ManualClock, step: float) -> float:
    """Advance past one chunk's deadlines at a time; median ns per expired session."""
    first = min(entry.record.deadline for entry in manager._live.values())
    clock.advance_nowait(max(0.0, first - clock.now() - step / 2))
    per_session = []
    while manager._live:
        before = len(manager._live)
        started = clock_ns()
        clock.advance_nowait(step)
        await settle(manager._tasks)
        expired = before - len(manager._live)
        if expired:
            per_session.append((clock_ns() - started) / expired)
    return median(per_session)


class SpreadSession(BenchSession):
    """A session with its own TTL, noting how late its ``end()`` runs."""

    __slots__ = ("ttl",)
    lateness: ClassVar[list[float]] = []
    all_ended: ClassVar[Tally | None] = None

    async def end(self) -> None:
        assert self.manager is not None
        record = self.manager._live[self.id].record
        assert record is not None
        assert record.deadline is not None
        SpreadSession.lateness.append(time.time() - record.deadline)
        if SpreadSession.all_ended is not None:
            SpreadSession.all_ended.hit()


async def precision(kit: PayloadKit, count: int) -> list[float]:
    """Start ``count`` sessions (TTL base + 0..3 s, real clock); return every lateness."""
    base = 2.0 if count <= 20_000 else 5.0  # past the end of the start-up
    manager = new_manager()
    await manager.open()
    # What the collector walks during the window is the bot's heap: the sessions and
    # what serving them makes. The harness's heap (the offline Discord, what earlier
    # benchmarks left) is frozen, and so are the start interactions, built here all at
    # once (some millions of objects; a bot gets them one at a time, and its collector
    # frees each as it goes). They stay frozen until the last session has ended.
    with frozen_heap():
        rng = random.Random(SEED)
        starts = [(kit.command(), base + 3.0 * rng.random()) for _ in range(count)]
        gc.freeze()
        SpreadSession.lateness, SpreadSession.all_ended = [], Tally(count)
        began = time.time()
        for interaction, ttl in starts:
            session = SpreadSession(interaction)
            session.ttl = ttl
            await manager.start(session)
        starting = time.time() - began
        del starts, interaction, session
        if starting > base:
            report("", "(started after the first deadline: lateness counts it)")
        await asyncio.wait_for(SpreadSession.all_ended.done.wait(), base + 3.0 + 30.0)
    report(f"{count:,} sessions started in", f"{starting:.2f} s", f"first TTL {base:.0f} s")
    await manager.aclose()
    return SpreadSession.lateness


async def curve(kit: PayloadKit, levels: list[int]) -> list[Row]:
    """Run every level; print the curve; one summary row per level."""
    rows, results = [], []
    # The smallest level's updates are also timed beside the largest level's, in pairs.
    probe = await small_probe(kit, levels[0])
    report("live", "start/op", "update/op", "expire/op", "RSS growth", "time")
    for count in levels:
        result = await level(kit, count, probe if count == levels[-1] else None)
        results.append(result)
        figures = [fmt_ns(result[key]) for key in _COSTS]
        report(
            f"{result['live']:,}", *figures, fmt_bytes(result["rss"]), f"{result['seconds']:.1f} s"
        )
        name = f"scale {result['live']:,} live: start / update / expire"
        if result["stopped"]:
            report("", result["stopped"])
            name += " (partial)"
        rows.append(Row(name, " / ".join(figures)))
        if result["live"] >= 1_000_000:
            rows.append(
                Row(
                    f"RSS growth for {result['live']:,} live sessions",
                    fmt_bytes(result["rss"]),
                    target="< 1.5 GB",
                    passed=result["rss"] < 1.5e9,
                )
            )
    if len(results) > 1:
        first, last = results[0], results[-1]
        # The smallest level takes a fraction of a second and ran minutes before the
        # largest one: on a shared machine a single run of it moves more than the curve
        # does. It runs again right after the largest, and the ratio is taken against the
        # median of all its runs.
        small = [first] + [await level(kit, first["live"]) for _ in range(SMALL_RUNS - 1)]
        reference = {key: median([result[key] for result in small]) for key in _COSTS}
        figures = [fmt_ns(reference[key]) for key in _COSTS]
        report(f"{first['live']:,} again: median of {SMALL_RUNS} runs", *figures)
        ratios = {key: last[key] / reference[key] for key in _COSTS}
        if last["paired"]:
            paired = last["paired"]
            report(
                f"update at {last['live']:,} over {first['live']:,}, paired runs",
                f"{median(paired):.2f}x",
                f"(per pair {min(paired):.2f}x..{max(paired):.2f}x; "
                f"against the median of {SMALL_RUNS} runs {ratios['update']:.2f}x)",
            )
            ratios["update"] = median(paired)
        rows.append(
            Row(
                f"{first['live']:,} live, median of {SMALL_RUNS} runs: start / update / expire",
                " / ".join(figures),
            )
        )
        rows.append(
            Row(
                f"cost per operation at {last['live']:,} vs at {first['live']:,} live"
                + (" (update: paired runs)" if last["paired"] else ""),
                " / ".join(f"{ratios[key]:.2f}x" for key in _COSTS),
                target="<= 2x each",
                passed=max(ratios.values()) <= 2.0,
            )
        )
    await probe.manager.aclose()
    return rows


async def run(quick: bool) -> list[Row]:
    levels = [n for n in LEVELS if not quick or n <= 100_000]
    count = 20_000 if quick else 100_000
    section("scale: cost per operation as live sessions grow (ManualClock)")
    async with OfflineDiscord() as offline:
        kit = PayloadKit(offline, offline.add_member("alice"))
        with no_http(offline):
            rows = await curve(kit, levels)
            section(f"expiry precision: {count:,} sessions, TTLs spread over 3 s, real clock")
            lateness = await precision(kit, count)
    p50, p99, worst = (percentile(lateness, f) for f in (0.5, 0.99, 1.0))
    report("end() after its deadline", f"p50 {p50 * 1e3:.1f} ms", f"p99 {p99 * 1e3:.1f} ms")
    report("", f"max {worst * 1e3:.1f} ms", f"ends seen {len(lateness):,}")
    rows.append(
        Row(
            f"expiry lateness p99, {count:,} over 3 s (p50 {p50 * 1e3:.1f} ms)",
            f"{p99 * 1e3:.1f} ms",
            target="< 50 ms",
            passed=p99 < PRECISION_TARGET,
        )
    )
    return rows
