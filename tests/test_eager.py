"""Clicks are served in discord.py's parsing step where Python has eager tasks (3.12+).

On Python 3.11 each click gets a plain task; the tests say what holds on either.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any, ClassVar

import discord
import pytest

from nyx_sessions import AbstractSession, EndCode, SessionManager
from nyx_sessions._eager import EAGER_TASKS, resume, start_task
from nyx_sessions._live import RecentIds
from nyx_sessions.testing import ManualClock, OfflineDiscord

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="caller")


# -- the helpers themselves ---------------------------------------------------------------


async def test_a_task_that_never_waits_is_done_at_once_where_python_has_eager_tasks() -> None:
    seen: list[asyncio.Task[Any] | None] = []

    async def work() -> str:
        seen.append(asyncio.current_task())
        return "done"

    task = start_task(work(), "never-waits")
    assert task.get_name() == "never-waits"
    if EAGER_TASKS:
        assert task.done() and seen == [task]  # ran inside its own task, already
    else:
        assert not task.done() and seen == []
    assert await task == "done"
    assert seen == [task]


async def test_a_timeout_entered_in_the_first_step_cancels_the_task_not_the_caller() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def work() -> str:
        try:
            async with asyncio.timeout(0.01):  # entered before the first wait
                await gate
        except TimeoutError:
            return "timed out"
        return "not reached"

    task = start_task(work(), "timeout")
    await asyncio.sleep(0.05)  # the caller is not cancelled meanwhile
    assert await task == "timed out"


async def test_the_first_step_runs_in_a_copied_context_that_the_task_keeps() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    seen: list[str] = []

    async def work() -> None:
        VAR.set("work")
        await gate
        seen.append(VAR.get())

    task = start_task(work(), "context")
    assert VAR.get() == "caller"  # the step's change stayed in its own context
    gate.set_result(None)
    await task
    assert seen == ["work"]
    assert VAR.get() == "caller"


async def test_resume_inside_the_stepping_task_returns_raises_and_cancels_as_await() -> None:
    loop = asyncio.get_running_loop()

    async def fails_later(gate: asyncio.Future[None]) -> None:
        await gate
        raise LookupError("later")

    async def answers(gate: asyncio.Future[None]) -> str:
        await asyncio.sleep(0)  # a bare yield first
        await gate
        return "answer"

    async def drive(coro: Any) -> Any:
        waiting_on = coro.send(None)
        return await resume(coro, waiting_on)

    gate: asyncio.Future[None] = loop.create_future()
    loop.call_later(0.01, gate.set_result, None)
    assert await drive(answers(gate)) == "answer"
    gate = loop.create_future()
    loop.call_soon(gate.set_result, None)
    with pytest.raises(LookupError, match="later"):
        await drive(fails_later(gate))

    trace: list[str] = []
    gate = loop.create_future()

    async def waits(gate: asyncio.Future[None]) -> None:
        try:
            await gate
        except asyncio.CancelledError:
            trace.append("cancelled where it waited")
            raise

    driver = loop.create_task(drive(waits(gate)))
    await asyncio.sleep(0)
    driver.cancel()
    with pytest.raises(asyncio.CancelledError):
        await driver
    assert trace == ["cancelled where it waited"]
    assert gate.cancelled()


# -- what it means for clicks -------------------------------------------------------------


class Immediate(AbstractSession[str]):
    """Does its work before its first await, like most handlers; records where it ran."""

    ttl = 60
    stop_first = False
    ran_in: ClassVar[list[asyncio.Task[Any] | None]]

    async def start(self) -> None:
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="go", custom_id=self.custom_id.push("go").build()))
        assert self.start_interaction is not None
        await self.start_interaction.response.send_message("ready", view=view)

    async def handle_button(self, interaction: discord.Interaction[Any]) -> bool:
        type(self).ran_in.append(asyncio.current_task())
        VAR.set("handler")
        if self.stop_first:
            await self.stop(result="stopped before answering")
        await interaction.response.edit_message(content=f"clicked {VAR.get()}")
        return True


async def started(offline: OfflineDiscord, manager: SessionManager, cls: type[Immediate]) -> Any:
    alice = offline.add_member("alice")
    command = await offline.slash_command(alice, "go", wait=False)
    session = cls(command.interaction)
    assert await manager.start(session)
    await command.wait_answered()
    assert command.message is not None
    return alice, command.message, session


async def test_a_click_runs_its_handler_in_a_task_of_its_own_and_is_answered(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    class Recorded(Immediate):
        ran_in: ClassVar[list[asyncio.Task[Any] | None]] = []

    alice, message, _ = await started(offline, manager, Recorded)
    click = await offline.click(alice, message, wait=False)
    # Where Python has eager tasks, the parser returned after the handler ran up to its
    # HTTP call; either way the handler runs in a task of its own, not the caller's.
    assert len(Recorded.ran_in) == (1 if EAGER_TASKS else 0)
    assert VAR.get() == "caller"  # what the handler set stayed in its own context
    await click.wait_answered()
    assert message.content == "clicked handler"
    assert len(Recorded.ran_in) == 1
    assert Recorded.ran_in[0] is not asyncio.current_task()
    await asyncio.gather(*manager._tasks)
    assert not manager._tasks


async def test_stop_before_the_first_await_ends_the_session_after_the_handler(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    class Stopping(Immediate):
        ran_in: ClassVar[list[asyncio.Task[Any] | None]] = []
        stop_first = True

    alice, message, session = await started(offline, manager, Stopping)
    click = await offline.click(alice, message, wait=False)
    end = await asyncio.wait_for(session.end_promise, 5)
    assert (end.code, end.result) == (EndCode.ENDED, "stopped before answering")
    await click.wait_answered()
    assert message.content == "clicked handler"
    assert manager.get(session.id) is None


async def test_stop_before_the_first_await_through_update_ends_once_it_returns(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    class Stopping(Immediate):
        ran_in: ClassVar[list[asyncio.Task[Any] | None]] = []
        stop_first = True

    alice, message, session = await started(offline, manager, Stopping)
    manager.detach()  # so that update() is the only way in
    click = await offline.click(alice, message, wait=False)  # parsed, nobody routes it
    assert Stopping.ran_in == []
    assert await manager.update(click.interaction)
    assert session.end_promise.done()
    end = session.end_promise.result()
    assert (end.code, end.result) == (EndCode.ENDED, "stopped before answering")
    assert Stopping.ran_in == [asyncio.current_task()]  # update() serves in its caller


class Silent(Immediate):
    """Answers by other means (as the benchmarks do): nothing to wait for."""

    ran_in: ClassVar[list[asyncio.Task[Any] | None]] = []

    async def handle_button(self, interaction: discord.Interaction[Any]) -> bool:
        type(self).ran_in.append(asyncio.current_task())
        interaction.response._response_type = (
            discord.InteractionResponseType.deferred_message_update
        )
        return True


async def test_a_click_served_without_waiting_is_never_scheduled_nor_watched(
    offline: OfflineDiscord, clock: ManualClock
) -> None:
    manager = SessionManager(offline.client, clock=clock)
    try:
        alice, message, _ = await started(offline, manager, Silent)
        await manager._watchdog.drain()
        watched = len(manager._watchdog._pending)
        for _ in range(5):
            await offline.click(alice, message, wait=False)
        if EAGER_TASKS:
            assert len(Silent.ran_in) == 5  # served inside the parser, task by task
            assert not manager._tasks
            assert len(manager._watchdog._pending) == watched
        await asyncio.gather(*manager._tasks)
        assert len(Silent.ran_in) == 5
        # Eager: each click done in its own task before the next came. Otherwise the
        # first click's task, not yet started, serves the four queued behind it.
        assert len(set(map(id, Silent.ran_in))) == (5 if EAGER_TASKS else 1)
        assert asyncio.current_task() not in Silent.ran_in
        # update() serves in its caller's task and watches nothing it served at once.
        manager.detach()
        click = await offline.click(alice, message, wait=False)
        assert await manager.update(click.interaction)
        assert Silent.ran_in[-1] is asyncio.current_task()
        assert len(manager._watchdog._pending) <= watched + (0 if EAGER_TASKS else 5)
    finally:
        await manager.aclose()


async def test_a_handler_cancelled_in_its_first_step_leaves_the_gateway_alone(
    offline: OfflineDiscord, clock: ManualClock
) -> None:
    class Cancelled(Immediate):
        ran_in: ClassVar[list[asyncio.Task[Any] | None]] = []

        async def handle_button(self, interaction: discord.Interaction[Any]) -> bool:
            type(self).ran_in.append(asyncio.current_task())
            gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            gone.cancel()
            await gone  # raises CancelledError at once
            return True

    manager = SessionManager(offline.client, clock=clock)
    try:
        alice, message, session = await started(offline, manager, Cancelled)
        click = await offline.click(alice, message, wait=False)  # the parser did not raise
        await asyncio.gather(*manager._tasks, return_exceptions=True)
        assert len(Cancelled.ran_in) == 1
        assert not click.answered
        await clock.advance(manager.defer_after + 0.1)  # answered in time all the same
        await click.wait_answered()
        entry = manager._live[session.id]
        assert entry.session is session and not entry.busy  # the session is still there
    finally:
        await manager.aclose()


def test_recent_ids_remember_at_least_the_last_size_ids() -> None:
    recent = RecentIds(size=4)
    assert all(recent.add(i) for i in range(100))
    assert not any(recent.add(i) for i in range(96, 100))  # the last 4 are remembered
    assert len(recent) < 8  # and never more than twice the size
    assert recent.add(0)  # long forgotten
