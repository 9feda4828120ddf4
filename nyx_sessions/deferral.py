"""Answering in time, and exactly once: the deferral and the manager's answer guard.

Discord wants a first answer within 3 seconds and refuses a second one. Three parties
may answer an interaction: the session's handler, the manager's own replies (expired,
refused, failed, try again) and the deferral of a handler still running near the limit.

- The manager's replies and the deferral go through one guard per interaction
  (:meth:`Deferral.answer`): one at a time, each checking ``response.is_done()`` once
  it holds the guard, so neither answers over the other.
- The handler's own answer is not the manager's to guard, and discord.py marks an
  interaction answered only once the callback request has returned. So before it
  defers, the deferral looks at what the handler's task is waiting for, through the
  public ``Task.get_coro()`` and the ``cr_await`` chain of coroutine objects: while it
  waits inside one of ``discord.InteractionResponse``'s coroutine methods, its answer
  is in flight, and the deferral waits for that call to finish instead of posting.
- Every interaction is watched from the moment it is taken, with the same delay, so
  their deadlines come in order: a FIFO and one timer serve them all. A served
  interaction is released from its place in the FIFO at once, so that it is freed as
  soon as it is served rather than ``delay`` seconds after it came. On a saturated
  loop that timer fires late; so an interaction whose turn comes ``delay`` seconds or
  more after it was taken is deferred at once, before its handler runs.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

import discord

from .routing import RecentIds

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

    from .clock import Clock, TimerHandle
    from .routing import LiveSession
    from .tasks import Tasks

__all__ = ["Deferral", "Watch", "answer_in_flight"]

_log = logging.getLogger("nyx_sessions")

_RESPONSE_METHODS = frozenset(
    member.__code__
    for name, member in vars(discord.InteractionResponse).items()
    if not name.startswith("_") and inspect.iscoroutinefunction(member)
)
_IN_FLIGHT_POLL = 0.02  # seconds between looks at a handler whose answer is in flight
_IN_FLIGHT_LOOKS = 150  # 3 seconds of looks: Discord's window is over by then


def answer_in_flight(task: asyncio.Task[Any] | None) -> bool:
    """Return True when ``task`` waits inside a ``discord.InteractionResponse`` method."""
    if task is None or task.done():
        return False
    awaited: object = task.get_coro()
    for _ in range(64):  # an await chain is short; a cycle is impossible but cheap to bound
        if not inspect.iscoroutine(awaited):
            return False
        if awaited.cr_code in _RESPONSE_METHODS:
            return True
        awaited = awaited.cr_await
    return False


class Watch:
    """An interaction in the deferral's FIFO; :meth:`release` once it needs no deferral."""

    __slots__ = ("deadline", "entry", "interaction")

    def __init__(
        self, deadline: float, interaction: discord.Interaction[Any], entry: LiveSession
    ) -> None:
        self.deadline = deadline
        self.interaction: discord.Interaction[Any] | None = interaction
        self.entry: LiveSession | None = entry

    def release(self) -> None:
        """Stop watching: the interaction was served (answered by now) or is not ours."""
        self.interaction = None
        self.entry = None

    def __repr__(self) -> str:
        return f"<Watch {self.interaction.id if self.interaction else None} at {self.deadline}>"


class Deferral:
    """Defers interactions still unanswered ``delay`` seconds after they were taken.

    Parameters
    ----------
    clock:
        The time source.
    delay:
        Seconds after arrival; keep it well under Discord's 3 seconds.
    defer:
        The coroutine function that acknowledges an interaction.
    tasks:
        Where the deferrals run.
    """

    __slots__ = (
        "_answering",
        "_clock",
        "_defer",
        "_delay",
        "_handle",
        "_pending",
        "_replied",
        "_tasks",
    )

    def __init__(
        self,
        clock: Clock,
        delay: float,
        defer: Callable[[discord.Interaction[Any]], Coroutine[Any, Any, None]],
        tasks: Tasks,
    ) -> None:
        self._clock = clock
        self._delay = delay
        self._defer = defer
        self._tasks = tasks
        self._pending: deque[Watch] = deque()
        self._handle: TimerHandle | None = None
        self._answering: dict[int, asyncio.Future[None]] = {}
        # Interactions the manager has answered (or tried to: Discord may have refused
        # it as answered by another process): never answered by the manager again.
        self._replied = RecentIds(4096)

    async def answer(self, interaction: discord.Interaction[Any], reply: Awaitable[None]) -> None:
        """Await ``reply`` (a manager's answer) once no other one is in flight for it."""
        answering = self._answering
        try:
            while (busy := answering.get(interaction.id)) is not None:
                await asyncio.shield(busy)
        except BaseException:
            if inspect.iscoroutine(reply):
                reply.close()  # never started: nothing sent
            raise
        done = answering[interaction.id] = asyncio.get_running_loop().create_future()
        try:
            await reply
        finally:
            self._replied.add(interaction.id)
            del answering[interaction.id]
            done.set_result(None)

    def watch(self, interaction: discord.Interaction[Any], entry: LiveSession) -> Watch:
        """Defer ``interaction``, served on ``entry``, if nothing answers it in time."""
        watch = Watch(self._clock.now() + self._delay, interaction, entry)
        self._pending.append(watch)
        if self._handle is None:
            self._handle = self._clock.call_later(self._delay, self._fire)
        return watch

    def _fire(self) -> None:
        self._handle = None
        now = self._clock.now()
        pending = self._pending
        while pending and pending[0].deadline <= now:
            watch = pending.popleft()
            interaction, entry = watch.interaction, watch.entry
            if interaction is None or entry is None:
                continue  # served already
            if not interaction.response.is_done() and interaction.id not in self._replied:
                self._start_deferral(interaction, entry)
        if pending:
            self._handle = self._clock.call_later(pending[0].deadline - now, self._fire)

    def _start_deferral(self, interaction: discord.Interaction[Any], entry: LiveSession) -> None:
        _log.debug("Deferring interaction %s before Discord's 3-second limit", interaction.id)
        self._tasks.spawn(
            self._deferred(interaction, entry), f"nyx-sessions-defer-{interaction.id}"
        )

    async def defer_now(self, interaction: discord.Interaction[Any], entry: LiveSession) -> None:
        """Defer ``interaction`` now unless it is answered, or its answer is in flight."""
        await self._deferred(interaction, entry)

    async def _deferred(self, interaction: discord.Interaction[Any], entry: LiveSession) -> None:
        if not interaction.response.is_done():
            await self.answer(interaction, self._defer_unless_answered(interaction, entry))

    async def _defer_unless_answered(
        self, interaction: discord.Interaction[Any], entry: LiveSession
    ) -> None:
        for _ in range(_IN_FLIGHT_LOOKS):
            if entry.serving is not interaction or not answer_in_flight(entry.task):
                break
            await asyncio.sleep(_IN_FLIGHT_POLL)  # the handler's own answer is on its way
        else:
            return  # still in flight when Discord's window closed: posting cannot help
        if not interaction.response.is_done():
            await self._defer(interaction)

    def forget(self, interaction: discord.Interaction[Any]) -> None:
        """Stop watching ``interaction``: it is another process's to answer."""
        for watch in self._pending:
            if watch.interaction is interaction:
                watch.release()

    def unanswered(self) -> list[discord.Interaction[Any]]:
        """Return the watched interactions that are still unanswered."""
        replied = self._replied
        return [
            i
            for i in (watch.interaction for watch in self._pending)
            if i is not None and not i.response.is_done() and i.id not in replied
        ]

    def close(self) -> None:
        """Stop watching; deferrals already on their way finish on their own."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._pending.clear()

    def __repr__(self) -> str:
        return f"<Deferral pending={len(self._pending)} delay={self._delay}>"
