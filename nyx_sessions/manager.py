"""The session manager: starts sessions, routes interactions to them, ends them.

A click, from the gateway to its answer: discord.py parses the gateway event and hands
the interaction to its view store, where the manager's hook (:mod:`.attach`) asks the
codec for the session id in the custom id; ids not in the manager's format go on to
discord.py's own views. The routing table (:mod:`.routing`) drops a redelivered
interaction and finds the session's entry; the click joins that session's serial queue
(:mod:`.queues`), which an idle session starts draining at once in a task of its own
(eagerly on Python 3.12+, so the handler runs before the parser returns), and the
deferral (:mod:`.deferral`) starts watching it unless it was answered already. The
drain task serves it (:mod:`.serving`): with a shared store it takes the session's lease
and loads the record (:mod:`.restoring`); then the update filter, the session's
handler, the TTL refresh on the one scheduler (:mod:`.scheduler`), the commit through
the store adapter (:mod:`.storage`), and a silent acknowledgement if the handler left
the interaction unanswered. An end the handler asked for runs after it
(:mod:`.ending`). Every answer the manager gives goes through the deferral's guard, one
at a time per interaction; the task ends when the session's queue is empty.

:class:`SessionManager` holds these parts; it is the public API and the glue.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Self

import discord

from .attach import ClientHook, session_ids_of
from .background import Background
from .clock import Clock, LoopClock
from .codecs import SessionCustomIdCodec
from .deferral import Deferral
from .end import EndCode, SessionEndData
from .ending import Ending, resolve
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
from .queues import Click, EndRequest, Expire, SerialQueues
from .registry import SessionRegistry
from .responders import Responder
from .restoring import Restorer
from .routing import LiveSession, Routing
from .scheduler import DeadlineScheduler
from .serving import Serving
from .storage import StoreAdapter
from .stores.base import SessionRecord
from .stores.memory import MemoryStore
from .tasks import Tasks

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

    from ._types import Listener
    from .session import AbstractSession, Session
    from .stores.base import SessionStore

__all__ = ["SessionManager"]

_log = logging.getLogger("nyx_sessions")
_EXPIRE = Expire()


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
    keep_start_interaction:
        True keeps ``session.start_interaction`` after ``start()`` has returned, for
        handlers and ``end()`` hooks that use its token (valid for 15 minutes), e.g. to
        edit an ephemeral message. By default it is dropped then: the interaction
        (about 1.6 KB with its payload) would be twice the rest of a session's memory,
        and a session edits its message by id (``session.message``), as a session
        restored from a persistent store does, which also works after 15 minutes.
    store_concurrency:
        The most calls a shared store serves for this manager at once; keep it below
        the store client's connection pool. Every call of a shared store counts, end
        notices included.
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
        elif clock is not None:
            store.use_clock(clock)
        self.store: SessionStore = store
        self.codec = codec or SessionCustomIdCodec()
        self.responder = responder or Responder()
        self.registry = SessionRegistry(sessions)
        self.limits = SessionLimits(max_sessions, max_sessions_per_user)
        self.client: discord.Client | None = None
        self.defer_after = defer_after
        self.poll_interval = poll_interval
        self.close_timeout = close_timeout
        self.keep_start_interaction = keep_start_interaction
        # The parts; each module's docstring says what its part does.
        self._tasks = Tasks()
        self._events = EventHub()
        self._routing = Routing(self.codec)
        self._live = self._routing.live
        self._storage = StoreAdapter(
            store, lease=lease, lease_wait=lease_wait, concurrency=store_concurrency
        )
        self._scheduler: DeadlineScheduler[LiveSession] = DeadlineScheduler(
            self.clock, self._queue_expiry, self._live.get
        )
        self._queues = SerialQueues(_Worker(self), self._tasks, self._forget_if_idle)
        self._deferral = Deferral(self.clock, defer_after, self.responder.acknowledge, self._tasks)
        self._restorer = Restorer(self, self._storage, self.registry, self._scheduler)
        self._ending = Ending(
            clock=self.clock,
            routing=self._routing,
            queues=self._queues,
            storage=self._storage,
            restorer=self._restorer,
            scheduler=self._scheduler,
            limits=self.limits,
            events=self._events,
            poll_interval=poll_interval,
        )
        self._serving = Serving(
            clock=self.clock,
            storage=self._storage,
            restorer=self._restorer,
            ending=self._ending,
            scheduler=self._scheduler,
            deferral=self._deferral,
            events=self._events,
            responder=self.responder,
        )
        self._background = Background(self)
        self._hook: ClientHook | None = None
        self._opened: asyncio.Task[None] | None = None
        self._closed = False
        if client is not None:
            self.attach(client)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # no loop yet: starts in the client's setup_hook or on first use
        else:
            self._ensure_open()

    @property
    def lease(self) -> float:
        """Seconds a process holds a session's lease while it serves one interaction."""
        return self._storage.lease

    @property
    def lease_owner(self) -> str:
        """Return the name this manager holds leases under."""
        return self._storage.lease_owner

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
            self._opened = self._tasks.spawn(self._background.open(), "nyx-sessions-open")
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

        Raises
        ------
        SessionStateError
            The session was started already, or has a start filter but comes from a
            prefix command (a filter checks the start interaction, and there is none).
        SessionTypeNotRegisteredError
            With a persistent store: the manager cannot restore the session's class.
        """
        self._check_open()
        await self._ensure_open()
        if session.manager is not None:
            raise SessionStateError(f"session {session.id} was started already")
        if session.id in self._live:
            raise SessionStateError(f"a session with id {session.id} is live already")
        if self.store.persistent:
            # A class the registry cannot restore works until the first restart: refuse
            # it here, before anything is sent to Discord.
            self.registry.check_startable(session)
        interaction = session.start_interaction
        start_filter = session.start_filter
        if start_filter is not None and interaction is None:
            # Filters check an interaction; skipping one quietly would let anyone start it.
            raise SessionStateError(
                f"session {session.id} ({session.session_type}) has a start filter, which "
                "checks the start interaction, but comes from a prefix command, which has "
                "none: check who may start it in the command instead (commands.check, "
                "commands.guild_only, ...), or start it from a slash command"
            )
        session.manager = self
        if start_filter is not None and interaction is not None:
            try:
                allowed = await start_filter.check(session, interaction)
            except Exception as error:
                _log.exception("The start filter of session %s failed", session.id)
                self._emit(SessionEvent.ERROR, session, interaction, error)
                await self._serving.answer(
                    interaction, self.responder.failed(interaction, session, error)
                )
                self._end_unstarted(session, EndCode.ERROR, "start filter failed")
                return False
            if not allowed:
                await self._reject(session, interaction)
                return False

        entry = LiveSession(session.id, session)
        self._queues.hold(entry)  # clicks that come while start() runs wait behind it
        now = self.clock.now()
        record = self._new_record(session, now)
        entry.record = record
        self._live[session.id] = entry
        try:
            self.limits.check(session.owner_id)
            await self._storage.create(record)
        except (SessionLimitError, StoreError, StateEncodeError) as error:
            # Refused, unreachable or unencodable: the user is told, nothing is half-made.
            del self._live[session.id]
            self._release_unstarted(entry)
            limited = isinstance(error, SessionLimitError)
            level = logging.INFO if limited else logging.ERROR
            _log.log(level, "Session %s not started: %s", session.id, error)
            if not limited:
                self._emit(SessionEvent.ERROR, session, interaction, error)
            if interaction is not None:
                if limited:
                    reply = self.responder.filtered(interaction, session, str(error))
                elif isinstance(error, StoreUnavailableError):
                    reply = self.responder.unavailable(interaction, error)
                else:
                    reply = self.responder.failed(interaction, session, error)
                await self._serving.answer(interaction, reply)
            self._end_unstarted(session, EndCode.REJECTED if limited else EndCode.ERROR, str(error))
            return False
        except BaseException:
            del self._live[session.id]
            self._release_unstarted(entry)
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
                await self._serving.answer(
                    interaction, self.responder.failed(interaction, session, error)
                )
            entry.stop_request = (EndCode.ERROR, f"start() raised {type(error).__name__}")
        if interaction is not None and not interaction.response.is_done():
            await self._serving.answer(interaction, self.responder.acknowledge(interaction))
        ttl = session.ttl
        if started and ttl is not None and ttl != record.ttl:  # start() set its own
            deadline, hard = self.clock.now() + ttl, record.hard_deadline
            record.deadline = deadline if hard is None else min(deadline, hard)
            self._scheduler.schedule(entry, record.deadline)
        if not self.keep_start_interaction:
            session.start_interaction = None  # ~1.6 KB a session; edit by message id
        try:
            await self._serving.settle(entry, release=True)
        finally:
            self._queues.let_go(entry)
        return started

    def _release_unstarted(self, entry: LiveSession) -> None:
        """Clicks that came for a session that did not start: served (as unknown) now."""
        for item in self._queues.take(entry):
            self._queues.submit(self._routing.entry(entry.session_id), item)
        entry.queue = None
        entry.task = None

    async def _reject(self, session: Session[Any], interaction: discord.Interaction[Any]) -> None:
        message = rejection_message(session.start_filter, session, interaction)
        _log.info(
            "Session %s (%s) rejected by its start filter for user %s",
            session.id,
            session.session_type,
            session.owner_id,
        )
        self._emit(SessionEvent.FILTERED, session, interaction)
        await self._serving.answer(
            interaction, self.responder.filtered(interaction, session, message)
        )
        self._end_unstarted(session, EndCode.REJECTED, "start filter")

    def _end_unstarted(self, session: Session[Any], code: EndCode, reason: str) -> None:
        """End a session that never ran: no ``end()`` hook, nothing in the store."""
        session.end_code = code
        end = SessionEndData(session.id, code, reason, None)
        resolve(session, end)
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
            deadline=min(
                (
                    d
                    for d in (now + session.ttl if session.ttl is not None else None, hard)
                    if d is not None
                ),
                default=None,
            ),
            hard_deadline=hard,
        )

    # -- routing and serving -----------------------------------------------------------------

    def _route(self, interaction: discord.Interaction[Any], custom_id: object) -> bool:
        """Take ``interaction`` if it belongs to a session; called while discord.py parses it."""
        session_id = self.codec.extract_session_id(custom_id)
        if session_id is None or self._closed:
            return False
        if not self._routing.recent.add(interaction.id):
            _log.debug("Interaction %s was delivered twice; serving it once", interaction.id)
            return True
        entry = self._routing.entry(session_id)
        click = Click(interaction, self.clock.now())
        self._queues.submit(entry, click)
        if not interaction.response.is_done():
            click.watch = self._deferral.watch(interaction, entry)
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
        await self._ensure_open()
        if not self._routing.recent.add(interaction.id):
            _log.debug("Interaction %s was delivered twice; serving it once", interaction.id)
            return True
        entry = self._routing.entry(session_id)
        done = asyncio.get_running_loop().create_future()
        click = Click(interaction, self.clock.now(), done)
        self._queues.submit(entry, click)
        if not done.done():
            click.watch = self._deferral.watch(interaction, entry)
            await done
        return True

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
            entry = self._routing.entry(session_id)
        elif entry.task is not None and entry.task is asyncio.current_task():
            if entry.stop_request is None:  # asked from the session's own hook
                entry.stop_request = (code, reason)
            return True
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queues.submit(entry, EndRequest(code, reason, done))
        return await done

    def _queue_expiry(self, entry: LiveSession) -> None:
        self._queues.submit(entry, _EXPIRE)

    def _forget_if_idle(self, entry: LiveSession) -> None:
        if entry.session is None and self._live.get(entry.session_id) is entry:
            del self._live[entry.session_id]
            self._scheduler.cancel(entry)  # a retry of a claim that found nothing to end

    def _emit(self, event: SessionEvent, *args: Any) -> None:
        self._events.emit(event, *args)

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


class _Worker:
    """What the queued work runs on (see :class:`~nyx_sessions.queues.Worker`)."""

    __slots__ = ("_manager",)

    def __init__(self, manager: SessionManager) -> None:
        self._manager = manager

    async def serve(
        self, entry: LiveSession, interaction: discord.Interaction[Any], taken_at: float
    ) -> None:
        manager = self._manager
        opened = manager._opened
        if opened is None or not opened.done():
            try:
                await manager._ensure_open()  # a click that came before the store was open
            except Exception as error:
                _log.error("The session store could not be opened: %s", error)
                reply = manager.responder.unavailable(interaction, error)
                await manager._serving.answer(interaction, reply)
                return
        if manager.clock.now() - taken_at >= manager.defer_after:
            # Its turn came late (a long queue, a saturated loop): deferred before the
            # handler runs, without waiting for the deferral's timer, which is late too.
            await manager._deferral.defer_now(interaction, entry)
        await manager._serving.serve(entry, interaction)

    async def expire(self, entry: LiveSession) -> None:
        await self._manager._ending.expire(entry)

    async def end_now(self, entry: LiveSession, code: EndCode, reason: str | None) -> bool:
        return await self._manager._ending.end_now(entry, code, reason)
