"""The manager's bookkeeping for one session live in this process."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    import discord

    from .end import EndCode
    from .session import Session
    from .stores.base import SessionRecord

__all__ = [
    "EXPIRE",
    "STEPPING",
    "EndRequest",
    "LiveSession",
    "QueuedInteraction",
    "RecentIds",
    "interaction_of",
    "release_waiter",
]


class _Expire:
    __slots__ = ()

    def __repr__(self) -> str:
        return "EXPIRE"


EXPIRE = _Expire()
"""Queue item: the session's deadline passed; expire it unless it was refreshed."""


class _Stepping:
    __slots__ = ()

    def __repr__(self) -> str:
        return "STEPPING"


STEPPING = _Stepping()
"""``LiveSession.runner`` while the entry is served in a first step that has not waited.

Nothing else runs until that step waits, so a call that finds its session busy with
this runner comes from the session's own hook (then the runner becomes a task).
"""


class EndRequest:
    """Queue item: end the session from outside, then resolve ``done``."""

    __slots__ = ("code", "done", "reason")

    def __init__(self, code: EndCode, reason: str | None, done: asyncio.Future[bool]) -> None:
        self.code = code
        self.reason = reason
        self.done = done


class QueuedInteraction:
    """Queue item: an interaction awaited through ``manager.update``."""

    __slots__ = ("done", "interaction")

    def __init__(
        self, interaction: discord.Interaction[Any], done: asyncio.Future[None] | None
    ) -> None:
        self.interaction = interaction
        self.done = done


def interaction_of(item: object) -> discord.Interaction[Any] | None:
    """Return the interaction a queue item carries, or None (an expiry, an end request)."""
    if isinstance(item, QueuedInteraction):
        return item.interaction
    if item is EXPIRE or isinstance(item, EndRequest):
        return None
    return item  # type: ignore[return-value]  # a bare interaction


def release_waiter(item: object) -> None:
    """Resolve whoever awaits a queue item that will not be served (an end: not done)."""
    if isinstance(item, EndRequest):
        if not item.done.done():
            item.done.set_result(False)
    elif isinstance(item, QueuedInteraction) and item.done is not None and not item.done.done():
        item.done.set_result(None)


class LiveSession:
    """One session's runtime state: its work queue, its record, a pending stop.

    Work on one session runs one item at a time, in arrival order: the first item makes
    the entry busy and is served by whichever task brought it; items arriving meanwhile
    wait in ``queue`` and are served by that same task, so a burst of clicks costs no
    extra task and no lock object.
    """

    __slots__ = (
        "busy",
        "counted",
        "due",
        "filed",
        "queue",
        "record",
        "runner",
        "session",
        "session_id",
        "stop_request",
    )

    def __init__(self, session_id: str, session: Session[Any] | None = None) -> None:
        self.session_id = session_id
        self.session = session
        self.record: SessionRecord | None = None
        self.queue: deque[Any] | None = None
        self.busy = False
        self.runner: asyncio.Task[Any] | _Stepping | None = None
        self.stop_request: tuple[EndCode, str | None] | None = None
        self.counted = False  # counted by the manager's SessionLimits
        self.due: float | None = None  # the deadline scheduler's, see scheduler.Timed
        self.filed: float | None = None

    def enqueue(self, item: object) -> None:
        """Queue ``item`` behind the work in progress."""
        if self.queue is None:
            self.queue = deque()
        self.queue.append(item)

    def next_item(self) -> Any:
        """Return the next queued item, or None."""
        if self.queue:
            return self.queue.popleft()
        return None

    def __repr__(self) -> str:
        pending = len(self.queue) if self.queue else 0
        return f"<LiveSession {self.session_id} busy={self.busy} queued={pending}>"


class RecentIds:
    """At least the last ``size`` interaction ids seen, to serve a redelivered one once.

    One insertion-ordered dict: an id is remembered by adding a key; once it holds
    ``2 * size`` ids, the oldest ``size`` are dropped in one go, so remembering costs one
    dict write and the trimming is amortised over ``size`` ids.
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

    def __len__(self) -> int:
        return len(self._seen)
