"""Commands of concurrent callers, sent to Redis together as one pipeline.

A bot serving many sessions at once issues many small requests at the same moment (32
clicks in flight are 32 lease takes, then 32 commits). Sent one by one, each costs the
client library a pooled connection, a timeout, a retry wrapper, a write and a read:
most of a process's time went there, not to Redis. :class:`CommandBatcher` collects the
command groups that callers queue during one turn of the event loop and sends them as
ONE pipeline on one connection, in the next turn.

A batch holds at most :data:`MAX_BATCH` groups; the callers after that start the next
one. Two smaller batches beat one large one: Redis works on the first while this process
still prepares the second, instead of each side waiting for the other in turn.

A caller sees no difference: it hands over a group of commands and gets the group's
replies back in order, a Redis error reply in place of its command's reply (so one
caller's WRONGTYPE or NOSCRIPT is its own). A failure of the whole batch (Redis gone,
a timeout) reaches every caller in it, each with an exception of its own. A caller
alone still costs one round trip per group, as without the batcher, and a caller
cancelled before its batch leaves has nothing sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import math
from typing import TYPE_CHECKING, Any, TypeAlias

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import redis.asyncio
    from redis.asyncio.connection import AbstractConnection

__all__ = ["MAX_BATCH", "Command", "CommandBatcher", "pack_command_py"]

Command: TypeAlias = "tuple[Any, ...]"
"""One Redis command: its name and arguments (str, bytes, int or float)."""

MAX_BATCH = 16
"""Command groups per pipeline at most.

Measured with 32 concurrent updates: 16 and 24 were fastest, 8 and 12 slower (more
writes), one batch per turn slowest (this process and Redis waited for each other).
"""

_Waiter: TypeAlias = "tuple[bytes, int, asyncio.Future[list[Any]]]"
"""A caller's group: its commands packed, how many they are, where its replies go."""


class CommandBatcher:
    """Sends the command groups queued in one event-loop turn as one pipeline.

    Parameters
    ----------
    client:
        The client whose connection pool carries the batches (and whose retry policy
        applies to them); each batch in flight holds one connection.
    """

    __slots__ = ("_client", "_in_flight", "_open")

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._client = client
        self._open: list[_Waiter] | None = None  # the batch that still takes groups
        self._in_flight: set[asyncio.Task[None]] = set()

    async def run(self, commands: Sequence[Command]) -> list[Any]:
        """Send ``commands`` with the next batch; return their replies, in order.

        A command that Redis refused has its ``ResponseError`` in place of its reply.

        Raises
        ------
        redis.exceptions.RedisError, OSError
            The batch as a whole failed (the server is unreachable, a timeout).
        """
        packed = b"".join(map(_pack_command, commands))  # a bad argument fails its caller only
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        batch = self._open
        if batch is None or len(batch) >= MAX_BATCH:
            # The task's first step comes after every callback of this turn, so what
            # the other tasks queue meanwhile goes along.
            batch = self._open = []
            task = loop.create_task(self._send(batch))
            self._in_flight.add(task)
            task.add_done_callback(functools.partial(self._done, batch))
        batch.append((packed, len(commands), future))
        return await future

    async def drain(self, wait: float) -> None:
        """Let the batches queued or in flight finish for up to ``wait`` s, then cancel them."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                while self._in_flight:
                    await asyncio.wait(set(self._in_flight))
        for task in list(self._in_flight):
            task.cancel()
        if self._in_flight:
            await asyncio.wait(set(self._in_flight))

    async def _send(self, batch: list[_Waiter]) -> None:
        if self._open is batch:
            self._open = None  # closed: the groups queued from now on go in the next one
        # A caller cancelled before its batch left has its group dropped: no lease is
        # taken that nobody would give back.
        batch = [waiter for waiter in batch if not waiter[2].done()]
        if not batch:
            return
        try:
            replies = await self._exchange(
                b"".join(packed for packed, _, _ in batch), sum(size for _, size, _ in batch)
            )
        except Exception as error:
            _fail(batch, error)
            return  # the callers have the error; the task ends quietly
        start = 0
        for _, size, future in batch:
            if not future.done():  # its caller may have been cancelled meanwhile
                future.set_result(replies[start : start + size])
            start += size

    def _done(self, batch: list[_Waiter], task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if self._open is batch:
            self._open = None  # cancelled before it started (the loop closes): never reused
        # Cancelled (the store closes, or the loop does), even before its first step: no
        # caller is left waiting for a reply that will not come.
        _fail(batch, RedisConnectionError("the request was cancelled before its reply came"))

    async def _exchange(self, packed: bytes, count: int) -> list[Any]:
        """Send ``packed`` (``count`` commands) on one pooled connection; read the replies."""
        pool = self._client.connection_pool
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            replies: list[Any] = await conn.retry.call_with_retry(
                lambda: _send_and_read(conn, packed, count), lambda _error: conn.disconnect()
            )
        finally:
            await pool.release(conn)
        return replies


async def _send_and_read(conn: AbstractConnection, packed: bytes, count: int) -> list[Any]:
    await conn.send_packed_command(packed)
    replies: list[Any] = []
    try:
        # One deadline for the whole batch rather than one per reply: the replies come
        # together, and a timer per reply cost about a tenth of the updates per second.
        async with asyncio.timeout(conn.socket_timeout):
            for _ in range(count):
                try:
                    replies.append(await conn.read_response(timeout=math.inf))
                except ResponseError as error:
                    replies.append(error)
    except TimeoutError:
        await conn.disconnect(nowait=True)  # unread replies would answer the next batch
        raise RedisTimeoutError("Timeout reading from Redis") from None
    return replies


def pack_command_py(command: Command) -> bytes:
    """Encode one command in the Redis protocol; what ``hiredis.pack_command`` does in C.

    Arguments are str (UTF-8), bytes, int or float (``repr``, as redis-py sends them).
    """
    out = [b"*%d\r\n" % len(command)]
    for arg in command:
        kind = type(arg)
        if kind is str:
            data = arg.encode()
        elif kind is bytes:
            data = arg
        elif kind is int or kind is float:
            data = repr(arg).encode()
        else:
            raise TypeError(f"cannot send {kind.__name__} to Redis")
        out += (b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(out)


_pack_command: Callable[[Command], bytes]
try:
    from hiredis import pack_command as _pack_command
except ImportError:  # hiredis is optional: the redis extra installs it
    _pack_command = pack_command_py


def _fail(batch: list[_Waiter], error: Exception) -> None:
    for _, _, future in batch:
        if not future.done():
            future.set_exception(_own_copy(error))


def _own_copy(error: Exception) -> Exception:
    """Give one caller the batch's error: same class, message and cause, its own object."""
    try:
        clone = copy.copy(error)
    except Exception:  # an exception class that cannot be rebuilt from its args
        return error
    clone.__cause__ = error.__cause__
    return clone.with_traceback(error.__traceback__)
