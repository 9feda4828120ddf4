"""Defers interactions that are still unanswered near Discord's 3-second window.

Every interaction the manager takes is noted with its arrival time. Since the delay is
the same for all of them, their deadlines arrive in order, so a FIFO and one timer are
enough: nothing is cancelled when an interaction is answered in time; the timer just
finds it answered and moves on.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    import discord

    from .clock import Clock, TimerHandle

__all__ = ["AckWatchdog"]

_log = logging.getLogger("nyx_sessions")


class AckWatchdog:
    """Calls ``defer(interaction)`` for interactions unanswered ``delay`` seconds after arrival.

    Parameters
    ----------
    clock:
        The time source.
    delay:
        Seconds after arrival; keep it well under Discord's 3 seconds.
    defer:
        The coroutine function that acknowledges an interaction.
    """

    __slots__ = ("_clock", "_defer", "_delay", "_handle", "_pending", "_tasks")

    def __init__(
        self,
        clock: Clock,
        delay: float,
        defer: Callable[[discord.Interaction[Any]], Coroutine[Any, Any, None]],
    ) -> None:
        self._clock = clock
        self._delay = delay
        self._defer = defer
        self._pending: deque[tuple[float, discord.Interaction[Any]]] = deque()
        self._handle: TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def watch(self, interaction: discord.Interaction[Any]) -> None:
        """Start watching ``interaction``."""
        self._pending.append((self._clock.now() + self._delay, interaction))
        if self._handle is None:
            self._handle = self._clock.call_later(self._delay, self._fire)

    def _fire(self) -> None:
        self._handle = None
        now = self._clock.now()
        pending = self._pending
        while pending and pending[0][0] <= now:
            _, interaction = pending.popleft()
            if interaction.response._response_type is None:  # not is_done()
                _log.debug("Deferring interaction %s near Discord's 3-second limit", interaction.id)
                task = asyncio.get_running_loop().create_task(
                    self._defer(interaction), name=f"nyx-sessions-defer-{interaction.id}"
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        if pending:
            self._handle = self._clock.call_later(pending[0][0] - now, self._fire)

    def unanswered(self) -> list[discord.Interaction[Any]]:
        """Return the watched interactions that are still unanswered."""
        return [i for _, i in self._pending if i.response._response_type is None]

    def close(self) -> None:
        """Stop watching; interactions already being deferred finish on their own."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._pending.clear()

    async def drain(self) -> None:
        """Wait for deferrals in progress."""
        while self._tasks:
            await asyncio.gather(*tuple(self._tasks), return_exceptions=True)

    def __repr__(self) -> str:
        return f"<AckWatchdog pending={len(self._pending)} delay={self._delay}>"
