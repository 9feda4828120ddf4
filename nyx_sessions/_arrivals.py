"""Serving clicks as they arrive: one task steps every click that came in one loop turn.

Expiries go the same way: every session whose deadline passed in one timer callback is
expired by that one task, not by a task each.

discord.py hands the manager a click while it parses the gateway event, in the gateway
reader's own task, where nothing may wait. :class:`Arrivals` queues the click, and one
task takes the queue in arrival order. It runs each click's first step, up to its first
wait, in a context copied when the click arrived, as a task of the click's own would.
Most clicks never wait for anything before they are answered, so that step is all their
work. A busy gateway delivers many clicks in one loop turn; they cost one task, not one
task each.

When a click does wait (for HTTP, for the store), the task stays with that click alone,
as a task of its own would from then on, and the clicks behind it get a new task. So
``asyncio.current_task()``, and with it every timeout entered in the first step
(``asyncio.timeout``, aiohttp's request timer, redis-py's timeouts), names the task that
goes on with the click, and cancelling that task cancels that click only.

:func:`resume` goes on with a coroutine stepped by hand, in the task that stepped it.
"""

from __future__ import annotations

import asyncio
import contextvars
import types
from collections import deque
from typing import TYPE_CHECKING, Any, TypeVar

from ._live import STEPPING, _Expire

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Generator

    import discord

    from ._live import LiveSession

    Arrival = discord.Interaction[Any] | _Expire

__all__ = ["Arrivals", "resume"]

T = TypeVar("T")

_TASK_NAME = "nyx-sessions-clicks"


class Arrivals:
    """Clicks taken while discord.py parses them, served in arrival order by one task.

    An arrival is a click (any interaction) or ``EXPIRE``, a session whose deadline
    passed.

    Parameters
    ----------
    serve:
        ``serve(entry, item)`` returns the coroutine that serves the click (or the
        expiry) and everything queued behind it on its session, then frees the entry.
    spawn:
        Starts a coroutine in a task the manager keeps (and logs the failure of).
    watch:
        Called for a click whose first step waited or failed: the acknowledgement
        watchdog answers it in time if nothing else does.
    failed:
        Logs an exception a click's first step raised, as a failed task would be.
    """

    __slots__ = ("_failed", "_queue", "_scheduled", "_serve", "_spawn", "_watch")

    def __init__(
        self,
        serve: Callable[[LiveSession, Arrival], Coroutine[Any, Any, None]],
        spawn: Callable[[Coroutine[Any, Any, None], str], asyncio.Task[Any]],
        watch: Callable[[discord.Interaction[Any]], None],
        failed: Callable[[str, BaseException], None],
    ) -> None:
        self._serve = serve
        self._spawn = spawn
        self._watch = watch
        self._failed = failed
        self._queue: deque[tuple[LiveSession, Arrival, contextvars.Context]] = deque()
        self._scheduled = False  # a task is on its way to take the queue

    def add(self, entry: LiveSession, item: Arrival) -> None:
        """Serve ``item`` on ``entry``, which the caller made busy, soon."""
        self._queue.append((entry, item, contextvars.copy_context()))
        if not self._scheduled:
            self._scheduled = True
            self._spawn(self._take(), _TASK_NAME)

    async def _take(self) -> None:
        queue = self._queue
        while queue:
            entry, item, context = queue.popleft()
            entry.runner = STEPPING
            serving = self._serve(entry, item)
            try:
                waiting_on = context.run(serving.send, None)
            except StopIteration:
                continue  # served without waiting: the common case
            except BaseException as error:
                if not isinstance(item, _Expire):
                    self._watch(item)  # answered in time all the same
                if isinstance(error, KeyboardInterrupt | SystemExit):
                    self._hand_on()
                    raise
                if not isinstance(error, asyncio.CancelledError):
                    self._failed(f"{_TASK_NAME} ({_describe(entry, item)})", error)
                continue
            # It waits: this task goes on with that click (or expiry) alone, as a task of
            # its own would; the arrivals behind it get a new task.
            task = entry.runner = asyncio.current_task()
            if task is not None:
                kind = "expire" if isinstance(item, _Expire) else "update"
                task.set_name(f"nyx-sessions-{kind}-{entry.session_id}")
            if not isinstance(item, _Expire):
                self._watch(item)
            self._hand_on()
            await resume(serving, waiting_on, context)
            return
        self._scheduled = False

    def _hand_on(self) -> None:
        if self._queue:
            self._spawn(self._take(), _TASK_NAME)
        else:
            self._scheduled = False

    def abandon(self) -> list[discord.Interaction[Any]]:
        """Drop the arrivals not served yet (their task was cancelled); return the clicks."""
        abandoned = [item for _, item, _ in self._queue if not isinstance(item, _Expire)]
        self._queue.clear()
        self._scheduled = False
        return abandoned

    def __len__(self) -> int:
        return len(self._queue)

    def __repr__(self) -> str:
        return f"<Arrivals queued={len(self._queue)} scheduled={self._scheduled}>"


def _describe(entry: LiveSession, item: Arrival) -> str:
    if isinstance(item, _Expire):
        return f"expiry of session {entry.session_id}"
    return f"interaction {item.id}"


@types.coroutine
def resume(
    coro: Coroutine[Any, Any, T], waiting_on: Any, context: contextvars.Context | None = None
) -> Generator[Any, Any, T]:
    """Go on with ``coro``, whose first step returned ``waiting_on``.

    Awaiting this in the task that took that first step is awaiting ``coro`` itself from
    where it stopped: the task waits on the same future, and a cancellation reaches
    ``coro`` where it waits. With ``context``, every step runs in that context, as the
    first one did.
    """
    if context is None:
        while True:
            try:
                yield waiting_on
            except BaseException as error:
                try:
                    waiting_on = coro.throw(error)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
            else:
                return (yield from coro.__await__())
    while True:
        try:
            value = yield waiting_on
        except BaseException as error:
            step: Callable[[Any], Any] = coro.throw
            argument: Any = error
        else:
            step, argument = coro.send, value
        try:
            waiting_on = context.run(step, argument)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
