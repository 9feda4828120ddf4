"""The session manager: starts sessions, routes interactions to them, ends them."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from typing import TYPE_CHECKING, Any, Self

import discord

from ._arrivals import Arrivals
from ._live import STEPPING, EndRequest, LiveSession, RecentIds
from .attach import ClientHook, session_ids_of
from .clock import Clock, LoopClock
from .codecs import SessionCustomIdCodec
from .end import EndCode, SessionEndData
from .errors import (
    ManagerClosedError,
    SessionLimitError,
    SessionStateError,
    StateEncodeError,
    StoreError,
    StoreUnavailableError,
)
from .events import EventHub, SessionEvent
from .filters.base import rejection_message
from .limits import SessionLimits
from .registry import SessionRegistry
from .responders import Responder
from .runtime import SessionRuntime, _earliest
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
_EXPIRY_CONCURRENCY = 16  # expiries in flight at once against a persistent store


class SessionManager(SessionRuntime):
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
    keep_start_interaction:
        True keeps ``session.start_interaction`` after ``start()`` has returned, for
        handlers and ``end()`` hooks that use its token (valid for 15 minutes), e.g. to
        edit an ephemeral message. By default it is dropped then: the interaction
        (about 1.6 KB with its payload) would be twice the rest of a session's memory,
        and a session edits its message by id (``session.message``), as a session
        restored from a persistent store does, which also works after 15 minutes.
    store_concurrency:
        The most calls a shared store serves for this manager at once; keep it below
        the store client's connection pool. Not applied to a pipelined store (one that
        serves concurrent calls on one connection, as ``RedisStore`` does).
    max_sessions, max_sessions_per_user:
        Caps on the live sessions this manager started, in all and per user; starting
        one more is refused with a reply saying why (see :class:`SessionLimits`).

    Attributes
    ----------
    client:
        The attached client, or None.
    codec:
        The custom-id codec: build ids with ``session.custom_id``, read them with
        ``manager.codec.create_iterator(interaction.data["custom_id"])``.
    store:
        The session store.
    clock:
        The time source.
    responder:
        The replies sent on a session's behalf.
    registry:
        The session classes that may be restored, by ``session_type``.
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
        max_sessions: int | None = None,
        max_sessions_per_user: int | None = None,
        keep_start_interaction: bool = False,
        store_concurrency: int = 64,
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
        # The local timer expires the sessions live in this process that fell due.
        self._scheduler = DeadlineScheduler(self.clock, self._queue_expiry, self._live.get)
        self._watchdog = AckWatchdog(self.clock, defer_after, self.responder.acknowledge)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._recent = RecentIds()
        self._arrivals = Arrivals(self._run, self._spawn, self._watchdog.watch, self._failed)
        self.limits = SessionLimits(max_sessions, max_sessions_per_user)
        self.keep_start_interaction = keep_start_interaction
        self._awaiting_notice: dict[str, Session[Any]] = {}
        self._expiry_slots = asyncio.Semaphore(_EXPIRY_CONCURRENCY)
        # Below redis-py's default pool of 100 connections: a flood of clicks (or of
        # forged ids naming live sessions) waits its turn instead of failing as
        # "unreachable", and the owner's own click still gets a connection.
        # A pipelined store serves concurrent calls on one connection: nothing to ration.
        self._store_slots: asyncio.Semaphore | None = (
            None if getattr(store, "pipelined", False) else asyncio.Semaphore(store_concurrency)
        )
        self._hook: ClientHook | None = None
        self._opened: asyncio.Task[None] | None = None
        self._closed = False
        self._shared = store.shared
        self._commit_nowait = getattr(store, "commit_nowait", None)  # replaced by the core rewrite
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
            self._opened = self._spawn(self._background.open(), "nyx-sessions-open")
        return self._opened

    async def aclose(self) -> None:
        """Close the manager; idempotent, and the manager cannot be used again.

        Running updates get ``close_timeout`` seconds to finish; then they are
        cancelled, and every interaction still unanswered gets the "try again" reply.
        Sessions in a persistent store stay there for the next process; in memory, they
        end. Either way every local end promise resolves with ``SHUTDOWN``.
        """
        if self._closed:
            return
        self._closed = True
        self.detach()
        await self._background.close(self.close_timeout)
        self._scheduler.close()
        for task in tuple(self._tasks):
            task.cancel()  # updates that outlived close_timeout, and their follow-ups
        await asyncio.gather(*tuple(self._tasks), return_exceptions=True)
        # Whatever the cancelled work left unanswered is answered now.
        leftover = self._watchdog.unanswered() + self._arrivals.abandon()
        self._watchdog.close()
        closing = ManagerClosedError("the session manager closed")
        for interaction in leftover:
            await self.responder.unavailable(interaction, closing)
        await self._watchdog.drain()
        await self._events.drain()
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
        if start_filter is not None and interaction is not None:
            try:
                allowed = await start_filter.check(session, interaction)
            except Exception as error:
                _log.exception("The start filter of session %s failed", session.id)
                self._emit(SessionEvent.ERROR, session, interaction, error)
                await self.responder.failed(interaction, session, error)
                self._end_unstarted(session, EndCode.ERROR, "start filter failed")
                return False
            if not allowed:
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
            self.limits.check(session.owner_id)
            await self.store.create(record, lease_owner=self.lease_owner, lease=self.lease)
        except (SessionLimitError, StoreError, StateEncodeError) as error:
            # Refused, unreachable or unencodable: the user is told, nothing is half-made.
            del self._live[session.id]
            limited = isinstance(error, SessionLimitError)
            level = logging.INFO if limited else logging.ERROR
            _log.log(level, "Session %s not started: %s", session.id, error)
            if not limited:
                self._emit(SessionEvent.ERROR, session, interaction, error)
            if interaction is not None:
                if limited:
                    await self.responder.filtered(interaction, session, str(error))
                elif isinstance(error, StoreUnavailableError):
                    await self.responder.unavailable(interaction, error)
                else:
                    await self.responder.failed(interaction, session, error)
            self._end_unstarted(session, EndCode.REJECTED if limited else EndCode.ERROR, str(error))
            return False
        except BaseException:
            del self._live[session.id]
            session.manager = None
            raise
        self.limits.started(session.owner_id)
        entry.counted = True
        if record.deadline is not None:
            self._scheduler.schedule(entry, record.deadline)
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
        if not self.keep_start_interaction:
            session.start_interaction = None  # ~1.6 KB a session; edit by message id
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
        self._end_unstarted(session, EndCode.REJECTED, "start filter")

    def _end_unstarted(self, session: Session[Any], code: EndCode, reason: str) -> None:
        """End a session that never ran: no ``end()`` hook, nothing in the store."""
        session.end_code = code
        end = SessionEndData(session.id, code, reason, None)
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
        elif entry.busy and (
            entry.runner is STEPPING
            or (entry.runner is not None and entry.runner is asyncio.current_task())
        ):
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

    def __repr__(self) -> str:
        return (
            f"<SessionManager live={len(self)} store={self.store!r} "
            f"{'closed' if self._closed else 'open'}>"
        )
