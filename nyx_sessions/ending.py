"""How sessions end: ends asked for, expiry, unusable records, ends in other processes.

Every end runs the same steps once (:meth:`Ending.finish`): the ``end()`` hook, the
record removed (a shared store keeps the end for a while, for processes that missed
the notice), the local entry dropped, the end promise resolved, END emitted, the other
processes told. A process that finds a live session's record gone asks the store how
it ended (``store.ended``), so a lost end notice never leaves a promise hanging.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from .end import EndCode, SessionEndData
from .errors import (
    CorruptRecordError,
    LeaseTimeoutError,
    RecordError,
    RecordTooLargeError,
    StoreUnavailableError,
)
from .events import SessionEvent

if TYPE_CHECKING:
    from .clock import Clock
    from .events import EventHub
    from .limits import SessionLimits
    from .queues import SerialQueues
    from .restoring import Restorer
    from .routing import LiveSession, Routing
    from .scheduler import DeadlineScheduler
    from .session import Session
    from .storage import StoreAdapter

__all__ = ["Ending", "resolve"]

_log = logging.getLogger("nyx_sessions")
_EXPIRY_CONCURRENCY = 16  # expiries in flight at once against a persistent store
# A record that can never be used again; one of a newer release or of a session type
# not registered here is kept (another process may serve it).
_UNUSABLE = (CorruptRecordError, RecordTooLargeError)


def resolve(session: Session[Any], end: SessionEndData) -> None:
    """Resolve ``session``'s end promise with ``end`` unless it is resolved already."""
    if session.end_code is None:
        session.end_code = end.code
    if not session.end_promise.done():
        session.end_promise.set_result(end)


class Ending:
    """Ends sessions, exactly once, and forgets them locally."""

    __slots__ = (
        "_clock",
        "_events",
        "_expiry_slots",
        "_limits",
        "_queues",
        "_restorer",
        "_routing",
        "_scheduler",
        "_storage",
        "poll_interval",
    )

    def __init__(
        self,
        *,
        clock: Clock,
        routing: Routing,
        queues: SerialQueues,
        storage: StoreAdapter,
        restorer: Restorer,
        scheduler: DeadlineScheduler[LiveSession],
        limits: SessionLimits,
        events: EventHub,
        poll_interval: float,
    ) -> None:
        self._clock = clock
        self._routing = routing
        self._queues = queues
        self._storage = storage
        self._restorer = restorer
        self._scheduler = scheduler
        self._limits = limits
        self._events = events
        self._expiry_slots = asyncio.Semaphore(_EXPIRY_CONCURRENCY)
        self.poll_interval = poll_interval

    async def end_now(self, entry: LiveSession, code: EndCode, reason: str | None) -> bool:
        """End the session of ``entry``, which this task works on; False if it had ended."""
        session = entry.session
        if session is None:
            if not self._storage.persistent:
                return False
            try:
                session = await self._restorer.load(entry)
            except RecordError as error:
                await self.end_unusable(entry, error)
                return False
            if session is None:
                return False
        if session.end_code is not None:
            return False
        session.end_code = code
        try:
            await session.end()
        except Exception as error:
            _log.exception("Session %s (%s) failed in end()", session.id, session.session_type)
            self._events.emit(SessionEvent.ERROR, session, None, error)
        await self.finish(entry, SessionEndData(session.id, code, reason, session.get_result()))
        return True

    async def finish(self, entry: LiveSession, end: SessionEndData) -> None:
        """Remove an ended session everywhere, resolve its promise, tell everyone."""
        await self._storage.remove(end)
        session = entry.session or self._restorer.detached.pop(end.session_id, None)
        self.drop(entry)
        if session is not None:
            _log.debug("Session %s (%s) ended: %s", session.id, session.session_type, end.code)
            resolve(session, end)
            self._events.emit(SessionEvent.END, session, end)
        await self._storage.publish_end(end)

    async def end_unusable(self, entry: LiveSession, error: RecordError) -> None:
        """Deal with a record that cannot be used: end the session if it never can be."""
        if not isinstance(error, _UNUSABLE):
            self.detach(entry)  # kept in the store for a process that can serve it
            return
        session = entry.session or self._restorer.detached.get(entry.session_id)
        if session is not None:
            if session.end_code is not None:
                self.drop(entry)
                return
            session.end_code = EndCode.ERROR
            entry.session = session
            try:
                await session.end()
            except Exception as hook_error:
                _log.exception("Session %s failed in end()", session.id)
                self._events.emit(SessionEvent.ERROR, session, None, hook_error)
        reason = f"its record could not be used: {error}"
        result = session.get_result() if session is not None else None
        await self.finish(entry, SessionEndData(entry.session_id, EndCode.ERROR, reason, result))

    async def expire(self, entry: LiveSession) -> None:
        """Expire the session unless its deadline moved on meanwhile."""
        if not self._storage.persistent:
            await self._expire(entry)
            return
        # Many deadlines can pass at once (a process that comes back to a backlog): a
        # few expiries at a time keep the store and the loop free for clicks.
        async with self._expiry_slots:
            await self._expire(entry)

    async def _expire(self, entry: LiveSession) -> None:
        if self._storage.shared or entry.session is None:
            try:
                session = await self._restorer.load(entry)
            except (LeaseTimeoutError, StoreUnavailableError) as error:
                _log.warning("Session %s: expiry postponed, %s", entry.session_id, error)
                self._scheduler.schedule(entry, self._clock.now() + self.poll_interval)
                return
            except RecordError as error:
                _log.warning("Session %s cannot be expired: %s", entry.session_id, error)
                await self.end_unusable(entry, error)
                return
            if session is None:
                await self.gone_elsewhere(entry)
                return
        record = entry.record
        if record is None or entry.session is None:
            return
        if record.deadline is not None and record.deadline > self._clock.now():
            self._scheduler.schedule(entry, record.deadline)
            await self._storage.release(entry.session_id)
            return
        if await self.overtime(entry):
            session, stop = entry.session, entry.stop_request
            if stop is not None:  # the session ended itself in on_timeout()
                entry.stop_request = None
                await self.end_now(entry, *stop)
                return
            record.data, record.message_id = session.data, session.message_id
            record.result = session.result
            await self._storage.commit(record, release=True)
            return
        await self.end_now(entry, EndCode.EXPIRED, None)

    async def overtime(self, entry: LiveSession) -> bool:
        """Ask a session whose deadline passed whether it goes on; if so, move the deadline.

        Never past the hard deadline (``max_lifetime``). A failing ``on_timeout()`` is
        logged, and the session expires.
        """
        session, record = entry.session, entry.record
        assert session is not None
        assert record is not None
        now, hard = self._clock.now(), record.hard_deadline
        if hard is not None and hard <= now:
            return False
        try:
            goes_on = await session.on_timeout()
        except Exception as error:
            _log.exception(
                "Session %s (%s) failed in on_timeout()", session.id, session.session_type
            )
            self._events.emit(SessionEvent.ERROR, session, None, error)
            return False
        if goes_on and entry.stop_request is None:
            ttl = session.ttl
            deadline = hard if ttl is None else self._clock.now() + ttl
            if hard is not None and deadline is not None:
                deadline = min(deadline, hard)
            record.deadline = deadline
            if deadline is not None:
                self._scheduler.schedule(entry, deadline)
        return goes_on

    async def gone_elsewhere(self, entry: LiveSession) -> None:
        """Forget a session whose record vanished: it ended, here or in another process."""
        session = entry.session or self._restorer.detached.get(entry.session_id)
        self.drop(entry)
        if session is None or session.end_promise.done():
            return
        end = await self._storage.ended(entry.session_id)
        if end is None:
            # The store no longer knows how (or never kept it): the deadline says most.
            deadline = entry.record.deadline if entry.record is not None else None
            expired = deadline is not None and deadline <= self._clock.now()
            end = SessionEndData(
                session.id,
                EndCode.EXPIRED if expired else EndCode.CANCELLED,
                "ended in another process",
            )
        self._restorer.detached.pop(session.id, None)
        resolve(session, end)

    def hear_end(self, end: SessionEndData) -> None:
        """Another process ended a session: resolve local waiters, drop the local copy."""
        entry = self._routing.live.get(end.session_id)
        session = entry.session if entry is not None else None
        detached = self._restorer.detached.pop(end.session_id, None)
        session = session or detached
        if session is None:
            return
        if entry is not None and not entry.busy:
            self.drop(entry)
        resolve(session, end)

    def drop(self, entry: LiveSession) -> None:
        """Forget a session locally; work queued for it is served afresh or answered."""
        self._routing.forget(entry)
        if entry.counted and entry.session is not None:
            entry.counted = False
            self._limits.ended(entry.session.owner_id)
        self._scheduler.cancel(entry)
        for item in self._queues.take(entry):
            if item.interaction is None:
                item.release()  # an expiry or an end: the session is gone already
            else:
                # Served afresh: the store says whether it lives on or ended.
                self._queues.submit(self._routing.entry(entry.session_id), item)

    def detach(self, entry: LiveSession) -> None:
        """Forget a live session locally that did not end; its waiters are kept."""
        self._restorer.detach(entry.session)
        self.drop(entry)

    def __repr__(self) -> str:
        return "<Ending>"
