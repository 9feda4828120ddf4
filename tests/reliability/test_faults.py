"""Faults against a real redis-server: crashes, restarts, paused processes, redelivery.

Each "process" is a discord.py client with its own Redis connection and manager (see
``support.Process``); the lease tests also run a real second OS process
(``lease_holder.py``) that is killed or frozen while it holds a session's lease.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import signal
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

import discord
import pytest
from redis.asyncio import Redis

from nyx_sessions import OwnerOnly, SessionManager
from nyx_sessions.errors import RevisionConflictError
from nyx_sessions.stores._redis_keys import KeyLayout
from nyx_sessions.stores.base import SessionRecord
from nyx_sessions.stores.redis import RedisStore

from .support import (
    LEASE_HOLDER,
    Process,
    Tally,
    already_acknowledged,
    callbacks_of,
    notices,
    start_tally,
    succeeded,
    wait_idle,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from nyx_sessions.testing import InteractionResult, ManualClock, OfflineDiscord
    from tests.stores.redis_server import RedisServer

    from .support import DurableRedisServer

    Spawn = Callable[..., Awaitable[Process]]
    HoldLease = Callable[..., Awaitable[tuple[asyncio.subprocess.Process, str]]]

pytestmark = pytest.mark.redis


async def stored_count(store: Any, session_id: str) -> int | None:
    record = await store.get(session_id)
    return None if record is None else int(record.data["count"])


# -- (a) Redis killed and restarted in the middle of a burst ---------------------------------


async def burst(
    offline: OfflineDiscord,
    processes: list[Process],
    sessions: list[Tally],
    clicks: int,
    *,
    concurrency: int,
    pace: float,
    seed: int,
    fault_after: int,
    fault: Callable[[], Awaitable[None]],
    peak: list[int],
) -> list[tuple[Tally, InteractionResult]]:
    """Click ``+1`` ``clicks`` times on random sessions through random processes.

    Click ``i`` is fed no earlier than ``i * pace`` seconds after the first, so that
    the burst spans the ``fault``, which starts once ``fault_after`` clicks are answered.
    ``peak[0]`` is set to the most clicks that were awaiting their answer at once.
    """
    chooser = random.Random(seed)
    plan = [(chooser.choice(sessions), chooser.choice(processes)) for _ in range(clicks)]
    users = {user.id: user for user in offline.world.users.values()}
    gate = asyncio.Semaphore(concurrency)
    done: list[InteractionResult] = []
    reached = asyncio.Event()
    in_flight: list[int] = []

    loop = asyncio.get_running_loop()
    begin = loop.time()

    async def click(
        index: int, session: Tally, process: Process
    ) -> tuple[Tally, InteractionResult]:
        await asyncio.sleep(begin + index * pace - loop.time())
        async with gate:
            in_flight.append(index)
            peak[0] = max(peak[0], len(in_flight))
            message = offline.message(session.message_id or 0)
            result = await offline.click(
                users[session.owner_id], message, label="+1", client=process.client, wait=False
            )
            await result.wait_answered(10)
            in_flight.remove(index)
            done.append(result)
            if len(done) == fault_after:
                reached.set()
            return session, result

    clicking = asyncio.gather(*(click(i, session, p) for i, (session, p) in enumerate(plan)))
    await reached.wait()
    await fault()
    return await clicking


async def kill_and_restart(server: RedisServer, *, down: float) -> None:
    server.kill()  # SIGKILL: no shutdown save, no goodbye to clients
    await asyncio.sleep(down)
    await asyncio.to_thread(server.start)


CLICKS, PACE, KILL_AFTER, DOWN = 1200, 0.0008, 300, 0.3


def report(
    who: str, results: list[tuple[Tally, InteractionResult]], ok: list[str], failed: int
) -> None:
    print(
        f"\n[faults] {who}, {len(results)} clicks offered at {1 / PACE:.0f}/s with 16 in "
        f"flight, Redis SIGKILLed after {KILL_AFTER} answers and down {DOWN} s: "
        f"{len(ok)} saved edits, {len(results) - len(ok)} 'try again', "
        f"{failed} failed commits"
    )


def check_burst(
    offline: OfflineDiscord,
    processes: list[Process],
    results: list[tuple[Tally, InteractionResult]],
) -> tuple[list[str], int]:
    """The answers of a burst: each click answered once, successes or "try again"."""
    assert all(result.answered for _, result in results)
    for _, result in results:
        assert len([r for r in callbacks_of(offline, result.id) if r.status < 300]) == 1
    assert already_acknowledged(offline) == []
    for _, result in results:
        if not succeeded(result):  # a "try again" reply, or an edit taken back by a notice
            said = notices(result) or [result.message.content if result.message else ""]
            assert any("try again" in text for text in said), said
    ok = [session.id for session, result in results if succeeded(result)]
    failed = sum(len(process.failed_commits()) for process in processes)
    return ok, failed


async def check_counts(
    processes: list[Process], sessions: list[Tally], ok: list[str]
) -> dict[str, int]:
    """Each stored count is the clean successes users saw; more only by a commit whose
    reply was lost in the crash (saved, though its user was told to try again)."""
    failed = [sid for process in processes for sid in process.failed_commits()]
    counts = {}
    for session in sessions:
        count = await stored_count(processes[0].manager.store, session.id)
        assert count is not None
        assert ok.count(session.id) <= count <= ok.count(session.id) + failed.count(session.id)
        counts[session.id] = count
    return counts


async def test_redis_killed_mid_burst_single_process(
    offline: OfflineDiscord,
    spawn: Spawn,
    durable_redis_server: DurableRedisServer,
    durable_redis_client: Redis,
) -> None:
    """One process, Redis SIGKILLed and restarted while 400 clicks are in flight.

    With a Redis that fsyncs before it replies, "committed" means "Redis said OK". Every
    click is answered exactly once: by the handler (an edit), or with "try again" (a
    reply when the session could not be loaded, a follow-up when its new state could not
    be saved). The stored counts equal the successes users saw, and every session goes
    on from exactly its stored state.
    """
    alice = offline.add_member("alice")
    process = await spawn(first=True, server=durable_redis_server, lease_wait=0.5)
    sessions = [await start_tally(offline, process, alice) for _ in range(12)]

    async def fault() -> None:
        await kill_and_restart(durable_redis_server, down=DOWN)

    peak = [0]
    results = await burst(
        offline,
        [process],
        sessions,
        CLICKS,
        concurrency=16,
        pace=PACE,
        seed=1,
        fault_after=KILL_AFTER,
        fault=fault,
        peak=peak,
    )
    await wait_idle(process.manager)
    ok, failed = check_burst(offline, [process], results)
    assert KILL_AFTER < len(ok) < len(results), "the kill did not hit the burst"
    assert peak[0] == 16, "the burst never had 16 clicks in flight"
    counts = await check_counts([process], sessions, ok)

    for session in sessions:
        extra = await offline.click(alice, offline.message(session.message_id or 0), label="+1")
        assert succeeded(extra)
    await wait_idle(process.manager)
    for session in sessions:
        assert await stored_count(process.manager.store, session.id) == counts[session.id] + 1
    report("1 process", results, ok, failed)


async def test_redis_killed_mid_burst_two_processes(
    offline: OfflineDiscord,
    spawn: Spawn,
    durable_redis_server: DurableRedisServer,
    durable_redis_client: Redis,
) -> None:
    """Two processes share the sessions; Redis is SIGKILLed and restarted mid-burst.

    The same properties across processes: nothing acknowledged is lost, nothing is
    counted twice, and no process carries on from a state that was never saved.
    """
    alice = offline.add_member("alice")
    a = await spawn(first=True, server=durable_redis_server, lease_wait=0.5)
    b = await spawn(server=durable_redis_server, lease_wait=0.5)
    sessions = [await start_tally(offline, (a, b)[i % 2], alice) for i in range(12)]

    async def fault() -> None:
        await kill_and_restart(durable_redis_server, down=DOWN)

    peak = [0]
    results = await burst(
        offline,
        [a, b],
        sessions,
        CLICKS,
        concurrency=16,
        pace=PACE,
        seed=2,
        fault_after=KILL_AFTER,
        fault=fault,
        peak=peak,
    )
    await wait_idle(a.manager, b.manager)
    ok, failed = check_burst(offline, [a, b], results)
    assert KILL_AFTER < len(ok) < len(results), "the kill did not hit the burst"
    assert peak[0] == 16, "the burst never had 16 clicks in flight"
    await check_counts([a, b], sessions, ok)
    report("2 processes", results, ok, failed)


async def test_an_answered_update_whose_commit_fails_is_taken_back(
    offline: OfflineDiscord,
    spawn: Spawn,
    durable_redis_server: DurableRedisServer,
    durable_redis_client: Redis,
) -> None:
    """The handler edits the message, then Redis dies before the manager saves.

    The user already saw "1"; the manager tells them it was not saved (an ephemeral
    follow-up saying to try again) and drops its unsaved copy, so that the next click,
    in any process, goes on from the saved state: "1" again, honestly.
    """
    alice = offline.add_member("alice")
    a = await spawn(first=True, server=durable_redis_server, lease=0.3, lease_wait=2.0)
    b = await spawn(server=durable_redis_server, lease=0.3, lease_wait=2.0)
    session = await start_tally(offline, a, alice)
    message = offline.message(session.message_id or 0)
    Tally.gate, Tally.entered = asyncio.Event(), asyncio.Event()
    first = await offline.click(alice, message, label="slow +1", client=a.client, wait=False)
    await Tally.entered.wait()  # A holds the lease and runs the handler
    durable_redis_server.kill()
    Tally.gate.set()
    await first.wait_answered()
    await wait_idle(a.manager)
    await asyncio.to_thread(durable_redis_server.start)

    assert message.content == "1"  # the handler's edit went out...
    assert a.failed_commits() == [session.id]  # ... its state was not saved...
    assert not succeeded(first)
    assert any("try again" in text for text in notices(first))  # ... and the user heard
    assert a.manager.get(session.id) is None  # no unsaved copy lives on

    second = await offline.click(alice, message, label="+1", client=b.client)
    assert succeeded(second) and message.content == "1"
    third = await offline.click(alice, message, label="+1", client=a.client)
    assert succeeded(third) and message.content == "2"
    await wait_idle(a.manager, b.manager)
    assert await stored_count(a.manager.store, session.id) == 2


# -- (d) the same interaction delivered twice ------------------------------------------------


def redeliver(offline: OfflineDiscord, result: InteractionResult, process: Process) -> None:
    """Hand the gateway payload of ``result`` to ``process`` again, as a RESUME replay does."""
    process.client._connection.parsers["INTERACTION_CREATE"](copy.deepcopy(result.payload))


async def test_a_duplicate_is_served_once_in_one_process(
    offline: OfflineDiscord, spawn: Spawn, redis_client: Redis
) -> None:
    """Redelivered while the first copy is being served, and again after it was."""
    alice = offline.add_member("alice")
    process = await spawn(first=True)
    session = await start_tally(offline, process, alice)
    message = offline.message(session.message_id or 0)
    Tally.gate, Tally.entered = asyncio.Event(), asyncio.Event()
    click = await offline.click(alice, message, label="slow +1", wait=False)
    await Tally.entered.wait()
    redeliver(offline, click, process)  # while the handler runs
    Tally.gate.set()
    await click.wait_answered()
    await wait_idle(process.manager)
    redeliver(offline, click, process)  # after it was answered and committed
    payload: Any = copy.deepcopy(click.payload)
    duplicate = discord.Interaction(data=payload, state=process.client._connection)
    assert await process.manager.update(duplicate) is True  # ours, and already served
    await wait_idle(process.manager)

    assert [r.status for r in callbacks_of(offline, click.id)] == [200]
    assert already_acknowledged(offline) == []
    assert await stored_count(process.manager.store, session.id) == 1
    assert message.content == "1"


async def test_a_duplicate_delivered_to_two_processes_is_applied_once(
    offline: OfflineDiscord, spawn: Spawn, redis_client: Redis
) -> None:
    """The gateway gives one interaction to two processes (a RESUME replay, a rolling
    deploy): the second finds its id among the session's recently served ones, which
    are saved with the state, and leaves it alone."""
    alice = offline.add_member("alice")
    a, b = await spawn(first=True), await spawn()
    session = await start_tally(offline, a, alice)
    message = offline.message(session.message_id or 0)
    for first, second in ((a, b), (b, a)):
        click = await offline.click(alice, message, label="+1", client=first.client, wait=False)
        redeliver(offline, click, second)
        await click.wait_answered()
        await wait_idle(a.manager, b.manager)
        assert succeeded(click)
        assert [r.status for r in callbacks_of(offline, click.id)] == [200]
    assert message.content == "2"
    assert await stored_count(a.manager.store, session.id) == 2
    assert already_acknowledged(offline) == []
    assert a.errors == [] and b.errors == []


class OwnedTally(Tally):
    session_type = "reliability.owned-tally"
    update_filter = OwnerOnly()


async def refused_duplicate(
    offline: OfflineDiscord, spawn: Spawn, clock: ManualClock, *, expire: bool
) -> InteractionResult:
    """Deliver a click that the session refuses to two processes; return it."""
    alice, mallory = offline.add_member("alice"), offline.add_member("mallory")
    a, b = await spawn(first=True), await spawn()
    a.manager.register(OwnedTally)
    b.manager.register(OwnedTally)
    session = await start_tally(offline, a, alice, OwnedTally)
    message = offline.message(session.message_id or 0)
    if expire:
        await clock.advance(Tally.ttl + 1)
        await asyncio.wait_for(session.end_promise, 5)
    user = alice if expire else mallory
    click = await offline.click(user, message, label="+1", client=a.client, wait=False)
    redeliver(offline, click, b)
    await click.wait_answered()
    await wait_idle(a.manager, b.manager)
    assert click.ephemeral  # "only the owner" or "expired", once, to the user
    assert callbacks_of(offline, click.id)[0].status == 200
    return click


async def test_a_filtered_duplicate_across_processes_is_answered_once(
    offline: OfflineDiscord, spawn: Spawn, redis_client: Redis, clock: ManualClock
) -> None:
    """The refusal saves the interaction's id too, so the other process leaves it alone."""
    click = await refused_duplicate(offline, spawn, clock, expire=False)
    assert len(callbacks_of(offline, click.id)) == 1
    assert already_acknowledged(offline) == []


async def test_a_duplicate_for_an_ended_session_across_processes(
    offline: OfflineDiscord,
    spawn: Spawn,
    redis_client: Redis,
    clock: ManualClock,
    answered_at_most_once: Counter[int],
) -> None:
    """Documented limit: with no record left there is nothing to remember the id in, so
    both processes answer "expired"; Discord takes the first, refuses the second with
    40060, which the manager logs as a warning. The user sees one reply."""
    click = await refused_duplicate(offline, spawn, clock, expire=True)
    assert [r.status for r in callbacks_of(offline, click.id)] == [200, 400]
    assert len(already_acknowledged(offline)) == 1
    del answered_at_most_once[click.id]  # the limit above: exempt from the shared check


# -- (b) a process killed while it holds a session's lease -------------------------------------


@pytest.fixture
async def hold_lease(redis_server: RedisServer) -> AsyncIterator[HoldLease]:
    """Start ``lease_holder.py`` and wait until it holds the lease; return it and its line.

    Every child still running at the end of the test is killed.
    """
    children: list[asyncio.subprocess.Process] = []

    async def start(
        session_id: str, *, lease: float, owner: str, mode: str
    ) -> tuple[asyncio.subprocess.Process, str]:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            str(LEASE_HOLDER),
            redis_server.url,
            session_id,
            str(lease),
            owner,
            mode,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        children.append(child)
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 30)
        return child, line.decode().strip()

    try:
        yield start
    finally:
        for child in children:
            if child.returncode is None:
                child.send_signal(signal.SIGCONT)
                child.kill()
                await child.wait()


def lease_key(session_id: str) -> str:
    return KeyLayout("nyx", 16).session(session_id).lease


async def test_a_process_killed_holding_the_lease(
    offline: OfflineDiscord, spawn: Spawn, hold_lease: HoldLease, redis_client: Redis
) -> None:
    """A real process takes the lease mid-update and is SIGKILLed; the lease runs out
    (1 s) and the next click, in this process, continues from the committed state."""
    alice = offline.add_member("alice")
    process = await spawn(first=True, lease_wait=5.0)
    session = await start_tally(offline, process, alice)
    message = offline.message(session.message_id or 0)
    for _ in range(2):
        await offline.click(alice, message, label="+1")
    await wait_idle(process.manager)
    before = await process.manager.store.get(session.id)
    assert before is not None

    launched = offline.world.clock.now()
    child, line = await hold_lease(session.id, lease=1.0, owner="doomed-bot", mode="hold")
    assert line == f"holding {before.revision} 2"
    assert await redis_client.get(lease_key(session.id)) == b"doomed-bot"
    child.send_signal(signal.SIGKILL)
    assert await child.wait() == -signal.SIGKILL
    assert await redis_client.pttl(lease_key(session.id)) > 0  # the dead keep their lease

    click = await offline.click(alice, message, label="+1", timeout=10)
    assert succeeded(click)
    assert click.response is not None and click.response.time >= launched + 1.0
    assert message.content == "3"
    await wait_idle(process.manager)
    record = await process.manager.store.get(session.id)
    assert record is not None
    assert (record.revision, record.data) == (before.revision + 1, {"count": 3})
    assert await redis_client.exists(lease_key(session.id)) == 0


async def test_a_click_waiting_less_than_a_dead_lease_gets_try_again(
    offline: OfflineDiscord, spawn: Spawn, hold_lease: HoldLease, redis_client: Redis
) -> None:
    alice = offline.add_member("alice")
    process = await spawn(first=True, lease_wait=0.2)
    session = await start_tally(offline, process, alice)
    message = offline.message(session.message_id or 0)
    child, line = await hold_lease(session.id, lease=1.5, owner="doomed-bot", mode="hold")
    assert line.startswith("holding ") and line.endswith(" 0")
    child.kill()
    await child.wait()

    refused = await offline.click(alice, message, label="+1")
    assert refused.ephemeral and refused.message is not None
    assert "try again" in refused.message.content
    await asyncio.sleep(max(await redis_client.pttl(lease_key(session.id)), 0) / 1000 + 0.05)
    click = await offline.click(alice, message, label="+1")
    assert succeeded(click) and message.content == "1"  # the refused click left no trace


# -- (c) a pause longer than the lease ------------------------------------------------------


@pytest.mark.parametrize("newer", ["committed and released", "committed, still held", "held"])
async def test_a_paused_process_cannot_overwrite_newer_state(
    hold_lease: HoldLease, redis_client: Redis, newer: str
) -> None:
    """Process A (a real subprocess) takes the lease, is frozen (SIGSTOP) past its
    0.3 s lease; process B takes over and saves; A wakes (SIGCONT) and commits: refused."""
    store = RedisStore(redis_client)
    record = SessionRecord("paused", "reliability.tally", owner_id=1, data={"count": 0})
    await store.create(record, lease_owner="setup", lease=1.0)
    await store.release("paused", lease_owner="setup")

    child, line = await hold_lease("paused", lease=0.3, owner="process-a", mode="commit")
    assert line == "holding 1 0"
    child.send_signal(signal.SIGSTOP)
    try:
        taken = await store.acquire("paused", lease_owner="process-b", lease=5.0, wait=3.0)
        assert taken is not None and taken.revision == 1
        taken.data["count"] = 1
        if newer != "held":
            await store.commit(taken, lease_owner="process-b", release=newer.endswith("released"))
    finally:
        child.send_signal(signal.SIGCONT)
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(b"commit\n")
    await child.stdin.drain()
    outcome = (await asyncio.wait_for(child.stdout.readline(), 10)).decode().strip()
    assert await asyncio.wait_for(child.wait(), 10) == 0

    assert outcome.startswith("refused RevisionConflictError"), outcome
    if newer == "held":  # B still holds the lease and commits after A was refused
        await store.commit(taken, lease_owner="process-b", release=True)
    final = await store.get("paused")
    assert final is not None and (final.revision, final.data) == (2, {"count": 1})
    await store.aclose()


async def test_a_handler_paused_past_its_lease_loses_to_the_newer_state(
    offline: OfflineDiscord, spawn: Spawn, caplog: pytest.LogCaptureFixture
) -> None:
    """Manager level: A's handler blocks past its 0.5 s lease while B serves a click.

    A's commit is refused (fenced by the revision), logged and reported as an ERROR
    event; A's user is told it was not saved; A drops its stale copy, and its next click
    continues from B's state.
    """
    alice = offline.add_member("alice")
    a = await spawn(first=True, lease=0.5, lease_wait=3.0)
    b = await spawn(lease=0.5, lease_wait=3.0)
    session = await start_tally(offline, a, alice)
    message = offline.message(session.message_id or 0)
    Tally.gate, Tally.entered = asyncio.Event(), asyncio.Event()
    stale = await offline.click(alice, message, label="slow +1", client=a.client, wait=False)
    await Tally.entered.wait()  # A holds the lease, then "pauses"
    newer = await offline.click(alice, message, label="+1", client=b.client, timeout=5)
    assert succeeded(newer)  # B waited out A's lease, then served
    await wait_idle(b.manager)
    Tally.gate.set()
    await stale.wait_answered()
    await wait_idle(a.manager)

    conflicts = [e for _, _, e in a.errors if isinstance(e, RevisionConflictError)]
    assert len(conflicts) == 1
    assert any(
        r.levelno == logging.ERROR and "state not saved" in r.getMessage() for r in caplog.records
    )
    assert a.manager.get(session.id) is None  # the stale copy is gone
    assert not succeeded(stale)  # its user saw "1", then heard it was not saved
    assert any("try again" in text for text in notices(stale))
    assert await stored_count(a.manager.store, session.id) == 1  # B's
    again = await offline.click(alice, message, label="+1", client=a.client)
    assert succeeded(again) and message.content == "2"
    await wait_idle(a.manager)
    assert await stored_count(a.manager.store, session.id) == 2


# -- (e) a burst wider than the Redis connection pool --------------------------------------


async def test_a_burst_on_many_sessions_is_served_not_refused(
    offline: OfflineDiscord, redis_server: RedisServer, redis_client: Redis, clock: ManualClock
) -> None:
    """150 users click their own sessions at the same moment, all in one process.

    More store calls than redis-py's default pool (100 connections) holds: they must
    wait their turn, not fail as if Redis were down.
    """
    own = Redis.from_url(redis_server.url)  # redis-py's default pool: 100 connections
    store = RedisStore(own, clock=clock)
    manager = SessionManager(offline.client, store=store, clock=clock, sessions=[Tally])
    process = Process(manager, offline.client, own)
    try:
        await manager.open()
        users = [offline.add_member(f"user{index}") for index in range(150)]
        sessions = [await start_tally(offline, process, user) for user in users]
        results = [
            await offline.click(user, offline.message(s.message_id or 0), label="+1", wait=False)
            for user, s in zip(users, sessions, strict=True)
        ]
        await asyncio.gather(*(result.wait_answered() for result in results))
        await wait_idle(manager)
        refused = [r for r in results if not succeeded(r)]
        # Before store calls were bounded, about 50 of the 150 got "try again" here.
        assert refused == []
    finally:
        await manager.aclose()
        await store.aclose()
        await own.aclose()  # borrowed by the store: closed by its owner
