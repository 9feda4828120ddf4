"""Bringing a session's local object up to its stored record.

With a persistent store, the record is the truth: every interaction (and every expiry)
takes the session's lease and loads the record; the local object is made from it (after
a restart, or in another process) or brought up to it (another process changed it).

A local object that leaves this process's routing table without having ended (its
state could not be saved, its record could not be read) is kept in
:attr:`Restorer.detached`, so that whoever awaits its end promise is not forgotten: the
object is taken up again when the session comes back, and resolved when it ends, when
another process says it ended, or when the manager closes.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .errors import CorruptRecordError

if TYPE_CHECKING:
    from .manager import SessionManager
    from .registry import SessionRegistry
    from .routing import LiveSession
    from .scheduler import DeadlineScheduler
    from .session import Session
    from .storage import StoreAdapter
    from .stores.base import SessionRecord

__all__ = ["Restorer"]

_log = logging.getLogger("nyx_sessions")


class Restorer:
    """Loads records into entries; keeps local objects that left the table unended."""

    __slots__ = ("_manager", "_registry", "_scheduler", "_storage", "detached")

    def __init__(
        self,
        manager: SessionManager,
        storage: StoreAdapter,
        registry: SessionRegistry,
        scheduler: DeadlineScheduler[LiveSession],
    ) -> None:
        self._manager = manager
        self._storage = storage
        self._registry = registry
        self._scheduler = scheduler
        self.detached: dict[str, Session[Any]] = {}

    async def load(self, entry: LiveSession) -> Session[Any] | None:
        """Take the session's lease and bring its local object up to the record.

        Returns None when there is no record (and holds no lease then). Raises
        :class:`~nyx_sessions.errors.RecordError` when the record cannot be used and
        :class:`~nyx_sessions.errors.StoreError` when the store cannot serve it now.
        """
        record = await self._storage.acquire(entry.session_id)
        if record is None:
            return None
        try:
            return self.adopt(entry, record)
        except BaseException:
            await self._storage.release(entry.session_id)
            raise

    def adopt(self, entry: LiveSession, record: SessionRecord) -> Session[Any]:
        """Make or update ``entry``'s session from ``record``."""
        if record.session_id != entry.session_id:
            raise CorruptRecordError(
                f"the record of session {entry.session_id} holds session {record.session_id}"
            )
        session = entry.session
        if session is None:
            session = self.detached.pop(entry.session_id, None)
            if session is None:
                session = self._registry.restore(record)
                session.manager = self._manager
                _log.debug("Session %s (%s) restored", record.session_id, record.session_type)
            else:
                self._update(session, record)
            entry.session = session
        elif entry.record is None or entry.record.revision != record.revision:
            self._update(session, record)
        entry.record = record
        if record.deadline is not None:
            self._scheduler.schedule(entry, record.deadline)
        return session

    def _update(self, session: Session[Any], record: SessionRecord) -> None:
        if record.session_type != session.session_type:
            raise CorruptRecordError(
                f"the record of session {record.session_id} is a {record.session_type!r}, "
                f"not a {session.session_type!r}"
            )
        session.data = self._registry.migrate(type(session), record)
        session.message_id = record.message_id
        session.result = record.result

    def detach(self, session: Session[Any] | None) -> None:
        """Keep ``session``, which leaves the routing table unended, for its waiters."""
        if session is not None and session.end_code is None and not session.end_promise.done():
            self.detached[session.id] = session

    def __repr__(self) -> str:
        return f"<Restorer detached={len(self.detached)}>"
