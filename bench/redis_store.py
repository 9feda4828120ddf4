"""The Redis store: round trips per operation, and updates per second against redis-py.

Each figure is taken on a single redis-server and on a three-primary Redis Cluster, both
started on free 127.0.0.1 ports. Round trips are counted by the servers: every store
operation on the start and update paths is one script (EVALSHA), in one request, so
the EVALSHA calls in INFO commandstats (summed over the primaries) count them; the
claim poll, which pipelines plain commands, is kept out of the way (``poll_interval``
of an hour).

Updates per second: ``CONCURRENCY`` workers click their own sessions through
``SessionManager.update`` in one process, for ``PAIRED_RUNS`` timed runs; right after
each, as many redis-py tasks in this process do plain SETs on the same server(s). The
ratio is the median of the runs' own ratios (each pair ran within seconds of each
other, on the same machine phase).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis, RedisCluster

from bench.common import RUNS, PayloadKit, check_answered, frozen_heap, gc_paused, median
from bench.report import Row, fmt_rate, report, section
from nyx_sessions import SessionManager
from nyx_sessions.stores.redis import RedisStore
from nyx_sessions.testing import ManualClock, OfflineDiscord
from tests.stores.redis_cluster import RedisClusterServers
from tests.stores.redis_server import RedisServer

if TYPE_CHECKING:
    import discord

CONCURRENCY = 32
TARGET = 0.5  # of redis-py's own SET rate, same process, same concurrency
PAIRED_RUNS = RUNS + 4

Target = tuple[str, dict[str, Any]]  # a session's button: custom id, message payload
Server = RedisServer | RedisClusterServers
Client = Redis | RedisCluster


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much each run does: sessions, store updates, and redis-py SETs."""

    sessions: int
    clicks: int
    sets: int


FULL = Sizes(sessions=1_000, clicks=10_000, sets=20_000)
QUICK = Sizes(sessions=200, clicks=2_000, sets=4_000)


@dataclass(slots=True)
class Figures:
    """What one backend's benchmark found."""

    name: str
    per_start: float = 0.0
    per_update: float = 0.0
    store_rates: list[float] = field(default_factory=list)
    set_rates: list[float] = field(default_factory=list)


def _client(server: Server) -> Client:
    if isinstance(server, RedisServer):
        return Redis(host=server.host, port=server.port)
    return RedisCluster(host=server.host, port=server.port)


async def scripts_run(client: Client) -> int:
    """EVALSHA calls so far, summed over the primaries (INFO commandstats)."""
    if isinstance(client, RedisCluster):
        replies = await client.info("commandstats", target_nodes=RedisCluster.PRIMARIES)
        stats = list(replies.values())
    else:
        stats = [await client.info("commandstats")]
    return sum(int(s.get("cmdstat_evalsha", {}).get("calls", 0)) for s in stats)


def _session_class() -> type[Any]:
    from bench.common import BenchSession

    class RedisBenchSession(BenchSession):
        session_type = "bench.redis"

    return RedisBenchSession


class RedisPySets:
    """SETs per second through redis-py in this process: the client library's ceiling."""

    def __init__(self, client: Client, tasks: int) -> None:
        self._client = client
        self._tasks = tasks

    async def _worker(self, index: int, count: int) -> None:
        for value in range(count):
            await self._client.set(f"bench:{index}", value)

    async def warm_up(self) -> None:
        """One untimed SET per task, as for the store: the pool opens its connections."""
        await asyncio.gather(*(self._worker(index, 1) for index in range(self._tasks)))

    async def rate(self, requests: int) -> float:
        """Time ``requests`` SETs (rounded down to a multiple of the task count)."""
        each = requests // self._tasks
        with gc_paused():
            begin = time.perf_counter()
            await asyncio.gather(*(self._worker(index, each) for index in range(self._tasks)))
            elapsed = time.perf_counter() - begin
        return each * self._tasks / elapsed


# -- the run ---------------------------------------------------------------------------


async def run(quick: bool) -> list[Row]:
    sizes = QUICK if quick else FULL
    section(
        f"redis store: {sizes.sessions:,} sessions, {sizes.clicks:,} updates, "
        f"{CONCURRENCY} at a time, {PAIRED_RUNS} runs; single server and Cluster"
    )
    binary, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if binary is None or cli is None:
        print("  redis-server or redis-cli is not installed: skipped (make redis-server)")
        return [Row("redis store", "skipped: no redis-server")]
    rows: list[Row] = []
    for name, server in (
        ("single", RedisServer(binary)),
        ("cluster", RedisClusterServers(binary, cli)),
    ):
        try:
            server.start()
            figures = await _measure_on(name, server, sizes)
        finally:
            server.close()
        _print(figures)
        rows += _rows(figures)
    return rows


async def _measure_on(name: str, server: Server, sizes: Sizes) -> Figures:
    cls = _session_class()
    figures = Figures(name)
    async with OfflineDiscord() as offline:
        kit = PayloadKit(offline, offline.add_member("alice"))
        clock = ManualClock(start=time.time())
        client = _client(server)
        await client.flushdb()
        store = RedisStore(client, clock=clock)
        manager = SessionManager(store=store, clock=clock, sessions=[cls], poll_interval=3600)
        try:
            await manager.open()
            await _measure(figures, manager, client, kit, cls, sizes)
        finally:
            await manager.aclose()
            await store.aclose()
            await client.aclose()
    return figures


async def _measure(
    figures: Figures,
    manager: SessionManager,
    client: Client,
    kit: PayloadKit,
    cls: type[Any],
    sizes: Sizes,
) -> None:
    await asyncio.sleep(0.1)  # the claim poll that opening starts has run by now
    before = await scripts_run(client)
    started = [cls(kit.command()) for _ in range(sizes.sessions)]
    for session in started:
        await manager.start(session)
    figures.per_start = (await scripts_run(client) - before) / sizes.sessions
    targets: list[Target] = []
    for session in started:
        custom_id = session.custom_id.push("go").build()
        targets.append((custom_id, kit.message(kit.new_id(), custom_id)))

    sample = [kit.click_interaction(*targets[i % len(targets)]) for i in range(200)]
    before = await scripts_run(client)
    for interaction in sample:
        await manager.update(interaction)
    figures.per_update = (await scripts_run(client) - before) / len(sample)

    sets = RedisPySets(client, CONCURRENCY)
    # One untimed click per worker and SET per task first: the connections that
    # concurrent requests need are opened then, not in a timed run.
    await _updates([[kit.click_interaction(*targets[s])] for s in range(CONCURRENCY)], manager)
    await sets.warm_up()
    with frozen_heap():
        for _ in range(PAIRED_RUNS):
            batches = [
                [kit.click_interaction(*targets[s]) for _ in range(sizes.clicks // CONCURRENCY)]
                for s in range(CONCURRENCY)
            ]
            with gc_paused():
                begin = time.perf_counter()
                await _updates(batches, manager)
                elapsed = time.perf_counter() - begin
            figures.store_rates.append(sum(map(len, batches)) / elapsed)
            check_answered([interaction for batch in batches for interaction in batch])
            figures.set_rates.append(await sets.rate(sizes.sets))


async def _updates(batches: list[list[discord.Interaction[Any]]], manager: SessionManager) -> None:
    async def worker(batch: list[discord.Interaction[Any]]) -> None:
        for interaction in batch:
            await manager.update(interaction)

    await asyncio.gather(*(worker(batch) for batch in batches))


# -- the report ------------------------------------------------------------------------


def _spread(rates: list[float]) -> str:
    return f"{fmt_rate(median(rates))} ({fmt_rate(min(rates))}..{fmt_rate(max(rates))})"


def _ratios(figures: Figures) -> list[float]:
    return [a / b for a, b in zip(figures.store_rates, figures.set_rates, strict=True)]


def _print(figures: Figures) -> None:
    name = figures.name
    report(f"{name}: round trips per start", f"{figures.per_start:.2f}")
    report(f"{name}: round trips per update", f"{figures.per_update:.2f}")
    report(f"{name}: updates per second, one process", _spread(figures.store_rates))
    report(f"{name}: redis-py SET, {CONCURRENCY} tasks", _spread(figures.set_rates))
    ratios = _ratios(figures)
    report(
        f"{name}: updates/s over redis-py SET/s",
        f"{median(ratios):.2f}x (per run {min(ratios):.2f}x..{max(ratios):.2f}x)",
    )


def _rows(figures: Figures) -> list[Row]:
    name = figures.name
    ratio = median(_ratios(figures))
    return [
        Row(
            f"redis ({name}): round trips per start",
            f"{figures.per_start:.2f}",
            target="<= 2",
            passed=figures.per_start <= 2,
        ),
        Row(
            f"redis ({name}): round trips per update",
            f"{figures.per_update:.2f}",
            target="<= 2",
            passed=figures.per_update <= 2,
        ),
        Row(
            f"redis ({name}): updates/s, one process, {CONCURRENCY} at a time",
            fmt_rate(median(figures.store_rates)),
            f"redis-py SET {fmt_rate(median(figures.set_rates))}",
            f"{ratio:.2f}x",
            target=f">= {TARGET}x redis-py SET",
            passed=ratio >= TARGET,
        ),
    ]
