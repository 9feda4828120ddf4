"""A failover under a real redis-sentinel while clicks go on: what is served, what is lost.

A primary, its replica and one sentinel (quorum 1). The bot's store is on
``Sentinel(...).master_for(...)``. The replica falls behind: it is frozen (SIGSTOP) and
the primary drops its link, so it misses the writes of the next clicks, as a lagging
replica does; then the primary is killed (SIGKILL), the replica resumed, and the
sentinel promotes it. A new server replaces the dead one as the new replica. Clicks go
on throughout: during the failover they may be answered "try again";
after it, the bot serves them again.

What a failover loses is counted as the click commits that Redis acknowledged minus the
clicks the store holds afterwards. With asynchronous replication (the default), every
write that the replica had not received is lost although Redis acknowledged it. With
``wait_replicas=1`` those commits are refused instead (the manager logs "state not
saved"), and no acknowledged commit is lost.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import pytest
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from nyx_sessions import SessionManager
from nyx_sessions.errors import StoreUnavailableError
from nyx_sessions.stores.redis import RedisStore

from .conftest import require_binary
from .redis_sentinel import SERVICE, SentinelSetup
from .test_manager_redis import Process, Tally, start_tally, wait_idle

if TYPE_CHECKING:
    from collections.abc import Iterator

    from nyx_sessions.stores.base import SessionRecord
    from nyx_sessions.testing import ManualClock, OfflineDiscord, OfflineMessage, OfflineUser

pytestmark = pytest.mark.redis

_log = logging.getLogger(__name__)

SESSIONS = 4
CLICKS = 8  # per phase


class CommitCountingStore(RedisStore):
    """The Redis store, counting the commits of clicks that it acknowledged.

    The manager answers a click before it saves the state, so what a user saw is not
    what Redis acknowledged; a Tally click always raises the count, and a start's
    commits leave it at 0.
    """

    __slots__ = ("acknowledged", "clicks_saved")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clicks_saved = 0
        self.acknowledged: dict[str, int] = {}  # session id -> the last count saved

    async def commit(self, record: SessionRecord, *, lease_owner: str, release: bool) -> int:
        revision = await super().commit(record, lease_owner=lease_owner, release=release)
        if record.data.get("count", 0) > 0:
            self.clicks_saved += 1
        self.acknowledged[record.session_id] = record.data.get("count", 0)
        return revision


async def stored_counts(store: RedisStore, ids: list[str]) -> dict[str, int]:
    """The counts in Redis, read as soon as the new primary answers."""
    for _ in range(100):  # bounded: 10 s
        try:
            counts = {}
            for session_id in ids:
                record = await store.get(session_id)
                assert record is not None
                counts[session_id] = record.data["count"]
        except StoreUnavailableError:
            await asyncio.sleep(0.1)
            continue
        return counts
    raise AssertionError("the new primary never answered")


@pytest.fixture
def sentinel_setup() -> Iterator[SentinelSetup]:
    setup = SentinelSetup(
        require_binary("redis-server"),
        require_binary("redis-sentinel"),
        require_binary("redis-cli"),
    )
    try:
        setup.start()
        yield setup
    finally:
        setup.close()


async def click(offline: OfflineDiscord, user: OfflineUser, message: OfflineMessage) -> bool:
    """Click "+1"; True when the click was acknowledged (not "try again")."""
    result = await offline.click(user, message, label="+1")
    if result.ephemeral:
        assert result.message is not None
        assert "try again" in result.message.content
        return False
    return True


@pytest.mark.parametrize("wait_replicas", [0, 1])
async def test_the_bot_keeps_serving_through_a_failover(
    offline: OfflineDiscord,
    sentinel_setup: SentinelSetup,
    clock: ManualClock,
    wait_replicas: int,
) -> None:
    sentinel = Sentinel(
        [(sentinel_setup.host, sentinel_setup.sentinel_port)],
        sentinel_kwargs={"socket_timeout": 1, "socket_connect_timeout": 1},
    )
    redis = sentinel.master_for(
        SERVICE, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 1)
    )
    store = CommitCountingStore(redis, clock=clock, wait_replicas=wait_replicas, wait_timeout=0.2)
    manager = SessionManager(
        offline.client, store=store, clock=clock, sessions=[Tally], lease_wait=0.5
    )
    await manager.open()
    process = Process(manager, offline.client, redis)
    try:
        alice = offline.add_member("alice")
        sessions, messages = [], []
        for _ in range(SESSIONS):
            sessions.append(await start_tally(offline, process, alice))
            messages.append(offline.messages[-1])
        for index in range(CLICKS):
            assert await click(offline, alice, messages[index % SESSIONS])
        await wait_idle(manager)
        assert store.clicks_saved == CLICKS

        # The replica falls behind: frozen, with its link cut, it misses what comes next.
        sentinel_setup.replica.pause()
        sentinel_setup.cut_replica_link()
        for index in range(CLICKS):
            await click(offline, alice, messages[index % SESSIONS])
        await wait_idle(manager)
        saved_in_stall = store.clicks_saved - CLICKS
        sentinel_setup.primary.kill()
        sentinel_setup.replica.resume()
        await sentinel_setup.wait_failover()
        # What was lost: acknowledged counts that the new primary does not have.
        acknowledged = dict(store.acknowledged)
        after = await stored_counts(store, [session.id for session in sessions])
        lost = sum(max(acknowledged[sid] - after[sid], 0) for sid in acknowledged)
        # A new server replaces the dead primary, as a replica of the new one. (Not the
        # old primary restarted empty: until the sentinel turns it into a replica, it
        # is an empty primary that a client reconnecting may reach.)
        sentinel_setup.add_replica()

        before, refused = store.clicks_saved, 0
        for index in range(600):  # bounded: 60 s at most
            if not await click(offline, alice, messages[index % SESSIONS]):
                refused += 1
            await wait_idle(manager)
            if store.clicks_saved - before >= CLICKS:
                break
            await asyncio.sleep(0.1)
        assert store.clicks_saved - before >= CLICKS, "the bot did not serve after the failover"
        assert sentinel_setup.master_port() == sentinel_setup.replica.port

        _log.warning(
            "failover, wait_replicas=%d: %d of %d click commits during the replica's stall "
            "acknowledged by Redis, %d acknowledged clicks lost in the failover; after it, "
            "%d clicks answered 'try again' before %d were saved again",
            wait_replicas, saved_in_stall, CLICKS, lost, refused, CLICKS,
        )  # fmt: skip
        if wait_replicas:
            assert saved_in_stall == 0  # no replica confirmed them: not acknowledged
            assert lost == 0  # no acknowledged commit lost
        else:
            assert saved_in_stall == CLICKS  # acknowledged by the primary alone...
            assert lost == saved_in_stall  # ...and lost with it
    finally:
        await process.close()
        for client in sentinel.sentinels:
            await client.aclose()
