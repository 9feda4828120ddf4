"""Fixtures of the conversation tests: a real redis-server, bot processes sharing it."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import discord
import pytest
from redis.asyncio import Redis

from nyx_sessions import SessionManager
from nyx_sessions.stores.redis import RedisStore
from nyx_sessions.testing import ManualClock, OfflineDiscord

from ..stores.redis_server import RedisServer
from .flows import Counting, Signup, Slow


class Process:
    """One bot process: its own discord.py client, Redis store and manager."""

    def __init__(
        self, manager: SessionManager, client: discord.Client, offline: OfflineDiscord | None
    ) -> None:
        self.manager = manager
        self.client = client
        self._offline = offline  # set for a client of its own, logged out on close

    async def close(self) -> None:
        """Stop the process: its manager, its store, its client."""
        await self.manager.aclose()
        await self.manager.store.aclose()
        if self._offline is not None:
            await self._offline.logout(self.client)


Spawn = Callable[..., Awaitable[Process]]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "redis-server is not installed"
        if os.environ.get("NYX_REQUIRE_REDIS") or os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    server = RedisServer(binary)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
async def spawn(
    offline: OfflineDiscord, redis_server: RedisServer, clock: ManualClock
) -> AsyncIterator[Spawn]:
    """Start bot processes on one Redis database, emptied first; closed at the end."""
    redis = Redis(host=redis_server.host, port=redis_server.port)
    await redis.flushdb()
    await redis.aclose()
    processes: list[Process] = []

    async def spawn_process(*, first: bool = False, **options: Any) -> Process:
        if first:
            client = offline.client
        else:
            client = discord.Client(intents=discord.Intents.none())
            await offline.login(client)
        store = RedisStore.from_url(redis_server.url)
        options.setdefault("sessions", [Signup, Slow, Counting])
        options.setdefault("poll_interval", 0.02)
        manager = SessionManager(client, store=store, clock=clock, **options)
        await manager.open()
        process = Process(manager, client, None if first else offline)
        processes.append(process)
        return process

    try:
        yield spawn_process
    finally:
        for process in processes:
            await process.close()  # idempotent for the ones a test closed
