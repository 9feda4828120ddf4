"""Where ``manager.update`` spends its time: a cProfile breakdown and an ablation.

The profile attributes cumulative time to the parts of the update path. cProfile adds a
fixed cost to every call, so parts made of many small calls look dearer than they are;
the ablation corrects for that: it swaps one part at a time for a no-op stand-in on the
manager (nothing in ``nyx_sessions`` is changed) and reports the time saved per update.
"""

from __future__ import annotations

import cProfile
import pstats
from typing import TYPE_CHECKING, Any

import discord

from bench.common import ANSWERED, BenchSession, gc_paused, median
from bench.report import fmt_ns, report
from nyx_sessions.codecs import SessionCustomIdCodec
from nyx_sessions.events import EventHub
from nyx_sessions.runtime import SessionRuntime
from nyx_sessions.scheduler import DeadlineScheduler
from nyx_sessions.session import AbstractSession
from nyx_sessions.stores.memory import MemoryStore
from nyx_sessions.watchdog import AckWatchdog

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from nyx_sessions import SessionManager

__all__ = ["ablate", "profile"]


def _key(function: Any) -> tuple[str, int, str]:
    code = function.__code__
    return (code.co_filename, code.co_firstlineno, code.co_name)


# Part of the update path -> the function whose cumulative time it is.
PARTS = {
    "codec extract_session_id": SessionCustomIdCodec.extract_session_id,
    "ack watchdog (watch; only once a click waits)": AckWatchdog.watch,
    "session.update dispatch (by component type)": AbstractSession.update,
    "the handler itself (handle_button)": BenchSession.handle_button,
    "store commit (MemoryStore.commit_nowait)": MemoryStore.commit_nowait,
    "scheduler refresh (schedule)": DeadlineScheduler.schedule,
    "events emit (EventHub.emit)": EventHub.emit,
    "acknowledgement check (is_done)": discord.InteractionResponse.is_done,
}
CLOCK = "clock reads (clock.now)"
FILTER = "update filter (check)"


async def profile(manager: SessionManager, interactions: list[Any], renew: Any) -> None:
    """Print the share of each part of ``manager.update``'s cumulative time."""
    renew(interactions)
    profiler = cProfile.Profile()
    update = manager.update
    with gc_paused():
        profiler.enable()
        for interaction in interactions:
            await update(interaction)
        profiler.disable()
    stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = stats[_key(SessionRuntime.update)][3]
    shares = {
        name: stats.get(_key(function), (0, 0, 0, 0.0))[3] for name, function in PARTS.items()
    }
    # The dispatch share is its own cost, without the handler it calls.
    shares["session.update dispatch (by component type)"] -= shares[
        "the handler itself (handle_button)"
    ]
    shares[CLOCK] = sum(
        row[3] for key, row in stats.items() if key[2] == "now" and "clock" in key[0]
    )
    shares[FILTER] = sum(
        row[3] for key, row in stats.items() if key[2] == "check" and "filters" in key[0]
    )
    shares["entry/queue logic, _serve and _settle bodies"] = total - sum(shares.values())
    print(f"\n  cProfile of manager.update ({len(interactions):,} calls, cumulative time):")
    for name, seconds in sorted(shares.items(), key=lambda kv: kv[1], reverse=True):
        print(f"    {100 * seconds / total:5.1f}%  {name}")


class _NullEvents:
    def emit(self, *args: Any) -> None:
        pass

    async def drain(self) -> None:
        pass

    def bind(self, client: Any) -> None:
        pass


class _NullWatchdog:
    def watch(self, interaction: Any) -> None:
        pass

    def close(self) -> None:
        pass

    async def drain(self) -> None:
        pass


class _NullScheduler:
    def schedule(self, key: str, when: float) -> None:
        pass

    def cancel(self, key: str) -> None:
        pass

    def close(self) -> None:
        pass


def _null_commit(record: Any, *, lease_owner: str, release: bool) -> int:
    return 0


class _SliceCodec:
    """Takes the 16 characters after ``nyx:`` on trust: no validation at all."""

    def extract_session_id(self, custom_id: object) -> str | None:
        return custom_id[4:20] if isinstance(custom_id, str) else None


class _DirectSession(BenchSession):
    __slots__ = ()

    async def update(self, interaction: discord.Interaction[Any]) -> bool:
        interaction.response._response_type = ANSWERED
        return True


def _swap(manager: SessionManager, attribute: str, stand_in: Any) -> Callable[[], None]:
    original = getattr(manager, attribute)
    setattr(manager, attribute, stand_in)
    return lambda: setattr(manager, attribute, original)


def _swap_sessions(manager: SessionManager, cls: type[Any]) -> Callable[[], None]:
    sessions = [entry.session for entry in manager._live.values() if entry.session is not None]
    classes = [type(session) for session in sessions]
    for session in sessions:
        if type(session) is BenchSession:
            session.__class__ = cls

    def undo() -> None:
        for session, original in zip(sessions, classes, strict=True):
            session.__class__ = original

    return undo


async def ablate(
    manager: SessionManager, measure: Callable[[], Awaitable[float]], runs: int
) -> None:
    """Print the ns per update saved by replacing each part with a no-op."""
    stand_ins: dict[str, Callable[[], Callable[[], None]]] = {
        "events emit": lambda: _swap(manager, "_events", _NullEvents()),
        "ack watchdog": lambda: _swap(manager, "_watchdog", _NullWatchdog()),
        "scheduler refresh": lambda: _swap(manager, "_scheduler", _NullScheduler()),
        "store commit": lambda: _swap(manager, "_commit_nowait", _null_commit),
        "codec validation": lambda: _swap(manager, "codec", _SliceCodec()),
        "session.update dispatch": lambda: _swap_sessions(manager, _DirectSession),
    }

    parts = list(stand_ins.values())

    def everything() -> Callable[[], None]:
        undos = [install() for install in parts]

        def undo_all() -> None:
            for undo in reversed(undos):
                undo()

        return undo_all

    stand_ins["all of the above"] = everything
    baseline = fmt_ns(median([await measure() for _ in range(runs)]))
    print(f"\n  ablation: time saved per update (of {baseline}) when one part is a no-op:")
    for name, install in stand_ins.items():
        kept, saved = [], []
        for index in range(runs):
            # Paired runs in alternating order (kept first, then the stand-in first): the
            # stores' heaps are rebuilt every so many commits, and a fixed order would put
            # the rebuilds on one side of every pair.
            for side in ("kept", "cut") if index % 2 == 0 else ("cut", "kept"):
                if side == "kept":
                    kept.append(await measure())
                    continue
                undo = install()
                try:
                    cut = await measure()
                finally:
                    undo()
            saved.append(kept[-1] - cut)
        spread = f"(runs: {fmt_ns(min(saved))} .. {fmt_ns(max(saved))})"
        report(f"  {name}", f"-{fmt_ns(median(saved)):>9}", spread)
