"""How a manager runs sessions' work: routing, serving one interaction, expiry, ending.

:class:`SessionRuntime` is the base of :class:`~nyx_sessions.SessionManager`; it holds
the machinery, the manager the public API. Work on one session is serialised through its
:class:`~nyx_sessions._live.LiveSession` entry (see there); with a shared store, each
interaction is also served under the session's lease, and its state is committed with
the revision it was read at.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import Interaction

from ._live import EXPIRE, EndRequest, LiveSession, QueuedInteraction, RecentIds
from .end import EndCode, SessionEndData
from .errors import (
    LeaseTimeoutError,
    RecordError,
    RecordTooLargeError,
    RevisionConflictError,
    StateEncodeError,
    StoreError,
    StoreUnavailableError,
    UnknownSessionTypeError,
)
from .events import EventHub, SessionEvent
from .filters.base import rejection_message
from .responders import is_already_acknowledged

if TYPE_CHECKING:
    from .clock import Clock
    from .codecs import SessionCustomIdCodec
    from .limits import SessionLimits
    from .registry import SessionRegistry
    from .responders import Responder
    from .scheduler import DeadlineScheduler
    from .session import Session
    from .stores.base import SessionRecord, SessionStore
    from .watchdog import AckWatchdog

__all__ = ["SessionRuntime"]

_log = logging.getLogger("nyx_sessions")
_END_NOTICE_WAIT = 3.0
_RECENT_PER_SESSION = 16  # interaction ids kept in a shared record, for redeliveries
_UPDATE = SessionEvent.UPDATE  # enum member lookups are not free on the hot path


class SessionRuntime:
    """Routing, serving, expiry and ending of sessions; the base of ``SessionManager``."""

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
    _scheduler: DeadlineScheduler
    _watchdog: AckWatchdog
    _recent: RecentIds
    limits: SessionLimits
    _awaiting_notice: dict[str, Session[Any]]
    _expiry_slots: asyncio.Semaphore
    _store_slots: asyncio.Semaphore
    _tasks: set[asyncio.Task[Any]]
    _opened: asyncio.Task[None] | None
    _closed: bool
    _shared: bool

    def _check_open(self) -> None:
        raise NotImplementedError

    def _ensure_open(self) -> asyncio.Task[None]:
        raise NotImplementedError

    # -- routing ---------------------------------------------------------------------------

    def _route(self, interaction: discord.Interaction[Any], custom_id: object) -> bool:
        """Take ``interaction`` if it belongs to a session; called while discord.py parses it."""
        session_id = self.codec.extract_session_id(custom_id)
        if session_id is None or self._closed:
            return False
        if not self._recent.add(interaction.id):
            _log.debug("Interaction %s was delivered twice; serving it once", interaction.id)
            return True
        self._watchdog.watch(interaction)
        entry = self._live.get(session_id)
        if entry is None:
            entry = self._live[session_id] = LiveSession(session_id)
        elif entry.busy:
            entry.enqueue(interaction)
            return True
        entry.busy = True
        task = asyncio.get_running_loop().create_task(
            self._run(entry, interaction), name=f"nyx-sessions-update-{session_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return True

    async def update(self, interaction: discord.Interaction[Any]) -> bool:
        """Route ``interaction`` to its session and wait until it was handled.

        The attached client's interactions are routed without calling this; it is for
        interactions that come from elsewhere (tests, custom dispatch).

        Returns
        -------
        bool
            True when the interaction belonged to a session, whatever became of it
            (handled, refused, expired, failed): it has been answered either way.
        """
        data: Any = interaction.data or {}
        session_id = self.codec.extract_session_id(data.get("custom_id"))
        if session_id is None:
            return False
        self._check_open()
        if self._opened is None or not self._opened.done():
            await self._ensure_open()
        if not self._recent.add(interaction.id):
            _log.debug("Interaction %s was delivered twice; serving it once", interaction.id)
            return True
        self._watchdog.watch(interaction)
        entry = self._live.get(session_id)
        if entry is None or entry.busy:
            await self._serve_now(session_id, interaction)
            return True
        entry.busy = True  # the common case, inline: an idle live session
        entry.runner = asyncio.current_task()
        try:
            await self._serve(entry, interaction)
        finally:
            entry.runner = None
            self._hand_off(entry)
        return True

    async def _serve_now(self, session_id: str, interaction: discord.Interaction[Any]) -> None:
        """Serve ``interaction`` in this task, or wait for it behind the work in progress."""
        entry = self._live.get(session_id)
        if entry is None:
            entry = self._live[session_id] = LiveSession(session_id)
        elif entry.busy:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            entry.enqueue(QueuedInteraction(interaction, done))
            await done
            return
        entry.busy = True
        entry.runner = asyncio.current_task()
        try:
            await self._serve(entry, interaction)
        finally:
            entry.runner = None
            self._hand_off(entry)

    async def _run(self, entry: LiveSession, item: Any) -> None:
        """Serve ``item`` and everything queued behind it, then free the entry."""
        entry.runner = asyncio.current_task()
        try:
            opened = self._opened
            if opened is None or not opened.done():
                await self._ensure_open()  # a click that came before the store was open
            while item is not None:
                if type(item) is Interaction:  # the common case, without a layer
                    await self._serve(entry, item)
                else:
                    await self._serve_item(entry, item)
                item = entry.next_item()
        finally:
            entry.runner = None
            entry.busy = False
            self._forget_if_idle(entry)

    def _hand_off(self, entry: LiveSession) -> None:
        """Free ``entry`` after inline work, handing queued items to a task of their own."""
        item = entry.next_item()
        if item is None:
            entry.busy = False
            self._forget_if_idle(entry)
        else:
            self._spawn(self._run(entry, item), f"update-{entry.session_id}")

    def _forget_if_idle(self, entry: LiveSession) -> None:
        if entry.session is None and not entry.busy and self._live.get(entry.session_id) is entry:
            del self._live[entry.session_id]

    async def _serve_item(self, entry: LiveSession, item: Any) -> None:
        if item is EXPIRE:
            await self._expire(entry)
        elif isinstance(item, EndRequest):
            try:
                ended = await self._end_now(entry, item.code, item.reason)
            except BaseException as error:
                if not item.done.done():
                    item.done.set_exception(error)
                raise
            if not item.done.done():
                item.done.set_result(ended)
        elif isinstance(item, QueuedInteraction):
            try:
                await self._serve(entry, item.interaction)
            finally:
                if item.done is not None and not item.done.done():
                    item.done.set_result(None)
        else:
            await self._serve(entry, item)

    async def _serve(self, entry: LiveSession, interaction: discord.Interaction[Any]) -> None:
        """Serve one interaction: load, filter, handle, save, answer; never raises."""
        try:
            session = entry.session
            if session is None or self._shared:
                loaded = await self._load(entry, interaction)
                if loaded is None:
                    return
                session = loaded
            record = entry.record
            assert record is not None
            if self._shared:
                if interaction.id in record.recent:
                    # Delivered to another process too, which served it: not twice.
                    _log.debug("Interaction %s was served elsewhere already", interaction.id)
                    await self._release(entry)
                    return
                record.recent = (*record.recent[-(_RECENT_PER_SESSION - 1) :], interaction.id)
            now = self.clock.now()
            if record.deadline is not None and record.deadline <= now:
                # Due but not yet expired (the timer or a claim is on its way): it is expired.
                await self._end_now(entry, EndCode.EXPIRED, None)
                await self._missing(session.id, interaction)
                return

            update_filter = session.update_filter
            try:
                allowed = update_filter is None or await update_filter.check(session, interaction)
            except Exception as error:
                _log.exception("The update filter of session %s failed", session.id)
                self._emit(SessionEvent.ERROR, session, interaction, error)
                await self._release(entry)
                await self.responder.failed(interaction, session, error)
                return
            if not allowed:
                _log.info(
                    "Session %s (%s) refused an interaction from user %s",
                    session.id,
                    session.session_type,
                    interaction.user.id,
                )
                self._emit(SessionEvent.FILTERED, session, interaction)
                if self._shared:
                    # Saved, not just released: the refused interaction's id goes into
                    # the record, so a redelivery elsewhere is not refused a second time.
                    await self._settle(entry, release=True)
                await self.responder.filtered(
                    interaction, session, rejection_message(update_filter, session, interaction)
                )
                return

            if session.message_id is None and interaction.message is not None:
                session.message_id = interaction.message.id
            refresh = False
            try:
                refresh = await session.update(interaction)
            except Exception as error:
                _log.exception(
                    "Session %s (%s) failed to handle interaction %s",
                    session.id,
                    session.session_type,
                    interaction.id,
                )
                self._emit(SessionEvent.ERROR, session, interaction, error)
                if not interaction.response.is_done():
                    await self.responder.failed(interaction, session, error)
            else:
                self._emit(_UPDATE, session, interaction)
            ttl = record.ttl
            if refresh and ttl is not None and entry.stop_request is None:
                deadline = self.clock.now() + ttl
                hard = record.hard_deadline
                if hard is not None and hard < deadline:
                    deadline = hard
                record.deadline = deadline
                self._scheduler.schedule(session.id, deadline)
            await self._settle(entry, release=True, interaction=interaction)
            response = interaction.response  # a cached property: read it once
            if response._response_type is None:  # is_done(), without the call
                await self.responder.acknowledge(interaction)
        except Exception as error:
            _log.exception(
                "Serving interaction %s of session %s failed", interaction.id, entry.session_id
            )
            self._emit(SessionEvent.ERROR, entry.session, interaction, error)
            if not interaction.response.is_done():
                await self.responder.failed(interaction, entry.session, error)

    async def _load(
        self, entry: LiveSession, interaction: discord.Interaction[Any]
    ) -> Session[Any] | None:
        """Take the session's lease and bring the local object up to its record."""
        session_id = entry.session_id
        if entry.session is None and not self.store.persistent:
            await self._missing(session_id, interaction)
            return None
        try:
            async with self._store_slots:
                record = await self.store.acquire(
                    session_id,
                    lease_owner=self.lease_owner,
                    lease=self.lease,
                    wait=self.lease_wait,
                )
        except RecordError as error:
            _log.warning("Session %s cannot be restored: %s", session_id, error)
            self._drop(entry)
            self._emit(SessionEvent.ERROR, entry.session, interaction, error)
            await self.responder.broken(interaction, session_id, error)
            return None
        except StoreError as error:  # unreachable, or busy in another process
            _log.warning("Session %s is not available: %s", session_id, error)
            self._emit(SessionEvent.ERROR, entry.session, interaction, error)
            await self.responder.unavailable(interaction, error)
            return None
        if record is None:
            if entry.session is not None:
                self._gone_elsewhere(entry)
            await self._missing(session_id, interaction)
            return None
        try:
            session = self._adopt_record(entry, record)
        except RecordError as error:
            _log.warning("Session %s cannot be restored: %s", session_id, error)
            await self.store.release(session_id, lease_owner=self.lease_owner)
            self._emit(SessionEvent.ERROR, None, interaction, error)
            await self.responder.broken(interaction, session_id, error)
            return None
        return session

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
            self._scheduler.schedule(record.session_id, record.deadline)
        return session

    async def _settle(
        self,
        entry: LiveSession,
        *,
        release: bool,
        interaction: discord.Interaction[Any] | None = None,
    ) -> None:
        """After a hook ran: end the session if it asked to, else save its state.

        A handler has usually answered before its state is saved; if saving fails, the
        user is told (a follow-up), and a persistent store's session is reloaded from
        its last saved state on the next interaction instead of carrying on unsaved.
        """
        if entry.stop_request is not None:
            code, reason = entry.stop_request
            entry.stop_request = None
            await self._end_now(entry, code, reason)
            return
        session, record = entry.session, entry.record
        if session is None or record is None:
            return
        record.data = session.data
        record.message_id = session.message_id
        record.result = session.result
        try:
            if self._shared:
                async with self._store_slots:
                    await self.store.commit(record, lease_owner=self.lease_owner, release=release)
            else:
                await self.store.commit(record, lease_owner=self.lease_owner, release=release)
        except (StoreError, StateEncodeError) as error:
            _log.error("Session %s: state not saved, %s", session.id, error)
            self._emit(SessionEvent.ERROR, session, interaction, error)
            if not isinstance(error, RevisionConflictError):
                await self._release(entry)  # a conflict means the lease is not ours
            if self.store.persistent:
                self._drop(entry)
            if interaction is not None:
                if isinstance(error, StateEncodeError | RecordTooLargeError):
                    await self.responder.failed(interaction, session, error)  # not transient
                else:
                    await self.responder.unavailable(interaction, error)

    async def _release(self, entry: LiveSession) -> None:
        if not self._shared:
            return
        try:
            async with self._store_slots:
                await self.store.release(entry.session_id, lease_owner=self.lease_owner)
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

    def _on_deadline(self, session_id: str) -> None:
        entry = self._live.get(session_id)
        if entry is None:
            return
        if entry.busy:
            entry.enqueue(EXPIRE)
            return
        entry.busy = True
        self._spawn(self._run(entry, EXPIRE), f"expire-{session_id}")

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
                record = await self.store.acquire(
                    entry.session_id,
                    lease_owner=self.lease_owner,
                    lease=self.lease,
                    wait=self.lease_wait,
                )
            except (LeaseTimeoutError, StoreUnavailableError) as error:
                _log.warning("Session %s: expiry postponed, %s", entry.session_id, error)
                self._scheduler.schedule(entry.session_id, self.clock.now() + self.poll_interval)
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
            self._scheduler.schedule(entry.session_id, record.deadline)
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
                record = await self.store.acquire(
                    entry.session_id,
                    lease_owner=self.lease_owner,
                    lease=self.lease,
                    wait=self.lease_wait,
                )
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
        self._spawn(self._await_end_notice(session, stand_in), f"end-notice-{session.id}")

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
        self._scheduler.cancel(entry.session_id)
        queued, entry.queue = entry.queue, None
        if queued:
            self._spawn(self._answer_leftovers(entry.session_id, list(queued)), "leftovers")

    async def _answer_leftovers(self, session_id: str, items: list[Any]) -> None:
        for item in items:
            if isinstance(item, EndRequest):
                if not item.done.done():
                    item.done.set_result(False)
                continue
            if item is EXPIRE:
                continue
            interaction = item.interaction if isinstance(item, QueuedInteraction) else item
            if self.store.persistent and not self._closed:
                # Served afresh from the store: the record says whether it lives on (a
                # stale copy was dropped) or ended (the user is told it expired).
                await self._serve_now(session_id, interaction)
            else:
                await self._missing(session_id, interaction)
            if isinstance(item, QueuedInteraction) and item.done and not item.done.done():
                item.done.set_result(None)

    def _resolve(self, session: Session[Any], end: SessionEndData) -> None:
        promise = session.end_promise
        if not promise.done():
            promise.set_result(end)

    # -- plumbing ---------------------------------------------------------------------------

    def _emit(self, event: SessionEvent, *args: Any) -> None:
        self._events.emit(event, *args)

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"nyx-sessions-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            if is_already_acknowledged(error):
                return
            _log.error("Task %s failed", task.get_name(), exc_info=error)


def _earliest(first: float | None, second: float | None) -> float | None:
    if first is None:
        return second
    if second is None:
        return first
    return min(first, second)
