"""How a manager serves interactions: routing, ordering, filters, handlers, saving.

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

from ._arrivals import resume
from ._live import EXPIRE, STEPPING, EndRequest, LiveSession, QueuedInteraction
from .end import EndCode
from .ending import SessionEnding
from .errors import (
    RecordError,
    RecordTooLargeError,
    RevisionConflictError,
    StateEncodeError,
    StoreError,
)
from .events import SessionEvent
from .filters.base import rejection_message

if TYPE_CHECKING:
    from .session import Session
    from .stores.base import SessionRecord

__all__ = ["SessionRuntime"]

_log = logging.getLogger("nyx_sessions")
_RECENT_PER_SESSION = 16  # interaction ids kept in a shared record, for redeliveries
_UPDATE = SessionEvent.UPDATE  # enum member lookups are not free on the hot path
_UPDATE_TASK = "nyx-sessions-update-"


class SessionRuntime(SessionEnding):
    """Routing and serving of interactions; the base of ``SessionManager``."""

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
        entry = self._live.get(session_id)
        if entry is None:
            entry = self._live[session_id] = LiveSession(session_id)
        elif entry.busy:
            self._watchdog.watch(interaction)
            entry.enqueue(interaction)
            return True
        entry.busy = True
        self._arrivals.add(entry, interaction)
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
        opened = self._opened
        if self._closed or opened is None or not opened.done():
            self._check_open()
            opened = self._ensure_open()
            await opened
        if not self._recent.add(interaction.id):
            _log.debug("Interaction %s was delivered twice; serving it once", interaction.id)
            return True
        entry = self._live.get(session_id)
        if entry is None or entry.busy:
            self._watchdog.watch(interaction)
            await self._serve_now(session_id, interaction)
            return True
        # The common case, inline: an idle live session, served in this step until it
        # has to wait (see _route); served without waiting, there is nothing to watch.
        entry.busy = True
        entry.runner = STEPPING
        serving = self._serve(entry, interaction)
        try:
            try:
                waiting_on = serving.send(None)
            except StopIteration:
                pass
            else:
                # The loop given: asking asyncio for it costs a getpid() system call
                # on Python 3.11.
                entry.runner = asyncio.current_task(opened.get_loop())
                self._watchdog.watch(interaction)
                await resume(serving, waiting_on)
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
        """Serve ``item`` and everything queued behind it, then free the entry.

        The caller sets ``entry.runner``: the task this runs in, or ``STEPPING`` while it
        is stepped by hand.
        """
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
            entry.runner = self._spawn(self._run(entry, item), _UPDATE_TASK + entry.session_id)

    def _forget_if_idle(self, entry: LiveSession) -> None:
        if entry.session is None and not entry.busy and self._live.get(entry.session_id) is entry:
            del self._live[entry.session_id]
            self._scheduler.cancel(entry)  # a retry of a claim that found nothing to end

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

            if session.update_filter is not None and not await self._allowed(
                entry, session, interaction
            ):
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
                self._events.emit(_UPDATE, session, interaction)
            ttl = record.ttl
            if refresh and ttl is not None and entry.stop_request is None:
                deadline = self.clock.now() + ttl
                hard = record.hard_deadline
                if hard is not None and hard < deadline:
                    deadline = hard
                record.deadline = deadline
                self._scheduler.schedule(entry, deadline)
            if not self._saved_in_place(entry):
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

    async def _allowed(
        self, entry: LiveSession, session: Session[Any], interaction: discord.Interaction[Any]
    ) -> bool:
        """Apply the session's update filter; a refused or failed check is answered here."""
        update_filter = session.update_filter
        try:
            allowed = update_filter is None or await update_filter.check(session, interaction)
        except Exception as error:
            _log.exception("The update filter of session %s failed", session.id)
            self._emit(SessionEvent.ERROR, session, interaction, error)
            await self._release(entry)
            await self.responder.failed(interaction, session, error)
            return False
        if allowed:
            return True
        _log.info(
            "Session %s (%s) refused an interaction from user %s",
            session.id,
            session.session_type,
            interaction.user.id,
        )
        self._emit(SessionEvent.FILTERED, session, interaction)
        if self._shared:
            # Saved, not just released: the refused interaction's id goes into the
            # record, so a redelivery elsewhere is not refused a second time.
            await self._settle(entry, release=True)
        await self.responder.filtered(
            interaction, session, rejection_message(update_filter, session, interaction)
        )
        return False

    async def _load(
        self, entry: LiveSession, interaction: discord.Interaction[Any]
    ) -> Session[Any] | None:
        """Take the session's lease and bring the local object up to its record."""
        session_id = entry.session_id
        if entry.session is None and not self.store.persistent:
            await self._missing(session_id, interaction)
            return None
        try:
            record = await self._acquire(session_id)
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

    def _saved_in_place(self, entry: LiveSession) -> bool:
        """Save the state after an update when the store needs no I/O for it.

        The common case on the memory store, without a coroutine. False when there is
        more to do (a stop asked for, a store that needs I/O, a commit refused):
        :meth:`_settle` then does it all, and reports what fails.
        """
        commit_nowait = self._commit_nowait
        session, record = entry.session, entry.record
        if commit_nowait is None or entry.stop_request is not None or session is None:
            return False
        assert record is not None
        _take_state(record, session)
        try:
            commit_nowait(record, lease_owner=self.lease_owner, release=True)
        except StoreError:
            return False
        return True

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
        _take_state(record, session)
        try:
            if self._commit_nowait is not None:
                self._commit_nowait(record, lease_owner=self.lease_owner, release=release)
            else:
                commit = self.store.commit(record, lease_owner=self.lease_owner, release=release)
                await (self._in_store_slot(commit) if self._shared else commit)
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


def _take_state(record: SessionRecord, session: Session[Any]) -> None:
    """Copy what a hook may have changed from ``session`` into its ``record``, to be saved."""
    record.data = session.data
    record.message_id = session.message_id
    record.result = session.result


def _earliest(first: float | None, second: float | None) -> float | None:
    if first is None:
        return second
    if second is None:
        return first
    return min(first, second)
