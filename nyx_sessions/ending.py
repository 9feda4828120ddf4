"""How sessions end: expiry, ends asked for, ends heard from other processes.

:class:`SessionEnding` is the base of :class:`~nyx_sessions.runtime.SessionRuntime` (and so
of :class:`~nyx_sessions.SessionManager`). It also holds the small pieces both use:
events, tasks, leases and the "expired" reply.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, TypeVar

from ._live import EXPIRE, LiveSession, interaction_of, release_waiter
from .end import EndCode, SessionEndData
from .errors import (
    LeaseTimeoutError,
    RecordError,
    StoreError,
    StoreUnavailableError,
    UnknownSessionTypeError,
)
from .events import SessionEvent
from .responders import is_already_acknowledged

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

    import discord

    from ._arrivals import Arrivals
    from ._live import RecentIds
    from .clock import Clock
    from .codecs import SessionCustomIdCodec
    from .events import EventHub
    from .limits import SessionLimits
    from .registry import SessionRegistry
    from .responders import Responder
    from .scheduler import DeadlineScheduler
    from .session import Session
    from .stores.base import SessionRecord, SessionStore
    from .watchdog import AckWatchdog

__all__ = ["SessionEnding"]

T = TypeVar("T")

_log = logging.getLogger("nyx_sessions")
_END_NOTICE_WAIT = 3.0


class SessionEnding:
    """Expiry and ending of sessions, and the plumbing shared with serving."""

    clock: Clock
    store: SessionStore
    codec: SessionCustomIdCodec
    responder: Responder
    registry: SessionRegistry
    lease_owner: str
    lease: float
    lease_wait: float
    poll_interval: float
    _live: dict[str, LiveSession]
    _events: EventHub
    _scheduler: DeadlineScheduler[LiveSession]
    _watchdog: AckWatchdog
    _recent: RecentIds
    _arrivals: Arrivals
    limits: SessionLimits
    _awaiting_notice: dict[str, Session[Any]]
    _expiry_slots: asyncio.Semaphore
    _store_slots: asyncio.Semaphore | None  # None: a pipelined store, nothing to ration
    _tasks: set[asyncio.Task[Any]]
    _opened: asyncio.Task[None] | None
    _closed: bool
    _shared: bool
    _commit_nowait: Callable[..., int] | None

    async def _run(self, entry: LiveSession, item: Any) -> None:
        raise NotImplementedError  # SessionRuntime serves the queue

    async def _serve_now(self, session_id: str, interaction: discord.Interaction[Any]) -> None:
        raise NotImplementedError  # SessionRuntime serves interactions

    def _acquire(self, session_id: str) -> Awaitable[SessionRecord | None]:
        """Take the session's lease and load its record (see ``SessionStore.acquire``)."""
        return self._in_store_slot(
            self.store.acquire(
                session_id, lease_owner=self.lease_owner, lease=self.lease, wait=self.lease_wait
            )
        )

    def _in_store_slot(self, call: Coroutine[Any, Any, T]) -> Awaitable[T]:
        """Return ``call``, to be awaited within one of the store's slots, if it has any.

        A pipelined store has none (see ``store_concurrency``), and its calls are
        awaited as they are: no layer, on every acquire and commit.
        """
        slots = self._store_slots
        return call if slots is None else _in_slot(slots, call)

    async def _release(self, entry: LiveSession) -> None:
        if not self._shared:
            return
        try:
            await self._in_store_slot(
                self.store.release(entry.session_id, lease_owner=self.lease_owner)
            )
        except StoreError as error:
            _log.warning(
                "Session %s: lease not released (%s); it will run out", entry.session_id, error
            )

    async def _missing(self, session_id: str, interaction: discord.Interaction[Any]) -> None:
        _log.info(
            "Interaction %s from user %s names session %s, which is unknown, ended or expired",
            interaction.id,
            interaction.user.id,
            session_id,
        )
        self._emit(SessionEvent.MISSING, session_id, interaction)
        await self.responder.missing(interaction, session_id)

    def _adopt_record(self, entry: LiveSession, record: SessionRecord) -> Session[Any]:
        session = entry.session
        if session is None:
            session = self.registry.restore(record)
            session.manager = self  # type: ignore[assignment]  # always a SessionManager
            entry.session = session
            _log.debug("Session %s (%s) restored", record.session_id, record.session_type)
        elif entry.record is None or entry.record.revision != record.revision:
            if record.session_type != session.session_type:
                raise UnknownSessionTypeError(
                    f"record of session {record.session_id} is a {record.session_type!r}, "
                    f"not a {session.session_type!r}"
                )
            session.data = self.registry.migrate(type(session), record)
            session.message_id = record.message_id
            session.result = record.result
        entry.record = record
        if record.deadline is not None:
            self._scheduler.schedule(entry, record.deadline)
        return session

    def _on_claim(self, session_id: str) -> None:
        """Expire a session claimed from a persistent store, live here or not."""
        entry = self._live.get(session_id)
        if entry is None:
            entry = self._live[session_id] = LiveSession(session_id)
        self._queue_expiry(entry)

    def _queue_expiry(self, entry: LiveSession) -> None:
        """Expire ``entry`` after the work in progress, or soon, with the other arrivals."""
        if entry.busy:
            entry.enqueue(EXPIRE)
            return
        entry.busy = True
        self._arrivals.add(entry, EXPIRE)

    async def _expire(self, entry: LiveSession) -> None:
        """Expire the session unless its deadline moved on meanwhile."""
        if not self.store.persistent:
            await self._expire_now(entry)
            return
        # Many deadlines can pass at once (a process that comes back to a backlog): a
        # few expiries at a time keep the store's connection pool and the loop free.
        async with self._expiry_slots:
            await self._expire_now(entry)

    async def _expire_now(self, entry: LiveSession) -> None:
        if self._shared or entry.session is None:
            try:
                record = await self._acquire(entry.session_id)
            except (LeaseTimeoutError, StoreUnavailableError) as error:
                _log.warning("Session %s: expiry postponed, %s", entry.session_id, error)
                self._scheduler.schedule(entry, self.clock.now() + self.poll_interval)
                return
            except RecordError as error:
                _log.warning("Session %s cannot be expired: %s", entry.session_id, error)
                self._drop(entry)
                return
            if record is None:
                self._gone_elsewhere(entry)
                return
            try:
                self._adopt_record(entry, record)
            except RecordError as error:
                _log.warning("Session %s cannot be expired: %s", entry.session_id, error)
                await self._release(entry)
                self._drop(entry)
                return
        record = entry.record
        if record is None or entry.session is None:
            return
        if record.deadline is not None and record.deadline > self.clock.now():
            self._scheduler.schedule(entry, record.deadline)
            await self._release(entry)
            return
        await self._end_now(entry, EndCode.EXPIRED, None)

    async def _end_now(self, entry: LiveSession, code: EndCode, reason: str | None) -> bool:
        """Run the end of a session whose entry this task holds."""
        session = entry.session
        if session is None:
            if not self.store.persistent:
                return False
            try:
                record = await self._acquire(entry.session_id)
            except RecordError:
                return False
            if record is None:
                return False
            session = self._adopt_record(entry, record)
        if session.end_code is not None:
            return False
        session.end_code = code
        try:
            await session.end()
        except Exception as error:
            _log.exception("Session %s (%s) failed in end()", session.id, session.session_type)
            self._emit(SessionEvent.ERROR, session, None, error)
        end = SessionEndData(session.id, code, reason, session.get_result())
        try:
            await self.store.remove(session.id)
        except StoreError as error:
            _log.error(
                "Session %s: record not removed (%s); it will expire later", session.id, error
            )
        self._drop(entry)
        _log.debug("Session %s (%s) ended: %s", session.id, session.session_type, code.value)
        self._resolve(session, end)
        self._emit(SessionEvent.END, session, end)
        if self._shared:
            try:
                await self.store.publish_end(end)
            except StoreError as error:
                _log.warning(
                    "Session %s: end not announced to other processes (%s)", session.id, error
                )
        return True

    def _gone_elsewhere(self, entry: LiveSession) -> None:
        """Forget a session whose record vanished: another process ended it.

        Its end notice is normally on its way (:meth:`_hear_end` resolves the local
        waiters); they get a stand-in end only if it does not come within a few seconds.
        """
        session = entry.session
        self._drop(entry)
        if session is None or session.end_promise.done():
            return
        record = entry.record
        deadline = record.deadline if record is not None else None
        expired = deadline is not None and deadline <= self.clock.now()
        stand_in = SessionEndData(
            session.id,
            EndCode.EXPIRED if expired else EndCode.CANCELLED,
            "ended in another process",
        )
        self._awaiting_notice[session.id] = session
        self._spawn(
            self._await_end_notice(session, stand_in), f"nyx-sessions-end-notice-{session.id}"
        )

    async def _await_end_notice(self, session: Session[Any], stand_in: SessionEndData) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(session.end_promise), _END_NOTICE_WAIT)
        except TimeoutError:
            _log.warning("Session %s ended elsewhere, but no end notice came", session.id)
            if session.end_code is None:
                session.end_code = stand_in.code
            self._resolve(session, stand_in)
        finally:
            self._awaiting_notice.pop(session.id, None)

    def _hear_end(self, end: SessionEndData) -> None:
        """Another process ended a session: resolve local waiters, drop the local copy."""
        entry = self._live.get(end.session_id)
        session = entry.session if entry is not None else None
        if session is None:
            session = self._awaiting_notice.pop(end.session_id, None)
        if session is None:
            return
        if session.end_code is None:
            session.end_code = end.code
        if entry is not None and not entry.busy:
            self._drop(entry)
        self._resolve(session, end)

    def _drop(self, entry: LiveSession) -> None:
        """Forget a session locally and answer whatever was queued for it."""
        if self._live.get(entry.session_id) is entry:
            del self._live[entry.session_id]
        if entry.counted and entry.session is not None:
            entry.counted = False
            self.limits.ended(entry.session.owner_id)
        self._scheduler.cancel(entry)
        queued, entry.queue = entry.queue, None
        if queued:
            self._spawn(
                self._answer_leftovers(entry.session_id, list(queued)), "nyx-sessions-leftovers"
            )

    async def _answer_leftovers(self, session_id: str, items: list[Any]) -> None:
        for item in items:
            interaction = interaction_of(item)
            if interaction is None:
                pass  # an expiry or an end: the session is gone already
            elif self.store.persistent and not self._closed:
                # Served afresh from the store: the record says whether it lives on (a
                # stale copy was dropped) or ended (the user is told it expired).
                await self._serve_now(session_id, interaction)
            else:
                await self._missing(session_id, interaction)
            release_waiter(item)

    def _resolve(self, session: Session[Any], end: SessionEndData) -> None:
        promise = session.end_promise
        if not promise.done():
            promise.set_result(end)

    def _emit(self, event: SessionEvent, *args: Any) -> None:
        self._events.emit(event, *args)

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        """Run ``coro`` in a task named ``name``, kept until it is done; failures logged."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self._failed(task.get_name(), error)

    def _failed(self, name: str, error: BaseException) -> None:
        """Log what a task (or a click's first step) named ``name`` raised."""
        if not is_already_acknowledged(error):
            _log.error("Task %s failed", name, exc_info=error)


async def _in_slot(slots: asyncio.Semaphore, call: Coroutine[Any, Any, T]) -> T:
    try:
        await slots.acquire()
    except BaseException:
        call.close()  # cancelled while it waited: never started, nothing sent
        raise
    try:
        return await call
    finally:
        slots.release()
