"""The command batcher on a real Redis: one round trip for concurrent callers, errors kept
to their own caller, a server that goes away, cancellation; and the store on top of it."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from redis.asyncio import Connection, ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from nyx_sessions.errors import StoreUnavailableError
from nyx_sessions.stores._redis_batch import MAX_BATCH, CommandBatcher, pack_command_py
from nyx_sessions.stores.redis import RedisStore

from .test_store_contract import LEASE, make_record

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from nyx_sessions.testing.clock import ManualClock

    from .redis_server import RedisServer

pytestmark = pytest.mark.redis


class CountingConnection(Connection):
    """Counts requests sent: a pipeline is one, however many commands it holds."""

    sent: ClassVar[int] = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        await super().send_packed_command(command, check_health)


@pytest.fixture
async def counting_client(redis_server: RedisServer, redis_client: Redis) -> AsyncIterator[Redis]:
    pool = ConnectionPool(
        host=redis_server.host,
        port=redis_server.port,
        connection_class=CountingConnection,
        retry=Retry(NoBackoff(), 1),
        socket_connect_timeout=1,
        socket_timeout=2,
    )
    client = Redis.from_pool(pool)
    try:
        # Connections for a few batches in flight are open: handshakes do not count.
        await asyncio.gather(*(client.ping() for _ in range(4)))
        yield client
    finally:
        await client.aclose()


async def round_trips(*calls: Any) -> tuple[int, list[Any]]:
    """Run ``calls`` concurrently; return the requests they sent and their results."""
    before = CountingConnection.sent
    results = await asyncio.gather(*calls)
    return CountingConnection.sent - before, results


# -- batching --------------------------------------------------------------------------------


async def test_concurrent_groups_share_one_round_trip(counting_client: Redis) -> None:
    batcher = CommandBatcher(counting_client)
    groups = [[("SET", f"k{i}", i), ("INCRBY", f"k{i}", 100), ("GET", f"k{i}")] for i in range(5)]
    trips, replies = await round_trips(*(batcher.run(group) for group in groups))
    assert trips == 1
    assert replies == [[b"OK", 100 + i, str(100 + i).encode()] for i in range(5)]


async def test_a_full_batch_starts_the_next(counting_client: Redis) -> None:
    batcher = CommandBatcher(counting_client)
    callers = 2 * MAX_BATCH + 1
    trips, replies = await round_trips(
        *(batcher.run([("ECHO", f"caller {i}")]) for i in range(callers))
    )
    assert trips == 3
    assert replies == [[f"caller {i}".encode()] for i in range(callers)]


async def test_a_caller_alone_costs_one_round_trip_per_group(counting_client: Redis) -> None:
    batcher = CommandBatcher(counting_client)
    for value in range(3):
        trips, [replies] = await round_trips(batcher.run([("SET", "k", value), ("GET", "k")]))
        assert trips == 1
        assert replies == [b"OK", str(value).encode()]


async def test_an_error_reply_fails_only_its_caller(counting_client: Redis) -> None:
    await counting_client.hset("a-hash", "field", "value")
    batcher = CommandBatcher(counting_client)
    trips, (first, wrong, last) = await round_trips(
        batcher.run([("SET", "a", 1)]),
        batcher.run([("INCR", "a-hash"), ("HGET", "a-hash", "field")]),
        batcher.run([("GET", "a")]),
    )
    assert trips == 1
    assert first == [b"OK"]
    assert isinstance(wrong[0], ResponseError)
    assert "WRONGTYPE" in str(wrong[0])
    assert wrong[1] == b"value"  # the rest of the group still ran
    assert last == [b"1"]


async def test_a_bad_argument_fails_only_its_caller(counting_client: Redis) -> None:
    batcher = CommandBatcher(counting_client)
    good = asyncio.create_task(batcher.run([("SET", "good", 1)]))
    with pytest.raises(TypeError):
        await batcher.run([("SET", "bad", None)])
    assert await good == [b"OK"]
    assert await counting_client.get("good") == b"1"


async def test_a_caller_cancelled_before_sending_sends_nothing(counting_client: Redis) -> None:
    batcher = CommandBatcher(counting_client)
    cancelled = asyncio.create_task(batcher.run([("SET", "never", 1)]))
    served = asyncio.create_task(batcher.run([("SET", "served", 1)]))
    await asyncio.sleep(0)  # both are queued in the batch, which leaves in the next turn
    cancelled.cancel()
    assert await served == [b"OK"]
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert await counting_client.exists("never") == 0


# -- faults ----------------------------------------------------------------------------------


async def test_redis_gone_mid_batch_fails_every_caller(
    redis_server: RedisServer, counting_client: Redis
) -> None:
    batcher = CommandBatcher(counting_client)
    # BLPOP holds the batch's replies back until the server is gone.
    blocked = [batcher.run([("BLPOP", "empty", 5)])]
    blocked += [batcher.run([("SET", f"k{i}", i)]) for i in range(3)]
    calls = [asyncio.ensure_future(call) for call in blocked]
    await asyncio.sleep(0.2)
    assert not any(call.done() for call in calls)
    redis_server.kill()
    try:
        errors = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        redis_server.start()
    assert all(isinstance(error, RedisConnectionError) for error in errors)
    assert len({id(error) for error in errors}) == len(errors)  # one object per caller
    assert await batcher.run([("PING",)]) == [b"PONG"]  # and it carries on


async def test_drain_gives_the_callers_of_a_stuck_batch_an_error(counting_client: Redis) -> None:
    batcher = CommandBatcher(counting_client)
    stuck = asyncio.ensure_future(batcher.run([("BLPOP", "empty", 5)]))
    await asyncio.sleep(0.05)
    await batcher.drain(0.1)
    with pytest.raises(RedisConnectionError, match="cancelled"):
        await stuck


async def test_a_batch_cancelled_before_it_leaves_fails_its_callers(
    counting_client: Redis,
) -> None:
    """As when the loop shuts down: the send task is cancelled before its first step."""
    batcher = CommandBatcher(counting_client)
    caller = asyncio.ensure_future(batcher.run([("SET", "never", 1)]))
    await asyncio.sleep(0)  # the caller queued its group; the batch leaves in the next turn
    (sender,) = batcher._in_flight
    sender.cancel()
    with pytest.raises(RedisConnectionError, match="cancelled"):
        await caller
    assert await counting_client.exists("never") == 0
    assert await batcher.run([("PING",)]) == [b"PONG"]  # a new batch, not the dead one


def test_the_python_packer_matches_redis_py() -> None:
    packer = Connection()
    for command in [
        ("EVALSHA", "a" * 40, 2, "nyx:{s1}:rec", "nyx:{s1}:lease", b"\x00\xff body", 1.5, -3),
        ("ZADD", "nyx:deadlines", 1_700_000_000.123, "s1"),
        ("ECHO", "héllo"),
        ("PING",),
    ]:
        assert pack_command_py(command) == b"".join(packer.pack_command(*command))
    with pytest.raises(TypeError):
        pack_command_py(("SET", "k", None))


# -- the store on the batcher ----------------------------------------------------------------


@pytest.fixture
async def counting_store(counting_client: Redis, clock: ManualClock) -> AsyncIterator[RedisStore]:
    store = RedisStore(counting_client, clock=clock)
    try:
        await store.open()
        yield store
    finally:
        await store.aclose()


async def test_concurrent_updates_share_round_trips(
    counting_store: RedisStore, clock: ManualClock
) -> None:
    store = counting_store
    sessions = 2 * MAX_BATCH
    for index in range(sessions):
        await store.create(
            make_record(f"s{index}", deadline=clock.now() + 60), lease_owner="A", lease=LEASE
        )
        await store.release(f"s{index}", lease_owner="A")
    trips, records = await round_trips(
        *(
            store.acquire(f"s{index}", lease_owner="B", lease=LEASE, wait=1.0)
            for index in range(sessions)
        )
    )
    assert trips == 2
    for record in records:
        record.data["count"] = 1
        record.deadline = clock.now() + 120
    trips, revisions = await round_trips(
        *(store.commit(record, lease_owner="B", release=True) for record in records)
    )
    assert trips == 2
    assert revisions == [2] * sessions
    assert all(
        loaded is not None and loaded.data == {"count": 1}
        for loaded in [await store.get(f"s{index}") for index in range(sessions)]
    )


async def test_a_corrupt_record_fails_only_its_own_read(
    counting_store: RedisStore, counting_client: Redis
) -> None:
    store = counting_store
    await store.create(make_record("good"), lease_owner="A", lease=LEASE)
    await counting_client.set("nyx:{bad}:rec", "not a hash")
    good, bad = await asyncio.gather(store.get("good"), store.get("bad"), return_exceptions=True)
    assert good is not None
    assert not isinstance(good, BaseException)
    assert good.session_id == "good"
    assert type(bad).__name__ == "CorruptRecordError"


async def test_noscript_in_a_batch_reloads_the_scripts_for_every_caller(
    counting_store: RedisStore, counting_client: Redis
) -> None:
    store = counting_store
    for index in range(4):
        await store.create(make_record(f"s{index}"), lease_owner="A", lease=LEASE)
    await counting_client.script_flush()
    records = await asyncio.gather(
        *(store.acquire(f"s{index}", lease_owner="A", lease=LEASE, wait=0) for index in range(4))
    )
    assert [record.session_id for record in records if record is not None] == [
        f"s{index}" for index in range(4)
    ]


async def test_redis_gone_gives_every_concurrent_operation_a_store_error(
    redis_server: RedisServer, counting_store: RedisStore
) -> None:
    store = counting_store
    for index in range(3):
        await store.create(make_record(f"s{index}"), lease_owner="A", lease=LEASE)
    redis_server.kill()
    try:
        results = await asyncio.gather(
            *(
                store.acquire(f"s{index}", lease_owner="A", lease=LEASE, wait=0)
                for index in range(3)
            ),
            store.get("s0"),
            return_exceptions=True,
        )
    finally:
        redis_server.start()
    assert all(isinstance(result, StoreUnavailableError) for result in results)
    assert all(result.__cause__ is not None for result in results if isinstance(result, Exception))
