"""Time source for TTLs and timers, injectable so that tests never sleep."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Clock", "LoopClock", "TimerHandle"]


class TimerHandle(Protocol):
    """A scheduled callback that can be cancelled."""

    def cancel(self) -> None:
        """Cancel the callback; a no-op when it already ran."""


class Clock(Protocol):
    """Wall-clock time in seconds since the epoch, and callbacks after a delay.

    Deadlines are wall-clock times so that several processes sharing a store agree on
    them.
    """

    def now(self) -> float:
        """Return the current time in seconds since the epoch."""
        ...

    def call_later(self, delay: float, callback: Callable[[], object]) -> TimerHandle:
        """Run ``callback`` after ``delay`` seconds; return a handle to cancel it."""
        ...


class LoopClock:
    """The real clock: :func:`time.time` and the running event loop's timers."""

    __slots__ = ()

    def now(self) -> float:
        """Return :func:`time.time`."""
        return time.time()

    def call_later(self, delay: float, callback: Callable[[], object]) -> TimerHandle:
        """Schedule ``callback`` on the running event loop."""
        return asyncio.get_running_loop().call_later(max(delay, 0.0), callback)

    def __repr__(self) -> str:
        return "LoopClock()"
