"""A record this store committed is handed back by the next acquire while Redis still
holds that very write (no body read, nothing decoded); anything else reads it again."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import pytest

from nyx_sessions.errors import StateEncodeError
from nyx_sessions.stores._redis_requests import INDEX_STEP, RequestPacker
from nyx_sessions.stores.redis import RedisStore

from .test_store_contract import LEASE, make_record

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from nyx_sessions.stores.base import SessionRecord
    from nyx_sessions.testing.clock import ManualClock

pytestmark = pytest.mark.redis


async def acquired(store: RedisStore, session_id: str = "s1", owner: str = "A") -> SessionRecord:
    record = await store.acquire(session_id, lease_owner=owner, lease=LEASE, wait=1.0)
    assert record is not None
    return record


async def updated(store: RedisStore, session_id: str = "s1", owner: str = "A") -> SessionRecord:
    """Acquire, count one more, commit: one update, as the manager makes it."""
    record = await acquired(store, session_id, owner)
    record.data["count"] += 1
    await store.commit(record, lease_owner=owner, release=True)
    return record


@pytest.fixture
async def store(redis_client: Redis, clock: ManualClock) -> RedisStore:
    store = RedisStore(redis_client, clock=clock)
    await store.create(make_record(deadline=clock.now() + 60), lease_owner="A", lease=LEASE)
    await store.release("s1", lease_owner="A")
    return store


async def test_the_next_acquire_hands_back_the_committed_record(store: RedisStore) -> None:
    first = await updated(store)
    second = await updated(store)
    assert second is first
    assert second.revision == 3
    assert second.data == {"count": 2}
    fresh = await store.get("s1")  # what Redis holds is the same
    assert fresh == second
    assert fresh is not second


async def test_a_commit_elsewhere_is_read(
    store: RedisStore, redis_client: Redis, clock: ManualClock
) -> None:
    a, b = store, RedisStore(redis_client, clock=clock)  # two processes
    mine = await updated(a)
    theirs = await updated(b, owner="B")
    again = await acquired(a)
    assert again is not mine
    assert again is not theirs
    assert again.data == {"count": 2}
    assert again.revision == 3


async def test_an_update_released_without_a_commit_is_not_handed_back(
    store: RedisStore,
) -> None:
    committed = await updated(store)
    record = await acquired(store)
    assert record is committed
    record.data["count"] = 99  # changed, then given up without saving
    record.recent = (1, 2, 3)
    await store.release("s1", lease_owner="A")
    again = await acquired(store)
    assert again is not record
    assert again.data == {"count": 1}
    assert again.recent == ()


async def test_an_update_that_never_ended_is_not_handed_back(store: RedisStore) -> None:
    """As when the task serving it was cancelled between acquire and commit."""
    record = await updated(store)
    assert await acquired(store) is record
    record.data["count"] = 99
    again = await acquired(store)  # the lease is still ours: taken again
    assert again is not record
    assert again.data == {"count": 1}


async def test_a_failed_commit_is_not_handed_back(store: RedisStore) -> None:
    record = await updated(store)
    assert await acquired(store) is record
    record.data["count"] = object()
    with pytest.raises(StateEncodeError):
        await store.commit(record, lease_owner="A", release=True)
    again = await acquired(store)
    assert again is not record
    assert again.data == {"count": 1}


async def test_a_removed_session_is_forgotten(store: RedisStore) -> None:
    await updated(store)
    assert await store.remove("s1")
    assert len(store._written) == 0
    assert await store.acquire("s1", lease_owner="A", lease=LEASE, wait=0) is None


async def test_records_kept_are_bounded(store: RedisStore) -> None:
    store._written.max_kept = 2
    for session_id in ("s2", "s3"):
        await store.create(make_record(session_id), lease_owner="A", lease=LEASE)
        await store.release(session_id, lease_owner="A")
    records = {session_id: await updated(store, session_id) for session_id in ("s1", "s2", "s3")}
    assert "s1" not in store._written  # the oldest went
    assert "s2" in store._written
    assert "s3" in store._written
    oldest = await acquired(store, "s1")
    assert oldest is not records["s1"]
    assert oldest == dataclasses.replace(records["s1"])
    assert await acquired(store, "s3") is records["s3"]


# -- the type index, refreshed only when its expiry moves -----------------------------------


class CommitSpy:
    """Wraps the store's request packer; records the type index expiry of each commit."""

    def __init__(self, packer: RequestPacker) -> None:
        self.packer = packer
        self.expiries: list[bytes | None] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.packer, name)

    def commit(self, *args: Any) -> bytes:
        self.expiries.append(args[-1])
        return self.packer.commit(*args)


def spy_on(store: RedisStore) -> CommitSpy:
    spy = CommitSpy(store._requests)
    store._requests = spy  # type: ignore[assignment]
    return spy


async def moved(store: RedisStore, clock: ManualClock, owner: str = "A") -> SessionRecord:
    """One update that slides the deadline (60 s from now), as a click does."""
    record = await acquired(store, owner=owner)
    record.deadline = clock.now() + 60
    await store.commit(record, lease_owner=owner, release=True)
    return record


async def test_the_type_index_is_left_alone_while_its_expiry_stays(
    store: RedisStore, redis_client: Redis, clock: ManualClock
) -> None:
    spy = spy_on(store)
    await moved(store, clock)  # the first commit after create refreshes it
    await clock.advance(1)
    await moved(store, clock)
    await clock.advance(1)
    await moved(store, clock)
    first, *rest = spy.expiries
    assert first is not None
    assert rest == [None, None]  # still in the same 10-minute step
    score = await redis_client.zscore("nyx:type:Counter", "s1")
    assert score == float(first)
    assert score >= clock.now() + 60 + 3600  # later than the record's own expiry
    ttl = await redis_client.pttl("nyx:{s1}:rec")
    assert score >= clock.now() + ttl / 1000

    await clock.advance(INDEX_STEP)  # the deadline, and the expiry, move past a step
    await moved(store, clock)
    assert spy.expiries[-1] is not None
    assert await redis_client.zscore("nyx:type:Counter", "s1") == float(spy.expiries[-1])
    assert await store.count_by_type() == {"Counter": 1}


async def test_the_type_index_is_refreshed_after_a_commit_elsewhere(
    store: RedisStore, redis_client: Redis, clock: ManualClock
) -> None:
    other = RedisStore(redis_client, clock=clock)
    spy = spy_on(store)
    await moved(store, clock)
    await moved(other, clock, owner="B")  # its expiry may be another one
    await moved(store, clock)
    assert None not in spy.expiries  # the record was read, not handed back


async def test_a_record_not_handed_back_gets_its_index_refreshed(
    store: RedisStore, clock: ManualClock
) -> None:
    spy = spy_on(store)
    record = await moved(store, clock)
    copy = dataclasses.replace(await acquired(store))  # not the record handed back
    await store.commit(copy, lease_owner="A", release=True)
    assert spy.expiries[-1] is not None
    assert record is not copy
