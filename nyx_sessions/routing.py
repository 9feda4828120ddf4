"""From a custom id to the session's entry in this process: the routing table.

Each session live in this process (or with work queued for it) has one
:class:`LiveSession`: its object, its record, its queue of work and its TTL
bookkeeping. Entries exist only while a session is live here or busy; an id that names
no live session gets an entry only for as long as its work runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio
    from collections import deque

    import discord

    from .codecs import SessionCustomIdCodec
    from .end import EndCode
    from .queues import Work
    from .session import Session
    from .stores.base import SessionRecord

__all__ = ["LiveSession", "RecentIds", "Routing"]


class LiveSession:
    """One session's entry: its object, record, queue of work and pending stop.

    ``queue`` is None while nobody works on the session; otherwise the work waiting
    behind the item in progress, which ``task`` runs (see :mod:`nyx_sessions.queues`).
    """

    __slots__ = (
        "counted",
        "due",
        "filed",
        "queue",
        "record",
        "serving",
        "session",
        "session_id",
        "stop_request",
        "task",
    )

    def __init__(self, session_id: str, session: Session[Any] | None = None) -> None:
        self.session_id = session_id
        self.session = session
        self.record: SessionRecord | None = None
        self.queue: deque[Work] | None = None
        self.task: asyncio.Task[Any] | None = None
        self.serving: discord.Interaction[Any] | None = None  # the click ``task`` serves
        self.stop_request: tuple[EndCode, str | None] | None = None
        self.counted = False  # counted by the manager's SessionLimits
        self.due: float | None = None  # the deadline scheduler's, see scheduler.Timed
        self.filed: float | None = None

    @property
    def busy(self) -> bool:
        """Whether work on the session is in progress."""
        return self.queue is not None

    def __repr__(self) -> str:
        queued = len(self.queue) if self.queue else 0
        return f"<LiveSession {self.session_id} busy={self.busy} queued={queued}>"


class RecentIds:
    """At least the last ``size`` interaction ids seen, to serve a redelivered one once.

    One insertion-ordered dict: once it holds ``2 * size`` ids, the oldest ``size`` are
    dropped in one go, so remembering costs one dict write.
    """

    __slots__ = ("_limit", "_seen", "_size")

    def __init__(self, size: int = 8192) -> None:
        self._size = size
        self._limit = 2 * size
        self._seen: dict[int, None] = {}

    def add(self, interaction_id: int) -> bool:
        """Remember ``interaction_id``; return False when it was seen already."""
        seen = self._seen
        if interaction_id in seen:
            return False
        seen[interaction_id] = None
        if len(seen) >= self._limit:
            self._seen = dict.fromkeys(list(seen)[-self._size :])
        return True

    def __contains__(self, interaction_id: object) -> bool:
        return interaction_id in self._seen

    def __len__(self) -> int:
        return len(self._seen)


class Routing:
    """The live entries by session id, and the interaction ids already taken."""

    __slots__ = ("codec", "live", "recent")

    def __init__(self, codec: SessionCustomIdCodec) -> None:
        self.codec = codec
        self.live: dict[str, LiveSession] = {}
        self.recent = RecentIds()

    def entry(self, session_id: str) -> LiveSession:
        """Return the entry of ``session_id``, made if there is none."""
        entry = self.live.get(session_id)
        if entry is None:
            entry = self.live[session_id] = LiveSession(session_id)
        return entry

    def forget(self, entry: LiveSession) -> None:
        """Take ``entry`` out of the table (if it is still the one there)."""
        if self.live.get(entry.session_id) is entry:
            del self.live[entry.session_id]

    def __repr__(self) -> str:
        return f"<Routing live={len(self.live)}>"
