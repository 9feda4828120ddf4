"""Wait timeouts: ConversationTimeout raised in converse(), caught or not (ManualClock)."""

from __future__ import annotations

import asyncio

from nyx_sessions import EndCode, SessionManager
from nyx_sessions.testing import ManualClock, OfflineDiscord

from .conftest import Spawn
from .flows import Slow
from .test_replay import idle, start


async def wait_ended(session: Slow) -> None:
    await asyncio.wait_for(asyncio.shield(session.end_promise), 5)


async def test_a_caught_timeout_asks_again_and_the_flow_goes_on(
    offline: OfflineDiscord, manager: SessionManager, clock: ManualClock
) -> None:
    Slow.patient = True
    alice = offline.add_member("alice")
    command = await offline.slash_command(alice, "slow", wait=False)
    session = Slow(command.interaction)
    assert await manager.start(session)
    message = offline.messages[-1]
    await clock.advance(29)
    assert message.content == "Quick!" and not session.end_promise.done()
    await clock.advance(2)
    assert message.content == "Too slow. One more chance?"
    assert not session.end_promise.done()
    await clock.advance(20)  # the second wait has its own 30 seconds
    assert not session.end_promise.done()
    click = await offline.click(alice, message, label="Answer")
    assert click.answered
    end = await session.end_promise
    assert (end.code, end.result) == (EndCode.ENDED, "answered")


async def test_a_flow_that_returns_after_timeouts_ends_with_its_result(
    offline: OfflineDiscord, manager: SessionManager, clock: ManualClock
) -> None:
    Slow.patient = True
    alice = offline.add_member("alice")
    command = await offline.slash_command(alice, "slow", wait=False)
    session = Slow(command.interaction)
    assert await manager.start(session)
    message = offline.messages[-1]
    await clock.advance(31)
    await clock.advance(31)
    await wait_ended(session)
    end = session.end_promise.result()
    assert (end.code, end.result) == (EndCode.ENDED, "gave up")
    assert message.content == "Too slow again." and message.components == []


async def test_an_uncaught_timeout_expires_the_session(
    offline: OfflineDiscord, manager: SessionManager, clock: ManualClock
) -> None:
    Slow.patient = False
    try:
        alice = offline.add_member("alice")
        command = await offline.slash_command(alice, "slow", wait=False)
        session = Slow(command.interaction)
        assert await manager.start(session)
        flow = session._flow
        assert flow is not None and flow.task is not None
        await clock.advance(31)
        await wait_ended(session)
        assert session.end_promise.result().code is EndCode.EXPIRED
        assert flow.task.done()
        late = await offline.click(alice, offline.messages[-1], label="Answer")
        assert late.ephemeral  # answered as expired
    finally:
        Slow.patient = True


async def test_a_timeout_in_another_process_replays_and_raises_there(
    offline: OfflineDiscord, spawn: Spawn, clock: ManualClock
) -> None:
    Slow.patient = True
    alice = offline.add_member("alice")
    first = await spawn(first=True)
    session = await start(offline, first, alice, Slow)
    message = offline.messages[-1]
    await first.close()
    second = await spawn()
    await clock.advance(31)  # second's claim of due sessions finds it
    for _ in range(300):
        if message.content != "Quick!":
            break
        await asyncio.sleep(0.01)
    assert message.content == "Too slow. One more chance?"
    await idle(second)
    click = await offline.click(alice, message, label="Answer", client=second.client)
    assert click.answered and message.content == "Answered."
    await idle(second)
    assert await second.manager.active() == {}
    assert session.end_promise.done()


async def test_a_click_after_the_deadline_meets_the_timeout_first(
    offline: OfflineDiscord, spawn: Spawn, clock: ManualClock
) -> None:
    Slow.patient = True
    alice = offline.add_member("alice")
    first = await spawn(first=True)
    session = await start(offline, first, alice, Slow)
    message = offline.messages[-1]
    await first.close()
    # No claim will come before the click: the click finds the deadline passed.
    second = await spawn(poll_interval=3600)
    await clock.advance(31)
    click = await offline.click(alice, message, label="Answer", client=second.client)
    assert click.answered and not click.ephemeral
    await idle(second)
    # The flow caught the timeout, asked again, and the click answered the new wait.
    assert message.content == "Answered."
    assert await second.manager.active() == {}
    assert session.end_promise.done()
