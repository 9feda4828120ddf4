"""One run of a conversation's ``converse()``, and the state it keeps in the record.

A :class:`Flow` is a run: its task, the wait it is suspended at, the log entries it
replays first. The state (``data["conversation"]``) holds the log, its size, the count
of entries ever logged (``seq``, which tells a run that another process moved on), the
data to replay from (``base``) and the pending wait's deadline (``due``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import discord
import msgpack

from .conversation_log import ASK, Diverged, LogFull, Pending, ReplayedInteraction

__all__ = [
    "KEY",
    "TIMED_OUT",
    "Flow",
    "append",
    "describe",
    "name_of",
    "new_state",
    "stand_in",
]

KEY = "conversation"
"""The key of the conversation's own state in the session's ``data``."""
TIMED_OUT: Any = object()  # what a timed-out wait is woken with
_INTERACTION_TYPES = {kind.value: kind for kind in discord.InteractionType}


class Flow:
    """One run of ``converse()``: its task, the wait it is suspended at, its replay cursor."""

    __slots__ = (
        "asks",
        "cursor",
        "log",
        "outcome",
        "pending",
        "replay",
        "seq",
        "suspended",
        "task",
        "woken",
    )

    def __init__(self, log: list[list[Any]], seq: int, asks: int, *, replay: bool) -> None:
        self.log = log  # the entries to replay, in order (a copy: the state's log grows)
        self.cursor = 0
        self.replay = replay  # re-running the past, until the flow reaches a wait live
        self.seq = seq  # the state's seq that this run has caught up with
        self.asks = asks
        self.pending: Pending | None = None
        self.woken: asyncio.Future[Any] | None = None
        self.suspended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.outcome: tuple[str, Any] | None = None  # ("result" | "raised", value) once done
        self.task: asyncio.Task[None] | None = None

    def next_logged(self) -> list[Any] | None:
        """Return the next entry to replay, or None once the log is exhausted."""
        if self.cursor < len(self.log):
            entry = self.log[self.cursor]
            self.cursor += 1
            return entry
        return None

    def signal(self) -> None:
        """Tell whoever waits that the flow is suspended at a wait, or done."""
        if not self.suspended.done():
            self.suspended.set_result(None)

    async def run(self, converse: Callable[[], Awaitable[Any]]) -> None:
        """Run ``converse()`` to its end; the outcome is kept, never raised (but a cancel)."""
        try:
            result = await converse()
        except BaseException as error:
            self.outcome = ("raised", error)
            self.signal()
            if isinstance(error, asyncio.CancelledError):
                raise
            return
        if self.cursor < len(self.log):
            what = f"converse() returned where the log has {describe(self.log[self.cursor])}"
            self.outcome = ("raised", Diverged(what, self.cursor + 1))
        else:
            self.outcome = ("result", result)
        self.signal()

    def __repr__(self) -> str:
        state = "replaying" if self.replay else "done" if self.outcome else "live"
        return f"<Flow {state} at {self.cursor}/{len(self.log)} seq={self.seq}>"


def new_state(version: int, base: dict[str, Any] | None) -> dict[str, Any]:
    """Return the state of a conversation that starts now."""
    return {"v": version, "seq": 0, "log": [], "size": 0, "asks": 0, "base": base, "due": None}


def append(state: dict[str, Any], entry: list[Any], cap: int) -> int:
    """Log ``entry``; return the new ``seq``.

    Raises
    ------
    LogFull
        The log would pass ``cap`` bytes.
    """
    size = state["size"] + len(msgpack.packb(entry))
    if size > cap:
        raise LogFull(
            f"its log would pass max_log_size ({cap} bytes) at step {state['seq'] + 1}; "
            "call checkpoint() in long loops"
        )
    state["log"].append(entry)
    state["size"] = size
    state["seq"] += 1
    return int(state["seq"])


def stand_in(
    entry: list[Any],
    build: Callable[[list[str]], str],
    channel_id: int | None,
    guild_id: int | None,
) -> ReplayedInteraction:
    """Return the stand-in of a logged input; ``build`` makes a custom id of tokens."""
    _, interaction_id, user_id, kind, tokens, rest = entry
    return ReplayedInteraction(
        interaction_id=interaction_id,
        user_id=user_id,
        interaction_type=_INTERACTION_TYPES[kind],
        tokens=tokens,
        rest=rest,
        build=build,
        channel_id=channel_id,
        guild_id=guild_id,
    )


def name_of(fn: Callable[..., Any]) -> str:
    """Return a callable's name for messages."""
    return getattr(fn, "__qualname__", None) or repr(fn)


def describe(entry: list[Any]) -> str:
    """Describe a log entry for an error message."""
    if entry[0] == "i":
        action = entry[4][0] if entry[4] else "(none)"
        if action == ASK:
            return f"the submit of ask #{entry[4][1] if len(entry[4]) > 1 else '?'}"
        return f"an input for action {action!r}"
    if entry[0] == "x":
        return "an external result"
    return "a timeout"
