"""End notices between the processes that share a :class:`~nyx_sessions.stores.redis.RedisStore`.

A notice is PUBLISHed on ``<prefix>:ends`` as msgpack ``[store instance id, session
id, code, reason, result]``. Classic PUBLISH reaches every subscriber of the channel,
on a Redis Cluster too (the cluster forwards it to every node), so each store runs one
named background task that subscribes on one connection: the client's own pub/sub on a
plain or Sentinel client, and on a Cluster a plain client of one node, taken from the
cluster's node list (another node after a failure). The task skips its own store's
notices, hands the others to the manager's callback, and reconnects with a backoff
when Redis goes away.

Publishing is bounded (a few at a time, so that a mass end cannot run the connection
pool dry) and retried a few times with a backoff before it gives up.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import redis.asyncio
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import SSLConnection
from redis.exceptions import RedisError

from ..end import EndCode, SessionEndData
from ..errors import RecordError, StateEncodeError, StoreUnavailableError

if TYPE_CHECKING:
    from collections.abc import Callable

    from redis.asyncio.client import PubSub

    from ..codecs.state import StateCodec

__all__ = ["EndNotices", "decode_end", "encode_end"]

_log = logging.getLogger("nyx_sessions.stores.redis")

_FIRST_RECONNECT, _MAX_RECONNECT = 0.05, 2.0
_SUBSCRIBE_WAIT = 2.0  # how long start() waits for the subscription
_READ_TIMEOUT = 1.0  # the longest the listener blocks before it looks at the stop flag
PUBLISH_ATTEMPTS = 4
_PUBLISH_PAUSE = 0.05  # doubled after each failed attempt
_PUBLISHING = 8  # publishes in flight at once, per store
# What a node's own client takes from the cluster's connection settings.
_NODE_SETTINGS = (
    "username",
    "password",
    "credential_provider",
    "client_name",
    "socket_connect_timeout",
    "socket_timeout",
    "socket_keepalive",
)


def encode_end(codec: StateCodec, head: list[Any], end: SessionEndData) -> bytes:
    """Encode ``[*head, session id, code, reason, result]``, without an unencodable result."""
    fields = [*head, end.session_id, str(end.code.value), end.reason]
    try:
        return codec.encode_value([*fields, end.result])
    except StateEncodeError as error:
        _log.warning("Session %s: result not sent with its end (%s)", end.session_id, error)
        return codec.encode_value([*fields, None])


def decode_end(fields: list[Any]) -> SessionEndData:
    """Return the end of ``[session id, code, reason, result]`` (ValueError, TypeError)."""
    session_id, code, reason, result = fields
    if not isinstance(session_id, str) or not (reason is None or isinstance(reason, str)):
        raise TypeError("malformed end")
    return SessionEndData(session_id, EndCode(code), reason, result)


class EndNotices:
    """The end-notice channel of one store: publishing, and the listener task.

    Parameters
    ----------
    client:
        The store's client; the listener takes a pub/sub connection of its own.
    channel:
        The pub/sub channel, ``<prefix>:ends``.
    codec:
        Encodes and decodes the notices.
    instance:
        The store's instance id, which marks its own notices.
    """

    __slots__ = (
        "_channel",
        "_client",
        "_codec",
        "_instance",
        "_listener",
        "_on_end",
        "_publishing",
        "_stopped",
        "listening",
    )

    def __init__(
        self,
        client: redis.asyncio.Redis | RedisCluster,
        channel: str,
        codec: StateCodec,
        instance: str,
    ) -> None:
        self._client = client
        self._channel = channel
        self._codec = codec
        self._instance = instance
        self._listener: asyncio.Task[None] | None = None
        self._on_end: Callable[[SessionEndData], None] | None = None
        self._publishing = asyncio.Semaphore(_PUBLISHING)
        self._stopped = False
        self.listening = asyncio.Event()  # set while subscribed

    @property
    def started(self) -> bool:
        """True once :meth:`start` ran (and until :meth:`stop`)."""
        return self._listener is not None

    async def start(self) -> None:
        """Start listening; wait a little for the subscription, and go on without it."""
        self._listener = asyncio.create_task(
            self._listen(), name=f"nyx-redis-end-listener-{self._instance[:8]}"
        )
        self._listener.add_done_callback(_log_crash)
        try:
            async with asyncio.timeout(_SUBSCRIBE_WAIT):
                await self.listening.wait()
        except TimeoutError:
            _log.warning("Not yet subscribed to %s; end notices wait for Redis", self._channel)

    async def stop(self) -> bool:
        """Stop the listener; return False if it did not stop in time."""
        self._stopped = True
        listener, self._listener = self._listener, None
        if listener is None:
            return True
        listener.cancel()
        done, _ = await asyncio.wait({listener}, timeout=_READ_TIMEOUT + 1.0)
        return bool(done)

    async def publish(self, end: SessionEndData) -> None:
        """Publish ``end`` (without its result if the result cannot be encoded).

        Raises
        ------
        StoreUnavailableError
            Every attempt failed; the last failure is its cause.
        """
        payload = encode_end(self._codec, [self._instance], end)
        pause = _PUBLISH_PAUSE
        async with self._publishing:
            for attempt in range(PUBLISH_ATTEMPTS):
                try:
                    await self._client.publish(self._channel, payload)
                    return
                except (RedisError, OSError) as error:
                    if attempt == PUBLISH_ATTEMPTS - 1:
                        raise StoreUnavailableError(
                            f"Redis is unreachable (publish): {error}"
                        ) from error
                await asyncio.sleep(pause)
                pause *= 2

    def on_end(self, callback: Callable[[SessionEndData], None] | None) -> None:
        """Call ``callback`` for every end published by another store (None to stop)."""
        self._on_end = callback

    async def _listen(self) -> None:
        pause, failures = _FIRST_RECONNECT, 0
        while not self._stopping():
            node: redis.asyncio.Redis | None = None
            pubsub: PubSub | None = None
            try:
                if isinstance(self._client, RedisCluster):
                    await self._client.initialize()  # the node list, once per client
                    node = _node_client(self._client)
                    pubsub = node.pubsub()
                else:
                    pubsub = self._client.pubsub()
                await pubsub.subscribe(self._channel)
                while not self._stopping():
                    message = await pubsub.get_message(timeout=_READ_TIMEOUT)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        if failures:
                            _log.info("End notices from Redis resumed on %s", self._channel)
                        self.listening.set()
                        pause, failures = _FIRST_RECONNECT, 0
                    elif message["type"] == "message":
                        self._deliver(message["data"])
            except (RedisError, OSError) as error:
                self.listening.clear()
                failures += 1
                _log.log(
                    logging.WARNING if failures == 1 else logging.DEBUG,
                    "End notices from Redis interrupted (%s); reconnecting in %.2fs",
                    error,
                    pause,
                )
            finally:
                if pubsub is not None:
                    await pubsub.aclose()
                if node is not None:
                    await node.aclose()
            if not self._stopping():
                await asyncio.sleep(pause)
                pause = min(pause * 2, _MAX_RECONNECT)

    def _stopping(self) -> bool:
        # A cancellation can get lost inside redis-py's reconnect path (seen in tests:
        # the task stayed "cancelling" and went back to reading). Reads are bounded, and
        # this check ends the loop either way.
        task = asyncio.current_task()
        return self._stopped or (task is not None and task.cancelling() > 0)

    def _deliver(self, raw: bytes) -> None:
        try:
            instance, *fields = self._codec.decode_value(raw)
            end = decode_end(fields)
        except (RecordError, ValueError, TypeError) as error:
            _log.warning("Ignoring a malformed end notice on %s: %s", self._channel, error)
            return
        callback = self._on_end
        if instance == self._instance or callback is None:
            return
        try:
            callback(end)
        except Exception:
            _log.exception("End callback failed for session %s", end.session_id)


def _node_client(cluster: RedisCluster) -> redis.asyncio.Redis:
    """Return a plain client of one node of ``cluster``, with its credentials."""
    node = cluster.get_random_node()
    settings = cluster.get_connection_kwargs()
    options: dict[str, Any] = {name: settings[name] for name in _NODE_SETTINGS if name in settings}
    connection_class = settings.get("connection_class")
    if isinstance(connection_class, type) and issubclass(connection_class, SSLConnection):
        options["ssl"] = True
        options.update({k: v for k, v in settings.items() if k.startswith("ssl_")})
    return redis.asyncio.Redis(host=node.host, port=int(node.port), **options)


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.error("The Redis end listener stopped", exc_info=task.exception())
