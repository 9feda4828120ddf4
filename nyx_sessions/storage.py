"""The manager's side of the store: its lease, and a bound on calls in flight.

Every call the manager makes to a shared store goes through :class:`StoreAdapter`,
which keeps at most ``concurrency`` of them in flight at once: a flood of clicks, of
ends or of end notices waits its turn instead of running the store's connection pool
dry. A store that is not shared (the memory store) is called directly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import StoreError

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from .end import SessionEndData
    from .stores.base import SessionRecord, SessionStore

__all__ = ["StoreAdapter"]

T = TypeVar("T")

_log = logging.getLogger("nyx_sessions")


class StoreAdapter:
    """A store, called under this manager's lease owner and concurrency bound.

    Parameters
    ----------
    store:
        The session store.
    lease:
        Seconds a lease is held while one interaction is served.
    lease_wait:
        Seconds to wait for a lease held elsewhere.
    concurrency:
        The most calls of a shared store in flight at once.
    """

    __slots__ = ("_slots", "lease", "lease_owner", "lease_wait", "persistent", "shared", "store")

    def __init__(
        self, store: SessionStore, *, lease: float, lease_wait: float, concurrency: int
    ) -> None:
        self.store = store
        self.lease = lease
        self.lease_wait = lease_wait
        self.lease_owner = f"{os.getpid()}-{secrets.token_hex(6)}"
        self.persistent = store.persistent
        self.shared = store.shared
        self._slots = asyncio.Semaphore(concurrency) if store.shared else None

    async def _bounded(self, call: Coroutine[Any, Any, T]) -> T:
        slots = self._slots
        if slots is None:
            return await call
        try:
            await slots.acquire()
        except BaseException:
            call.close()  # cancelled while it waited: never started, nothing sent
            raise
        try:
            return await call
        finally:
            slots.release()

    async def create(self, record: SessionRecord) -> None:
        """Store a new record, holding its lease."""
        await self._bounded(
            self.store.create(record, lease_owner=self.lease_owner, lease=self.lease)
        )

    async def acquire(self, session_id: str) -> SessionRecord | None:
        """Take the session's lease and load its record (see ``SessionStore.acquire``)."""
        return await self._bounded(
            self.store.acquire(
                session_id, lease_owner=self.lease_owner, lease=self.lease, wait=self.lease_wait
            )
        )

    async def commit(self, record: SessionRecord, *, release: bool) -> None:
        """Save ``record`` under our lease (see ``SessionStore.commit``)."""
        await self._bounded(
            self.store.commit(record, lease_owner=self.lease_owner, release=release)
        )

    async def release(self, session_id: str) -> None:
        """Give the lease back; a failure is logged (the lease runs out by itself)."""
        if not self.shared:
            return
        try:
            await self._bounded(self.store.release(session_id, lease_owner=self.lease_owner))
        except StoreError as error:
            _log.warning("Session %s: lease not released (%s); it will run out", session_id, error)

    async def remove(self, end: SessionEndData) -> None:
        """Delete an ended session's record, keeping its end for processes that look."""
        try:
            await self._bounded(self.store.remove(end.session_id, end=end))
        except StoreError as error:
            _log.error(
                "Session %s: record not removed (%s); it will expire later", end.session_id, error
            )

    async def publish_end(self, end: SessionEndData) -> None:
        """Tell the other processes that a session ended; a failure is logged."""
        if not self.shared:
            return
        try:
            await self._bounded(self.store.publish_end(end))
        except StoreError as error:
            _log.warning(
                "Session %s: end not announced to other processes (%s); they learn it "
                "when they next look",
                end.session_id,
                error,
            )

    async def ended(self, session_id: str) -> SessionEndData | None:
        """Return how a removed session ended, if the store still knows; None on failure."""
        try:
            return await self._bounded(self.store.ended(session_id))
        except StoreError as error:
            _log.warning("Session %s: its end could not be read (%s)", session_id, error)
            return None

    async def claim_expired(self, now: float, *, limit: int, hold: float) -> list[str]:
        """Claim sessions whose deadline passed (see ``SessionStore.claim_expired``)."""
        return await self._bounded(self.store.claim_expired(now, limit=limit, hold=hold))

    def __repr__(self) -> str:
        return f"<StoreAdapter {self.store!r} owner={self.lease_owner}>"
