"""One timer for every TTL: deadlines filed in time buckets, fired in exact order.

Every live session has a deadline, and a sliding TTL moves it on every click, so the
scheduler keeps as little per session as it can and does nothing for a postponement:

- A session's deadline (``due``) and where it is filed (``filed``) live on the
  session's own bookkeeping object, not in a dict of the scheduler's: a refresh to a
  later deadline writes one attribute, and the scheduler holds no per-session object
  but the session id in a list.
- Deadlines are filed in buckets of ``width`` seconds (a dict of lists): filing is a
  list append, whatever the number of sessions. The earliest bucket is opened when
  its time comes, its sessions put in a small heap, and they fire from that heap in
  exact deadline order.
- Deadlines that only moved later stay filed where they were; when their filing comes
  up they are filed again at their current deadline. Cancelled sessions are skipped
  when their filing comes up. Only a deadline moved earlier is filed at once.

A single timer handle is armed for the earliest filing, so no session ever costs a
task or a timer of its own.
"""

from __future__ import annotations

import heapq
import logging
import math
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

    from .clock import Clock, TimerHandle

__all__ = ["DeadlineScheduler", "Timed"]

_log = logging.getLogger("nyx_sessions")

# Seconds per bucket. TTLs are seconds to hours; with quarter-second buckets the exact
# heap holds about a quarter second's deadlines at a time, and there are at most four
# buckets a second of TTL span.
_WIDTH = 0.25


class Timed(Protocol):
    """What the scheduler keeps its state on: one object per key, found by ``lookup``."""

    session_id: str
    due: float | None
    """The current deadline; None when none is scheduled."""
    filed: float | None
    """The deadline at which the key is filed: never later than ``due``."""


T = TypeVar("T", bound=Timed)


class DeadlineScheduler(Generic[T]):
    """Calls ``callback(item)`` once each item's deadline has passed.

    Parameters
    ----------
    clock:
        The time source; deadlines are in its time (seconds since the epoch).
    callback:
        Called synchronously with each item that fell due. It must not raise; errors
        are logged.
    lookup:
        Returns the item filed under a key (its ``session_id``), or None once it is
        gone. A filing whose key finds no item, or another item, is skipped.
    width:
        Seconds per bucket.
    """

    __slots__ = (
        "_armed_at",
        "_buckets",
        "_callback",
        "_clock",
        "_count",
        "_handle",
        "_horizon",
        "_lookup",
        "_soon",
        "_starts",
        "_width",
    )

    def __init__(
        self,
        clock: Clock,
        callback: Callable[[T], None],
        lookup: Callable[[str], T | None],
        *,
        width: float = _WIDTH,
    ) -> None:
        if not width > 0:
            raise ValueError(f"width must be positive, got {width!r}")
        self._clock = clock
        self._callback = callback
        self._lookup = lookup
        self._width = width
        self._count = 0
        # Deadlines before the horizon (the end of the last bucket opened) are in the
        # exact heap; the others in their bucket, whose numbers are in a heap of their own.
        self._soon: list[tuple[float, str]] = []
        self._horizon = -math.inf
        self._buckets: dict[int, list[str]] = {}
        self._starts: list[int] = []
        self._handle: TimerHandle | None = None
        self._armed_at: float | None = None

    def __len__(self) -> int:
        return self._count

    def schedule(self, item: T, when: float) -> None:
        """Set (or move) the deadline of ``item`` to ``when``."""
        current = item.due
        item.due = when
        if current is None:
            self._count += 1
        elif current <= when:
            return  # moved later (or not at all): its earlier filing moves it on then
        wake = self._file(item, when)
        if self._armed_at is None or wake < self._armed_at:
            self._arm(wake)

    def cancel(self, item: T) -> None:
        """Forget the deadline of ``item``; its filing is skipped when it comes up."""
        if item.due is None:
            return
        item.due = item.filed = None
        self._count -= 1
        if not self._count:
            self._clear()  # only stale filings are left

    def close(self) -> None:
        """Forget every deadline and cancel the timer."""
        keys = [key for _, key in self._soon]
        for filed in self._buckets.values():
            keys += filed
        for key in keys:
            item = self._lookup(key)
            if item is not None:
                item.due = item.filed = None
        self._count = 0
        self._clear()

    def _clear(self) -> None:
        """Drop every filing and the timer."""
        self._soon.clear()
        self._buckets.clear()
        self._starts.clear()
        self._disarm()

    def _file(self, item: T, when: float) -> float:
        """File ``item`` at ``when``; return when the timer must fire for it."""
        item.filed = when
        key = item.session_id
        if when < self._horizon:
            heapq.heappush(self._soon, (when, key))
            return when
        number = int(when // self._width)
        keys = self._buckets.get(number)
        if keys is None:
            self._buckets[number] = [key]
            heapq.heappush(self._starts, number)
        else:
            keys.append(key)
        return number * self._width  # opened then, fired from the heap in exact order

    def _open(self, number: int) -> None:
        """Move the filings of bucket ``number`` into the exact heap."""
        self._horizon = max(self._horizon, (number + 1) * self._width)
        width, lookup = self._width, self._lookup
        for key in self._buckets.pop(number):
            item = lookup(key)
            if item is None or item.due is None or item.filed is None:
                continue  # gone, or cancelled
            if int(item.filed // width) == number:  # else filed again elsewhere since
                self._file(item, item.due)

    def _current(self, when: float, key: str) -> T | None:
        """Return the item of an exact-heap filing, or None when that filing is stale."""
        item = self._lookup(key)
        if item is None or item.filed != when or item.due is None:
            return None
        return item

    def _fire(self) -> None:
        self._handle = None
        self._armed_at = None
        now = self._clock.now()
        soon, starts, width = self._soon, self._starts, self._width
        while True:
            if soon and soon[0][0] <= now:
                when, key = heapq.heappop(soon)
                item = self._current(when, key)
                if item is None:
                    continue  # gone, cancelled, or filed again elsewhere since
                due = item.due
                assert due is not None  # a current filing has a deadline
                if due > now:
                    self._file(item, due)  # postponed since it was filed
                    continue
                item.due = item.filed = None
                self._count -= 1
                try:
                    self._callback(item)
                except Exception:
                    _log.exception("Ignoring exception in the deadline callback for %s", key)
            elif starts and starts[0] * width <= now:
                self._open(heapq.heappop(starts))
            else:
                break
        while soon and self._current(*soon[0]) is None:
            heapq.heappop(soon)  # cancelled: no need to wake up for it
        wake = soon[0][0] if soon else math.inf
        if starts:
            wake = min(wake, starts[0] * width)
        if wake < math.inf:
            self._arm(wake)

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

    def __repr__(self) -> str:
        return (
            f"<DeadlineScheduler keys={self._count} buckets={len(self._buckets)} "
            f"armed_at={self._armed_at}>"
        )
