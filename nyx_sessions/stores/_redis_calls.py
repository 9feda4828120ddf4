"""Script calls of :class:`~nyx_sessions.stores.redis.RedisStore`, sent together.

The calls made in one turn of the event loop (32 clicks in flight make 32 acquires or
commits at once) go out as ONE redis-py pipeline without a transaction: one request
and one connection for all of them instead of one each, which is most of what a call
costs the client. Each call keeps its own reply or error. A call alone waits one loop
turn, nothing more.

A NOSCRIPT reply (a restarted or failed-over server forgot the scripts) loads the
script and sends again the calls that got it, and only those: the others ran. With
``wait`` set, a WAIT follows the calls of a batch that writes, and when fewer replicas
than asked confirm in time, the writes of the batch fail with
:class:`~nyx_sessions.errors.StoreUnavailableError` (they ran on the primary, but a
failover may lose them).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

from ..errors import StoreUnavailableError

if TYPE_CHECKING:
    import redis.asyncio
    from redis.asyncio.cluster import RedisCluster
    from redis.commands.core import AsyncScript

__all__ = ["ScriptCalls"]


class _Call:
    __slots__ = ("args", "future", "keys", "script", "write")

    def __init__(
        self,
        script: AsyncScript,
        keys: list[str],
        args: list[Any],
        write: bool,
        future: asyncio.Future[Any],
    ) -> None:
        self.script = script
        self.keys = keys
        self.args = args
        self.write = write
        self.future = future


class ScriptCalls:
    """Gathers script calls and sends each loop turn's calls as one pipeline.

    Parameters
    ----------
    client:
        The store's client (a pipeline of a ``RedisCluster`` splits by node itself).
    wait:
        ``(replicas, timeout_ms)`` for a WAIT after writes; ``replicas`` 0 for none.
    """

    __slots__ = ("_client", "_pending", "_sending", "_wait")

    def __init__(self, client: redis.asyncio.Redis | RedisCluster, wait: tuple[int, int]) -> None:
        self._client = client
        self._wait = wait
        self._pending: list[_Call] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def run(
        self, script: AsyncScript, keys: list[str], args: list[Any], *, write: bool
    ) -> Any:
        """Run ``script`` in the next batch; its reply, or its error raised."""
        loop = asyncio.get_running_loop()
        if not self._pending:
            loop.call_soon(self._flush)
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append(_Call(script, keys, args, write, future))
        return await future

    async def drain(self, limit: float) -> None:
        """Wait up to ``limit`` seconds for the batches in flight."""
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=limit)

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[_Call]) -> None:
        try:
            replies = await self._execute(batch)
        except BaseException as error:
            for call in batch:
                if not call.future.done():
                    call.future.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        for call, reply in zip(batch, replies, strict=True):
            if call.future.done():
                continue  # its caller was cancelled; the call ran all the same
            if isinstance(reply, BaseException):
                call.future.set_exception(reply)
            else:
                call.future.set_result(reply)

    async def _execute(self, batch: list[_Call]) -> list[Any]:
        replies = await self._pipeline(batch)
        again = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if again:
            for script in {id(batch[i].script): batch[i].script for i in again}.values():
                await self._client.script_load(script.script)
            retried = await self._pipeline([batch[i] for i in again])
            for index, reply in zip(again, retried, strict=True):
                replies[index] = reply
        return replies

    async def _pipeline(self, batch: list[_Call]) -> list[Any]:
        """Send ``batch`` as one pipeline (and a WAIT after writes); their replies."""
        replicas, timeout_ms = self._wait
        waits = replicas > 0 and any(call.write for call in batch)
        pipe = self._client.pipeline(transaction=False)
        for call in batch:
            pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
        if waits:
            pipe.wait(replicas, timeout_ms)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        if not waits:
            return replies
        confirmed = replies.pop()
        if isinstance(confirmed, int) and confirmed >= replicas:
            return replies
        failure = StoreUnavailableError(
            f"the write reached {confirmed} of {replicas} replicas in time"
        )
        return [
            failure if call.write and not isinstance(reply, BaseException) else reply
            for call, reply in zip(batch, replies, strict=True)
        ]
