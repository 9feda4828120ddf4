"""What only the Redis store does: several processes, pub/sub, corruption, faults, costs."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import itertools
import logging
from typing import TYPE_CHECKING, Any

import msgpack
import pytest
from redis.asyncio import ConnectionPool, Redis

from nyx_sessions.codecs.state import StateCodec
from nyx_sessions.end import EndCode, SessionEndData
from nyx_sessions.errors import (
    CorruptRecordError,
    LeaseTimeoutError,
    RecordVersionError,
    RevisionConflictError,
    StoreError,
    StoreUnavailableError,
)
from nyx_sessions.stores.redis import RedisStore
from nyx_sessions.testing.clock import ManualClock

from .conftest import make_client
from .counting import CountingConnection, requests_sent
from .test_store_contract import LEASE, acquire_copy, make_record

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from .redis_server import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture
async def two_stores(
    redis_server: RedisServer, redis_client: Redis, clock: ManualClock
) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    """Two stores with their own clients on one server: two processes."""
    clients = [make_client(redis_server), make_client(redis_server)]
    stores = [RedisStore(client, clock=clock) for client in clients]
    try:
        for store in stores:
            await store.open()
        yield stores[0], stores[1]
    finally:
        for store in stores:
            await store.aclose()
        for client in clients:
            await client.aclose()


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` for up to 5 s (what other processes do is only seen by polling)."""
    for _ in range(250):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition never held")


# -- several processes -----------------------------------------------------------------------


async def test_two_processes_take_turns(two_stores: tuple[RedisStore, RedisStore]) -> None:
    a, b = two_stores
    await a.create(make_record(), lease_owner="A", lease=LEASE)
    waiter = asyncio.create_task(b.acquire("s1", lease_owner="B", lease=LEASE, wait=2.0))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    record = await acquire_copy(a, "s1", "A")
    record.data["count"] = 1
    await a.commit(record, lease_owner="A", release=True)
    seen = await asyncio.wait_for(waiter, 1.0)
    assert seen is not None
    assert (seen.revision, seen.data) == (2, {"count": 1})
    with pytest.raises(LeaseTimeoutError):
        await a.acquire("s1", lease_owner="A", lease=LEASE, wait=0.05)


async def test_fencing_across_processes(two_stores: tuple[RedisStore, RedisStore]) -> None:
    a, b = two_stores
    await a.create(make_record(), lease_owner="A", lease=0.15)
    record_a = await acquire_copy(a, "s1", "A", lease=0.15)
    record_b = await acquire_copy(b, "s1", "B", lease=LEASE, wait=1.0)  # after A's ran out
    await b.commit(record_b, lease_owner="B", release=False)
    with pytest.raises(RevisionConflictError, match="leased by another owner"):
        await a.commit(record_a, lease_owner="A", release=True)


async def test_claims_never_overlap_across_processes(
    two_stores: tuple[RedisStore, RedisStore], clock: ManualClock
) -> None:
    a, b = two_stores
    for index in range(50):
        record = make_record(f"s{index}", deadline=clock.now() + 1)
        await a.create(record, lease_owner="A", lease=LEASE)
    await clock.advance(2)
    claims = await asyncio.gather(
        *(store.claim_expired(clock.now(), limit=9, hold=30) for store in (a, b) * 4)
    )
    claimed = [session_id for claim in claims for session_id in claim]
    assert len(claimed) == len(set(claimed))


async def test_counts_across_processes(two_stores: tuple[RedisStore, RedisStore]) -> None:
    a, b = two_stores
    await asyncio.gather(
        *(
            store.create(make_record(f"{name}{i}"), lease_owner=name, lease=LEASE)
            for name, store in (("a", a), ("b", b))
            for i in range(20)
        )
    )
    removed = await asyncio.gather(*(s.remove(f"a{i}") for i in range(20) for s in (a, b)))
    assert removed.count(True) == 20
    assert await a.count_by_type() == await b.count_by_type() == {"Counter": 20}


# -- end notices -----------------------------------------------------------------------------


async def test_end_notice_reaches_the_other_process_only(
    two_stores: tuple[RedisStore, RedisStore],
) -> None:
    a, b = two_stores
    heard_a: list[SessionEndData] = []
    heard_b: list[SessionEndData] = []
    a.on_end(heard_a.append)
    b.on_end(heard_b.append)
    end = SessionEndData("s1", EndCode.EXPIRED, "ttl", {"count": (1, 2)})
    await a.publish_end(end)

    async def heard() -> bool:
        return bool(heard_b)

    await eventually(heard)
    await asyncio.sleep(0.05)
    assert heard_b == [end]
    assert heard_a == []


async def test_unencodable_result_is_dropped_from_the_notice(
    two_stores: tuple[RedisStore, RedisStore], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = two_stores
    heard: list[SessionEndData] = []
    b.on_end(heard.append)
    await a.publish_end(SessionEndData("s1", EndCode.ENDED, None, object()))

    async def done() -> bool:
        return bool(heard)

    await eventually(done)
    assert heard == [SessionEndData("s1", EndCode.ENDED, None, None)]
    assert "result not sent" in caplog.text


async def test_on_end_none_stops_delivery(two_stores: tuple[RedisStore, RedisStore]) -> None:
    a, b = two_stores
    heard: list[SessionEndData] = []
    b.on_end(heard.append)
    b.on_end(None)
    await a.publish_end(SessionEndData("s1", EndCode.ENDED))
    await asyncio.sleep(0.1)
    assert heard == []


# -- corrupt and foreign records -------------------------------------------------------------


@pytest.mark.parametrize("how", ["garbage body", "not a hash", "bad revision"])
async def test_corrupt_record_is_set_aside(
    redis_client: Redis,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    store = RedisStore(redis_client, clock=clock)
    await store.create(make_record("bad", deadline=clock.now() + 5), lease_owner="A", lease=LEASE)
    await store.create(make_record("good"), lease_owner="A", lease=LEASE)
    await store.release("bad", lease_owner="A")
    if how == "garbage body":
        await redis_client.hset("nyx:{bad}:rec", "body", b"\xc1\x00garbage")
    elif how == "not a hash":
        await redis_client.delete("nyx:{bad}:rec")
        await redis_client.set("nyx:{bad}:rec", b"\xc1\x00garbage")
    else:
        await redis_client.hset("nyx:{bad}:rec", "rev", b"7")
    kept = await redis_client.dump("nyx:{bad}:rec")
    with caplog.at_level(logging.WARNING), pytest.raises(CorruptRecordError, match="bad"):
        await store.acquire("bad", lease_owner="B", lease=LEASE, wait=0.0)
    assert "bad" in caplog.text
    assert "set aside" in caplog.text
    assert await redis_client.exists("nyx:{bad}:rec") == 0
    assert await redis_client.dump("nyx:{bad}:corrupt") == kept  # moved, not deleted
    assert await redis_client.ttl("nyx:{bad}:corrupt") == -1
    assert await redis_client.exists("nyx:{bad}:lease") == 0
    assert await redis_client.zscore("nyx:deadlines", "bad") is None
    assert await store.count_by_type() == {"Counter": 1}
    assert await store.get("bad") is None
    assert await store.acquire("good", lease_owner="A", lease=LEASE, wait=0.0) is not None


async def test_a_hash_without_record_fields_is_no_record(redis_client: Redis) -> None:
    """What ACQUIRE and COMMIT read (HMGET) cannot tell it from no key at all."""
    store = RedisStore(redis_client)
    await store.create(make_record(), lease_owner="A", lease=LEASE)
    record = await acquire_copy(store, "s1", "A")
    await redis_client.delete("nyx:{s1}:rec")
    await redis_client.hset("nyx:{s1}:rec", "something", "else")
    with pytest.raises(RevisionConflictError, match="no longer exists"):
        await store.commit(record, lease_owner="A", release=True)
    assert await store.acquire("s1", lease_owner="B", lease=LEASE, wait=0) is None
    assert await redis_client.get("nyx:{s1}:lease") == b"A"  # B took no lease


async def test_corrupt_record_found_by_get(redis_client: Redis) -> None:
    store = RedisStore(redis_client)
    await store.create(make_record(), lease_owner="A", lease=LEASE)
    await redis_client.hset("nyx:{s1}:rec", "body", msgpack.packb([1, "s1"]))
    with pytest.raises(CorruptRecordError, match="15"):
        await store.get("s1")
    assert await redis_client.exists("nyx:{s1}:corrupt") == 1


async def test_record_from_a_newer_release_is_left_alone(redis_client: Redis) -> None:
    store = RedisStore(redis_client)
    await store.create(make_record(), lease_owner="A", lease=LEASE)
    await store.release("s1", lease_owner="A")
    await redis_client.hset("nyx:{s1}:rec", "body", msgpack.packb([2, "a new layout"]))
    with pytest.raises(RecordVersionError, match="newer"):
        await store.acquire("s1", lease_owner="B", lease=LEASE, wait=0.0)
    with pytest.raises(RecordVersionError):
        await store.get("s1")
    assert await redis_client.exists("nyx:{s1}:rec") == 1  # a newer process can read it
    assert await redis_client.exists("nyx:{s1}:lease") == 0  # and take its lease


class Colour(enum.Enum):
    RED = 1


async def test_unknown_enum_is_corrupt(redis_client: Redis) -> None:
    writer = RedisStore(redis_client, codec=StateCodec(enums=[Colour]))
    await writer.create(make_record(data={"c": Colour.RED}), lease_owner="A", lease=LEASE)
    with pytest.raises(CorruptRecordError, match="Colour"):
        await RedisStore(redis_client).get("s1")


# -- index hints -----------------------------------------------------------------------------


async def test_claim_reindexes_what_is_not_due(redis_client: Redis, clock: ManualClock) -> None:
    store = RedisStore(redis_client, clock=clock)
    deadline = clock.now() + 100
    await store.create(make_record("live", deadline=deadline), lease_owner="A", lease=LEASE)
    await store.create(make_record("forever"), lease_owner="A", lease=LEASE)
    stale = {"live": clock.now() - 5, "forever": clock.now() - 5, "ghost": clock.now() - 5}
    await redis_client.zadd("nyx:deadlines", stale)
    assert await store.claim_expired(clock.now(), limit=10, hold=30) == []
    assert await redis_client.zrange("nyx:deadlines", 0, -1, withscores=True) == [
        (b"live", deadline)
    ]


async def test_keys_share_the_session_hash_tag(redis_client: Redis, clock: ManualClock) -> None:
    store = RedisStore(redis_client, clock=clock, prefix="bot")
    await store.create(make_record(deadline=clock.now() + 60), lease_owner="A", lease=LEASE)
    raw_keys: list[bytes] = await redis_client.keys("*")  # type: ignore[assignment]
    keys = sorted(key.decode() for key in raw_keys)
    assert keys == [
        "bot:deadlines",
        "bot:type:Counter",
        "bot:types",
        "bot:{s1}:lease",
        "bot:{s1}:rec",
    ]
    assert 3600 + 55 < await redis_client.ttl("bot:{s1}:rec") <= 3600 + 60  # backstop only
    await store.create(make_record("s2"), lease_owner="A", lease=LEASE)
    assert await redis_client.ttl("bot:{s2}:rec") == -1


# -- faults ----------------------------------------------------------------------------------


async def test_redis_down_then_back(
    redis_server: RedisServer,
    two_stores: tuple[RedisStore, RedisStore],
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = two_stores
    await a.create(make_record(), lease_owner="A", lease=LEASE)
    record = await acquire_copy(a, "s1", "A")
    redis_server.stop()
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: a.create(make_record("s2"), lease_owner="A", lease=LEASE),
        lambda: a.get("s1"),
        lambda: a.acquire("s1", lease_owner="A", lease=LEASE, wait=0.1),
        lambda: a.commit(record, lease_owner="A", release=True),
        lambda: a.release("s1", lease_owner="A"),
        lambda: a.remove("s1"),
        lambda: a.claim_expired(clock.now(), limit=10, hold=5),
        lambda: a.count_by_type(),
        lambda: a.publish_end(SessionEndData("s1", EndCode.ENDED)),
    ]
    for call in calls:
        with pytest.raises(StoreUnavailableError) as caught:
            await call()
        assert caught.value.__cause__ is not None

    redis_server.start()  # its scripts are gone: NOSCRIPT is handled
    await a.create(make_record("s3"), lease_owner="A", lease=LEASE)
    again = await acquire_copy(a, "s3", "A")
    await a.commit(again, lease_owner="A", release=True)
    loaded = await b.get("s3")
    assert loaded is not None
    assert loaded.revision == 2

    heard: list[SessionEndData] = []
    b.on_end(heard.append)

    async def resubscribed() -> bool:
        counts = await b._client.pubsub_numsub("nyx:ends")
        return bool(counts and counts[0][1] >= 2)

    await eventually(resubscribed)
    await a.publish_end(SessionEndData("s3", EndCode.ENDED))

    async def delivered() -> bool:
        return bool(heard)

    await eventually(delivered)
    assert "End notices from Redis interrupted" in caplog.text


async def test_aclose_is_prompt_while_the_listener_reconnects(
    redis_server: RedisServer, redis_client: Redis
) -> None:
    client = make_client(redis_server)
    store = RedisStore(client)
    try:
        await store.open()
        redis_server.stop()
        await asyncio.sleep(0.1)
        redis_server.start()
        started = asyncio.get_running_loop().time()
        await store.aclose()
        assert asyncio.get_running_loop().time() - started < 1.5
    finally:
        await store.aclose()
        await client.aclose()


async def test_a_retried_commit_is_recognised(
    redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit whose reply was lost and that is sent again is not a conflict."""
    store = RedisStore(redis_client)
    await store.create(make_record(), lease_owner="A", lease=LEASE)
    first = await acquire_copy(store, "s1", "A")
    again = dataclasses.replace(first)
    monkeypatch.setattr(store, "_writes", itertools.repeat(7))  # both are write 7
    assert await store.commit(first, lease_owner="A", release=True) == 2
    assert await store.commit(again, lease_owner="A", release=True) == 2
    monkeypatch.undo()
    stale = dataclasses.replace(again, revision=1)
    with pytest.raises(RevisionConflictError):
        await store.commit(stale, lease_owner="A", release=True)


# -- costs -----------------------------------------------------------------------------------


@pytest.fixture
async def counting_store(
    redis_server: RedisServer, redis_client: Redis, clock: ManualClock
) -> AsyncIterator[RedisStore]:
    pool = ConnectionPool(
        host=redis_server.host, port=redis_server.port, connection_class=CountingConnection
    )
    client = Redis.from_pool(pool)
    store = RedisStore(client, clock=clock)
    try:
        await store.open()  # loads the scripts, opens the store's connection
        await client.ping()  # a connection is open: handshakes do not count
        yield store
    finally:
        await store.aclose()
        await client.aclose()


async def test_round_trips_per_operation(counting_store: RedisStore, clock: ManualClock) -> None:
    store = counting_store

    async def trips(operation: Awaitable[Any]) -> int:
        before = requests_sent(store)
        await operation
        return requests_sent(store) - before

    record = make_record(deadline=clock.now() + 60)
    # start = create + commit
    assert await trips(store.create(record, lease_owner="A", lease=LEASE)) == 1
    assert await trips(store.commit(record, lease_owner="A", release=True)) == 1
    # update = acquire + commit
    before = requests_sent(store)
    loaded = await store.acquire("s1", lease_owner="B", lease=LEASE, wait=1.0)
    assert requests_sent(store) - before == 1
    assert loaded is not None
    loaded.deadline = clock.now() + 120
    assert await trips(store.commit(loaded, lease_owner="B", release=True)) == 1
    assert await trips(store.release("s1", lease_owner="B")) == 1
    assert await trips(store.get("s1")) == 1
    assert await trips(store.remove("s1")) == 1


# -- ownership -------------------------------------------------------------------------------


async def test_from_url_owns_its_client(redis_server: RedisServer, redis_client: Redis) -> None:
    store = RedisStore.from_url(redis_server.url, client_name="nyx-owned")
    await store.open()
    await store.create(make_record(), lease_owner="A", lease=LEASE)

    async def connections() -> int:
        clients = await redis_client.client_list()
        return sum(1 for client in clients if client["name"] == "nyx-owned")

    assert await connections() >= 2  # commands and the pub/sub listener
    await store.aclose()
    await store.aclose()  # idempotent
    await eventually(lambda: _is_zero(connections()))
    with pytest.raises(StoreError, match="closed"):
        await store.get("s1")
    with pytest.raises(StoreError, match="closed"):
        await store.open()


async def _is_zero(count: Awaitable[int]) -> bool:
    return await count == 0


async def test_borrowed_client_stays_open(redis_client: Redis) -> None:
    store = RedisStore(redis_client)
    await store.open()
    await store.aclose()
    assert await redis_client.ping()


def test_decoding_clients_are_refused(redis_server: RedisServer) -> None:
    client = Redis(host=redis_server.host, port=redis_server.port, decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses"):
        RedisStore(client)
    with pytest.raises(ValueError, match="prefix"):
        RedisStore(Redis(), prefix="a{b}")
