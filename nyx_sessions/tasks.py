"""The manager's tasks: named, kept until done, failures logged, started eagerly.

On Python 3.12 and later a task starts eagerly (``asyncio.Task(..., eager_start=True)``):
its coroutine runs at once, in the caller's step, up to its first real wait, so a click
on an idle session is served without a round trip through the event loop's queue, and
a task that never waits is done before :meth:`Tasks.spawn` returns. On 3.11 it is an
ordinary task, started on the loop's next turn.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TYPE_CHECKING, Any

from .responders import is_already_acknowledged

if TYPE_CHECKING:
    from collections.abc import Coroutine, Iterator

__all__ = ["Tasks"]

_log = logging.getLogger("nyx_sessions")

if sys.version_info >= (3, 12):

    def _start(coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        loop = asyncio.get_running_loop()
        return asyncio.Task(coro, loop=loop, name=name, eager_start=True)

else:

    def _start(coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        return asyncio.get_running_loop().create_task(coro, name=name)


class Tasks:
    """Every task a manager started and that is not done yet."""

    __slots__ = ("_tasks",)

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run ``coro`` in a task named ``name``, started eagerly where asyncio can."""
        task = _start(coro, name)
        if not task.done():
            self._tasks.add(task)
            task.add_done_callback(self._done)
        else:
            self._done(task)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log_failure(task.get_name(), error)

    async def wait(self, grace: float) -> None:
        """Wait up to ``grace`` seconds until no task is left (new ones included)."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + grace
        while self._tasks and (left := give_up - loop.time()) > 0:
            await asyncio.wait(tuple(self._tasks), timeout=left)

    async def cancel(self) -> None:
        """Cancel every task and wait until they are all done."""
        while self._tasks:
            pending = tuple(self._tasks)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(tuple(self._tasks))

    def __len__(self) -> int:
        return len(self._tasks)

    def __repr__(self) -> str:
        return f"<Tasks running={len(self._tasks)}>"


def log_failure(name: str, error: BaseException) -> None:
    """Log what a task named ``name`` raised (an interaction answered twice only quietly)."""
    if not is_already_acknowledged(error):
        _log.error("Task %s failed", name, exc_info=error)
