"""Fixtures of the reliability tests.

The Redis fixtures are the store tests' own (one throwaway redis-server on a free
127.0.0.1 port, without persistence); :func:`durable_redis_server` adds one that fsyncs
every write, for the tests that kill Redis and count what survived.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
import pytest

from nyx_sessions import SessionManager
from nyx_sessions.stores.redis import RedisStore
from nyx_sessions.testing import ManualClock, OfflineDiscord
from tests.stores.conftest import (
    clock,
    empty_database,
    make_client,
    redis_client,
    redis_server,
    running_server,
)

from .support import DurableRedisServer, Process, Tally

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

    from redis.asyncio import Redis

    from tests.stores.redis_server import RedisServer

__all__ = [
    "clock",
    "durable_redis_client",
    "durable_redis_server",
    "offline",
    "redis_client",
    "redis_server",
    "spawn",
]


@pytest.fixture
async def offline() -> AsyncIterator[OfflineDiscord]:
    Tally.ends = []
    Tally.gate = None
    Tally.entered = None
    async with OfflineDiscord() as offline:
        yield offline


@pytest.fixture(scope="session")
def durable_redis_server() -> Iterator[DurableRedisServer]:
    yield from running_server(DurableRedisServer)


@pytest.fixture
async def durable_redis_client(durable_redis_server: DurableRedisServer) -> AsyncIterator[Redis]:
    """A client of an empty database on the durable server."""
    async for client in empty_database(durable_redis_server):
        yield client


@pytest.fixture
async def spawn(
    offline: OfflineDiscord, redis_server: RedisServer, redis_client: Redis, clock: ManualClock
) -> AsyncIterator[Callable[..., Awaitable[Process]]]:
    """Start bot processes on one Redis: ``await spawn(first=True, server=..., **options)``.

    The first process uses the offline Discord's own client; the others log in a client
    of their own. ``options`` go to :class:`SessionManager`.
    """
    processes: list[Process] = []

    async def spawn_process(
        *, first: bool = False, server: RedisServer | None = None, **options: Any
    ) -> Process:
        if first:
            client = offline.client
        else:
            client = discord.Client(intents=discord.Intents.none())
            await offline.login(client)
        redis = make_client(server or redis_server)
        settings: dict[str, Any] = {"poll_interval": 0.02, "lease": 2.0, "lease_wait": 3.0}
        settings.update(options)
        manager = SessionManager(
            client,
            store=RedisStore(redis, clock=clock),
            clock=clock,
            sessions=[Tally],
            **settings,
        )
        await manager.open()
        process = Process(manager, client, redis)
        processes.append(process)
        return process

    try:
        yield spawn_process
    finally:
        for process in processes:
            await process.close()
