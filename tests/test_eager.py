"""Clicks are served in discord.py's parsing step; a task only for what has to wait."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any, ClassVar

import discord
import pytest

from nyx_sessions import AbstractSession, EndCode, SessionManager
from nyx_sessions._eager import resume, start_eagerly
from nyx_sessions._live import RecentIds
from nyx_sessions.testing import ManualClock, OfflineDiscord

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="caller")


# -- the helper itself --------------------------------------------------------------------


async def test_a_coroutine_that_never_waits_runs_to_its_end_without_a_task() -> None:
    trace: list[str] = []

    async def work() -> None:
        trace.append("ran")

    before = len(asyncio.all_tasks())
    assert start_eagerly(work(), "never-waits") is None
    assert trace == ["ran"]
    assert len(asyncio.all_tasks()) == before


async def test_a_coroutine_that_waits_goes_on_in_a_task_from_where_it_stopped() -> None:
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    trace: list[str] = []

    async def work() -> int:
        trace.append("before")
        value = await gate
        trace.append(f"after {value}")
        await asyncio.sleep(0)  # a bare yield too
        return value * 2

    task = start_eagerly(work(), "waits-", "1")
    assert task is not None and task.get_name() == "waits-1"
    assert trace == ["before"]  # the first step ran in the caller's step
    await asyncio.sleep(0)
    assert trace == ["before"]
    gate.set_result(21)
    assert await task == 42
    assert trace == ["before", "after 21"]


async def test_the_first_step_runs_in_a_copied_context_that_the_task_keeps() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    seen: list[str] = []

    async def work() -> None:
        VAR.set("work")
        await gate
        seen.append(VAR.get())

    task = start_eagerly(work(), "context")
    assert VAR.get() == "caller"  # the step's change stayed in its own context
    gate.set_result(None)
    assert task is not None
    await task
    assert seen == ["work"]
    assert VAR.get() == "caller"


async def test_cancelling_the_task_reaches_the_coroutine_where_it_waits() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    trace: list[str] = []

    async def work() -> str:
        try:
            await gate
        except asyncio.CancelledError:
            trace.append("cancelled")
            raise
        return "finished"

    task = start_eagerly(work(), "cancel")
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert trace == ["cancelled"]
    assert gate.cancelled()


async def test_resume_inside_an_awaiting_coroutine_returns_and_raises_as_await_would() -> None:
    loop = asyncio.get_running_loop()

    async def fails_later(gate: asyncio.Future[None]) -> None:
        await gate
        raise LookupError("later")

    async def answers(gate: asyncio.Future[None]) -> str:
        await gate
        return "answer"

    async def drive(coro: Any) -> Any:
        waiting_on = coro.send(None)
        return await resume(coro, waiting_on)

    gate: asyncio.Future[None] = loop.create_future()
    loop.call_soon(gate.set_result, None)
    assert await drive(answers(gate)) == "answer"
    gate = loop.create_future()
    loop.call_soon(gate.set_result, None)
    with pytest.raises(LookupError, match="later"):
        await drive(fails_later(gate))


async def test_an_error_in_the_first_step_reaches_the_caller() -> None:
    async def broken() -> None:
        raise KeyError("first step")

    with pytest.raises(KeyError, match="first step"):
        start_eagerly(broken(), "broken")


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


async def test_a_click_runs_its_handler_inside_the_parse_and_is_answered(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    class Recorded(Immediate):
        ran_in: ClassVar[list[asyncio.Task[Any] | None]] = []

    alice, message, _ = await started(offline, manager, Recorded)
    click = await offline.click(alice, message, wait=False)
    # The parser returned: the handler has run up to its HTTP call, in this very task.
    assert Recorded.ran_in == [asyncio.current_task()]
    assert VAR.get() == "caller"  # and what it set stayed in its own context
    await click.wait_answered()
    assert message.content == "clicked handler"
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


async def test_a_click_served_without_waiting_leaves_no_task_and_no_watch(
    offline: OfflineDiscord, clock: ManualClock
) -> None:
    class Silent(Immediate):
        ran_in: ClassVar[list[asyncio.Task[Any] | None]] = []

        async def handle_button(self, interaction: discord.Interaction[Any]) -> bool:
            type(self).ran_in.append(asyncio.current_task())
            # Answered by other means (as the benchmarks do); nothing to wait for.
            interaction.response._response_type = (
                discord.InteractionResponseType.deferred_message_update
            )
            return True

    manager = SessionManager(offline.client, clock=clock)
    try:
        alice, message, _ = await started(offline, manager, Silent)
        await manager._watchdog.drain()
        watched = len(manager._watchdog._pending)
        tasks = len(asyncio.all_tasks())
        for _ in range(5):
            await offline.click(alice, message, wait=False)
        assert Silent.ran_in == [asyncio.current_task()] * 5
        assert not manager._tasks
        assert len(asyncio.all_tasks()) == tasks
        assert len(manager._watchdog._pending) == watched
    finally:
        await manager.aclose()


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
    assert Stopping.ran_in == [asyncio.current_task()]


def test_recent_ids_remember_at_least_the_last_size_ids() -> None:
    recent = RecentIds(size=4)
    assert all(recent.add(i) for i in range(100))
    assert not any(recent.add(i) for i in range(96, 100))  # the last 4 are remembered
    assert len(recent) < 8  # and never more than twice the size
    assert recent.add(0)  # long forgotten


async def test_a_handler_cancelled_in_its_first_step_leaves_the_gateway_alone(
    offline: OfflineDiscord, clock: ManualClock
) -> None:
    class Cancelled(Immediate):
        ran_in: ClassVar[list[asyncio.Task[Any] | None]] = []

        async def handle_button(self, interaction: discord.Interaction[Any]) -> bool:
            type(self).ran_in.append(asyncio.current_task())
            gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            gone.cancel()
            await gone  # raises CancelledError at once, inside discord.py's parse
            return True

    manager = SessionManager(offline.client, clock=clock)
    try:
        alice, message, session = await started(offline, manager, Cancelled)
        click = await offline.click(alice, message, wait=False)  # the parser did not raise
        assert Cancelled.ran_in == [asyncio.current_task()]
        assert not click.answered
        await clock.advance(manager.defer_after + 0.1)  # answered in time all the same
        await click.wait_answered()
        assert manager.get(session.id) is session  # and the session is still there
        assert not manager._live[session.id].busy
    finally:
        await manager.aclose()
