"""Serving one interaction: load, check, handle, save, answer.

:meth:`Serving.serve` runs in the session's drain task (see :mod:`nyx_sessions.queues`),
so no other work on the session runs meanwhile. With a shared store it holds the
session's lease from the load to the save, and saves with the revision it read.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .end import EndCode
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
    from collections.abc import Coroutine

    import discord

    from .clock import Clock
    from .deferral import Deferral
    from .ending import Ending
    from .events import EventHub
    from .responders import Responder
    from .restoring import Restorer
    from .routing import LiveSession
    from .scheduler import DeadlineScheduler
    from .session import Session
    from .storage import StoreAdapter
    from .stores.base import SessionRecord

__all__ = ["Serving"]

_log = logging.getLogger("nyx_sessions")
_RECENT_PER_SESSION = 16  # interaction ids kept in a shared record, for redeliveries


class Serving:
    """Serves interactions on their sessions and answers for them where owed."""

    __slots__ = (
        "_clock",
        "_deferral",
        "_ending",
        "_events",
        "_restorer",
        "_scheduler",
        "_storage",
        "responder",
    )

    def __init__(
        self,
        *,
        clock: Clock,
        storage: StoreAdapter,
        restorer: Restorer,
        ending: Ending,
        scheduler: DeadlineScheduler[LiveSession],
        deferral: Deferral,
        events: EventHub,
        responder: Responder,
    ) -> None:
        self._clock = clock
        self._storage = storage
        self._restorer = restorer
        self._ending = ending
        self._scheduler = scheduler
        self._deferral = deferral
        self._events = events
        self.responder = responder

    async def serve(self, entry: LiveSession, interaction: discord.Interaction[Any]) -> None:
        """Serve one interaction: load, filter, handle, save, answer; never raises."""
        try:
            session = entry.session
            if session is None or self._storage.shared:
                session = await self._load(entry, interaction)
                if session is None:
                    return
            record = entry.record
            assert record is not None
            if self._storage.shared:
                if interaction.id in record.recent:
                    # Delivered to another process too, which served it: not twice.
                    _log.debug("Interaction %s was served elsewhere already", interaction.id)
                    self._deferral.forget(interaction)
                    await self._storage.release(entry.session_id)
                    return
                record.recent = (*record.recent[-(_RECENT_PER_SESSION - 1) :], interaction.id)
            if record.deadline is not None and record.deadline <= self._clock.now():
                # Due but not yet expired (the timer or a claim is on its way): it is
                # expired, unless on_timeout() says it goes on.
                if not await self._ending.overtime(entry):
                    await self._ending.end_now(entry, EndCode.EXPIRED, None)
                if entry.stop_request is not None or session.end_code is not None:
                    await self.settle(entry, release=True)
                    await self.missing(entry.session_id, interaction)
                    return
            if session.update_filter is not None and not await self._allowed(
                entry, session, interaction
            ):
                return
            if session.message_id is None and interaction.message is not None:
                session.message_id = interaction.message.id
            refresh = await self._handle(session, interaction)
            ttl = session.ttl  # a session may move it (a conversation's wait does)
            if refresh and ttl is not None and entry.stop_request is None:
                deadline = self._clock.now() + ttl
                hard = record.hard_deadline
                record.deadline = deadline if hard is None else min(deadline, hard)
                self._scheduler.schedule(entry, record.deadline)
            await self.settle(entry, release=True, interaction=interaction)
            if not interaction.response.is_done():
                await self.answer(interaction, self.responder.acknowledge(interaction))
        except Exception as error:
            _log.exception(
                "Serving interaction %s of session %s failed", interaction.id, entry.session_id
            )
            self._events.emit(SessionEvent.ERROR, entry.session, interaction, error)
            await self.failed(interaction, entry.session, error)

    async def _handle(self, session: Session[Any], interaction: discord.Interaction[Any]) -> bool:
        """Run the session's handler; a failure is logged and answered here."""
        try:
            refresh = await session.update(interaction)
        except Exception as error:
            _log.exception(
                "Session %s (%s) failed to handle interaction %s",
                session.id,
                session.session_type,
                interaction.id,
            )
            self._events.emit(SessionEvent.ERROR, session, interaction, error)
            await self.failed(interaction, session, error)
            return False
        self._events.emit(SessionEvent.UPDATE, session, interaction)
        return refresh

    async def answer(
        self, interaction: discord.Interaction[Any], reply: Coroutine[Any, Any, None]
    ) -> None:
        """Send a manager's answer, never at the same time as another one."""
        await self._deferral.answer(interaction, reply)

    async def failed(
        self, interaction: discord.Interaction[Any], session: Session[Any] | None, error: Exception
    ) -> None:
        """Tell the user that handling failed, unless the handler had answered."""
        if not interaction.response.is_done():
            await self.answer(interaction, self.responder.failed(interaction, session, error))

    async def missing(self, session_id: str, interaction: discord.Interaction[Any]) -> None:
        """Answer an interaction whose session is unknown, ended or expired."""
        _log.info(
            "Interaction %s from user %s names session %s, which is unknown, ended or expired",
            interaction.id,
            interaction.user.id,
            session_id,
        )
        self._events.emit(SessionEvent.MISSING, session_id, interaction)
        await self.answer(interaction, self.responder.missing(interaction, session_id))

    async def _allowed(
        self, entry: LiveSession, session: Session[Any], interaction: discord.Interaction[Any]
    ) -> bool:
        """Apply the session's update filter; a refused or failed check is answered here."""
        update_filter = session.update_filter
        try:
            allowed = update_filter is None or await update_filter.check(session, interaction)
        except Exception as error:
            _log.exception("The update filter of session %s failed", session.id)
            self._events.emit(SessionEvent.ERROR, session, interaction, error)
            await self._storage.release(entry.session_id)
            await self.answer(interaction, self.responder.failed(interaction, session, error))
            return False
        if allowed:
            return True
        _log.info(
            "Session %s (%s) refused an interaction from user %s",
            session.id,
            session.session_type,
            interaction.user.id,
        )
        self._events.emit(SessionEvent.FILTERED, session, interaction)
        if self._storage.shared:
            # Saved, not just released: the refused interaction's id goes into the
            # record, so a redelivery elsewhere is not refused a second time.
            await self.settle(entry, release=True)
        message = rejection_message(update_filter, session, interaction)
        await self.answer(interaction, self.responder.filtered(interaction, session, message))
        return False

    async def _load(
        self, entry: LiveSession, interaction: discord.Interaction[Any]
    ) -> Session[Any] | None:
        """Take the session's lease and bring the local object up to its record."""
        session_id = entry.session_id
        if entry.session is None and not self._storage.persistent:
            await self.missing(session_id, interaction)
            return None
        try:
            session = await self._restorer.load(entry)
        except RecordError as error:
            _log.warning("Session %s cannot be restored: %s", session_id, error)
            self._events.emit(SessionEvent.ERROR, entry.session, interaction, error)
            await self._ending.end_unusable(entry, error)
            await self.answer(interaction, self.responder.broken(interaction, session_id, error))
            return None
        except StoreError as error:  # unreachable, or busy in another process
            _log.warning("Session %s is not available: %s", session_id, error)
            self._events.emit(SessionEvent.ERROR, entry.session, interaction, error)
            await self.answer(interaction, self.responder.unavailable(interaction, error))
            return None
        if session is None:
            await self._ending.gone_elsewhere(entry)
            await self.missing(session_id, interaction)
        return session

    async def settle(
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
            await self._ending.end_now(entry, code, reason)
            return
        session, record = entry.session, entry.record
        if session is None or record is None:
            return
        take_state(record, session)
        try:
            await self._storage.commit(record, release=release)
        except (StoreError, StateEncodeError) as error:
            _log.error("Session %s: state not saved, %s", session.id, error)
            self._events.emit(SessionEvent.ERROR, session, interaction, error)
            if not isinstance(error, RevisionConflictError):
                await self._storage.release(entry.session_id)  # a conflict: not our lease
            if self._storage.persistent:
                self._ending.detach(entry)
            if interaction is not None:
                if isinstance(error, StateEncodeError | RecordTooLargeError):
                    reply = self.responder.failed(interaction, session, error)  # not transient
                else:
                    reply = self.responder.unavailable(interaction, error)
                await self.answer(interaction, reply)

    def __repr__(self) -> str:
        return "<Serving>"


def take_state(record: SessionRecord, session: Session[Any]) -> None:
    """Copy what a hook may have changed from ``session`` into its ``record``, to be saved."""
    record.data = session.data
    record.message_id = session.message_id
    record.result = session.result
