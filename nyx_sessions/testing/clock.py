"""A clock that moves only when a test says so."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ManualClock"]


class _ManualHandle:
    __slots__ = ("_callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self._callback: Callable[[], object] | None = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        self._callback = None

    def run(self) -> None:
        callback, self._callback = self._callback, None
        if callback is not None and not self.cancelled:
            callback()

    def __repr__(self) -> str:
        return f"<_ManualHandle when={self.when} cancelled={self.cancelled}>"


class ManualClock:
    """A :class:`~nyx_sessions.clock.Clock` whose time only moves on :meth:`advance`.

    Parameters
    ----------
    start:
        The initial time, in seconds since the epoch.

    Examples
    --------
    >>> clock = ManualClock()
    >>> manager = SessionManager(client, clock=clock)  # doctest: +SKIP
    >>> await clock.advance(61)  # every TTL of 60 s has now run out  # doctest: +SKIP
    """

    __slots__ = ("_counter", "_now", "_timers")

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, _ManualHandle]] = []
        self._counter = itertools.count()

    def now(self) -> float:
        """Return the current virtual time."""
        return self._now

    def call_later(self, delay: float, callback: Callable[[], object]) -> _ManualHandle:
        """Run ``callback`` once the virtual time has moved ``delay`` seconds on."""
        handle = _ManualHandle(self._now + max(delay, 0.0), callback)
        heapq.heappush(self._timers, (handle.when, next(self._counter), handle))
        return handle

    @property
    def pending(self) -> int:
        """Number of timers that are scheduled and not cancelled."""
        return sum(1 for _, _, handle in self._timers if not handle.cancelled)

    def advance_nowait(self, seconds: float) -> None:
        """Move time on by ``seconds`` and run the callbacks that fell due, in order."""
        if seconds < 0:
            raise ValueError("time cannot move backwards")
        target = self._now + seconds
        while self._timers and self._timers[0][0] <= target:
            when, _, handle = heapq.heappop(self._timers)
            self._now = max(self._now, when)
            handle.run()
        self._now = target

    async def advance(self, seconds: float, *, settle: int = 20) -> None:
        """Move time on by ``seconds``, run due callbacks, then let the loop settle.

        ``settle`` is the number of event-loop turns given to the tasks that the
        callbacks started (expiry runs ``end()`` hooks in tasks).
        """
        self.advance_nowait(seconds)
        for _ in range(settle):
            await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now}, pending={self.pending})"
