"""The command batcher on a real Redis: one round trip for concurrent callers, errors kept
to their own caller, a server that goes away, timeouts, cancellation; and the store on top."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from redis.asyncio import Connection, ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from nyx_sessions.errors import StoreUnavailableError
from nyx_sessions.stores._redis_batch import (
    MAX_BATCH,
    MAX_IN_FLIGHT,
    CommandBatcher,
    pack_command_py,
)
from nyx_sessions.stores.redis import RedisStore

from .counting import CountingConnection, requests_sent
from .test_store_contract import LEASE, make_record

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from nyx_sessions.testing.clock import ManualClock

    from .redis_server import RedisServer

pytestmark = pytest.mark.redis


def counting_pool(redis_server: RedisServer, socket_timeout: float = 2) -> ConnectionPool:
    return ConnectionPool(
        host=redis_server.host,
        port=redis_server.port,
        connection_class=CountingConnection,
        retry=Retry(NoBackoff(), 1),
        socket_connect_timeout=1,
        socket_timeout=socket_timeout,
    )


@pytest.fixture
async def counting_client(redis_server: RedisServer, redis_client: Redis) -> AsyncIterator[Redis]:
    client = Redis.from_pool(counting_pool(redis_server))
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def batcher(counting_client: Redis) -> AsyncIterator[CommandBatcher]:
    batcher = CommandBatcher(counting_client)
    try:
        assert await batcher.connect()  # the handshake does not count
        yield batcher
    finally:
        await batcher.aclose(1.0)


async def round_trips(batcher: CommandBatcher, *calls: Any) -> tuple[int, list[Any]]:
    """Run ``calls`` concurrently; return the requests they sent and their results."""
    before = requests_sent(batcher)
    results = await asyncio.gather(*calls)
    return requests_sent(batcher) - before, results


# -- batching --------------------------------------------------------------------------------


async def test_concurrent_groups_share_one_round_trip(batcher: CommandBatcher) -> None:
    groups = [[("SET", f"k{i}", i), ("INCRBY", f"k{i}", 100), ("GET", f"k{i}")] for i in range(5)]
    trips, replies = await round_trips(batcher, *(batcher.run(group) for group in groups))
    assert trips == 1
    assert replies == [[b"OK", 100 + i, str(100 + i).encode()] for i in range(5)]


async def test_a_full_batch_starts_the_next(batcher: CommandBatcher) -> None:
    callers = 2 * MAX_BATCH + 1
    trips, replies = await round_trips(
        batcher, *(batcher.run([("ECHO", f"caller {i}")]) for i in range(callers))
    )
    assert trips == 3
    assert replies == [[f"caller {i}".encode()] for i in range(callers)]


async def hold_requests(batcher: CommandBatcher, *seconds: float) -> list[asyncio.Future[Any]]:
    """Write one request per BLPOP, each answered after ``seconds`` (one after another)."""
    held: list[asyncio.Future[Any]] = []
    for index, wait in enumerate(seconds):
        held.append(asyncio.ensure_future(batcher.run([("BLPOP", f"empty{index}", wait)])))
        await asyncio.sleep(0.02)  # written, in a request of its own
    return held


async def test_the_next_request_waits_for_a_reply_in_flight(batcher: CommandBatcher) -> None:
    """Groups queued while MAX_IN_FLIGHT requests are answered leave together, then."""
    held = await hold_requests(batcher, *[0.2] * MAX_IN_FLIGHT)
    before = requests_sent(batcher)
    later = [asyncio.ensure_future(batcher.run([("ECHO", f"later {i}")])) for i in range(3)]
    await asyncio.sleep(0.01)
    more = [asyncio.ensure_future(batcher.run([("ECHO", f"more {i}")])) for i in range(3)]
    assert await held[0] == [None]
    results = await asyncio.gather(*later, *more)
    assert results == [[f"later {i}".encode()] for i in range(3)] + [
        [f"more {i}".encode()] for i in range(3)
    ]
    assert requests_sent(batcher) - before == 1
    assert await asyncio.gather(*held[1:]) == [[None]] * (MAX_IN_FLIGHT - 1)


async def test_a_full_request_leaves_at_once(batcher: CommandBatcher) -> None:
    held = await hold_requests(batcher, *[0.2] * MAX_IN_FLIGHT)
    before = requests_sent(batcher)
    full = [asyncio.ensure_future(batcher.run([("ECHO", f"{i}")])) for i in range(MAX_BATCH + 1)]
    await asyncio.sleep(0)  # the callers queue their groups: the first MAX_BATCH go now
    assert requests_sent(batcher) - before == 1
    assert not any(call.done() for call in [*held, *full])
    replies = await asyncio.gather(*full)
    assert replies == [[f"{i}".encode()] for i in range(MAX_BATCH + 1)]
    assert requests_sent(batcher) - before == 2
    await asyncio.gather(*held)


async def test_a_caller_alone_costs_one_round_trip_per_group(batcher: CommandBatcher) -> None:
    for value in range(3):
        trips, [replies] = await round_trips(
            batcher, batcher.run([("SET", "k", value), ("GET", "k")])
        )
        assert trips == 1
        assert replies == [b"OK", str(value).encode()]


async def test_an_error_reply_fails_only_its_caller(
    batcher: CommandBatcher, counting_client: Redis
) -> None:
    await counting_client.hset("a-hash", "field", "value")
    trips, (first, wrong, last) = await round_trips(
        batcher,
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


async def test_a_bad_argument_fails_only_its_caller(
    batcher: CommandBatcher, counting_client: Redis
) -> None:
    good = asyncio.create_task(batcher.run([("SET", "good", 1)]))
    with pytest.raises(TypeError):
        await batcher.run([("SET", "bad", None)])
    assert await good == [b"OK"]
    assert await counting_client.get("good") == b"1"


async def test_a_caller_cancelled_before_sending_sends_nothing(
    batcher: CommandBatcher, counting_client: Redis
) -> None:
    cancelled = asyncio.create_task(batcher.run([("SET", "never", 1)]))
    served = asyncio.create_task(batcher.run([("SET", "served", 1)]))
    await asyncio.sleep(0)  # both are queued; the request leaves at the end of the next turn
    cancelled.cancel()
    assert await served == [b"OK"]
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert await counting_client.exists("never") == 0


async def test_a_caller_cancelled_after_sending_leaves_the_others_in_step(
    batcher: CommandBatcher,
) -> None:
    """Its reply is read and dropped: the next caller does not get it."""
    slow = asyncio.ensure_future(batcher.run([("BLPOP", "empty", 0.2), ("ECHO", "late")]))
    await asyncio.sleep(0.05)  # written, not answered
    slow.cancel()
    assert await batcher.run([("ECHO", "next")]) == [b"next"]


async def test_replies_split_across_reads_are_put_together(batcher: CommandBatcher) -> None:
    big = b"x" * 1_000_000  # arrives in many pieces
    replies = await batcher.run([("SET", "big", big), ("GET", "big"), ("STRLEN", "big")])
    assert replies == [b"OK", big, len(big)]


# -- faults ----------------------------------------------------------------------------------


async def test_redis_gone_mid_batch_fails_every_caller(
    redis_server: RedisServer, batcher: CommandBatcher
) -> None:
    # BLPOP holds the request's replies back until the server is gone.
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
    assert await batcher.run([("PING",)]) == [b"PONG"]  # and it carries on, reconnected


async def test_redis_down_fails_the_callers_until_it_is_back(
    redis_server: RedisServer, batcher: CommandBatcher
) -> None:
    redis_server.stop()
    try:
        results = await asyncio.gather(
            *(batcher.run([("PING",)]) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(result, RedisConnectionError) for result in results)
        with pytest.raises(RedisConnectionError):
            await batcher.run([("PING",)])  # tries again, fails again
    finally:
        redis_server.start()
    assert await batcher.run([("PING",)]) == [b"PONG"]


async def test_a_reply_later_than_the_socket_timeout_fails_and_reconnects(
    redis_server: RedisServer,
) -> None:
    client = Redis.from_pool(counting_pool(redis_server, socket_timeout=0.2))
    batcher = CommandBatcher(client)
    try:
        stuck = asyncio.ensure_future(batcher.run([("BLPOP", "empty", 1)]))
        behind = asyncio.ensure_future(batcher.run([("ECHO", "behind")]))
        await asyncio.sleep(0)
        with pytest.raises(RedisTimeoutError):
            await stuck
        with pytest.raises(RedisTimeoutError):
            await behind  # in the same request: its reply would come after BLPOP's
        # The late BLPOP reply does not answer the next request: a new connection.
        assert await batcher.run([("ECHO", "fresh")]) == [b"fresh"]
    finally:
        await batcher.aclose(0.1)
        await client.aclose()


async def test_aclose_gives_the_callers_of_a_stuck_request_an_error(
    batcher: CommandBatcher,
) -> None:
    stuck = asyncio.ensure_future(batcher.run([("BLPOP", "empty", 5)]))
    await asyncio.sleep(0.05)
    await batcher.aclose(0.1)
    with pytest.raises(RedisConnectionError, match="cancelled"):
        await stuck
    with pytest.raises(RedisConnectionError, match="closed"):
        await batcher.run([("PING",)])


async def test_aclose_lets_the_requests_in_flight_finish(batcher: CommandBatcher) -> None:
    calls = [asyncio.ensure_future(batcher.run([("ECHO", f"{i}")])) for i in range(3)]
    await asyncio.sleep(0)
    await batcher.aclose(1.0)
    assert await asyncio.gather(*calls) == [[f"{i}".encode()] for i in range(3)]


async def test_aclose_gives_the_connection_back_to_the_pool(
    counting_client: Redis,
) -> None:
    pool = counting_client.connection_pool
    batcher = CommandBatcher(counting_client)
    assert await batcher.connect()
    assert len(pool._in_use_connections) == 1
    await batcher.aclose(0.1)
    assert len(pool._in_use_connections) == 0


async def test_the_clients_aclose_fails_the_callers_waiting(redis_server: RedisServer) -> None:
    client = Redis.from_pool(counting_pool(redis_server))
    batcher = CommandBatcher(client)
    try:
        stuck = asyncio.ensure_future(batcher.run([("BLPOP", "empty", 5)]))
        await asyncio.sleep(0.05)
        async with asyncio.timeout(2):
            await client.aclose()  # closes the store's connection too, without hanging
        with pytest.raises(RedisConnectionError):
            await stuck
    finally:
        await batcher.aclose(0.1)


async def test_a_connect_cancelled_fails_its_callers(batcher: CommandBatcher) -> None:
    """As when the loop shuts down: the task that opens the connection is cancelled."""
    link = batcher._link
    assert link is not None
    link.fail(RedisConnectionError("gone"))  # the next request opens a new connection
    caller = asyncio.ensure_future(batcher.run([("SET", "never", 1)]))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    connecting = batcher._connecting
    assert connecting is not None
    connecting.cancel()
    with pytest.raises(RedisConnectionError, match="cancelled"):
        await caller
    assert await batcher.run([("PING",)]) == [b"PONG"]  # a new connection, not the dead one


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
        store._batcher,
        *(
            store.acquire(f"s{index}", lease_owner="B", lease=LEASE, wait=1.0)
            for index in range(sessions)
        ),
    )
    assert trips == 2
    for record in records:
        record.data["count"] = 1
        record.deadline = clock.now() + 120
    trips, revisions = await round_trips(
        store._batcher, *(store.commit(record, lease_owner="B", release=True) for record in records)
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
