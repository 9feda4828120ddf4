"""The store's own Redis connection: written to and read without redis-py's request layers.

redis-py spends most of a small command's time in its own machinery: a pooled connection
taken and given back, a timeout context and a retry wrapper per request, a coroutine step
per reply. The store's batched commands (``_redis_batch``) skip it. A :class:`RedisLink`
takes ONE connection from the client's pool, so that redis-py opens it (address, TLS,
AUTH, SELECT, HELLO, the client name, its own connect retries: all redis-py's), and then
becomes that socket's protocol: it writes requests to the transport, and the event loop
hands it the bytes that arrive, which a hiredis reader turns into replies. Each reply goes
to the group of commands that waits for it, in order, from the loop's read callback: no
task and no coroutine per request or per reply.

Replies are read as redis-py reads them with ``decode_responses=False``: bytes, ints,
lists, None, and a ``ResponseError`` (``NoScriptError``, ...) in place of an error reply.

Failures. A socket that closes or breaks fails every group waiting on it, each with an
error of its own; the link is then dead and the next batch opens a new one. With a
``socket_timeout`` on the client, a reply that takes longer fails the groups in the same
way, and the connection is dropped (its late replies would answer the wrong requests).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import TYPE_CHECKING, Any, Final, Protocol

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

if TYPE_CHECKING:
    from collections.abc import Callable

    from redis.asyncio.connection import AbstractConnection, ConnectionPool

__all__ = ["MORE", "Group", "PushNotice", "PythonReader", "RedisLink", "ReplyReader", "new_reader"]

_log = logging.getLogger("nyx_sessions.stores.redis")

MORE: Final = object()
"""What a reader's ``gets()`` returns while the next reply is incomplete."""


class ReplyReader(Protocol):
    """What :class:`RedisLink` needs of a RESP reader (``hiredis.Reader`` has it)."""

    def feed(self, data: bytes, /) -> None: ...

    def gets(self) -> Any: ...


class Group:
    """Commands of one caller, sent together; ``future`` gets their replies in a list."""

    __slots__ = ("count", "future", "packed", "replies")

    def __init__(self, packed: bytes, count: int, future: asyncio.Future[list[Any]]) -> None:
        self.packed = packed
        self.count = count
        self.future = future
        self.replies: list[Any] = []

    def fail(self, error: BaseException) -> None:
        """Give the caller ``error`` (a copy of its own), unless it has its answer already."""
        if not self.future.done():
            self.future.set_exception(_own_copy(error))

    def __repr__(self) -> str:
        return f"<Group {self.count} commands, {len(self.replies)} replies>"


class RedisLink(asyncio.Protocol):
    """One connection from the client's pool, read and written by the store directly.

    Create it with :meth:`open`; give the connection back with :meth:`release`.
    """

    __slots__ = (
        "_connection",
        "_pending",
        "_reader",
        "_requests",
        "_resp3",
        "_stream",
        "_timeout",
        "_timer",
        "_transport",
        "alive",
        "loop",
        "on_answered",
    )

    def __init__(self, connection: AbstractConnection, loop: asyncio.AbstractEventLoop) -> None:
        writer = connection._writer
        if writer is None:
            raise RedisConnectionError("the connection from the pool is not open")
        self._connection = connection
        self.loop = loop
        """The event loop that the connection's transport belongs to."""
        self._transport: asyncio.Transport = writer.transport  # type: ignore[assignment]
        # redis-py's stream protocol is still told when the socket closes, so that its
        # own disconnect() (the pool's, the client's aclose()) does not wait in vain.
        self._stream = self._transport.get_protocol()
        self._reader = new_reader()
        self._pending: collections.deque[Group] = collections.deque()
        self._resp3 = str(getattr(connection, "protocol", 2)) == "3"
        timeout = connection.socket_timeout
        self._timeout: float | None = float(timeout) if timeout else None
        self._timer: asyncio.TimerHandle | None = None
        # Per request in flight: its last group, and when it was written.
        self._requests: collections.deque[tuple[Group, float]] = collections.deque()
        self.alive = not self._transport.is_closing()
        self.on_answered: Callable[[], None] | None = None
        """Called when a request has all its replies, or when the connection failed."""
        self._transport.set_protocol(self)

    @classmethod
    async def open(cls, pool: ConnectionPool) -> RedisLink:
        """Take a connection from ``pool`` (redis-py opens it) and read it from now on."""
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            return cls(connection, asyncio.get_running_loop())
        except BaseException:
            await _give_back(pool, connection)
            raise

    @property
    def in_flight(self) -> int:
        """How many requests wait for replies."""
        return len(self._requests)

    def pending_futures(self) -> list[asyncio.Future[list[Any]]]:
        """Return the futures of the groups that wait for replies."""
        return [group.future for group in self._pending]

    def send(self, packed: bytes, groups: list[Group]) -> None:
        """Write ``packed`` (the commands of ``groups``, in order) as one request."""
        now = self.loop.time()
        self._pending.extend(groups)
        self._requests.append((groups[-1], now))
        self._transport.write(packed)
        if self._timeout is not None and self._timer is None:
            self._timer = self.loop.call_at(now + self._timeout, self._check_timeout)

    def fail(self, error: BaseException) -> None:
        """Fail every group that waits on this link, and close it."""
        self.alive = False
        self._cancel_timer()
        pending, self._pending = self._pending, collections.deque()
        self._requests.clear()
        for group in pending:
            group.fail(error)
        self._transport.abort()
        if self.on_answered is not None:
            self.on_answered()

    async def release(self, pool: ConnectionPool) -> None:
        """Close the socket and give the connection back to ``pool`` (which reopens it)."""
        if self.alive:
            self.fail(RedisConnectionError("the connection was closed by the store"))
        await _give_back(pool, self._connection)

    # -- asyncio.Protocol ------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        reader, pending, resp3 = self._reader, self._pending, self._resp3
        requests = self._requests
        answered = False
        reader.feed(data)
        try:
            while (reply := reader.gets()) is not MORE:
                if resp3 and isinstance(reply, _PUSH):
                    continue  # an out-of-band notice (RESP3), not a reply
                group = pending[0]
                replies = group.replies
                replies.append(reply)
                if len(replies) == group.count:
                    pending.popleft()
                    if not group.future.done():  # its caller may be gone (cancelled)
                        group.future.set_result(replies)
                    if group is requests[0][0]:
                        requests.popleft()
                        answered = True
        except IndexError:
            self.fail(InvalidResponse("Redis sent a reply that nothing asked for"))
        except Exception as error:  # a protocol error: nothing after it can be trusted
            self.fail(InvalidResponse(f"unreadable reply from Redis: {error}"))
        else:
            if answered:
                if not requests:
                    self._cancel_timer()
                if self.on_answered is not None:
                    self.on_answered()

    def eof_received(self) -> bool:
        return False  # the transport closes itself; connection_lost() follows

    def connection_lost(self, exc: Exception | None) -> None:
        was_alive, self.alive = self.alive, False
        self._cancel_timer()
        if self._pending:
            why = f": {exc}" if exc is not None else ""
            error = RedisConnectionError(f"Connection to Redis lost{why}")
            error.__cause__ = exc
            pending, self._pending = self._pending, collections.deque()
            for group in pending:
                group.fail(error)
        self._requests.clear()
        with contextlib.suppress(Exception):
            self._stream.connection_lost(exc)
        if was_alive and self.on_answered is not None:
            self.on_answered()

    # -- timeouts --------------------------------------------------------------------------

    def _check_timeout(self) -> None:
        self._timer = None
        if not self._requests or self._timeout is None:
            return
        due = self._requests[0][1] + self._timeout
        if self.loop.time() >= due:
            _log.warning("Redis did not answer in %ss: connection dropped", self._timeout)
            self.fail(RedisTimeoutError("Timeout reading from Redis"))
        else:
            self._timer = self.loop.call_at(due, self._check_timeout)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def __repr__(self) -> str:
        state = "alive" if self.alive else "dead"
        return f"<RedisLink {state}, {len(self._pending)} groups waiting>"


class PythonReader:
    """A RESP2/RESP3 reply reader in Python: what ``hiredis.Reader`` does in C.

    Used when hiredis is not installed (the ``redis`` extra installs it). Replies are the
    ones hiredis gives: bytes, int, float, bool, None, list, dict, and error objects.
    """

    __slots__ = ("_buffer", "_position")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._position = 0

    def feed(self, data: bytes, /) -> None:
        """Add received bytes."""
        if self._position:
            del self._buffer[: self._position]
            self._position = 0
        self._buffer += data

    def gets(self) -> Any:
        """Return the next complete reply, or :data:`MORE` when it has not all arrived."""
        try:
            reply, self._position = self._parse(self._position)
        except _Incomplete:
            return MORE
        return reply

    def _line(self, start: int) -> tuple[bytes, int]:
        end = self._buffer.find(b"\r\n", start)
        if end < 0:
            raise _Incomplete
        return bytes(self._buffer[start:end]), end + 2

    def _parse(self, start: int) -> tuple[Any, int]:
        line, position = self._line(start)
        if not line:
            raise InvalidResponse("empty reply line")
        kind, rest = line[:1], line[1:]
        if kind in b"+":
            return rest, position
        if kind == b"-":
            return reply_error(rest.decode(errors="replace")), position
        if kind in (b":", b"("):
            return int(rest), position
        if kind == b",":
            return float(rest), position
        if kind == b"#":
            return rest == b"t", position
        if kind == b"_":
            return None, position
        if kind in (b"$", b"=", b"!"):
            size = int(rest)
            if size < 0:
                return None, position
            end = position + size
            if len(self._buffer) < end + 2:
                raise _Incomplete
            data = bytes(self._buffer[position:end])
            if kind == b"=":
                data = data[4:]  # "txt:" or "mkd:"
            elif kind == b"!":
                return reply_error(data.decode(errors="replace")), end + 2
            return data, end + 2
        if kind in (b"*", b"~", b">", b"%", b"|"):
            size = int(rest)
            if size < 0:
                return None, position
            items = []
            for _ in range(size * 2 if kind in b"%|" else size):
                item, position = self._parse(position)
                items.append(item)
            if kind == b"|":  # attributes come before the reply they describe
                return self._parse(position)
            if kind == b"%":
                return dict(zip(items[::2], items[1::2], strict=True)), position
            return (PushNotice(items) if kind == b">" else items), position
        raise InvalidResponse(f"unknown reply type {kind!r}")


class PushNotice(list[Any]):
    """An out-of-band RESP3 push message, as :class:`PythonReader` reads it."""


class _Incomplete(Exception):
    """The reply has not all arrived yet."""


def reply_error(message: str) -> ResponseError:
    """Make the exception object for an error reply, of redis-py's class for its code."""
    if _parse_error is not None:
        error: ResponseError = _parse_error(message)
        return error
    if message.startswith("NOSCRIPT "):
        return NoScriptError(message[len("NOSCRIPT ") :])
    return ResponseError(message)


def new_reader() -> ReplyReader:
    """Make a hiredis reader when hiredis is installed, else a :class:`PythonReader`."""
    if _hiredis is None:
        return PythonReader()
    reader: ReplyReader = _hiredis.Reader(
        protocolError=InvalidResponse, replyError=reply_error, notEnoughData=MORE
    )
    return reader


async def _give_back(pool: ConnectionPool, connection: AbstractConnection) -> None:
    try:
        await connection.disconnect(nowait=True)
    except Exception as error:  # closing a broken socket may fail too; it is closed anyway
        _log.debug("Closing a Redis connection failed: %s", error)
    try:
        await pool.release(connection)
    except Exception as error:  # the pool was reset or closed meanwhile
        _log.debug("Returning a Redis connection to its pool failed: %s", error)


def _own_copy(error: BaseException) -> BaseException:
    """One caller's copy of a shared error: same class, message and cause."""
    try:
        clone = type(error)(*error.args)
    except Exception:  # an exception class that cannot be rebuilt from its args
        return error
    clone.__cause__ = error.__cause__
    return clone


_parse_error: Any
try:  # redis-py's mapping of error codes to exception classes (NOSCRIPT, BUSY, ...)
    from redis._parsers.base import BaseParser

    _parse_error = BaseParser.parse_error
except ImportError:  # pragma: no cover - a redis-py without it
    _parse_error = None

_hiredis: Any
_PUSH: tuple[type, ...] = (PushNotice,)
try:
    import hiredis as _hiredis

    if hasattr(_hiredis, "PushNotification"):
        _PUSH += (_hiredis.PushNotification,)
except ImportError:  # hiredis is optional: the redis extra installs it
    _hiredis = None
