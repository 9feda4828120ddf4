"""The session manager: starts sessions, routes interactions to them, ends them."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from typing import TYPE_CHECKING, Any, Self

import discord

from ._live import EXPIRE, EndRequest, LiveSession, QueuedInteraction
from .attach import ClientHook, session_ids_of
from .clock import Clock, LoopClock
from .codecs import SessionCustomIdCodec
from .end import EndCode, SessionEndData
from .errors import (
    LeaseTimeoutError,
    ManagerClosedError,
    RecordError,
    RevisionConflictError,
    SessionStateError,
    StoreError,
    StoreUnavailableError,
    UnknownSessionTypeError,
)
from .events import EventHub, SessionEvent
from .filters.base import rejection_message
from .registry import SessionRegistry
from .responders import Responder, is_already_acknowledged
from .scheduler import DeadlineScheduler
from .stores.base import SessionRecord
from .stores.memory import MemoryStore
from .watchdog import AckWatchdog

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

    from ._types import Listener
    from .session import AbstractSession, Session
    from .stores.base import SessionStore

__all__ = ["SessionManager"]

_log = logging.getLogger("nyx_sessions")


class SessionManager:
    """Starts sessions, routes their interactions to them and ends them.

    Parameters
    ----------
    client:
        A ``discord.Client``, ``commands.Bot`` or ``AutoShardedBot``; the manager
        attaches itself (see :meth:`attach`). None to attach later.
    store:
        Where session records live: a :class:`~nyx_sessions.MemoryStore` by default, or
        a :class:`~nyx_sessions.stores.redis.RedisStore` for sessions that survive
        restarts and are shared by several processes.
    codec:
        The custom-id codec; ``SessionCustomIdCodec()`` (prefix ``nyx``) by default.
    clock:
        The time source for TTLs (inject a ``ManualClock`` in tests).
    responder:
        The replies sent on a session's behalf (expired, refused, failed, busy).
    sessions:
        Session classes that may be restored from a persistent store (see
        :meth:`register`).
    defer_after:
        Seconds after which a still-running handler's interaction is deferred, so that
        Discord's 3-second window never passes unanswered.
    lease:
        Seconds a process holds a session's lease while it serves one interaction
        (shared stores); a crashed holder's lease runs out after this.
    lease_wait:
        Seconds to wait for a session that another process is serving.
    poll_interval:
        Seconds between claims of expired sessions in a persistent store.
    close_timeout:
        Seconds :meth:`aclose` waits for running updates.
    """

    def __init__(
        self,
        client: discord.Client | None = None,
        *,
        store: SessionStore | None = None,
        codec: SessionCustomIdCodec | None = None,
        clock: Clock | None = None,
        responder: Responder | None = None,
        sessions: Iterable[type[AbstractSession[Any]]] = (),
        defer_after: float = 2.5,
        lease: float = 15.0,
        lease_wait: float = 5.0,
        poll_interval: float = 1.0,
        close_timeout: float = 5.0,
    ) -> None:
        self.clock: Clock = clock or LoopClock()
        self._owns_store = store is None
        if store is None:
            store = MemoryStore(clock=self.clock)
        elif clock is not None and hasattr(store, "use_clock"):
            store.use_clock(clock)
        self.store: SessionStore = store
        self.codec = codec or SessionCustomIdCodec()
        self.responder = responder or Responder()
        self.registry = SessionRegistry(sessions)
        self.client: discord.Client | None = None
        self.defer_after = defer_after
        self.lease = lease
        self.lease_wait = lease_wait
        self.poll_interval = poll_interval
        self.close_timeout = close_timeout
        self.lease_owner = f"{os.getpid()}-{secrets.token_hex(6)}"
        self._live: dict[str, LiveSession] = {}
        self._events = EventHub()
        self._scheduler = DeadlineScheduler(self.clock, self._on_deadline)
        self._watchdog = AckWatchdog(self.clock, defer_after, self.responder.acknowledge)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._hook: ClientHook | None = None
        self._opened: asyncio.Task[None] | None = None
        self._closed = False
        self._shared = store.shared
        from .background import Background

        self._background = Background(self)
        if client is not None:
            self.attach(client)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # no loop yet: starts in the client's setup_hook or on first use
        else:
            self._ensure_open()

    # -- life cycle ------------------------------------------------------------------------

    def attach(self, client: discord.Client) -> None:
        """Route ``client``'s component and modal interactions through this manager.

        The client's own views, modals, DynamicItems and ``on_interaction`` listeners
        keep working; events are also dispatched as ``on_session_<event>``.
        """
        self._check_open()
        if self._hook is not None:
            raise SessionStateError(f"already attached to {self._hook.client!r}")
        hook = ClientHook(self, client)
        hook.install()
        self._hook = hook
        self.client = client
        self._events.bind(client)

    def detach(self) -> None:
        """Stop routing the attached client's interactions; a no-op when not attached."""
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        self._events.bind(None)

    async def open(self) -> None:
        """Start background work now: the store, expiry claims, end notifications.

        Called by itself inside a running loop, by the client's ``setup_hook``, or on
        first use; awaiting it is only needed to see a store failure early.
        """
        await self._ensure_open()

    def _ensure_open(self) -> asyncio.Task[None]:
        if self._opened is None:
            self._opened = self._spawn(self._background.open(), "open")
        return self._opened

    async def aclose(self) -> None:
        """Close the manager; idempotent, and the manager cannot be used again.

        Running updates get ``close_timeout`` seconds to finish. Sessions in a
        persistent store stay there for the next process; in memory, they end. Either
        way every local end promise resolves with ``SHUTDOWN`` and queued
        interactions are answered.
        """
        if self._closed:
            return
        self._closed = True
        self.detach()
        await self._background.close(self.close_timeout)
        self._scheduler.close()
        self._watchdog.close()
        await self._watchdog.drain()
        await self._events.drain()
        for task in tuple(self._tasks):
            task.cancel()
        await asyncio.gather(*tuple(self._tasks), return_exceptions=True)
        if self._owns_store:
            await self.store.aclose()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ManagerClosedError("the session manager is closed")

    # -- registry and listeners ------------------------------------------------------------

    def register(self, *session_classes: type[AbstractSession[Any]]) -> None:
        """Allow these classes to be restored from a persistent store, by ``session_type``."""
        self.registry.register(*session_classes)

    def add_listener(self, event: SessionEvent | str, callback: Listener) -> None:
        """Call the coroutine function ``callback`` on ``event`` (see :class:`SessionEvent`)."""
        self._events.add(event, callback)

    def remove_listener(self, event: SessionEvent | str, callback: Listener) -> None:
        """Stop calling ``callback`` on ``event``."""
        self._events.remove(event, callback)

    def _emit(self, event: SessionEvent, *args: Any) -> None:
        self._events.emit(event, *args)

    # -- queries ---------------------------------------------------------------------------

    def get(self, session_id: str) -> Session[Any] | None:
        """Return the live session object with this id in this process, or None."""
        entry = self._live.get(session_id)
        if entry is None or entry.session is None or entry.session.end_code is not None:
            return None
        return entry.session

    async def active(self) -> dict[str, int]:
        """Return the number of live sessions per session type, store-wide."""
        await self._ensure_open()
        return await self.store.count_by_type()

    def __len__(self) -> int:
        return sum(1 for entry in self._live.values() if entry.session is not None)

    # -- start -----------------------------------------------------------------------------

    async def start(self, session: Session[Any]) -> bool:
        """Start ``session``: apply its start filter, store it, run its ``start()`` hook.

        Returns
        -------
        bool
            True when the session started; False when its start filter refused it or
            its ``start()`` failed (its end promise says which).
        """
        self._check_open()
        await self._ensure_open()
        if session.manager is not None:
            raise SessionStateError(f"session {session.id} was started already")
        if session.id in self._live:
            raise SessionStateError(f"a session with id {session.id} is live already")
        session.manager = self
        interaction = session.start_interaction
        start_filter = session.start_filter
        if (
            start_filter is not None
            and interaction is not None
            and not await start_filter.check(session, interaction)
        ):
            await self._reject(session, interaction)
            return False

        entry = LiveSession(session.id, session)
        entry.busy = True
        entry.runner = asyncio.current_task()
        now = self.clock.now()
        record = self._new_record(session, now)
        entry.record = record
        self._live[session.id] = entry
        try:
            await self.store.create(record, lease_owner=self.lease_owner, lease=self.lease)
        except BaseException:
            del self._live[session.id]
            session.manager = None
            raise
        if record.deadline is not None:
            self._scheduler.schedule(session.id, record.deadline)
        _log.debug(
            "Session %s (%s) started by %s", session.id, session.session_type, session.owner_id
        )
        self._emit(SessionEvent.START, session)

        started = True
        try:
            await session.start()
        except Exception as error:
            started = False
            _log.exception("Session %s (%s) failed to start", session.id, session.session_type)
            self._emit(SessionEvent.ERROR, session, interaction, error)
            if interaction is not None:
                await self.responder.failed(interaction, session, error)
            entry.stop_request = (EndCode.ERROR, f"start() raised {type(error).__name__}")
        if interaction is not None and not interaction.response.is_done():
            await self.responder.acknowledge(interaction)
        await self._settle(entry, release=True)
        self._hand_off(entry)
        return started

    async def _reject(self, session: Session[Any], interaction: discord.Interaction[Any]) -> None:
        message = rejection_message(session.start_filter, session, interaction)
        _log.info(
            "Session %s (%s) rejected by its start filter for user %s",
            session.id,
            session.session_type,
            session.owner_id,
        )
        self._emit(SessionEvent.FILTERED, session, interaction)
        await self.responder.filtered(interaction, session, message)
        session.end_code = EndCode.REJECTED
        end = SessionEndData(session.id, EndCode.REJECTED, "start filter", None)
        self._resolve(session, end)
        self._emit(SessionEvent.END, session, end)

    def _new_record(self, session: Session[Any], now: float) -> SessionRecord:
        hard = now + session.max_lifetime if session.max_lifetime is not None else None
        return SessionRecord(
            session_id=session.id,
            session_type=session.session_type,
            owner_id=session.owner_id,
            guild_id=session.guild_id,
            channel_id=session.channel_id,
            message_id=session.message_id,
            data=session.data,
            data_version=session.data_version,
            created_at=now,
            ttl=session.ttl,
            deadline=_earliest(now + session.ttl if session.ttl is not None else None, hard),
            hard_deadline=hard,
        )

    # -- update ----------------------------------------------------------------------------

    def _route(self, interaction: discord.Interaction[Any], custom_id: object) -> bool:
        """Take ``interaction`` if it belongs to a session; called while discord.py parses it."""
        session_id = self.codec.extract_session_id(custom_id)
        if session_id is None or self._closed:
            return False
        self._watchdog.watch(interaction)
        entry = self._live.get(session_id)
        if entry is None:
            entry = self._live[session_id] = LiveSession(session_id)
        elif entry.busy:
            entry.enqueue(interaction)
            return True
        entry.busy = True
        self._spawn(self._run(entry, interaction), f"update-{session_id}")
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
        self._watchdog.watch(interaction)
        entry = self._live.get(session_id)
        if entry is None:
            entry = self._live[session_id] = LiveSession(session_id)
        elif entry.busy:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            entry.enqueue(QueuedInteraction(interaction, done))
            await done
            return True
        entry.busy = True
        entry.runner = asyncio.current_task()
        try:
            await self._serve(entry, interaction)
        finally:
            entry.runner = None
            self._hand_off(entry)
        return True

    async def _run(self, entry: LiveSession, item: Any) -> None:
        """Serve ``item`` and everything queued behind it, then free the entry."""
        entry.runner = asyncio.current_task()
        try:
            while item is not None:
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
        """Serve one interaction: load, filter, handle, save, answer."""
        session = entry.session
        if session is None or self._shared:
            loaded = await self._load(entry, interaction)
            if loaded is None:
                return
            session = loaded
        record = entry.record
        assert record is not None
        now = self.clock.now()
        if record.deadline is not None and record.deadline <= now:
            # Due but not yet expired (the timer or a claim is on its way): it is expired.
            await self._end_now(entry, EndCode.EXPIRED, None)
            await self._missing(session.id, interaction)
            return

        update_filter = session.update_filter
        if update_filter is not None and not await update_filter.check(session, interaction):
            _log.info(
                "Session %s (%s) refused an interaction from user %s",
                session.id,
                session.session_type,
                interaction.user.id,
            )
            self._emit(SessionEvent.FILTERED, session, interaction)
            await self._release(entry)
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
            self._emit(SessionEvent.UPDATE, session, interaction)
        if refresh and entry.stop_request is None and record.ttl is not None:
            record.deadline = _earliest(self.clock.now() + record.ttl, record.hard_deadline)
            self._scheduler.schedule(session.id, record.deadline)  # type: ignore[arg-type]
        await self._settle(entry, release=True)
        if not interaction.response.is_done():
            await self.responder.acknowledge(interaction)

    async def _load(
        self, entry: LiveSession, interaction: discord.Interaction[Any]
    ) -> Session[Any] | None:
        """Take the session's lease and bring the local object up to its record."""
        session_id = entry.session_id
        if entry.session is None and not self.store.persistent:
            await self._missing(session_id, interaction)
            return None
        try:
            record = await self.store.acquire(
                session_id, lease_owner=self.lease_owner, lease=self.lease, wait=self.lease_wait
            )
        except RecordError as error:
            _log.warning("Session %s cannot be restored: %s", session_id, error)
            self._drop(entry)
            self._emit(SessionEvent.ERROR, entry.session, interaction, error)
            await self.responder.broken(interaction, session_id, error)
            return None
        except (LeaseTimeoutError, StoreUnavailableError) as error:
            _log.warning("Session %s is not available: %s", session_id, error)
            self._emit(SessionEvent.ERROR, entry.session, interaction, error)
            await self.responder.unavailable(interaction, error)
            return None
        if record is None:
            if entry.session is not None:
                # Ended in another process; its end notice may still be on its way.
                self._drop(entry)
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
            session.manager = self
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

    async def _settle(self, entry: LiveSession, *, release: bool) -> None:
        """After a hook ran: end the session if it asked to, else save its state."""
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
        record.result = getattr(session, "result", None)
        try:
            await self.store.commit(record, lease_owner=self.lease_owner, release=release)
        except RevisionConflictError as error:
            # Another process moved the session on while this one held a stale copy
            # (its lease ran out). Drop the copy; the next interaction reloads it.
            _log.error("Session %s: state not saved, %s", session.id, error)
            self._emit(SessionEvent.ERROR, session, None, error)
            self._drop(entry)
        except StoreError as error:
            _log.error("Session %s: state not saved, %s", session.id, error)
            self._emit(SessionEvent.ERROR, session, None, error)
            await self._release(entry)

    async def _release(self, entry: LiveSession) -> None:
        if not self._shared:
            return
        try:
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

    # -- end -------------------------------------------------------------------------------

    async def end(
        self,
        session_or_id: Session[Any] | str,
        *,
        code: EndCode = EndCode.CANCELLED,
        reason: str | None = None,
    ) -> bool:
        """End a session: run its ``end()`` hook, drop it from the store, resolve its promise.

        Inside one of the session's own hooks, the end is recorded and runs as soon as
        the hook returns; elsewhere this waits for it, after any update in progress.

        Returns
        -------
        bool
            True when this call ended the session; False when it had ended already.
        """
        session_id = session_or_id if isinstance(session_or_id, str) else session_or_id.id
        entry = self._live.get(session_id)
        if entry is None:
            if not self.store.persistent or not isinstance(session_or_id, str):
                return False
            entry = self._live[session_id] = LiveSession(session_id)
        elif entry.busy and entry.runner is not None and entry.runner is asyncio.current_task():
            if entry.stop_request is None:
                entry.stop_request = (code, reason)
            return True
        if entry.busy:
            done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            entry.enqueue(EndRequest(code, reason, done))
            return await done
        entry.busy = True
        entry.runner = asyncio.current_task()
        try:
            return await self._end_now(entry, code, reason)
        finally:
            entry.runner = None
            self._hand_off(entry)

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
                self._drop(entry)  # ended elsewhere
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

    def _drop(self, entry: LiveSession) -> None:
        """Forget a session locally and answer whatever was queued for it."""
        if self._live.get(entry.session_id) is entry:
            del self._live[entry.session_id]
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
            # Re-route: the session may have been restored or re-created since.
            if (
                self.codec.extract_session_id((interaction.data or {}).get("custom_id"))
                and (session_id in self._live or self.store.persistent)
                and not self._closed
            ):
                await self.update(interaction)
            else:
                await self._missing(session_id, interaction)
            if isinstance(item, QueuedInteraction) and item.done and not item.done.done():
                item.done.set_result(None)

    def _resolve(self, session: Session[Any], end: SessionEndData) -> None:
        promise = session.end_promise
        if not promise.done():
            promise.set_result(end)

    # -- views ----------------------------------------------------------------------------

    def _adopt_view(self, view: discord.ui.view.BaseView, message_id: int | None) -> bool:
        """Keep a session's view out of discord.py's view store; note its message id."""
        session_ids = session_ids_of(view, self.codec.extract_session_id)
        if session_ids is None:
            return False
        if message_id is not None:
            for session_id in dict.fromkeys(session_ids):
                entry = self._live.get(session_id)
                if (
                    entry is not None
                    and entry.session is not None
                    and entry.session.message_id is None
                ):
                    entry.session.message_id = message_id
        return True

    # -- tasks -----------------------------------------------------------------------------

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

    def __repr__(self) -> str:
        return (
            f"<SessionManager live={len(self)} store={self.store!r} "
            f"{'closed' if self._closed else 'open'}>"
        )


def _earliest(first: float | None, second: float | None) -> float | None:
    if first is None:
        return second
    if second is None:
        return first
    return min(first, second)
