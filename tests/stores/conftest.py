"""Fixtures of the store tests: real redis-servers (single, Cluster), a ``store`` per backend."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from typing import TYPE_CHECKING, TypeVar

import pytest
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from nyx_sessions.stores.memory import MemoryStore
from nyx_sessions.stores.redis import RedisStore
from nyx_sessions.testing.clock import ManualClock

from .redis_cluster import RedisClusterServers
from .redis_server import RedisServer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

    from nyx_sessions.stores.base import SessionStore


ServerT = TypeVar("ServerT", bound=RedisServer)
AnyRedis = Redis | RedisCluster
AnyServer = RedisServer | RedisClusterServers


def make_client(server: RedisServer) -> Redis:
    """A client that fails fast when the server is down (one retry, no backoff)."""
    return Redis(
        host=server.host,
        port=server.port,
        retry=Retry(NoBackoff(), 1),
        socket_connect_timeout=1,
        socket_timeout=2,
    )


def make_any_client(server: AnyServer) -> AnyRedis:
    """A fail-fast client of ``server``: a ``RedisCluster`` for a cluster."""
    if isinstance(server, RedisServer):
        return make_client(server)
    return RedisCluster(
        host=server.host,
        port=server.port,
        retry=Retry(NoBackoff(), 1),
        socket_connect_timeout=1,
        socket_timeout=2,
    )


def require_binary(name: str) -> str:
    """The path of ``name``; fail (NYX_REQUIRE_REDIS or CI) or skip without it."""
    binary = shutil.which(name)
    if binary is None:
        reason = f"{name} is not installed (run `make redis-server`)"
        if os.environ.get("NYX_REQUIRE_REDIS") or os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return binary


def running_server(cls: type[ServerT]) -> Iterator[ServerT]:
    """Start a ``cls`` redis-server for the session; fail or skip without the binary."""
    server = cls(require_binary("redis-server"))
    try:
        server.start()
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


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    """Three cluster primaries for the whole run (creating a cluster takes seconds)."""
    binary, cli = require_binary("redis-server"), require_binary("redis-cli")
    for attempt in range(3):  # a busy machine: a port taken meanwhile, a slow handshake
        cluster = RedisClusterServers(binary, cli)
        try:
            cluster.start()
        except (RuntimeError, subprocess.SubprocessError):
            cluster.close()
            if attempt == 2:
                raise
            continue
        try:
            yield cluster
        finally:
            cluster.close()
        return


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[Redis]:
    async for client in empty_database(redis_server):
        yield client


@pytest.fixture(params=["single", "cluster"])
def any_server(request: pytest.FixtureRequest) -> AnyServer:
    """A single redis-server, then the three-primary Cluster."""
    name = "redis_server" if request.param == "single" else "redis_cluster"
    server: AnyServer = request.getfixturevalue(name)
    server.start()
    return server


@pytest.fixture
async def any_client(any_server: AnyServer) -> AsyncIterator[AnyRedis]:
    """A client of an empty ``any_server`` (every primary flushed)."""
    client = make_any_client(any_server)
    try:
        await client.flushdb()
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("redis-cluster", marks=pytest.mark.redis),
    ]
)
async def store(request: pytest.FixtureRequest, clock: ManualClock) -> AsyncIterator[SessionStore]:
    if request.param == "memory":
        memory = MemoryStore()
        memory.use_clock(clock)
        yield memory
        return
    name = "redis_server" if request.param == "redis" else "redis_cluster"
    server: AnyServer = request.getfixturevalue(name)
    server.start()
    client = make_any_client(server)
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
