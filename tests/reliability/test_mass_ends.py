"""End notices under a mass end: every process's end promises resolve.

300 sessions that two processes both served are ended at once in one of them. Every
shared-store call, end notices and removals included, goes through the manager's
``store_concurrency`` bound, so the notices are not lost to a drained connection pool;
and a process whose session's record is gone asks the store how it ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord
from redis.asyncio import Redis

from nyx_sessions import EndCode, SessionManager
from nyx_sessions.stores.redis import RedisStore

from .support import Process, Tally, start_tally

if TYPE_CHECKING:
    from nyx_sessions.testing import ManualClock, OfflineDiscord
    from tests.stores.redis_server import RedisServer

_SESSIONS = 300
_POOL = 16


async def bounded_process(
    offline: OfflineDiscord, server: RedisServer, clock: ManualClock, *, first: bool
) -> Process:
    """A process whose Redis client has a pool of 16 connections, its manager's bound."""
    client = offline.client
    if not first:
        client = discord.Client(intents=discord.Intents.none())
        await offline.login(client)
    redis = Redis(host=server.host, port=server.port, max_connections=_POOL)
    store = RedisStore(redis, clock=clock)
    manager = SessionManager(
        client, store=store, clock=clock, sessions=[Tally], store_concurrency=_POOL
    )
    await manager.open()
    return Process(manager, client, redis)


async def test_ending_300_shared_sessions_at_once_resolves_every_promise_elsewhere(
    offline: OfflineDiscord, redis_server: RedisServer, redis_client: Redis, clock: ManualClock
) -> None:
    first = await bounded_process(offline, redis_server, clock, first=True)
    second = await bounded_process(offline, redis_server, clock, first=False)
    try:
        await _end_all_at_once(offline, first, second)
    finally:
        await first.close()
        await second.close()


async def _end_all_at_once(offline: OfflineDiscord, first: Process, second: Process) -> None:
    alice = offline.add_member("alice")
    sessions = [await start_tally(offline, first, alice) for _ in range(_SESSIONS)]
    messages = {m.id: m for m in offline.messages}
    elsewhere: list[Tally] = []
    for session in sessions:
        assert session.message_id is not None
        await offline.click(alice, messages[session.message_id], label="+1", client=second.client)
        copy = second.manager.get(session.id)
        assert isinstance(copy, Tally)
        elsewhere.append(copy)

    assert all(await asyncio.gather(*(first.manager.end(s) for s in sessions)))
    ends = await asyncio.wait_for(asyncio.gather(*(s.end_promise for s in elsewhere)), 30)
    assert {end.code for end in ends} == {EndCode.CANCELLED}


async def test_a_process_that_missed_the_notice_learns_the_end_when_it_next_looks(
    offline: OfflineDiscord,
    spawn: Callable[..., Awaitable[Process]],
    redis_client: Redis,
    clock: ManualClock,
) -> None:
    first = await spawn(first=True)
    second = await spawn()
    alice = offline.add_member("alice")
    session = await start_tally(offline, first, alice)
    message = offline.messages[-1]
    await offline.click(alice, message, label="+1", client=second.client)
    copy = second.manager.get(session.id)
    assert isinstance(copy, Tally)
    second.manager.store.on_end(None)  # deaf to notices, as if this one were lost
    assert await first.manager.end(session, reason="closed by a moderator")
    click = await offline.click(alice, message, label="+1", client=second.client)
    assert click.message is not None and "expired" in click.message.content
    end = await asyncio.wait_for(copy.end_promise, 1)  # the real end, at once
    assert (end.code, end.reason) == (EndCode.CANCELLED, "closed by a moderator")
