"""The embedded default store: records in this process's memory, on cachetools."""

from __future__ import annotations

import asyncio
import heapq
from collections import Counter
from typing import TYPE_CHECKING

from cachetools import Cache

from ..clock import Clock, LoopClock
from ..errors import (
    LeaseTimeoutError,
    RevisionConflictError,
    SessionLimitError,
    StoreError,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from ..end import SessionEndData
    from .base import SessionRecord

__all__ = ["MemoryStore"]

_LEASE_POLL = 0.005


class MemoryStore:
    """Session records in memory, bounded, for one process.

    The store keeps the :class:`~nyx_sessions.stores.base.SessionRecord` objects it is
    given (no copies), so an update costs next to nothing: a commit of the stored object
    only bumps its revision. The manager removes ended sessions; leases exist only while
    held. The deadline index behind :meth:`claim_expired` is built on the first claim
    (a manager on a memory store expires sessions with its own timer and never claims),
    so sessions cost no index entry unless something claims.

    Parameters
    ----------
    maxsize:
        The most records kept at once; creating one more raises
        :class:`~nyx_sessions.errors.SessionLimitError` rather than evicting a live
        session.
    clock:
        The time source, shared with the manager (the manager passes its own).
    """

    persistent = False
    shared = False

    __slots__ = ("_clock", "_heap", "_indexed", "_indexing", "_leases", "_maxsize", "_records")

    def __init__(self, *, maxsize: int = 2_000_000, clock: Clock | None = None) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._maxsize = maxsize
        self._clock: Clock = clock or LoopClock()
        # Bounded by create(), which refuses the record past maxsize: the cache never
        # evicts a live session to make room.
        self._records: Cache[str, SessionRecord] = Cache(maxsize=maxsize + 1)
        self._leases: dict[str, tuple[str, float]] = {}
        # The deadline index: what claims see. A claim moves a session's entry here (not
        # its record), so a process that crashes mid-expiry leaves it to be claimed again.
        self._indexed: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._indexing = False

    def _now(self) -> float:
        return self._clock.now()

    def use_clock(self, clock: Clock) -> None:
        """Take the manager's clock; only before the first record is created."""
        if len(self._records):
            raise StoreError("cannot change the clock of a store that holds records")
        self._clock = clock

    def __len__(self) -> int:
        return len(self._records)

    async def open(self) -> None:
        """Nothing to open."""

    async def aclose(self) -> None:
        """Nothing to close; the records stay for whoever holds the store."""

    async def get(self, session_id: str) -> SessionRecord | None:
        """Return the record of ``session_id``, or None."""
        return self._records.get(session_id)

    async def create(self, record: SessionRecord, *, lease_owner: str, lease: float) -> None:
        """Insert ``record`` at revision 1 and hold its lease."""
        if record.session_id in self._records:
            raise StoreError(f"session {record.session_id} already exists")
        if len(self._records) >= self._maxsize:
            raise SessionLimitError(f"the memory store holds its maximum of {self._maxsize}")
        record.revision = 1
        self._records[record.session_id] = record
        if self._indexing:
            self._index(record)
        self._leases[record.session_id] = (lease_owner, self._now() + lease)

    async def acquire(
        self, session_id: str, *, lease_owner: str, lease: float, wait: float
    ) -> SessionRecord | None:
        """Take the lease of ``session_id`` and return its record, or None."""
        give_up = self._now() + wait
        loop_deadline = asyncio.get_running_loop().time() + wait
        while True:
            record = self._records.get(session_id)
            if record is None:
                return None
            now = self._now()
            holder = self._leases.get(session_id)
            if holder is None or holder[0] == lease_owner or holder[1] <= now:
                self._leases[session_id] = (lease_owner, now + lease)
                return record
            # Either clock may be the one that moves (a manual clock in tests).
            if now >= give_up or asyncio.get_running_loop().time() >= loop_deadline:
                raise LeaseTimeoutError(f"session {session_id} is busy (lease held elsewhere)")
            await asyncio.sleep(_LEASE_POLL)

    async def commit(self, record: SessionRecord, *, lease_owner: str, release: bool) -> int:
        """Save ``record`` when its revision is current and the lease is ours."""
        try:
            stored = self._records[record.session_id]  # one lookup; Cache.get makes three
        except KeyError:
            raise RevisionConflictError(f"session {record.session_id} no longer exists") from None
        holder = self._leases.get(record.session_id) if self._leases else None
        if holder is not None and holder[0] != lease_owner and holder[1] > self._now():
            raise RevisionConflictError(f"session {record.session_id} is leased by another owner")
        if stored is not record and stored.revision != record.revision:
            raise RevisionConflictError(
                f"session {record.session_id} is at revision {stored.revision}, "
                f"not {record.revision}"
            )
        record.revision += 1
        if stored is not record:
            self._records[record.session_id] = record
        if self._indexing:
            self._index(record)
        if release and self._leases:
            self._leases.pop(record.session_id, None)
        return record.revision

    async def release(self, session_id: str, *, lease_owner: str) -> None:
        """Drop the lease if ``lease_owner`` holds it."""
        holder = self._leases.get(session_id)
        if holder is not None and holder[0] == lease_owner:
            del self._leases[session_id]

    async def remove(self, session_id: str, *, end: SessionEndData | None = None) -> bool:
        """Delete the record and its lease; True when it existed.

        ``end`` is not kept: no other process shares this store, so none can miss it.
        """
        self._leases.pop(session_id, None)
        self._indexed.pop(session_id, None)
        return self._records.pop(session_id, None) is not None

    async def claim_expired(self, now: float, *, limit: int, hold: float) -> list[str]:
        """Return the ids whose deadline passed, pushing each deadline to ``now + hold``."""
        if not self._indexing:
            self._indexing = True
            for record in self._records.values():
                self._index(record)
        claimed: list[str] = []
        heap = self._heap
        while heap and heap[0][0] <= now and len(claimed) < limit:
            when, session_id = heapq.heappop(heap)
            if self._indexed.get(session_id) != when:
                continue  # stale entry: the deadline moved on or the record is gone
            if session_id not in self._records:
                del self._indexed[session_id]
                continue
            self._push(session_id, now + hold)
            claimed.append(session_id)
        return claimed

    async def count_by_type(self) -> dict[str, int]:
        """Return the number of records per session type."""
        return dict(Counter(record.session_type for record in self._records.values()))

    async def scan(
        self, *, session_type: str | None = None, limit: int | None = None
    ) -> AsyncIterator[SessionRecord]:
        """Yield the records held (the stored objects: read them, do not change them)."""
        if limit is not None and limit < 0:
            raise ValueError("limit must be None or at least 0")
        found = 0
        for record in list(self._records.values()):  # a snapshot: the cache may change
            if limit is not None and found >= limit:
                return
            if session_type is None or record.session_type == session_type:
                found += 1
                yield record

    async def ended(self, session_id: str) -> SessionEndData | None:
        """No other process shares this store: there is no end it could have missed."""
        return None

    async def publish_end(self, end: SessionEndData) -> None:
        """No other process shares this store: nothing to tell."""

    def on_end(self, callback: Callable[[SessionEndData], None] | None) -> None:
        """No other process shares this store: the callback is never called."""

    def _index(self, record: SessionRecord) -> None:
        if record.deadline is None:
            self._indexed.pop(record.session_id, None)
        elif self._indexed.get(record.session_id) != record.deadline:
            self._push(record.session_id, record.deadline)

    def _push(self, session_id: str, when: float) -> None:
        self._indexed[session_id] = when
        heapq.heappush(self._heap, (when, session_id))
        if len(self._heap) > 2 * len(self._indexed) + 1024:
            self._heap = [(when, key) for key, when in self._indexed.items()]
            heapq.heapify(self._heap)

    def __repr__(self) -> str:
        return f"<MemoryStore records={len(self._records)} maxsize={self._maxsize}>"
