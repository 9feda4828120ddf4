"""The Redis store: round trips per operation, and updates per second against the ceiling.

A redis-server is started on a free 127.0.0.1 port. Round trips are the requests written
to Redis: those that redis-py sends, counted by a connection class (a pipeline is one),
plus those that the store's command batcher writes on its own connection (one write
each, however many commands it holds). They are counts, taken once: per start and per
update before the timed runs, per expiry after them (the expiry ends every session).

Updates per second is the median of ``PAIRED_RUNS`` timed runs, each with interactions built
before it and the collector paused inside it (the heap built during set-up is frozen
around all of them). After each store run, on the same server, come the ceilings: one
``redis-benchmark`` SET run with as many clients as the manager has updates in flight,
one with a single client (the store sends every update over one connection: shown for
information, the target is judged against the first), and one run of as many redis-py
tasks in this process doing plain SETs. The ratio is the median of the runs' own ratios
(store run over the ceiling run right after it), as in the full path benchmark; their
range and the ratio of the two medians are printed next to it.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import discord
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import Connection

from bench.common import RUNS, PayloadKit, check_answered, frozen_heap, gc_paused, median
from bench.report import Row, fmt_rate, report, section
from nyx_sessions import SessionManager
from nyx_sessions.stores.redis import RedisStore
from nyx_sessions.testing import ManualClock, OfflineDiscord
from tests.stores.redis_server import RedisServer

CONCURRENCY = 32
TARGET = 1 / 3  # of redis-benchmark's SET rate
PAIRED_RUNS = RUNS + 4  # nine: single runs move with the machine, as in the full path

Target = tuple[str, dict[str, Any]]  # a session's button: custom id, message payload


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much each run does: sessions, store updates, and SETs for each ceiling."""

    sessions: int
    clicks: int
    redis_py_sets: int
    benchmark_sets: int


FULL = Sizes(sessions=1_000, clicks=10_000, redis_py_sets=20_000, benchmark_sets=50_000)
QUICK = Sizes(sessions=200, clicks=2_000, redis_py_sets=4_000, benchmark_sets=10_000)


@dataclass(slots=True)
class Figures:
    """What one benchmark run found: round-trip counts and the per-run rates."""

    per_start: float = 0.0
    per_update: float = 0.0
    per_expiry: float = 0.0
    store_rates: list[float] = field(default_factory=list)
    redis_py_rates: list[float] = field(default_factory=list)
    benchmark_rates: list[float] = field(default_factory=list)  # none without the binary
    one_client_rates: list[float] = field(default_factory=list)  # redis-benchmark -c 1


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
    server: RedisServer, clock: ManualClock, cls: type[Any]
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


# -- the ceilings ----------------------------------------------------------------------


class RedisPySets:
    """SETs per second through redis-py in this process: the client library's ceiling."""

    def __init__(self, server: RedisServer, clients: int) -> None:
        self._redis = Redis(host=server.host, port=server.port)
        self._clients = clients

    async def _worker(self, index: int, count: int) -> None:
        for value in range(count):
            await self._redis.set(f"bench:{index}", value)

    async def warm_up(self) -> None:
        """One untimed SET per task, as for the store: the pool opens its connections."""
        await asyncio.gather(*(self._worker(index, 1) for index in range(self._clients)))

    async def rate(self, requests: int) -> float:
        """Time ``requests`` SETs (rounded down to a multiple of the task count)."""
        each = requests // self._clients
        with gc_paused():
            begin = time.perf_counter()
            await asyncio.gather(*(self._worker(index, each) for index in range(self._clients)))
            elapsed = time.perf_counter() - begin
        return each * self._clients / elapsed

    async def aclose(self) -> None:
        await self._redis.aclose()


def redis_benchmark_set_rate(server: RedisServer, clients: int, requests: int) -> float | None:
    """The SET rate that the C ``redis-benchmark`` reaches, or None when it is missing."""
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


# -- the run ---------------------------------------------------------------------------


async def run(quick: bool) -> list[Row]:
    sizes = QUICK if quick else FULL
    section(
        f"redis store: {sizes.sessions:,} sessions, {sizes.clicks:,} updates, "
        f"{CONCURRENCY} at a time, {PAIRED_RUNS} runs"
    )
    binary = shutil.which("redis-server")
    if binary is None:
        print("  redis-server is not installed: skipped (make redis-server)")
        return [Row("redis store", "skipped: no redis-server")]
    server = RedisServer(binary)
    server.start()
    try:
        figures = await _measure_on(server, sizes)
    finally:
        server.close()
    _print(figures)
    return _rows(figures)


async def _measure_on(server: RedisServer, sizes: Sizes) -> Figures:
    cls = _session_class()
    async with OfflineDiscord() as offline:
        kit = PayloadKit(offline, offline.add_member("alice"))
        clock = ManualClock(start=time.time())
        manager, store, redis = await _manager(server, clock, cls)
        sets = RedisPySets(server, CONCURRENCY)
        try:
            return await _measure(manager, store, kit, cls, clock, server, sets, sizes)
        finally:
            await sets.aclose()
            await manager.aclose()
            await store.aclose()
            await redis.aclose()


async def _measure(
    manager: SessionManager,
    store: RedisStore,
    kit: PayloadKit,
    cls: type[Any],
    clock: ManualClock,
    server: RedisServer,
    sets: RedisPySets,
    sizes: Sizes,
) -> Figures:
    figures = Figures()
    await asyncio.sleep(0.1)  # the claim poll that opening starts has run by now
    targets, figures.per_start = await _start(manager, store, kit, cls, sizes.sessions)
    figures.per_update = await _count_updates(manager, store, kit, targets)

    # One untimed click per worker and SET per task first: the connections that
    # concurrent requests need are opened then, not in a timed run.
    await _updates([[kit.click_interaction(*targets[s])] for s in range(CONCURRENCY)], manager)
    await sets.warm_up()
    # As in the other benchmarks: the collector is paused inside the timed loops, and the
    # heap built during set-up is frozen, so that the collections that run between them
    # (while each run's interactions are built) stay cheap. The sessions stay live across
    # the runs: the clock does not move.
    with frozen_heap():
        for _ in range(PAIRED_RUNS):
            batches = _click_batches(kit, targets, sizes.clicks)
            figures.store_rates.append(await _timed_updates(batches, manager))
            check_answered([interaction for batch in batches for interaction in batch])
            ceiling = redis_benchmark_set_rate(server, CONCURRENCY, sizes.benchmark_sets)
            if ceiling is not None:
                figures.benchmark_rates.append(ceiling)
            # The store writes every update over one connection: the same as one client.
            single = redis_benchmark_set_rate(server, 1, sizes.benchmark_sets // 5)
            if single is not None:
                figures.one_client_rates.append(single)
            figures.redis_py_rates.append(await sets.rate(sizes.redis_py_sets))

    # Last, since it ends every session (their TTL has not passed: the clock stood still).
    figures.per_expiry = await _count_expiry(manager, store, clock, sizes.sessions)
    return figures


async def _start(
    manager: SessionManager, store: RedisStore, kit: PayloadKit, cls: type[Any], sessions: int
) -> tuple[list[Target], float]:
    """Start ``sessions`` sessions; return their buttons and the round trips per start."""
    before = round_trips(store)
    started = [cls(kit.command()) for _ in range(sessions)]
    for session in started:
        await manager.start(session)
    per_start = (round_trips(store) - before) / sessions
    targets = []
    for session in started:
        custom_id = session.custom_id.push("go").build()
        targets.append((custom_id, kit.message(kit.new_id(), custom_id)))
    return targets, per_start


async def _count_updates(
    manager: SessionManager, store: RedisStore, kit: PayloadKit, targets: list[Target]
) -> float:
    """Round trips per update: one at a time, on sessions this process already knows."""
    sample = [kit.click_interaction(*targets[i % len(targets)]) for i in range(200)]
    before = round_trips(store)
    for interaction in sample:
        await manager.update(interaction)
    return (round_trips(store) - before) / len(sample)


def _click_batches(
    kit: PayloadKit, targets: list[Target], clicks: int
) -> list[list[discord.Interaction[Any]]]:
    """One batch per worker: ``CONCURRENCY`` sessions, each clicked in turn."""
    return [
        [kit.click_interaction(*targets[s]) for _ in range(clicks // CONCURRENCY)]
        for s in range(CONCURRENCY)
    ]


async def _updates(batches: list[list[discord.Interaction[Any]]], manager: SessionManager) -> None:
    async def worker(batch: list[discord.Interaction[Any]]) -> None:
        for interaction in batch:
            await manager.update(interaction)

    await asyncio.gather(*(worker(batch) for batch in batches))


async def _timed_updates(
    batches: list[list[discord.Interaction[Any]]], manager: SessionManager
) -> float:
    """Updates per second over ``batches``, the workers running at once."""
    with gc_paused():
        begin = time.perf_counter()
        await _updates(batches, manager)
        elapsed = time.perf_counter() - begin
    return sum(len(batch) for batch in batches) / elapsed


async def _count_expiry(
    manager: SessionManager, store: RedisStore, clock: ManualClock, sessions: int
) -> float:
    """Round trips per expiry: every deadline passes at once; claims and ends counted."""
    before = round_trips(store)
    clock.advance_nowait(10_000)
    give_up = time.monotonic() + 60
    while manager._live and time.monotonic() < give_up:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    return (round_trips(store) - before) / sessions


# -- the report ------------------------------------------------------------------------


def _print(figures: Figures) -> None:
    report("round trips per start", f"{figures.per_start:.2f}")
    report("round trips per update", f"{figures.per_update:.2f}")
    report("round trips per expiry (claims + ends)", f"{figures.per_expiry:.2f}")
    print(f"  median (min..max) of {len(figures.store_rates)} runs, each followed by the SET runs")
    report("updates per second, one process", _spread(figures.store_rates))
    if figures.benchmark_rates:
        report(f"redis-benchmark SET, {CONCURRENCY} clients", _spread(figures.benchmark_rates))
    if figures.one_client_rates:
        report("redis-benchmark SET, 1 client", _spread(figures.one_client_rates))
    report(f"redis-py SET, {CONCURRENCY} tasks, this process", _spread(figures.redis_py_rates))
    if figures.benchmark_rates:
        ratios = _per_run(figures.store_rates, figures.benchmark_rates)
        of_medians = median(figures.store_rates) / median(figures.benchmark_rates)
        report(
            "updates/s over redis-benchmark SET/s",
            f"{median(ratios):.2f}x (per run {min(ratios):.2f}x..{max(ratios):.2f}x; "
            f"ratio of the medians {of_medians:.2f}x)",
        )


def _spread(rates: list[float]) -> str:
    return f"{fmt_rate(median(rates))} ({fmt_rate(min(rates))}..{fmt_rate(max(rates))})"


def _ratio(ours: list[float], theirs: list[float]) -> float:
    """The median of the runs' own ratios: each pair of runs ran within seconds.

    The machine's phases last minutes, so a run and the ceiling run right after it saw
    the same machine; the medians of each side alone may come from different phases.
    """
    return median(_per_run(ours, theirs))


def _per_run(ours: list[float], theirs: list[float]) -> list[float]:
    return [a / b for a, b in zip(ours, theirs, strict=True)]


def _rows(figures: Figures) -> list[Row]:
    rate = fmt_rate(median(figures.store_rates))
    rate_row = Row(
        f"redis: updates/s, one process, {CONCURRENCY} at a time", rate, target=">= 1/3 of SET rate"
    )
    if figures.benchmark_rates:
        ratio = _ratio(figures.store_rates, figures.benchmark_rates)
        rate_row.discord = f"redis-benchmark SET {fmt_rate(median(figures.benchmark_rates))}"
        rate_row.ratio = f"{ratio:.2f}x"
        rate_row.passed = ratio >= TARGET
    client_ratio = _ratio(figures.store_rates, figures.redis_py_rates)
    one_client = []
    if figures.one_client_rates:
        one_client = [
            Row(
                "redis: updates/s on the store's one connection vs 1 client",
                rate,
                f"redis-benchmark SET {fmt_rate(median(figures.one_client_rates))}",
                f"{_ratio(figures.store_rates, figures.one_client_rates):.2f}x",
            )
        ]
    return [
        Row(
            "redis: round trips per start",
            f"{figures.per_start:.2f}",
            target="<= 2",
            passed=figures.per_start <= 2,
        ),
        Row(
            "redis: round trips per update",
            f"{figures.per_update:.2f}",
            target="<= 2",
            passed=figures.per_update <= 2,
        ),
        Row("redis: round trips per expiry (claims, ends, polls)", f"{figures.per_expiry:.2f}"),
        rate_row,
        Row(
            "redis: updates/s vs redis-py SET/s in one process",
            rate,
            f"redis-py SET {fmt_rate(median(figures.redis_py_rates))}",
            f"{client_ratio:.2f}x",
        ),
        *one_client,
    ]
