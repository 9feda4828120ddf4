"""The manager on a real Redis: restarts, several processes, expiry once, faults.

Each scenario runs on a single redis-server and on the three-primary Redis Cluster.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import discord
import pytest
from redis.asyncio import RedisCluster

from nyx_sessions import AbstractSession, EndCode, SessionManager
from nyx_sessions.codecs import StateCodec
from nyx_sessions.errors import SessionStateError
from nyx_sessions.stores._redis_keys import KeyLayout
from nyx_sessions.stores.redis import RedisStore
from nyx_sessions.testing import ManualClock, OfflineDiscord, OfflineUser
from tests.sessions import Counter

from .conftest import AnyRedis, AnyServer, make_any_client


class Tally(AbstractSession[int]):
    """A counter with a stable type name and an end() that counts its runs."""

    session_type = "tests.tally"
    ttl = 30
    ends: ClassVar[list[tuple[str, str]]] = []

    async def start(self) -> None:
        self.data["count"] = 0
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="+1", custom_id=self.custom_id.push("inc").build()))
        view.add_item(
            discord.ui.Button(label="Done", custom_id=self.custom_id.push("done").build())
        )
        assert self.start_interaction is not None
        await self.start_interaction.response.send_message("0", view=view)

    async def handle_button(self, interaction: discord.Interaction[Any]) -> bool:
        assert self.manager is not None
        data: Any = interaction.data
        if self.manager.codec.create_iterator(data["custom_id"]).get_at(0) == "done":
            await interaction.response.edit_message(content="done", view=None)
            await self.stop(result=self.data["count"])
            return False
        self.data["count"] += 1
        await asyncio.sleep(0)  # let other work interleave
        await interaction.response.edit_message(content=str(self.data["count"]))
        return True

    async def end(self) -> None:
        assert self.manager is not None
        Tally.ends.append((self.id, self.end_code.value if self.end_code else "?"))
        self.result = self.data["count"]


class Process:
    """One bot process: its own discord.py client, store connection and manager."""

    def __init__(self, manager: SessionManager, client: discord.Client, redis: AnyRedis) -> None:
        self.manager = manager
        self.client = client
        self.redis = redis

    async def close(self) -> None:
        await self.manager.aclose()
        await self.manager.store.aclose()  # borrowed by the manager: closed by its owner
        await self.redis.aclose()


@pytest.fixture
async def offline() -> AsyncIterator[OfflineDiscord]:
    Tally.ends = []
    async with OfflineDiscord() as offline:
        yield offline


@pytest.fixture
async def spawn(
    offline: OfflineDiscord,
    any_server: AnyServer,
    any_client: AnyRedis,
    clock: ManualClock,
) -> AsyncIterator[Callable[..., Any]]:
    processes: list[Process] = []

    async def spawn_process(*, first: bool = False, **kwargs: Any) -> Process:
        if first:
            client = offline.client
        else:
            client = discord.Client(intents=discord.Intents.none())
            await offline.login(client)
        redis = make_any_client(any_server)
        store = RedisStore(redis, clock=clock)
        options: dict[str, Any] = {"poll_interval": 0.02, "lease": 2.0, "lease_wait": 3.0}
        options.update(kwargs)
        manager = SessionManager(
            client, store=store, clock=clock, sessions=[Tally, Counter], **options
        )
        await manager.open()
        process = Process(manager, client, redis)
        processes.append(process)
        return process

    try:
        yield spawn_process
    finally:
        for process in processes:
            await process.close()


async def wait_idle(manager: SessionManager) -> None:
    """Wait until no session is busy: the last interaction's state is committed."""
    for _ in range(500):
        if not any(entry.busy for entry in manager._live.values()):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the manager stayed busy")


async def start_tally(offline: OfflineDiscord, process: Process, user: OfflineUser) -> Tally:
    command = await offline.slash_command(user, "tally", client=process.client, wait=False)
    session = Tally(command.interaction)
    assert await process.manager.start(session)
    await command.wait_answered()
    return session


async def test_a_session_survives_a_restart(offline: OfflineDiscord, spawn: Any) -> None:
    alice = offline.add_member("alice")
    first = await spawn(first=True)
    session = await start_tally(offline, first, alice)
    message = offline.messages[-1]
    await offline.click(alice, message, label="+1", client=first.client)
    await offline.click(alice, message, label="+1", client=first.client)
    await first.manager.aclose()
    # The process is gone; local waiters learn it, the session stays in Redis.
    assert (await session.end_promise).code is EndCode.SHUTDOWN
    assert Tally.ends == []

    second = await spawn()
    click = await offline.click(alice, message, label="+1", client=second.client)
    assert click.response is not None
    assert message.content == "3"
    restored = second.manager.get(session.id)
    assert isinstance(restored, Tally)
    with pytest.raises(SessionStateError, match="no start interaction"):
        _ = restored.start_interaction  # tokens are not kept in the store
    assert restored.data == {"count": 3}
    assert restored.message_id == message.id
    await offline.click(alice, message, label="Done", client=second.client)
    await wait_idle(second.manager)
    assert Tally.ends == [(session.id, "ended")]
    assert await second.manager.active() == {}


async def test_two_processes_serve_alternating_clicks_and_a_burst(
    offline: OfflineDiscord, spawn: Any
) -> None:
    alice = offline.add_member("alice")
    a, b = await spawn(first=True), await spawn()
    session = await start_tally(offline, a, alice)
    message = offline.messages[-1]
    for index in range(6):
        process = a if index % 2 == 0 else b
        await offline.click(alice, message, label="+1", client=process.client)
    assert message.content == "6"

    burst = [
        offline.click(alice, message, label="+1", client=(a, b)[i % 2].client, wait=False)
        for i in range(20)
    ]
    results = await asyncio.gather(*burst)
    for result in results:
        await result.wait_answered(10)
    final = await offline.click(alice, message, label="Done", client=a.client)
    assert final.response is not None
    end = await asyncio.wait_for(session.end_promise, 5)
    assert (end.code, end.result) == (EndCode.ENDED, 26)
    assert Tally.ends == [(session.id, "ended")]


async def test_an_end_promise_resolves_when_another_process_ends_it(
    offline: OfflineDiscord, spawn: Any
) -> None:
    alice = offline.add_member("alice")
    a, b = await spawn(first=True), await spawn()
    session = await start_tally(offline, a, alice)
    message = offline.messages[-1]
    await offline.click(alice, message, label="+1", client=b.client)
    await offline.click(alice, message, label="Done", client=b.client)
    end = await asyncio.wait_for(session.end_promise, 5)
    assert (end.code, end.result) == (EndCode.ENDED, 1)
    assert a.manager.get(session.id) is None


async def test_expiry_runs_once_with_two_processes(
    offline: OfflineDiscord, spawn: Any, clock: ManualClock
) -> None:
    alice = offline.add_member("alice")
    a, b = await spawn(first=True), await spawn()
    sessions = []
    for index in range(5):
        session = await start_tally(offline, (a, b)[index % 2], alice)
        # Both processes know every session: each has served a click of each.
        message = offline.messages[-1]
        await offline.click(alice, message, label="+1", client=a.client)
        await offline.click(alice, message, label="+1", client=b.client)
        sessions.append(session)
    await clock.advance(31)
    for session in sessions:
        end = await asyncio.wait_for(session.end_promise, 5)
        assert (end.code, end.result) == (EndCode.EXPIRED, 2)
    await asyncio.sleep(0.2)  # give a second expiry every chance to happen
    assert sorted(Tally.ends) == sorted((s.id, "expired") for s in sessions)
    await wait_idle(a.manager)
    await wait_idle(b.manager)
    assert await a.manager.active() == {}


async def test_an_overdue_session_is_expired_when_a_process_starts(
    offline: OfflineDiscord, spawn: Any, clock: ManualClock
) -> None:
    alice = offline.add_member("alice")
    first = await spawn(first=True)
    session = await start_tally(offline, first, alice)
    await first.manager.aclose()
    await clock.advance(3600)  # no process runs while the deadline passes
    assert Tally.ends == []
    second = await spawn()
    for _ in range(100):
        if Tally.ends:
            break
        await asyncio.sleep(0.02)
    assert Tally.ends == [(session.id, "expired")]
    await wait_idle(second.manager)
    assert await second.manager.active() == {}


KEYS = KeyLayout("nyx", 16)


async def save_everything(client: AnyRedis) -> None:
    """SAVE on every server, so that a restarted one has the data (no AOF in tests)."""
    if isinstance(client, RedisCluster):
        await client.save(target_nodes=RedisCluster.PRIMARIES)
    else:
        await client.save()


@pytest.mark.parametrize("damage", ["garbage", "oversize"])
async def test_an_unusable_record_is_answered_and_set_aside(
    offline: OfflineDiscord, spawn: Any, any_client: AnyRedis, damage: str
) -> None:
    alice = offline.add_member("alice")
    process = await spawn(first=True)
    broken = await start_tally(offline, process, alice)
    broken_message = offline.messages[-1]
    await start_tally(offline, process, alice)
    healthy_message = offline.messages[-1]
    await process.manager.aclose()  # drop the local copies: the next click reads Redis

    keys = KEYS.session(broken.id)
    if damage == "garbage":
        await any_client.hset(keys.rec, "body", b"\xc1not msgpack at all")
    else:  # a valid record, 5 MB: over the 1 MB cap, never decoded
        writer = RedisStore(any_client, codec=StateCodec(max_record_size=None))
        record = await writer.get(broken.id)
        assert record is not None
        record.data["blob"] = "x" * 5_000_000
        await writer.commit(record, lease_owner="test", release=True)

    second = await spawn()
    click = await offline.click(alice, broken_message, label="+1", client=second.client)
    assert click.ephemeral
    assert click.message is not None and "can no longer be used" in click.message.content
    # Set aside, not deleted.
    assert await any_client.exists(keys.rec) == 0
    assert await any_client.exists(keys.aside) == 1
    assert await second.manager.active() == {"tests.tally": 1}  # the healthy one
    # Others are still served.
    await offline.click(alice, healthy_message, label="+1", client=second.client)
    assert healthy_message.content == "1"


async def test_redis_stopped_and_restarted_mid_run(
    offline: OfflineDiscord, spawn: Any, any_server: AnyServer, any_client: AnyRedis
) -> None:
    alice = offline.add_member("alice")
    process = await spawn(first=True, lease_wait=0.5)
    session = await start_tally(offline, process, alice)
    message = offline.messages[-1]
    await offline.click(alice, message, label="+1", client=process.client)
    await wait_idle(process.manager)  # the click's state is committed
    await save_everything(any_client)
    any_server.stop()
    try:
        click = await offline.click(alice, message, label="+1", client=process.client)
        assert click.ephemeral
        assert click.message is not None and "try again" in click.message.content
    finally:
        any_server.start()
    # Nothing committed was lost, and the manager recovers by itself.
    for _ in range(100):
        click = await offline.click(alice, message, label="+1", client=process.client)
        if not click.ephemeral:
            break
        await asyncio.sleep(0.1)
    assert message.content == "2"
    assert session.data["count"] == 2


class TallyV2(Tally):
    """The same sessions after a change of ``data`` layout: ``count`` became ``total``."""

    session_type = "tests.tally"
    data_version = 2

    @classmethod
    def migrate_data(cls, data: dict[str, Any], from_version: int) -> dict[str, Any]:
        if from_version < 2:
            data = {"count": data["count"], "total": data["count"]}
        return data


async def test_old_data_is_migrated_when_restored(
    offline: OfflineDiscord, spawn: Any, any_server: AnyServer, clock: ManualClock
) -> None:
    alice = offline.add_member("alice")
    first = await spawn(first=True)
    session = await start_tally(offline, first, alice)
    message = offline.messages[-1]
    await offline.click(alice, message, label="+1", client=first.client)
    await first.manager.aclose()

    client = discord.Client(intents=discord.Intents.none())
    await offline.login(client)
    redis = make_any_client(any_server)
    manager = SessionManager(
        client, store=RedisStore(redis, clock=clock), clock=clock, sessions=[TallyV2]
    )
    try:
        click = await offline.click(alice, message, label="+1", client=client)
        assert not click.ephemeral, click.message.content if click.message else None
        restored = manager.get(session.id)
        assert isinstance(restored, TallyV2)
        assert restored.data == {"count": 2, "total": 1}
    finally:
        await manager.aclose()
        await manager.store.aclose()
        await redis.aclose()


async def test_unencodable_state_fails_at_save_naming_the_field(
    offline: OfflineDiscord, spawn: Any, caplog: pytest.LogCaptureFixture
) -> None:
    alice = offline.add_member("alice")
    process = await spawn(first=True)
    session = await start_tally(offline, process, alice)
    message = offline.messages[-1]
    await offline.click(alice, message, label="+1", client=process.client)
    await wait_idle(process.manager)
    session.data["oops"] = object()
    await offline.click(alice, message, label="+1", client=process.client)
    await wait_idle(process.manager)
    assert "data['oops']" in caplog.text
    # The committed state is intact: the next click continues from it.
    await offline.click(alice, message, label="+1", client=process.client)
    await wait_idle(process.manager)
    restored = process.manager.get(session.id)
    assert restored is not None and restored.data == {"count": 2}


async def test_an_unregistered_type_is_answered(
    offline: OfflineDiscord, spawn: Any, any_server: AnyServer, clock: ManualClock
) -> None:
    alice = offline.add_member("alice")
    first = await spawn(first=True)
    await start_tally(offline, first, alice)
    message = offline.messages[-1]
    await first.manager.aclose()
    client = discord.Client(intents=discord.Intents.none())
    await offline.login(client)
    redis = make_any_client(any_server)
    manager = SessionManager(client, store=RedisStore(redis, clock=clock), clock=clock)
    try:
        click = await offline.click(alice, message, label="+1", client=client)
        assert click.ephemeral
        assert click.message is not None and "can no longer be used" in click.message.content
    finally:
        await manager.aclose()
        await manager.store.aclose()
        await redis.aclose()


async def test_a_record_over_the_size_cap_is_refused_and_the_user_told(
    offline: OfflineDiscord, any_server: AnyServer, any_client: AnyRedis, clock: ManualClock
) -> None:
    alice = offline.add_member("alice")
    redis = make_any_client(any_server)
    store = RedisStore(redis, clock=clock, codec=StateCodec(max_record_size=400))
    manager = SessionManager(offline.client, store=store, clock=clock, sessions=[Tally])
    try:
        command = await offline.slash_command(alice, "tally", wait=False)
        session = Tally(command.interaction)
        assert await manager.start(session)
        message = offline.messages[-1]
        await offline.click(alice, message, label="+1")
        await wait_idle(manager)
        restored = manager.get(session.id)
        assert restored is not None
        restored.data["blob"] = "x" * 1_000
        click = await offline.click(alice, message, label="+1")
        # The unsaved copy is dropped before the follow-up goes out, so an idle manager
        # does not mean the follow-up was sent: wait for the request itself.
        await offline.wait_for_request(
            lambda request: request.path.startswith("/webhooks/") and click.token in request.path
        )
        assert click.followups, "the user is told the change was not saved"
        assert "Something went wrong" in click.followups[-1].content
        record = await store.get(session.id)
        assert record is not None and record.data == {"count": 1}  # the last saved state
    finally:
        await manager.aclose()
        await store.aclose()
        await redis.aclose()


class WatchedRedisStore(RedisStore):
    """The Redis store, noting the most ``acquire`` calls in flight at once."""

    __slots__ = ("in_flight", "peak")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_flight = self.peak = 0

    async def acquire(self, session_id: str, **kwargs: Any) -> Any:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await super().acquire(session_id, **kwargs)
        finally:
            self.in_flight -= 1


async def test_store_concurrency_bounds_the_calls_in_flight(
    offline: OfflineDiscord, any_client: AnyRedis, clock: ManualClock
) -> None:
    alice = offline.add_member("alice")
    store = WatchedRedisStore(any_client, clock=clock)
    manager = SessionManager(
        offline.client, store=store, clock=clock, sessions=[Tally], store_concurrency=1
    )
    await manager.open()
    process = Process(manager, offline.client, any_client)
    messages = []
    for _ in range(4):
        await start_tally(offline, process, alice)
        messages.append(offline.messages[-1])
    clicks = await asyncio.gather(
        *(offline.click(alice, message, label="+1", wait=False) for message in messages)
    )
    for click in clicks:
        await click.wait_answered(10)
    await wait_idle(manager)
    assert [message.content for message in messages] == ["1"] * 4
    assert store.peak == 1  # the four clicks arrived together; their acquires took turns
    await manager.aclose()
    await store.aclose()
