"""Own routing cost: ``await manager.update(interaction)`` against the floor.

The floor is the least any router can do: one dict lookup from the custom id to a handler
and one coroutine call that marks the response done. Both sides get the same pre-built
``discord.Interaction`` objects (given a new id and an unanswered response before each
run), one at a time, so no event-loop turn, task or parse is measured: only the session
layer's own work. The manager is detached from the client, so the hook does not route
them too (and its events are not dispatched through the client).

The manager runs on a ``ManualClock``, moved on past the acknowledgement watchdog's
2.5 s at the end of each timed run, so that the watchdog's later look at every
interaction is timed too and its queue does not grow from run to run. The sessions' TTL
is a day, so that the clock moving on never expires them.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

from bench import breakdown
from bench.common import (
    ANSWERED,
    RUNS,
    SEED,
    BenchSession,
    PayloadKit,
    check_answered,
    clock_ns,
    frozen_heap,
    gc_paused,
    median,
    new_manager,
    no_http,
    start_sessions,
)
from bench.report import Row, fmt_ns, report, section
from nyx_sessions import OwnerOnly, SessionManager
from nyx_sessions.testing import ManualClock, OfflineDiscord

if TYPE_CHECKING:
    from collections.abc import Callable

TARGET = 3.0


class RoutedSession(BenchSession):
    """The bench session with a TTL that the virtual clock never reaches."""

    __slots__ = ()
    ttl = 24 * 3600


class FilteredSession(RoutedSession):
    """The same behind an ``OwnerOnly`` update filter."""

    __slots__ = ()
    update_filter = OwnerOnly()


async def floor_handler(interaction: Any) -> None:
    interaction.response._response_type = ANSWERED


def sweeper(manager: SessionManager, clock: ManualClock) -> Callable[[], None]:
    """Move the clock past the watchdog's delay: it looks at every pending interaction."""
    return lambda: clock.advance_nowait(manager.defer_after + 0.5)


async def time_updates(
    manager: SessionManager, kit: PayloadKit, interactions: list[Any], sweep: Callable[[], None]
) -> float:
    """ns per ``manager.update``, one run, the watchdog's sweep included."""
    kit.renew(interactions)
    update = manager.update
    with gc_paused():
        started = clock_ns()
        for interaction in interactions:
            await update(interaction)
        sweep()
        elapsed = clock_ns() - started
    check_answered(interactions)
    return elapsed / len(interactions)


def minimal_router(sessions: list[BenchSession], codec: Any) -> Callable[[Any], Any]:
    """The least a session router can do per click, as a reference between floor and manager.

    Its duties are the manager's, each in its cheapest form and nothing else: drop a
    redelivered interaction id, read the session id out of the custom id (the codec's own
    pattern), find the live session, call the session's ``update`` (the contract's
    dispatch to ``handle_button``), slide its TTL, check that the click was answered. No
    ordering per session, no filters, no events, no store, no errors handled.
    """
    live = {session.id: session for session in sessions}
    seen: dict[int, None] = {}
    deadlines: dict[str, float] = {}
    match = codec._match_session_id
    now = time.time

    async def route(interaction: Any) -> None:
        if interaction.id in seen:
            return
        seen[interaction.id] = None
        session = live[match(interaction.data["custom_id"])[1]]
        if await session.update(interaction):
            deadlines[session.id] = now() + session.ttl
        if interaction.response._response_type is None:
            raise RuntimeError("unanswered")

    return route


async def time_minimal(
    route: Callable[[Any], Any], kit: PayloadKit, interactions: list[Any]
) -> float:
    """ns per click through :func:`minimal_router`, one run."""
    kit.renew(interactions)
    with gc_paused():
        started = clock_ns()
        for interaction in interactions:
            await route(interaction)
        elapsed = clock_ns() - started
    return elapsed / len(interactions)


async def time_floor(handlers: dict[str, Any], kit: PayloadKit, interactions: list[Any]) -> float:
    """ns per dict lookup plus coroutine call, one run."""
    kit.renew(interactions)
    with gc_paused():
        started = clock_ns()
        for interaction in interactions:
            await handlers[interaction.data["custom_id"]](interaction)
        elapsed = clock_ns() - started
    return elapsed / len(interactions)


async def clicks_on(kit: PayloadKit, sessions: list[BenchSession], count: int) -> list[Any]:
    rng = random.Random(SEED)
    targets = []
    for session in sessions:
        custom_id = session.custom_id.push("go").build()
        targets.append((custom_id, kit.message(kit.new_id(), custom_id)))
    return [kit.click_interaction(*targets[rng.randrange(len(targets))]) for _ in range(count)]


async def detached_manager(offline: OfflineDiscord) -> tuple[SessionManager, Callable[[], None]]:
    clock = ManualClock(start=time.time())
    manager = new_manager(offline.client, clock=clock)
    await manager.open()
    manager.detach()
    return manager, sweeper(manager, clock)


async def run(quick: bool) -> list[Row]:
    live = 2_000 if quick else 10_000
    count = 2 * live  # a whole number of the memory store's heap clean-ups per run
    runs = RUNS + 2
    section(f"routing: manager.update vs dict lookup + call, {count:,} clicks, {live:,} live")
    async with OfflineDiscord() as offline:
        kit = PayloadKit(offline, offline.add_member("alice"))
        manager, sweep = await detached_manager(offline)
        routed = await start_sessions(manager, kit, live, RoutedSession)
        plain = await clicks_on(kit, routed, count)
        minimal = minimal_router(routed, manager.codec)
        # The filtered sessions get a manager of their own, so that both run at ``live``.
        other, other_sweep = await detached_manager(offline)
        filtered = await clicks_on(
            kit, await start_sessions(other, kit, live, FilteredSession), count
        )
        handlers = {interaction.data["custom_id"]: floor_handler for interaction in plain}

        nyx, floor, nyx_filtered, least = [], [], [], []
        with frozen_heap(), no_http(offline):
            for _ in range(runs):
                nyx.append(await time_updates(manager, kit, plain, sweep))
                floor.append(await time_floor(handlers, kit, plain))
                least.append(await time_minimal(minimal, kit, plain))
                nyx_filtered.append(await time_updates(other, kit, filtered, other_sweep))
            nyx_ns, floor_ns, least_ns = median(nyx), median(floor), median(least)
            report("nyx-sessions manager.update", fmt_ns(nyx_ns) + "/op")
            report("floor: dict lookup + coroutine call", fmt_ns(floor_ns) + "/op")
            report(
                "minimal router (the same duties, bare)",
                fmt_ns(least_ns) + "/op",
                f"{least_ns / floor_ns:.1f}x the floor",
            )
            report("manager.update with an OwnerOnly filter", fmt_ns(median(nyx_filtered)) + "/op")

            await breakdown.profile(manager, plain, kit.renew)
            sweep()
            measure = lambda: time_updates(manager, kit, plain, sweep)  # noqa: E731
            await breakdown.ablate(manager, measure, runs)
        await manager.aclose()
        await other.aclose()

    ratio = nyx_ns / floor_ns
    return [
        Row(
            "routing, ns per update (floor: lookup + call)",
            fmt_ns(nyx_ns),
            fmt_ns(floor_ns),
            f"{ratio:.1f}x",
            f"<= {TARGET:.0f}x",
            ratio <= TARGET,
        ),
        Row(
            "routing: a bare router with the same duties vs the floor",
            fmt_ns(least_ns),
            fmt_ns(floor_ns),
            f"{least_ns / floor_ns:.1f}x",
        ),
        Row(
            "routing: manager.update vs that bare router",
            fmt_ns(nyx_ns),
            fmt_ns(least_ns),
            f"{nyx_ns / least_ns:.1f}x",
        ),
        Row("routing with an OwnerOnly update filter", fmt_ns(median(nyx_filtered))),
    ]
