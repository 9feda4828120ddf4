"""The manager's background work.

Opening the store, claiming expired sessions from a persistent store, hearing of ends
in other processes, and shutting down.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ._live import LiveSession, interaction_of, release_waiter
from .end import EndCode, SessionEndData
from .errors import StoreError

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
            manager.store.on_end(manager._hear_end)
        if manager.store.persistent:
            self._poller = manager._spawn(self._poll(), "nyx-sessions-expiry-claims")

    async def _poll(self) -> None:
        manager = self._manager
        backoff = manager.poll_interval
        # The flag as well as the cancellation: a client library that swallows a
        # CancelledError mid-command must not keep the loop alive.
        while not self._stopping:
            try:
                # Claims first, at once: sessions that ran out while no process ran.
                while True:
                    claimed = await manager.store.claim_expired(
                        manager.clock.now(), limit=_CLAIM_BATCH, hold=2 * manager.lease
                    )
                    for session_id in claimed:
                        manager._on_claim(session_id)
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
        """Stop background work; wait for running updates; settle every local session."""
        manager = self._manager
        self._stopping = True
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.wait({self._poller}, timeout=grace)
        if manager.store.shared:
            manager.store.on_end(None)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + grace
        # Polled: updates also run in callers' tasks, so there is no task set to wait on.
        while any(entry.busy for entry in manager._live.values()):
            if loop.time() >= give_up:
                break
            await asyncio.sleep(0.01)
        for entry in list(manager._live.values()):
            await self._shut(entry)

    async def _shut(self, entry: LiveSession) -> None:
        manager = self._manager
        manager._scheduler.cancel(entry)  # ended or left to the store: no expiry here
        queued = list(entry.queue or ())
        entry.queue = None
        for item in queued:
            interaction = interaction_of(item)
            if interaction is not None:
                await manager.responder.unavailable(interaction, StoreError("shutting down"))
            release_waiter(item)
        session = entry.session
        if session is None or session.end_code is not None:
            manager._live.pop(entry.session_id, None)
            return
        if manager.store.persistent:
            # The session lives on in the store for the next process; only the
            # waiters in this one learn that this process is done with it.
            manager._live.pop(entry.session_id, None)
            manager._resolve(
                session, SessionEndData(session.id, EndCode.SHUTDOWN, "manager closed")
            )
            return
        await manager._end_now(entry, EndCode.SHUTDOWN, "manager closed")
