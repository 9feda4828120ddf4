"""One contract, every store: what the manager relies on, run against each backend.

Each "process" works on its own copy of a record (``dataclasses.replace``), as two
processes sharing a Redis would; the memory store hands out its stored objects.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import TYPE_CHECKING, Any

import pytest

from nyx_sessions.errors import LeaseTimeoutError, RevisionConflictError, StoreError
from nyx_sessions.stores.base import SessionRecord, SessionStore

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from nyx_sessions.testing.clock import ManualClock

LEASE = 5.0


def make_record(
    session_id: str = "s1",
    *,
    session_type: str = "Counter",
    deadline: float | None = None,
    data: dict[str, Any] | None = None,
) -> SessionRecord:
    return SessionRecord(
        session_id=session_id,
        session_type=session_type,
        owner_id=42,
        guild_id=7,
        channel_id=8,
        message_id=None,
        data={"count": 0} if data is None else data,
        created_at=1_700_000_000.0,
        ttl=None if deadline is None else 60.0,
        deadline=deadline,
    )


async def acquire_copy(
    store: SessionStore, session_id: str, owner: str, *, lease: float = LEASE, wait: float = 0.0
) -> SessionRecord:
    record = await store.acquire(session_id, lease_owner=owner, lease=lease, wait=wait)
    assert record is not None
    return dataclasses.replace(record, data=dict(record.data))


def test_store_flags(store: SessionStore) -> None:
    assert isinstance(store, SessionStore)
    assert store.persistent == store.shared  # memory: neither; redis: both


# -- create / get / acquire / commit / release / remove --------------------------------------


async def test_create_then_get(store: SessionStore, clock: ManualClock) -> None:
    record = make_record(deadline=clock.now() + 60, data={"count": 3, "names": ["a", "b"]})
    await store.create(record, lease_owner="A", lease=LEASE)
    assert record.revision == 1
    loaded = await store.get("s1")
    assert loaded == record
    assert await store.get("nope") is None


async def test_create_twice_is_refused(store: SessionStore) -> None:
    await store.create(make_record(), lease_owner="A", lease=LEASE)
    with pytest.raises(StoreError, match="already exists"):
        await store.create(make_record(session_type="Other"), lease_owner="B", lease=LEASE)
    stored = await store.get("s1")
    assert stored is not None
    assert stored.session_type == "Counter"
    assert await store.count_by_type() == {"Counter": 1}


async def test_acquire_missing_returns_none(store: SessionStore) -> None:
    assert await store.acquire("nope", lease_owner="A", lease=LEASE, wait=0.1) is None


async def test_commit_bumps_revision_and_saves(store: SessionStore) -> None:
    await store.create(make_record(), lease_owner="A", lease=LEASE)
    record = await acquire_copy(store, "s1", "A")  # re-entrant for the creator
    record.data["count"] = 1
    assert await store.commit(record, lease_owner="A", release=True) == 2
    assert record.revision == 2
    record = await acquire_copy(store, "s1", "B")  # released: free for anyone
    assert record.data == {"count": 1}
    assert record.revision == 2


async def test_stale_revision_is_refused(store: SessionStore) -> None:
    await store.create(make_record(), lease_owner="A", lease=LEASE)
    first = await acquire_copy(store, "s1", "A")
    stale = dataclasses.replace(first)
    await store.commit(first, lease_owner="A", release=False)
    with pytest.raises(RevisionConflictError, match="revision"):
        await store.commit(stale, lease_owner="A", release=True)
    stored = await store.get("s1")
    assert stored is not None
    assert stored.revision == 2


async def test_commit_without_release_keeps_the_lease(store: SessionStore) -> None:
    await store.create(make_record(), lease_owner="A", lease=LEASE)
    record = await acquire_copy(store, "s1", "A")
    await store.commit(record, lease_owner="A", release=False)
    with pytest.raises(LeaseTimeoutError):
        await store.acquire("s1", lease_owner="B", lease=LEASE, wait=0.0)
    await store.release("s1", lease_owner="A")
    assert await store.acquire("s1", lease_owner="B", lease=LEASE, wait=0.0) is not None


async def test_acquire_of_a_held_lease_waits_its_wait_then_gives_up(
    store: SessionStore,
) -> None:
    await store.create(make_record(), lease_owner="A", lease=LEASE)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(LeaseTimeoutError):
        await store.acquire("s1", lease_owner="B", lease=LEASE, wait=0.2)
    assert 0.2 <= loop.time() - began < 2.0  # not at the first refusal: after the wait
    record = await store.acquire("s1", lease_owner="A", lease=LEASE, wait=0.0)
    assert record is not None  # the holder's lease is untouched


async def test_release_by_another_owner_is_ignored(store: SessionStore) -> None:
    await store.create(make_record(), lease_owner="A", lease=LEASE)
    await store.release("s1", lease_owner="B")
    with pytest.raises(LeaseTimeoutError):
        await store.acquire("s1", lease_owner="B", lease=LEASE, wait=0.0)


async def test_commit_after_remove_is_refused(store: SessionStore) -> None:
    await store.create(make_record(), lease_owner="A", lease=LEASE)
    record = await acquire_copy(store, "s1", "A")
    assert await store.remove("s1") is True
    with pytest.raises(RevisionConflictError):
        await store.commit(record, lease_owner="A", release=True)
    assert await store.get("s1") is None
    assert await store.count_by_type() == {}


async def test_remove(store: SessionStore, clock: ManualClock) -> None:
    await store.create(make_record(deadline=clock.now() + 1), lease_owner="A", lease=LEASE)
    assert await store.remove("s1") is True
    assert await store.remove("s1") is False
    assert await store.get("s1") is None
    assert await store.claim_expired(clock.now() + 100, limit=10, hold=5) == []
    # The lease went with the record: a new session of that id is free to create.
    await store.create(make_record(), lease_owner="B", lease=LEASE)


async def test_remove_exactly_once_under_gather(store: SessionStore) -> None:
    await store.create(make_record(), lease_owner="A", lease=LEASE)
    results = await asyncio.gather(*(store.remove("s1") for _ in range(8)))
    assert sorted(results) == [False] * 7 + [True]


# -- leases ----------------------------------------------------------------------------------


async def test_lease_is_exclusive_and_times_out_within_the_wait(store: SessionStore) -> None:
    await store.create(make_record(), lease_owner="A", lease=LEASE)
    started = time.monotonic()
    with pytest.raises(LeaseTimeoutError):
        await store.acquire("s1", lease_owner="B", lease=LEASE, wait=0.2)
    assert 0.15 <= time.monotonic() - started < 1.0


async def test_waiter_gets_the_lease_when_released(store: SessionStore) -> None:
    await store.create(make_record(), lease_owner="A", lease=LEASE)
    waiter = asyncio.create_task(store.acquire("s1", lease_owner="B", lease=LEASE, wait=2.0))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await store.release("s1", lease_owner="A")
    record = await asyncio.wait_for(waiter, 1.0)
    assert record is not None
    with pytest.raises(LeaseTimeoutError):
        await store.acquire("s1", lease_owner="A", lease=LEASE, wait=0.0)


async def test_expired_lease_is_taken_over(
    store: SessionStore, let_time_pass: Callable[[float], Awaitable[None]]
) -> None:
    await store.create(make_record(), lease_owner="A", lease=0.2)  # A "crashes"
    await let_time_pass(0.3)
    assert await store.acquire("s1", lease_owner="B", lease=LEASE, wait=0.0) is not None


@pytest.mark.parametrize("b_releases", [False, True])
async def test_fencing_refuses_a_writer_whose_lease_ran_out(
    store: SessionStore, let_time_pass: Callable[[float], Awaitable[None]], b_releases: bool
) -> None:
    await store.create(make_record(), lease_owner="A", lease=LEASE)
    await store.release("s1", lease_owner="A")
    a = await acquire_copy(store, "s1", "A", lease=0.2)
    await let_time_pass(0.3)  # A pauses past its lease
    b = await acquire_copy(store, "s1", "B")
    b.data["count"] = 10
    await store.commit(b, lease_owner="B", release=b_releases)
    a.data["count"] = 99
    with pytest.raises(RevisionConflictError):
        await store.commit(a, lease_owner="A", release=True)
    stored = await store.get("s1")
    assert stored is not None
    assert stored.data == {"count": 10}


# -- expiry claims ---------------------------------------------------------------------------


async def test_claim_expired_exactly_once_with_concurrent_claimers(
    store: SessionStore, clock: ManualClock
) -> None:
    ids = [f"s{index}" for index in range(30)]
    for session_id in ids:
        record = make_record(session_id, deadline=clock.now() + 10)
        await store.create(record, lease_owner="A", lease=LEASE)
    assert await store.claim_expired(clock.now(), limit=100, hold=5) == []
    await clock.advance(11)
    claims = await asyncio.gather(
        *(store.claim_expired(clock.now(), limit=7, hold=30) for _ in range(6))
    )
    claimed = [session_id for claim in claims for session_id in claim]
    assert len(claimed) == len(set(claimed))
    assert set(claimed) <= set(ids)
    rest = await store.claim_expired(clock.now(), limit=100, hold=30)
    assert sorted(claimed + rest) == sorted(ids)


async def test_claim_holds_then_reclaims(store: SessionStore, clock: ManualClock) -> None:
    await store.create(make_record(deadline=clock.now() + 10), lease_owner="A", lease=LEASE)
    await clock.advance(10)
    assert await store.claim_expired(clock.now(), limit=10, hold=5) == ["s1"]
    await clock.advance(4)
    assert await store.claim_expired(clock.now(), limit=10, hold=5) == []
    await clock.advance(1)  # the claimer did not finish: someone else may try
    assert await store.claim_expired(clock.now(), limit=10, hold=5) == ["s1"]


async def test_claim_follows_a_moved_deadline(store: SessionStore, clock: ManualClock) -> None:
    await store.create(make_record(deadline=clock.now() + 10), lease_owner="A", lease=LEASE)
    record = await acquire_copy(store, "s1", "A")
    record.deadline = clock.now() + 100
    await store.commit(record, lease_owner="A", release=True)
    await clock.advance(50)
    assert await store.claim_expired(clock.now(), limit=10, hold=5) == []
    await clock.advance(50)
    assert await store.claim_expired(clock.now(), limit=10, hold=5) == ["s1"]


async def test_no_deadline_is_never_claimed(store: SessionStore, clock: ManualClock) -> None:
    await store.create(make_record(deadline=None), lease_owner="A", lease=LEASE)
    await clock.advance(10 * 365 * 86400)
    assert await store.claim_expired(clock.now(), limit=10, hold=5) == []
    loaded = await store.get("s1")
    assert loaded is not None
    assert loaded.deadline is None


async def test_claim_respects_the_limit(store: SessionStore, clock: ManualClock) -> None:
    for index in range(5):
        record = make_record(f"s{index}", deadline=clock.now() + index)
        await store.create(record, lease_owner="A", lease=LEASE)
    await clock.advance(10)
    assert await store.claim_expired(clock.now(), limit=2, hold=5) == ["s0", "s1"]


# -- counting --------------------------------------------------------------------------------


async def test_count_by_type(store: SessionStore, clock: ManualClock) -> None:
    assert await store.count_by_type() == {}
    for index in range(3):
        await store.create(make_record(f"a{index}"), lease_owner="A", lease=LEASE)
    for index in range(2):
        record = make_record(f"b{index}", session_type="Poll", deadline=clock.now() + 5)
        await store.create(record, lease_owner="A", lease=LEASE)
    assert await store.count_by_type() == {"Counter": 3, "Poll": 2}
    await store.remove("a0")
    await store.remove("b0")
    await store.remove("b1")
    assert await store.count_by_type() == {"Counter": 2}


async def test_count_by_type_under_concurrency(store: SessionStore) -> None:
    await asyncio.gather(
        *(store.create(make_record(f"s{i}"), lease_owner="A", lease=LEASE) for i in range(40))
    )
    await asyncio.gather(*(store.remove(f"s{i}") for i in range(0, 40, 2) for _ in range(2)))
    assert await store.count_by_type() == {"Counter": 20}
