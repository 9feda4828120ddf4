"""Serving a click at once: eager tasks where Python has them, and resuming a stepped coroutine.

Most clicks are served without waiting for anything until the handler answers, so the
largest cost a router adds is the task per click and the loop turn before it starts.
Python 3.12 runs a task's first step at once (``eager_start``), inside the new task, so
that ``asyncio.current_task()``, and with it every timeout entered in that step
(``asyncio.timeout``, aiohttp's request timer), names the task that carries on; a task
that finishes in that step is never scheduled. Python 3.11 has no such thing, and a
first step run outside its own task would leave those timeouts pointing at the caller's
task, so there every click gets a plain task.

:func:`resume` is for a coroutine stepped by hand in the task that awaits it (see
``SessionManager.update``), where the current task is the right one already.
"""

from __future__ import annotations

import asyncio
import sys
import types
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Coroutine, Generator

__all__ = ["EAGER_TASKS", "resume", "start_task"]

T = TypeVar("T")

EAGER_TASKS = sys.version_info >= (3, 12)
"""Whether :func:`start_task` runs the first step at once (Python 3.12 and later)."""


def start_task(coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
    """Start ``coro`` in a task named ``name``, its first step at once where Python can.

    With :data:`EAGER_TASKS`, the returned task may be done already (check
    ``task.done()``): it never waited, and was never scheduled.
    """
    loop = asyncio.get_running_loop()
    if sys.version_info >= (3, 12):
        return asyncio.Task(coro, loop=loop, name=name, eager_start=True)
    return loop.create_task(coro, name=name)


@types.coroutine
def resume(coro: Coroutine[Any, Any, T], waiting_on: Any) -> Generator[Any, Any, T]:
    """Go on with ``coro``, whose first ``send(None)`` returned ``waiting_on``.

    Awaiting this in the task that took that first step is awaiting ``coro`` itself from
    where it stopped: the task waits on the same future, and a cancellation reaches
    ``coro`` where it waits.
    """
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
