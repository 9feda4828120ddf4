"""One serial queue per busy session, drained by one task.

Work on one session runs one item at a time, in arrival order. The first item makes
the session busy and starts a task that runs it and then everything queued behind it;
the task ends when the queue is empty, so an idle session has no task. Each item knows
how to run itself on the manager (the :class:`Worker`): a click is served, an expiry
expires the session unless its deadline moved on, an end request ends it.

:meth:`SerialQueues.hold` lets the caller's own task work on a session instead (the
manager's ``start``); what arrives meanwhile waits, and :meth:`SerialQueues.let_go`
hands it to a task.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

    import discord

    from .deferral import Watch
    from .end import EndCode
    from .routing import LiveSession
    from .tasks import Tasks

__all__ = ["Click", "EndRequest", "Expire", "SerialQueues", "Work", "Worker"]


class Worker(Protocol):
    """What the queued work runs on: the manager's serving and ending."""

    async def serve(
        self, entry: LiveSession, interaction: discord.Interaction[Any], taken_at: float
    ) -> None:
        """Serve one interaction, taken at ``taken_at`` (clock time); never raises."""
        ...

    async def expire(self, entry: LiveSession) -> None:
        """Expire the session unless its deadline moved on."""
        ...

    async def end_now(self, entry: LiveSession, code: EndCode, reason: str | None) -> bool:
        """End the session; False when it had ended already."""
        ...


class Click:
    """Queue item: an interaction for the session; ``done`` resolves once it was served.

    ``watch`` is the interaction's place in the deferral's FIFO, released once it was
    served (which answers it), so that the interaction is freed then.
    """

    __slots__ = ("done", "interaction", "taken_at", "watch")

    def __init__(
        self,
        interaction: discord.Interaction[Any],
        taken_at: float,
        done: asyncio.Future[None] | None = None,
    ) -> None:
        self.interaction: discord.Interaction[Any] | None = interaction
        self.taken_at = taken_at
        self.done = done
        self.watch: Watch | None = None

    async def run(self, worker: Worker, entry: LiveSession) -> None:
        """Serve the interaction."""
        assert self.interaction is not None
        entry.serving = self.interaction
        try:
            await worker.serve(entry, self.interaction, self.taken_at)
            if self.watch is not None:
                self.watch.release()
        finally:
            entry.serving = None
            self.release()

    def release(self) -> None:
        """Let whoever waits for the click go on (it was served, or will not be here)."""
        if self.done is not None and not self.done.done():
            self.done.set_result(None)

    def __repr__(self) -> str:
        return f"<Click {self.interaction.id if self.interaction else None}>"


class Expire:
    """Queue item: the session's deadline passed; expire it unless it was refreshed."""

    __slots__ = ()
    interaction: discord.Interaction[Any] | None = None

    async def run(self, worker: Worker, entry: LiveSession) -> None:
        """Expire the session."""
        await worker.expire(entry)

    def release(self) -> None:
        """Nobody waits for an expiry."""

    def __repr__(self) -> str:
        return "<Expire>"


class EndRequest:
    """Queue item: end the session from outside, then resolve ``done`` with the outcome."""

    __slots__ = ("code", "done", "reason")
    interaction: discord.Interaction[Any] | None = None

    def __init__(self, code: EndCode, reason: str | None, done: asyncio.Future[bool]) -> None:
        self.code = code
        self.reason = reason
        self.done = done

    async def run(self, worker: Worker, entry: LiveSession) -> None:
        """End the session."""
        try:
            ended = await worker.end_now(entry, self.code, self.reason)
        except BaseException as error:
            if not self.done.done():
                self.done.set_exception(error)
            raise
        if not self.done.done():
            self.done.set_result(ended)

    def release(self) -> None:
        """Resolve ``done`` with False: the session went away before this ended it."""
        if not self.done.done():
            self.done.set_result(False)

    def __repr__(self) -> str:
        return f"<EndRequest {self.code.value}>"


Work = Click | Expire | EndRequest


class SerialQueues:
    """Runs each session's work in order, one drain task per busy session.

    Parameters
    ----------
    worker:
        What the items run on.
    tasks:
        Where the drain tasks are started (eagerly, where asyncio can).
    on_idle:
        Called with an entry whose queue just ran empty.
    """

    __slots__ = ("_on_idle", "_tasks", "_worker", "abandoned")

    def __init__(
        self, worker: Worker, tasks: Tasks, on_idle: Callable[[LiveSession], None]
    ) -> None:
        self._worker = worker
        self._tasks = tasks
        self._on_idle = on_idle
        self.abandoned: list[Work] = []  # left in the queue of a cancelled drain

    def submit(self, entry: LiveSession, item: Work) -> None:
        """Run ``item`` after the work queued on ``entry``; start a drain if it is idle."""
        queue = entry.queue
        if queue is not None:
            queue.append(item)
            return
        entry.queue = deque((item,))
        self._tasks.spawn(self._drain(entry), f"nyx-sessions-work-{entry.session_id}")

    def hold(self, entry: LiveSession) -> None:
        """Mark ``entry`` busy for the calling task, which works on it itself."""
        entry.queue = deque()
        entry.task = asyncio.current_task()

    def let_go(self, entry: LiveSession) -> None:
        """End a :meth:`hold`: what was queued meanwhile goes to a drain task."""
        entry.task = None
        queue = entry.queue
        if queue:
            self._tasks.spawn(self._drain(entry), f"nyx-sessions-work-{entry.session_id}")
        elif queue is not None:
            entry.queue = None
            self._on_idle(entry)

    async def _drain(self, entry: LiveSession) -> None:
        entry.task = asyncio.current_task()
        queue = entry.queue
        try:
            while queue:
                await queue.popleft().run(self._worker, entry)
        finally:
            if queue:  # cancelled: answered when the manager closes
                self.abandoned.extend(queue)
                queue.clear()
            if entry.queue is queue:
                entry.task = None
                entry.queue = None
                self._on_idle(entry)

    def take(self, entry: LiveSession) -> list[Work]:
        """Take the work still queued on ``entry`` (the session left this process)."""
        queue = entry.queue
        if not queue:
            return []
        items = list(queue)
        queue.clear()
        return items

    def __repr__(self) -> str:
        return f"<SerialQueues abandoned={len(self.abandoned)}>"
