"""The Redis store: round trips per operation, and updates per second against the ceiling.

A redis-server is started on a free 127.0.0.1 port. Round trips are the requests written
to Redis: those that redis-py sends, counted by a connection class (a pipeline is one),
plus those that the store's command batcher writes on its own connection (one write
each, however many commands it holds). The ceiling is ``redis-benchmark``'s SET rate with
as many connections as the manager has updates in flight.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from typing import Any, ClassVar

import discord
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import Connection

from bench.common import PayloadKit, Tally, frozen_heap
from bench.report import Row, fmt_rate, section
from nyx_sessions import SessionManager
from nyx_sessions.stores.redis import RedisStore
from nyx_sessions.testing import ManualClock, OfflineDiscord
from tests.stores.redis_server import RedisServer

ANSWERED = discord.InteractionResponseType.deferred_message_update


class CountingConnection(Connection):
    """Counts the commands (or pipelines) that redis-py sends: one round trip each."""

    sent: ClassVar[int] = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        await super().send_packed_command(command, check_health)


def round_trips(store: RedisStore) -> int:
    """Requests written so far: redis-py's and the store's batched ones."""
    return CountingConnection.sent + store._batcher.sent


def _session_class() -> type[Any]:
    from bench.common import BenchSession

    class RedisBenchSession(BenchSession):
        session_type = "bench.redis"

    return RedisBenchSession


async def _manager(
    offline: OfflineDiscord, server: RedisServer, clock: ManualClock, cls: type[Any]
) -> tuple[SessionManager, RedisStore, Redis]:
    pool = ConnectionPool(host=server.host, port=server.port, connection_class=CountingConnection)
    redis = Redis(connection_pool=pool)
    await redis.flushdb()
    store = RedisStore(redis, clock=clock)
    # Claims polled rarely, so that the counts are those of the operations themselves;
    # expiry is driven by this process's own timer (it served every session).
    manager = SessionManager(store=store, clock=clock, sessions=[cls], poll_interval=3600)
    await manager.open()
    return manager, store, redis


async def redis_py_set_rate(server: RedisServer, clients: int, requests: int) -> float:
    """SETs per second through redis-py in this process: the client library's ceiling."""
    redis = Redis(host=server.host, port=server.port)
    try:

        async def worker(index: int, count: int) -> None:
            for value in range(count):
                await redis.set(f"bench:{index}", value)

        # Untimed, as for the store: the pool opens its connections here.
        await asyncio.gather(*(worker(index, 1) for index in range(clients)))
        begin = time.perf_counter()
        await asyncio.gather(*(worker(index, requests // clients) for index in range(clients)))
        return (requests // clients) * clients / (time.perf_counter() - begin)
    finally:
        await redis.aclose()


def redis_benchmark_set_rate(server: RedisServer, clients: int, requests: int) -> float | None:
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return None
    out = subprocess.run(
        [
            binary,
            "-h",
            server.host,
            "-p",
            str(server.port),
            "-c",
            str(clients),
            "-n",
            str(requests),
            "-t",
            "set",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    match = re.search(r"SET: ([\d.]+) requests per second", out.replace("\r", "\n"))
    return float(match.group(1)) if match else None


async def run(quick: bool) -> list[Row]:
    sessions = 200 if quick else 1_000
    clicks = 2_000 if quick else 10_000
    concurrency = 32
    section(f"redis store: {sessions:,} sessions, {clicks:,} updates, {concurrency} at a time")
    binary = shutil.which("redis-server")
    if binary is None:
        print("  redis-server is not installed: skipped (make redis-server)")
        return [Row("redis store", "skipped: no redis-server")]
    server = RedisServer(binary)
    server.start()
    cls = _session_class()
    rows: list[Row] = []
    try:
        async with OfflineDiscord() as offline:
            alice = offline.add_member("alice")
            kit = PayloadKit(offline, alice)
            clock = ManualClock(start=time.time())
            manager, store, redis = await _manager(offline, server, clock, cls)
            try:
                rows += await _measure(
                    manager, store, kit, cls, clock, sessions, clicks, concurrency
                )
            finally:
                await manager.aclose()
                await store.aclose()
                await redis.aclose()
        client_ceiling = await redis_py_set_rate(server, concurrency, 20_000)
        ceiling = redis_benchmark_set_rate(server, concurrency, 100_000 if not quick else 20_000)
    finally:
        server.close()
    rate_row = rows[-1]
    print(f"  redis-py SET, {concurrency} tasks, this process  {fmt_rate(client_ceiling)}")
    rows.append(
        Row(
            "redis: updates/s vs redis-py SET/s in one process",
            rate_row.nyx,
            f"redis-py SET {fmt_rate(client_ceiling)}",
            f"{float(rate_row.nyx.replace(',', '').rstrip('/s')) / client_ceiling:.2f}x",
        )
    )
    if ceiling is not None:
        measured = float(rate_row.nyx.replace(",", "").rstrip("/s"))
        ratio = measured / ceiling
        print(f"  redis-benchmark SET, {concurrency} clients        {fmt_rate(ceiling)}")
        rate_row.discord = f"redis-benchmark SET {fmt_rate(ceiling)}"
        rate_row.ratio = f"{ratio:.2f}x"
        rate_row.passed = ratio >= 1 / 3
    return rows


async def _measure(
    manager: SessionManager,
    store: RedisStore,
    kit: PayloadKit,
    cls: type[Any],
    clock: ManualClock,
    sessions: int,
    clicks: int,
    concurrency: int,
) -> list[Row]:
    await asyncio.sleep(0.1)  # the claim poll that opening starts has run by now
    before = round_trips(store)
    started = [cls(kit.command()) for _ in range(sessions)]
    for session in started:
        await manager.start(session)
    per_start = (round_trips(store) - before) / sessions

    targets = []
    for session in started:
        custom_id = session.custom_id.push("go").build()
        targets.append((custom_id, kit.message(kit.new_id(), custom_id)))

    # Round trips per update: one at a time, on sessions this process already knows.
    sample = [kit.click_interaction(*targets[i % sessions]) for i in range(200)]
    before = round_trips(store)
    for interaction in sample:
        await manager.update(interaction)
    per_update = (round_trips(store) - before) / len(sample)

    # Updates per second: `concurrency` sessions served at once, each click in turn.
    batches = [
        [kit.click_interaction(*targets[s]) for _ in range(clicks // concurrency)]
        for s in range(concurrency)
    ]

    async def worker(batch: list[discord.Interaction[Any]]) -> None:
        for interaction in batch:
            await manager.update(interaction)

    # One untimed click per worker first: the connections that concurrent requests need
    # are opened then, not in the timed run (a quick run is only a fraction of a second).
    await asyncio.gather(
        *(worker([kit.click_interaction(*targets[s])]) for s in range(concurrency))
    )
    cls.tally = Tally(clicks)
    # As in the other benchmarks: the interactions built in advance (tens of thousands of
    # discord.py objects that a bot never holds at once) are left out of the collections
    # that run during the timed updates.
    with frozen_heap():
        begin = time.perf_counter()
        await asyncio.gather(*(worker(batch) for batch in batches))
        elapsed = time.perf_counter() - begin
    done = sum(len(batch) for batch in batches)
    rate = done / elapsed
    cls.tally = None

    # Round trips per expiry: every deadline passes at once; claims and ends counted.
    before = round_trips(store)
    clock.advance_nowait(10_000)
    give_up = time.monotonic() + 60
    while manager._live and time.monotonic() < give_up:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    per_expiry = (round_trips(store) - before) / sessions

    print(f"  round trips per start                          {per_start:.2f}")
    print(f"  round trips per update                         {per_update:.2f}")
    print(f"  round trips per expiry (claims + ends)         {per_expiry:.2f}")
    print(f"  updates per second, one process                {fmt_rate(rate)}")
    return [
        Row(
            "redis: round trips per start", f"{per_start:.2f}", target="<= 2", passed=per_start <= 2
        ),
        Row(
            "redis: round trips per update",
            f"{per_update:.2f}",
            target="<= 2",
            passed=per_update <= 2,
        ),
        Row("redis: round trips per expiry (claims, ends, polls)", f"{per_expiry:.2f}"),
        Row(
            f"redis: updates/s, one process, {concurrency} at a time",
            fmt_rate(rate),
            target=">= 1/3 of SET rate",
        ),
    ]
