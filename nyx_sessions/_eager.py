"""Run a coroutine's first step at once, and give it a task only if it has to wait.

Most clicks are served without waiting for anything until the handler answers, so
creating a task per click (and waiting a loop turn for it to start) is the largest cost
a router could add. Python 3.12 calls this an eager task (``asyncio.eager_task_factory``);
this is the same idea for every Python the library supports: the first step runs in the
caller's step, in a copy of its context as a task would, and only a coroutine that
suspends gets a :class:`asyncio.Task`, which carries on from where it stopped.
"""

from __future__ import annotations

import asyncio
import contextvars
import types
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Coroutine, Generator

__all__ = ["resume", "start_eagerly"]

T = TypeVar("T")


@types.coroutine
def resume(coro: Coroutine[Any, Any, T], waiting_on: Any) -> Generator[Any, Any, T]:
    """Go on with ``coro``, whose first ``send(None)`` returned ``waiting_on``.

    Awaiting this is awaiting ``coro`` itself from where it stopped: the awaiting task
    waits on the same future, and a cancellation reaches ``coro`` where it waits.
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


async def _carry_on(coro: Coroutine[Any, Any, T], waiting_on: Any) -> T:
    return await resume(coro, waiting_on)


def start_eagerly(
    coro: Coroutine[Any, Any, Any], name: str, suffix: str = ""
) -> asyncio.Task[Any] | None:
    """Run ``coro``'s first step now; return a task for the rest, or None if it finished.

    The step runs in a copy of the current context, as a task's would, and the task
    keeps that context. The task is named ``name + suffix`` (joined only when a task is
    made). Exceptions from the first step propagate.
    """
    context = contextvars.copy_context()
    try:
        waiting_on = context.run(coro.send, None)
    except StopIteration:
        return None
    return asyncio.get_running_loop().create_task(
        _carry_on(coro, waiting_on), name=name + suffix, context=context
    )
