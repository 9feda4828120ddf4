"""A record this store committed is handed back by the next acquire while Redis still
holds that very write (no body read, nothing decoded); anything else reads it again."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pytest

from nyx_sessions.errors import StateEncodeError
from nyx_sessions.stores import redis as redis_module
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
    assert store._written == {}
    assert await store.acquire("s1", lease_owner="A", lease=LEASE, wait=0) is None


async def test_records_kept_are_bounded(
    store: RedisStore, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_module, "_REMEMBERED", 2)
    for session_id in ("s2", "s3"):
        await store.create(make_record(session_id), lease_owner="A", lease=LEASE)
        await store.release(session_id, lease_owner="A")
    records = {session_id: await updated(store, session_id) for session_id in ("s1", "s2", "s3")}
    assert list(store._written) == ["s2", "s3"]  # the oldest went
    oldest = await acquired(store, "s1")
    assert oldest is not records["s1"]
    assert oldest == dataclasses.replace(records["s1"])
    assert await acquired(store, "s3") is records["s3"]
