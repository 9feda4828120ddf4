"""Fixtures of the store tests: a real redis-server, and one ``store`` per backend."""

from __future__ import annotations

import asyncio
import os
import shutil
from typing import TYPE_CHECKING, TypeVar

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from nyx_sessions.stores.memory import MemoryStore
from nyx_sessions.stores.redis import RedisStore
from nyx_sessions.testing.clock import ManualClock

from .redis_server import RedisServer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

    from nyx_sessions.stores.base import SessionStore


ServerT = TypeVar("ServerT", bound=RedisServer)


def make_client(server: RedisServer) -> Redis:
    """A client that fails fast when the server is down (one retry, no backoff)."""
    return Redis(
        host=server.host,
        port=server.port,
        retry=Retry(NoBackoff(), 1),
        socket_connect_timeout=1,
        socket_timeout=2,
    )


def running_server(cls: type[ServerT]) -> Iterator[ServerT]:
    """Start a ``cls`` redis-server for the session; fail or skip without the binary."""
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "redis-server is not installed (run `make redis-server`)"
        if os.environ.get("NYX_REQUIRE_REDIS") or os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    server = cls(binary)
    server.start()
    try:
        yield server
    finally:
        server.close()


async def empty_database(server: RedisServer) -> AsyncIterator[Redis]:
    """A client of an empty database (fault tests may have stopped the server)."""
    server.start()
    client = make_client(server)
    try:
        await client.flushdb()
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    yield from running_server(RedisServer)


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[Redis]:
    async for client in empty_database(redis_server):
        yield client


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest, clock: ManualClock) -> AsyncIterator[SessionStore]:
    if request.param == "memory":
        memory = MemoryStore()
        memory.use_clock(clock)
        yield memory
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    server.start()
    client = make_client(server)
    redis_store = RedisStore(client, clock=clock)
    try:
        await client.flushdb()
        await redis_store.open()
        yield redis_store
    finally:
        await redis_store.aclose()
        await client.aclose()


@pytest.fixture
def let_time_pass(store: SessionStore, clock: ManualClock) -> Callable[[float], Awaitable[None]]:
    """Move the store's clock on; Redis measures leases itself, so also really wait."""

    async def let_pass(seconds: float) -> None:
        await clock.advance(seconds)
        if isinstance(store, RedisStore):
            await asyncio.sleep(seconds)

    return let_pass
