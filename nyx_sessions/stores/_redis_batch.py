"""Commands of concurrent callers, sent to Redis together in one write.

A bot serving many sessions at once issues many small requests at the same moment (32
clicks in flight are 32 lease takes, then 32 commits). Sent one by one through redis-py,
each costs a pooled connection, a timeout, a retry wrapper, a write and a read: most of a
process's time went there, not to Redis. :class:`CommandBatcher` collects the command
groups that callers queue and writes them as ONE request (one write, one read of the
replies, in order) on the store's own connection, a :class:`~._redis_wire.RedisLink`.

When a request leaves: at the end of the loop turn in which its first group came, when
fewer than :data:`MAX_IN_FLIGHT` requests wait for replies; else as soon as one of them
is answered, with everything queued meanwhile; and at once when it holds
:data:`MAX_BATCH` groups. So Redis works on one request while this process prepares the
next, requests are not split into many small writes (each write, and the wake-up it
causes in Redis, costs more than the commands in it), and a slow or distant Redis is
never waited for before sending more.

A caller sees no difference: it hands over a group of commands and gets the group's
replies back in order, a Redis error reply in place of its command's reply (so one
caller's WRONGTYPE or NOSCRIPT is its own). A failure of the connection (Redis gone, a
timeout) reaches every caller waiting on it, each with an exception of its own, and the
next request opens a new connection. A caller alone still costs one round trip per group,
and a caller cancelled before its request leaves has nothing sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, TypeAlias

from redis.exceptions import ConnectionError as RedisConnectionError

from ._redis_wire import Group, RedisLink

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import redis.asyncio

__all__ = [
    "MAX_BATCH",
    "MAX_IN_FLIGHT",
    "Command",
    "CommandBatcher",
    "pack_command",
    "pack_command_py",
]

_log = logging.getLogger("nyx_sessions.stores.redis")

Command: TypeAlias = "tuple[Any, ...]"
"""One Redis command: its name and arguments (str, bytes, int or float)."""

MAX_BATCH = 16
"""Command groups per request at most; a request that has this many leaves at once."""

MAX_IN_FLIGHT = 2
"""Requests unanswered before a request that is not full waits for one of them.

Measured with 32 concurrent updates on a local Redis (median updates/s of 5 runs, each
setting in turn, 4 rounds): 2 in flight with 16 groups each, 33-34.5k; 11 or 13 groups,
the same within the noise; 1 in flight, 31-33k (this process and Redis wait for each
other more); no limit, requests of a few groups, and their writes cost the most.
"""


class CommandBatcher:
    """Writes the command groups queued in one event-loop turn as one request.

    Parameters
    ----------
    client:
        The client whose connection pool provides the connection (opened by redis-py,
        with the client's address, credentials and timeouts). The batcher holds one
        connection of that pool until :meth:`aclose`.
    """

    __slots__ = ("_client", "_closed", "_connecting", "_flushing", "_link", "_queue", "sent")

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._client = client
        self._link: RedisLink | None = None
        self._queue: list[Group] = []  # groups of this turn, written at its end
        self._flushing = False  # a write is scheduled for the end of this turn
        self._connecting: asyncio.Task[None] | None = None
        self._closed = False
        self.sent = 0
        """Requests written (each one write, however many commands it holds)."""

    def send(self, packed: bytes, count: int) -> asyncio.Future[list[Any]]:
        """Queue ``count`` packed commands for this turn's request; await their replies.

        The future's result is the list of the ``count`` replies, a ``ResponseError`` in
        place of each command that Redis refused. Its exception is a
        ``redis.exceptions.ConnectionError`` or ``TimeoutError`` when the connection
        failed (or could not be opened) before all of them came.
        """
        link = self._link
        # The open connection's loop is the running one; asking asyncio for it costs a
        # getpid() system call on Python 3.11, twice an update.
        loop = link.loop if link is not None and link.alive else asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        if self._closed:
            future.set_exception(RedisConnectionError("the command batcher is closed"))
            return future
        queue = self._queue
        queue.append(Group(packed, count, future))
        if len(queue) >= MAX_BATCH and link is not None and link.alive:
            self._write(link)  # full: it goes now, whatever is in flight
        elif not self._flushing and (link is None or link.in_flight < MAX_IN_FLIGHT):
            # After every callback already queued in this turn: what the tasks woken in
            # this turn send goes along.
            self._flushing = True
            loop.call_soon(self._flush)
        # else: written as soon as a request in flight is answered (_answered)
        return future

    async def connect(self) -> bool:
        """Open the connection now rather than with the first request; True when open."""
        link = self._link
        if link is not None and link.alive:
            return True
        if self._closed:
            return False
        await asyncio.shield(self._start_connecting())
        link = self._link
        return link is not None and link.alive

    async def run(self, commands: Sequence[Command]) -> list[Any]:
        """Send ``commands`` with this turn's request; return their replies, in order.

        A command that Redis refused has its ``ResponseError`` in place of its reply.

        Raises
        ------
        redis.exceptions.RedisError, OSError
            The request as a whole failed (the server is unreachable, a timeout).
        TypeError
            A command has an argument that cannot be sent (this caller's only).
        """
        packed = b"".join(map(pack_command, commands))  # a bad argument fails its caller only
        return await self.send(packed, len(commands))

    async def aclose(self, wait: float) -> None:
        """Let the requests queued or in flight finish for up to ``wait`` s, then close.

        The callers still waiting after that get an error; the connection goes back to
        the pool. Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        outstanding = [group.future for group in self._queue]
        if self._link is not None:
            outstanding += self._link.pending_futures()
        if outstanding:
            await asyncio.wait(outstanding, timeout=wait)
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        queue, self._queue = self._queue, []
        _fail(queue, RedisConnectionError("the request was cancelled before its reply came"))
        link, self._link = self._link, None
        if link is not None:
            link.fail(RedisConnectionError("the request was cancelled before its reply came"))
            await link.release(self._client.connection_pool)

    def _flush(self) -> None:
        self._flushing = False
        link = self._link
        if link is None or not link.alive:
            if self._queue:
                self._start_connecting()
            return  # the connection, once open, writes what is queued
        while self._queue and link.in_flight < MAX_IN_FLIGHT:
            self._write(link)
        # the rest: written as soon as a request in flight is answered (_answered)

    def _answered(self) -> None:
        """Write what was queued meanwhile: a request was answered, or the link died."""
        if not self._queue or self._closed:
            return
        link = self._link
        if link is None or not link.alive:
            self._start_connecting()
            return
        while self._queue and link.in_flight < MAX_IN_FLIGHT:
            self._write(link)

    def _write(self, link: RedisLink) -> None:
        """Write up to :data:`MAX_BATCH` queued groups as one request."""
        queue = self._queue
        while queue:
            # A caller cancelled before its request left has its group dropped: no lease
            # is taken that nobody would give back.
            groups = [group for group in queue[:MAX_BATCH] if not group.future.done()]
            queue = self._queue = queue[MAX_BATCH:]
            if groups:
                link.send(b"".join([group.packed for group in groups]), groups)
                self.sent += 1
                return

    def _start_connecting(self) -> asyncio.Task[None]:
        task = self._connecting
        if task is None:
            task = asyncio.get_running_loop().create_task(self._connect(), name="nyx-redis-connect")
            task.add_done_callback(self._connected)
            self._connecting = task
        return task

    def _connected(self, task: asyncio.Task[None]) -> None:
        if self._connecting is task:
            self._connecting = None
        if task.cancelled():  # the store closes, or the loop does; maybe before it began
            queue, self._queue = self._queue, []
            _fail(queue, RedisConnectionError("the request was cancelled before it left"))

    async def _connect(self) -> None:
        """Open a new connection (giving the dead one back), then write what is queued."""
        pool = self._client.connection_pool
        try:
            dead, self._link = self._link, None
            if dead is not None:
                await dead.release(pool)
            link = await RedisLink.open(pool)
        except Exception as error:
            self._connecting = None
            queue, self._queue = self._queue, []
            _fail(queue, error)
            _log.debug("No connection to Redis: %s", error)
            return
        self._connecting = None
        if self._closed:
            await link.release(pool)
            return
        link.on_answered = self._answered
        self._link = link
        self._flush()

    def __repr__(self) -> str:
        state = "closed" if self._closed else repr(self._link)
        return f"<CommandBatcher {len(self._queue)} queued, {state}>"


def _fail(groups: list[Group], error: BaseException) -> None:
    for group in groups:
        group.fail(error)


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


pack_command: Callable[[Command], bytes]
try:
    from hiredis import pack_command
except ImportError:  # hiredis is optional: the redis extra installs it
    pack_command = pack_command_py
