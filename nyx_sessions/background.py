"""The manager's background work: the store, expiry claims, end notices, shutdown."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from .end import EndCode, SessionEndData
from .ending import resolve
from .errors import ManagerClosedError, StoreError

if TYPE_CHECKING:
    from .manager import SessionManager

__all__ = ["Background"]

_log = logging.getLogger("nyx_sessions")
_CLAIM_BATCH = 100
_MAX_BACKOFF = 30.0


class Background:
    """Background work of one :class:`~nyx_sessions.SessionManager`."""

    __slots__ = ("_manager", "_poller", "_stopping")

    def __init__(self, manager: SessionManager) -> None:
        self._manager = manager
        self._poller: asyncio.Task[None] | None = None
        self._stopping = False

    async def open(self) -> None:
        """Open the store and start what a persistent or shared store needs."""
        manager = self._manager
        await manager.store.open()
        if manager.store.shared:
            manager.store.on_end(manager._ending.hear_end)
        if manager.store.persistent:
            self._poller = manager._tasks.spawn(self._poll(), "nyx-sessions-expiry-claims")

    async def _poll(self) -> None:
        manager = self._manager
        backoff = manager.poll_interval
        # The flag as well as the cancellation: a client library that swallows a
        # CancelledError mid-command must not keep the loop alive.
        while not self._stopping:
            try:
                # Claims first, at once: sessions that ran out while no process ran.
                while True:
                    claimed = await manager._storage.claim_expired(
                        manager.clock.now(), limit=_CLAIM_BATCH, hold=2 * manager.lease
                    )
                    for session_id in claimed:
                        manager._queue_expiry(manager._routing.entry(session_id))
                    if len(claimed) < _CLAIM_BATCH:
                        break
            except StoreError as error:
                _log.warning(
                    "Claiming expired sessions failed (%s); retrying in %.1fs", error, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
                continue
            backoff = manager.poll_interval
            await asyncio.sleep(manager.poll_interval)

    async def close(self, grace: float) -> None:
        """Stop background work, let running work finish, settle every local session.

        Work still running after ``grace`` seconds is cancelled, and every interaction
        still unanswered gets the "try again" reply.
        """
        manager = self._manager
        self._stopping = True
        if self._poller is not None:
            self._poller.cancel()
        if manager.store.shared:
            manager.store.on_end(None)
        await manager._tasks.wait(grace)
        for entry in list(manager._routing.live.values()):
            for item in manager._queues.take(entry):
                manager._queues.abandoned.append(item)
            session = entry.session
            manager._routing.forget(entry)
            manager._scheduler.cancel(entry)  # ended or left to the store: no expiry here
            if session is None or session.end_code is not None:
                continue
            if manager.store.persistent:
                # The session lives on in the store for the next process; only the
                # waiters in this one learn that this process is done with it.
                resolve(session, SessionEndData(session.id, EndCode.SHUTDOWN, "manager closed"))
            else:
                await manager._ending.end_now(entry, EndCode.SHUTDOWN, "manager closed")
        for session in manager._restorer.detached.values():
            resolve(session, SessionEndData(session.id, EndCode.SHUTDOWN, "manager closed"))
        manager._restorer.detached.clear()
        manager._scheduler.close()
        await manager._tasks.cancel()  # work that outlived the grace, and its follow-ups
        # Whatever the cancelled work left unanswered is answered now.
        leftover = manager._deferral.unanswered()
        leftover += [i.interaction for i in manager._queues.abandoned if i.interaction is not None]
        for item in manager._queues.abandoned:
            item.release()
        manager._queues.abandoned.clear()
        manager._deferral.close()
        closing = ManagerClosedError("the session manager closed")
        for interaction in dict.fromkeys(leftover):
            if not interaction.response.is_done():
                await manager._serving.answer(
                    interaction, manager.responder.unavailable(interaction, closing)
                )
        await manager._tasks.cancel()
