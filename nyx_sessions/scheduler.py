"""One timer for every TTL: a heap of deadlines with lazy deletion and lazy postponing.

A key's current deadline lives in a dict. Cancelling it does not touch the heap, and
neither does moving it later, which is what a sliding TTL does on every click: the
key's older, earlier heap entry stays, and when it surfaces the key is pushed again at
its current deadline. So a refresh costs one dict write, and the heap holds, for every
key, at least one entry no later than its deadline. Only a deadline moved earlier is
pushed at once. A single timer handle is armed for the earliest heap entry, so the cost
per session is one heap entry and one dict entry, never a task or a timer.
"""

from __future__ import annotations

import heapq
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from .clock import Clock, TimerHandle

__all__ = ["DeadlineScheduler"]

_log = logging.getLogger("nyx_sessions")

# Rebuild the heap once stale entries outnumber live ones by this factor (plus a floor),
# so that a session refreshed on every click never makes the heap grow without bound.
_COMPACT_FACTOR = 2
_COMPACT_FLOOR = 1024


class DeadlineScheduler:
    """Calls ``callback(key)`` once each key's deadline has passed.

    Parameters
    ----------
    clock:
        The time source; deadlines are in its time (seconds since the epoch).
    callback:
        Called synchronously with each key that fell due. It must not raise; errors
        are logged.
    """

    __slots__ = ("_armed_at", "_callback", "_clock", "_deadlines", "_handle", "_heap")

    def __init__(self, clock: Clock, callback: Callable[[str], None]) -> None:
        self._clock = clock
        self._callback = callback
        self._heap: list[tuple[float, str]] = []
        self._deadlines: dict[str, float] = {}
        self._handle: TimerHandle | None = None
        self._armed_at: float | None = None

    def __len__(self) -> int:
        return len(self._deadlines)

    def __contains__(self, key: object) -> bool:
        return key in self._deadlines

    def deadline(self, key: str) -> float | None:
        """Return the deadline of ``key``, or None when it has none."""
        return self._deadlines.get(key)

    def schedule(self, key: str, when: float) -> None:
        """Set (or move) the deadline of ``key`` to ``when``."""
        deadlines = self._deadlines
        current = deadlines.get(key)
        deadlines[key] = when
        if current is not None and current <= when:
            return  # moved later (or not at all): its earlier heap entry moves it then
        heapq.heappush(self._heap, (when, key))
        if len(self._heap) > _COMPACT_FACTOR * len(self._deadlines) + _COMPACT_FLOOR:
            self._compact()
        if self._armed_at is None or when < self._armed_at:
            self._arm(when)

    def cancel(self, key: str) -> None:
        """Forget the deadline of ``key``; its heap entry is dropped when it surfaces."""
        self._deadlines.pop(key, None)
        if not self._deadlines:
            self._heap.clear()
            self._disarm()

    def close(self) -> None:
        """Forget every deadline and cancel the timer."""
        self._deadlines.clear()
        self._heap.clear()
        self._disarm()

    def _compact(self) -> None:
        self._heap = [(when, key) for key, when in self._deadlines.items()]
        heapq.heapify(self._heap)

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed_at = when
        self._handle = self._clock.call_later(when - self._clock.now(), self._fire)

    def _disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self._armed_at = None

    def _fire(self) -> None:
        self._handle = None
        self._armed_at = None
        now = self._clock.now()
        heap, deadlines = self._heap, self._deadlines
        while heap and heap[0][0] <= now:
            when, key = heapq.heappop(heap)
            current = deadlines.get(key)
            if current != when:
                if current is not None and current > when:
                    heapq.heappush(heap, (current, key))  # postponed since it was pushed
                continue  # else stale: cancelled, or moved earlier and pushed again then
            del deadlines[key]
            try:
                self._callback(key)
            except Exception:
                _log.exception("Ignoring exception in the deadline callback for %s", key)
        while heap and heap[0][1] not in deadlines:
            heapq.heappop(heap)  # cancelled: no need to wake up for it
        if heap:
            self._arm(heap[0][0])

    def __repr__(self) -> str:
        return f"<DeadlineScheduler keys={len(self._deadlines)} armed_at={self._armed_at}>"
