"""What only the Redis store does: several processes, pub/sub, unusable records, costs.

Most tests run on a single redis-server and on the three-primary Cluster (``any_server``);
those that stop the server run on the single one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import itertools
import logging
from typing import TYPE_CHECKING, Any

import msgpack
import pytest
from redis.asyncio import ConnectionPool, Redis, RedisCluster
from redis.crc import key_slot

from nyx_sessions.codecs.state import StateCodec
from nyx_sessions.end import EndCode, SessionEndData
from nyx_sessions.errors import (
    CorruptRecordError,
    LeaseTimeoutError,
    RecordTooLargeError,
    RecordVersionError,
    RevisionConflictError,
    StoreError,
    StoreUnavailableError,
)
from nyx_sessions.stores._redis_keys import KeyLayout
from nyx_sessions.stores.redis import RedisStore
from nyx_sessions.testing.clock import ManualClock

from .conftest import AnyRedis, AnyServer, make_any_client, make_client
from .counting import CountingConnection, scripts_run
from .redis_cluster import RedisClusterServers as RedisClusterServersType
from .test_store_contract import LEASE, acquire_copy, make_record

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from .redis_server import RedisServer

pytestmark = pytest.mark.redis

KEYS = KeyLayout("nyx", 16)


@pytest.fixture
async def two_stores(
    any_server: AnyServer, any_client: AnyRedis, clock: ManualClock
) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    """Two stores with their own clients on one server (or cluster): two processes."""
    clients = [make_any_client(any_server), make_any_client(any_server)]
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
    ids = [f"s{index}" for index in range(50)]
    for index, session_id in enumerate(ids):
        record = make_record(session_id, deadline=clock.now() + 1 + index / 100)
        await a.create(record, lease_owner="A", lease=LEASE)
    await clock.advance(2)
    claimed: list[str] = []
    for _ in range(20):  # bounded: each round claims some, as long as any are due
        claims = await asyncio.gather(
            *(store.claim_expired(clock.now(), limit=9, hold=30) for store in (a, b) * 4)
        )
        claimed += [session_id for claim in claims for session_id in claim]
        for claim in claims:
            assert claim == sorted(claim, key=ids.index)  # earliest deadline first
    assert sorted(claimed) == sorted(ids)  # each exactly once


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


# -- ends ------------------------------------------------------------------------------------


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


async def test_many_ends_at_once_all_arrive(
    any_server: AnyServer, two_stores: tuple[RedisStore, RedisStore]
) -> None:
    """300 ends published together over a small pool: none lost, none refused."""
    _, b = two_stores
    heard: list[SessionEndData] = []
    b.on_end(heard.append)
    if isinstance(any_server, RedisClusterServersType):
        client: AnyRedis = RedisCluster(
            host=any_server.host, port=any_server.port, max_connections=10
        )
    else:
        client = Redis.from_pool(
            ConnectionPool(host=any_server.host, port=any_server.port, max_connections=10)
        )
    publisher = RedisStore(client)
    try:
        ends = [SessionEndData(f"s{index}", EndCode.ENDED) for index in range(300)]
        await asyncio.gather(*(publisher.publish_end(end) for end in ends))

        async def all_heard() -> bool:
            return len(heard) == len(ends)

        await eventually(all_heard)
        assert sorted(end.session_id for end in heard) == sorted(e.session_id for e in ends)
    finally:
        await publisher.aclose()
        await client.aclose()


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


async def test_a_removed_session_s_end_stays_readable(
    two_stores: tuple[RedisStore, RedisStore], any_client: AnyRedis
) -> None:
    a, b = two_stores
    await a.create(make_record(), lease_owner="A", lease=LEASE)
    end = SessionEndData("s1", EndCode.ENDED, "done", {"votes": [1, 2]})
    assert await b.ended("s1") is None
    assert await a.remove("s1", end=end) is True
    assert await b.ended("s1") == end  # a process that missed the notice learns it here
    assert 3590_000 < await any_client.pttl(KEYS.session("s1").end) <= 3600_000
    # A second remover does not overwrite the first one's end.
    assert await b.remove("s1", end=SessionEndData("s1", EndCode.EXPIRED)) is False
    assert await a.ended("s1") == end
    assert await a.ended("never") is None


# -- unusable and foreign records ------------------------------------------------------------


@pytest.mark.parametrize("how", ["garbage body", "not a hash", "bad revision"])
async def test_corrupt_record_is_set_aside(
    any_client: AnyRedis,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    store = RedisStore(any_client, clock=clock)
    bad = KEYS.session("bad")
    await store.create(make_record("bad", deadline=clock.now() + 5), lease_owner="A", lease=LEASE)
    await store.create(make_record("good"), lease_owner="A", lease=LEASE)
    await store.release("bad", lease_owner="A")
    if how == "garbage body":
        await any_client.hset(bad.rec, "body", b"\xc1\x00garbage")
    elif how == "not a hash":
        await any_client.delete(bad.rec)
        await any_client.set(bad.rec, b"\xc1\x00garbage")
    else:
        await any_client.hset(bad.rec, "rev", b"7")
    kept = await any_client.dump(bad.rec)
    with caplog.at_level(logging.WARNING), pytest.raises(CorruptRecordError, match="bad"):
        await store.acquire("bad", lease_owner="B", lease=LEASE, wait=0.0)
    assert "set aside" in caplog.text
    assert await any_client.exists(bad.rec) == 0
    assert await any_client.dump(bad.aside) == kept  # moved, not deleted
    assert await any_client.ttl(bad.aside) == -1
    assert await any_client.exists(bad.lease) == 0
    assert await any_client.zscore(bad.deadlines, "bad") is None
    # A hash's type is known: its count went with it. A string's is not: it stays counted.
    expected = 2 if how == "not a hash" else 1
    assert await store.count_by_type() == {"Counter": expected}
    assert await store.get("bad") is None
    assert await store.acquire("good", lease_owner="A", lease=LEASE, wait=0.0) is not None


async def test_a_record_over_the_size_cap_is_set_aside_unread(
    any_client: AnyRedis, clock: ManualClock
) -> None:
    writer = RedisStore(any_client, clock=clock, codec=StateCodec(max_record_size=None))
    big = make_record("big", deadline=clock.now() + 60, data={"blob": "x" * 5_000_000})
    await writer.create(big, lease_owner="A", lease=LEASE)
    await writer.release("big", lease_owner="A")
    reader = RedisStore(any_client, clock=clock)  # the default cap: 1 MB
    keys = KEYS.session("big")
    with pytest.raises(RecordTooLargeError, match="over the limit"):
        await reader.acquire("big", lease_owner="B", lease=LEASE, wait=0.0)
    assert await any_client.exists(keys.rec) == 0
    assert await any_client.hstrlen(keys.aside, "body") > 5_000_000  # kept whole
    assert await any_client.exists(keys.lease) == 0
    assert await reader.count_by_type() == {}
    assert await reader.claim_expired(clock.now() + 100, limit=10, hold=5) == []
    # get() refuses it the same way.
    await writer.create(dataclasses.replace(big, session_id="big2"), lease_owner="A", lease=LEASE)
    with pytest.raises(RecordTooLargeError):
        await reader.get("big2")
    assert await any_client.exists(KEYS.session("big2").aside) == 1


async def test_a_hash_without_record_fields_is_no_record(any_client: AnyRedis) -> None:
    """What ACQUIRE and COMMIT read (HMGET) cannot tell it from no key at all."""
    store = RedisStore(any_client)
    keys = KEYS.session("s1")
    await store.create(make_record(), lease_owner="A", lease=LEASE)
    record = await acquire_copy(store, "s1", "A")
    await any_client.delete(keys.rec)
    await any_client.hset(keys.rec, "something", "else")
    with pytest.raises(RevisionConflictError, match="no longer exists"):
        await store.commit(record, lease_owner="A", release=True)
    assert await store.acquire("s1", lease_owner="B", lease=LEASE, wait=0) is None
    assert await any_client.get(keys.lease) == b"A"  # B took no lease


async def test_corrupt_record_found_by_get(any_client: AnyRedis) -> None:
    store = RedisStore(any_client)
    await store.create(make_record(), lease_owner="A", lease=LEASE)
    await any_client.hset(KEYS.session("s1").rec, "body", msgpack.packb([1, "s1"]))
    with pytest.raises(CorruptRecordError, match="15"):
        await store.get("s1")
    assert await any_client.exists(KEYS.session("s1").aside) == 1


async def test_record_from_a_newer_release_is_left_alone(any_client: AnyRedis) -> None:
    store = RedisStore(any_client)
    keys = KEYS.session("s1")
    await store.create(make_record(), lease_owner="A", lease=LEASE)
    await store.release("s1", lease_owner="A")
    await any_client.hset(keys.rec, "body", msgpack.packb([2, "a new layout"]))
    with pytest.raises(RecordVersionError, match="newer"):
        await store.acquire("s1", lease_owner="B", lease=LEASE, wait=0.0)
    with pytest.raises(RecordVersionError):
        await store.get("s1")
    assert await any_client.exists(keys.rec) == 1  # a newer process can read it
    assert await any_client.exists(keys.lease) == 0  # and take its lease


class Colour(enum.Enum):
    RED = 1


async def test_unknown_enum_is_corrupt(any_client: AnyRedis) -> None:
    writer = RedisStore(any_client, codec=StateCodec(enums=[Colour]))
    await writer.create(make_record(data={"c": Colour.RED}), lease_owner="A", lease=LEASE)
    with pytest.raises(CorruptRecordError, match="Colour"):
        await RedisStore(any_client).get("s1")


# -- layout ----------------------------------------------------------------------------------


async def test_a_session_and_its_shard_s_indexes_share_one_slot(
    any_client: AnyRedis, clock: ManualClock
) -> None:
    store = RedisStore(any_client, clock=clock, prefix="bot", shards=4)
    ids = [f"s{index}" for index in range(12)]
    for session_id in ids:
        await store.create(
            make_record(session_id, deadline=clock.now() + 60), lease_owner="A", lease=LEASE
        )
    await store.remove("s0", end=SessionEndData("s0", EndCode.ENDED))
    layout = KeyLayout("bot", 4)
    keys = sorted([key async for key in any_client.scan_iter("*")])
    by_shard: dict[int, set[int]] = {}
    for key in keys:
        shard = int(key.split(b"{")[1].split(b"}")[0])
        by_shard.setdefault(shard, set()).add(key_slot(key))
    assert all(len(slots) == 1 for slots in by_shard.values())  # one slot per shard
    assert len(by_shard) == 4  # twelve ids spread over every shard
    expected = {layout.session(sid).rec.encode() for sid in ids[1:]}
    assert expected <= set(keys)
    assert layout.session("s0").end.encode() in keys
    for sid in ids[1:]:  # records have no TTL: a process expires them, by the index
        assert await any_client.ttl(layout.session(sid).rec) == -1


async def test_layout_checks_its_settings() -> None:
    with pytest.raises(ValueError, match="prefix"):
        KeyLayout("a{b}", 16)
    with pytest.raises(ValueError, match="shards"):
        KeyLayout("nyx", 0)
    assert KeyLayout("nyx", 16).shard_of("abc") == KeyLayout("nyx", 16).shard_of("abc")


# -- faults ----------------------------------------------------------------------------------


async def test_redis_down_then_back(
    redis_server: RedisServer,
    redis_client: Redis,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clients = [make_client(redis_server), make_client(redis_server)]
    a, b = (RedisStore(client, clock=clock) for client in clients)
    try:
        await a.open()
        await b.open()
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
            lambda: a.ended("s1"),
            lambda: a.claim_expired(clock.now(), limit=10, hold=5),
            lambda: a.count_by_type(),
            lambda: a.publish_end(SessionEndData("s1", EndCode.ENDED)),
        ]
        for call in calls:
            with pytest.raises(StoreUnavailableError) as caught:
                await call()
            assert caught.value.__cause__ is not None

        redis_server.start()  # its scripts are gone: redis-py's Script loads them again
        await a.create(make_record("s3"), lease_owner="A", lease=LEASE)
        again = await acquire_copy(a, "s3", "A")
        await a.commit(again, lease_owner="A", release=True)
        loaded = await b.get("s3")
        assert loaded is not None
        assert loaded.revision == 2

        heard: list[SessionEndData] = []
        b.on_end(heard.append)

        async def resubscribed() -> bool:
            counts = await clients[1].pubsub_numsub("nyx:ends")
            return bool(counts and counts[0][1] >= 2)

        await eventually(resubscribed)
        await a.publish_end(SessionEndData("s3", EndCode.ENDED))

        async def delivered() -> bool:
            return bool(heard)

        await eventually(delivered)
        assert "End notices from Redis interrupted" in caplog.text
    finally:
        redis_server.start()
        for store in (a, b):
            await store.aclose()
        for client in clients:
            await client.aclose()


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
    any_client: AnyRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit whose reply was lost and that is sent again is not a conflict."""
    store = RedisStore(any_client)
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


async def test_waiting_for_a_replica_that_is_not_there_is_unavailable(
    redis_client: Redis,
) -> None:
    """With ``wait_replicas``, a write no replica confirmed is not reported as saved."""
    store = RedisStore(redis_client, wait_replicas=1, wait_timeout=0.05)
    with pytest.raises(StoreUnavailableError, match="0 of 1 replicas"):
        await store.create(make_record(), lease_owner="A", lease=LEASE)
    plain = RedisStore(redis_client)
    assert await plain.get("s1") is not None  # written on the primary all the same


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
        await store.open()  # loads the scripts
        await client.ping()  # a connection is open: handshakes do not count
        yield store
    finally:
        await store.aclose()
        await client.aclose()


async def test_one_round_trip_and_one_script_per_operation(
    counting_store: RedisStore, redis_client: Redis, clock: ManualClock
) -> None:
    store = counting_store

    async def costs(operation: Awaitable[Any]) -> tuple[int, int]:
        sent, scripts = CountingConnection.sent, await scripts_run(redis_client)
        await operation
        return CountingConnection.sent - sent, await scripts_run(redis_client) - scripts

    record = make_record(deadline=clock.now() + 60)
    # start = create + commit; update = acquire + commit
    assert await costs(store.create(record, lease_owner="A", lease=LEASE)) == (1, 1)
    assert await costs(store.commit(record, lease_owner="A", release=True)) == (1, 1)
    loaded = await store.acquire("s1", lease_owner="B", lease=LEASE, wait=1.0)
    assert loaded is not None
    loaded.deadline = clock.now() + 120
    assert await costs(store.commit(loaded, lease_owner="B", release=True)) == (1, 1)
    assert await costs(store.acquire("s1", lease_owner="B", lease=LEASE, wait=1.0)) == (1, 1)
    assert await costs(store.release("s1", lease_owner="B")) == (1, 1)
    assert await costs(store.get("s1")) == (1, 1)
    assert await costs(store.remove("s1")) == (1, 1)
    assert await costs(store.claim_expired(clock.now(), limit=10, hold=5)) == (1, 0)


# -- clients and ownership -------------------------------------------------------------------


@pytest.mark.parametrize("how", ["url", "from_url"])
async def test_a_store_made_from_a_url_owns_its_client(
    redis_server: RedisServer, redis_client: Redis, how: str
) -> None:
    url = f"{redis_server.url}?client_name=nyx-owned"
    store = RedisStore(url) if how == "url" else RedisStore.from_url(url, prefix="nyx")
    await store.open()
    await store.create(make_record(), lease_owner="A", lease=LEASE)
    assert await store.get("s1") is not None

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


async def test_from_url_reaches_a_cluster(redis_cluster: RedisClusterServersType) -> None:
    store = RedisStore.from_url(
        f"redis://{redis_cluster.host}:{redis_cluster.port}/0", cluster=True, prefix="owned"
    )
    async with store:
        await store.create(make_record("c1"), lease_owner="A", lease=LEASE)
        assert await store.count_by_type() == {"Counter": 1}
        assert await store.remove("c1") is True


async def _is_zero(count: Awaitable[int]) -> bool:
    return await count == 0


async def test_borrowed_client_stays_open(any_client: AnyRedis) -> None:
    store = RedisStore(any_client)
    await store.open()
    await store.aclose()
    assert await any_client.ping()


def test_unsuitable_clients_and_settings_are_refused(
    redis_server: RedisServer, redis_cluster: RedisClusterServersType
) -> None:
    decoding = Redis(host=redis_server.host, port=redis_server.port, decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses"):
        RedisStore(decoding)
    cluster = RedisCluster(host=redis_cluster.host, port=redis_cluster.port, decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses"):
        RedisStore(cluster)
    with pytest.raises(ValueError, match="prefix"):
        RedisStore(Redis(), prefix="a{b}")
    with pytest.raises(ValueError, match="Cluster"):
        RedisStore(RedisCluster(host=redis_cluster.host, port=redis_cluster.port), wait_replicas=1)
