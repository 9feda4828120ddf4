"""A record that can no longer be used ends its session: ERROR, END, the promise resolved.

The record of a live session is replaced behind the store's back (garbage, a list, the
body of another session), or a fresh process reads a record over its size cap. The
click is answered clearly, the session ends with ``EndCode.ERROR`` in every process
that awaits it, and nothing is left pending when the managers close.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar

import discord
import pytest

from nyx_sessions import EndCode, SessionEvent, SessionManager
from nyx_sessions.codecs import StateCodec
from nyx_sessions.stores.redis import RedisStore
from tests.stores.conftest import make_client

from .support import Process, Tally, start_tally

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from nyx_sessions.testing import ManualClock, OfflineDiscord
    from tests.stores.redis_server import RedisServer

_BROKEN = "can no longer be used"


async def record_key(redis: Redis, session_id: str) -> bytes:
    """The key of a session's record, found by its id (whatever the key layout)."""
    keys = [key async for key in redis.scan_iter(match=f"*{session_id}*") if b":rec:" in key]
    assert len(keys) == 1, keys
    key: bytes = keys[0]
    return key


async def _garbage(redis: Redis, key: bytes, other: bytes) -> None:
    await redis.set(key, b"\x00\xffnot a record")


async def _a_list(redis: Redis, key: bytes, other: bytes) -> None:
    await redis.delete(key)
    await redis.rpush(key, b"not", b"a", b"record")


async def _another_sessions_body(redis: Redis, key: bytes, other: bytes) -> None:
    body: dict[Any, Any] = await redis.hgetall(other)
    await redis.delete(key)
    await redis.hset(key, mapping=body)


Corruption = Callable[[Any, bytes, bytes], Awaitable[None]]


@pytest.mark.parametrize("corrupt", [_garbage, _a_list, _another_sessions_body])
async def test_a_record_made_unusable_between_clicks_ends_the_session_with_error(
    offline: OfflineDiscord,
    spawn: Callable[..., Awaitable[Process]],
    redis_client: Redis,
    corrupt: Corruption,
) -> None:
    process = await spawn(first=True)
    ends: list[Any] = []

    async def on_end(session: Any, end: Any) -> None:
        ends.append(end)

    process.manager.add_listener(SessionEvent.END, on_end)
    alice = offline.add_member("alice")
    session = await start_tally(offline, process, alice)
    other = await start_tally(offline, process, alice)
    message = offline.messages[-2]
    await offline.click(alice, message, label="+1")
    assert message.content == "1"

    key = await record_key(redis_client, session.id)
    await corrupt(redis_client, key, await record_key(redis_client, other.id))
    click = await offline.click(alice, message, label="+1")
    assert click.message is not None and _BROKEN in click.message.content

    end = await asyncio.wait_for(session.end_promise, 5)
    assert end.code is EndCode.ERROR
    await asyncio.sleep(0.05)  # listeners run in tasks of their own
    assert [e.session_id for e in ends] == [session.id]
    assert process.manager.get(session.id) is None
    await process.manager.aclose()
    assert other.end_promise.done()  # resolved (SHUTDOWN) by aclose, as every promise


class BigTally(Tally):
    """A tally whose state is about 5 MB."""

    session_type = "reliability.big-tally"
    ends: ClassVar[list[tuple[str, str, int]]] = []

    async def start(self) -> None:
        self.data["blob"] = "x" * 5_000_000
        await super().start()


async def test_a_record_over_the_size_cap_read_by_a_fresh_process_ends_with_error(
    offline: OfflineDiscord, redis_server: RedisServer, redis_client: Redis, clock: ManualClock
) -> None:
    """A process without a cap wrote it; a fresh one with the default 1 MB cap reads it."""
    processes: list[Process] = []

    async def process(client: discord.Client, codec: StateCodec) -> Process:
        redis = make_client(redis_server)
        store = RedisStore(redis, codec=codec, clock=clock)
        manager = SessionManager(client, store=store, clock=clock, sessions=[BigTally])
        await manager.open()
        processes.append(Process(manager, client, redis))
        return processes[-1]

    try:
        writer = await process(offline.client, StateCodec(max_record_size=None))
        alice = offline.add_member("alice")
        session = await start_tally(offline, writer, alice, BigTally)
        message = offline.messages[-1]
        fresh_client = discord.Client(intents=discord.Intents.none())
        await offline.login(fresh_client)
        await process(fresh_client, StateCodec())  # the default cap: 1 MB
        click = await offline.click(alice, message, label="+1", client=fresh_client)
        assert click.message is not None and _BROKEN in click.message.content
        end = await asyncio.wait_for(session.end_promise, 5)  # told by the reader
        assert end.code is EndCode.ERROR
        aside = [key async for key in redis_client.scan_iter(match=f"*corrupt*{session.id}*")]
        assert len(aside) == 1  # moved aside, for a person to look at
        assert await record_key_count(redis_client, session.id) == 0
    finally:
        for each in processes:
            await each.close()


async def record_key_count(redis: Redis, session_id: str) -> int:
    return len([k async for k in redis.scan_iter(match=f"*{session_id}*") if b":rec:" in k])
