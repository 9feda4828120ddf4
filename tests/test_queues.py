"""One serial queue per busy session, drained by one task: order, tasks, context."""

from __future__ import annotations

import asyncio
import contextvars
import sys
from typing import Any, ClassVar

import discord

from nyx_sessions import AbstractSession, EndCode, SessionManager
from nyx_sessions.routing import RecentIds
from nyx_sessions.testing import ManualClock, OfflineDiscord

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="caller")


class Immediate(AbstractSession[str]):
    ttl = 60
    stop_first = False
    ran_in: ClassVar[list[asyncio.Task[Any] | None]]
    order: ClassVar[list[int]]

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


async def test_a_click_runs_in_a_task_of_its_session_and_leaves_no_task_behind(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    class Recorded(Immediate):
        ran_in: ClassVar[list[asyncio.Task[Any] | None]] = []

    alice, message, session = await started(offline, manager, Recorded)
    click = await offline.click(alice, message, wait=False)
    # Python 3.12+ starts the session's task eagerly: the handler ran while the gateway
    # event was parsed, up to its first wait. Before, it runs on the loop's next turn.
    assert len(Recorded.ran_in) == (1 if sys.version_info >= (3, 12) else 0)
    await click.wait_answered()
    assert VAR.get() == "caller"  # what the handler set stayed in its own context
    assert message.content == "clicked handler"
    (task,) = Recorded.ran_in
    assert task is not None and task is not asyncio.current_task()
    assert task.get_name() == f"nyx-sessions-work-{session.id}"
    await asyncio.gather(*manager._tasks)
    assert not manager._tasks and not manager._live[session.id].busy


async def test_clicks_on_one_session_run_in_arrival_order_in_one_task(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    class Ordered(Immediate):
        ran_in: ClassVar[list[asyncio.Task[Any] | None]] = []
        order: ClassVar[list[int]] = []

        async def handle_button(self, interaction: discord.Interaction[Any]) -> bool:
            type(self).ran_in.append(asyncio.current_task())
            type(self).order.append(interaction.id)
            await asyncio.sleep(0.01)  # later clicks queue up behind this one
            await interaction.response.defer()
            return True

    alice, message, _ = await started(offline, manager, Ordered)
    clicks = [await offline.click(alice, message, wait=False) for _ in range(5)]
    for click in clicks:
        await click.wait_answered(5)
    assert Ordered.order == [click.interaction.id for click in clicks]
    assert len(set(map(id, Ordered.ran_in))) == 1
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


async def test_stop_through_update_ends_the_session_once_the_handler_returns(
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
    assert Stopping.ran_in[0] is not asyncio.current_task()  # served in the session's task


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


async def test_sessions_expiring_together_all_expire_and_leave_no_task(
    offline: OfflineDiscord, manager: SessionManager, clock: ManualClock
) -> None:
    class Together(Immediate):
        ran_in: ClassVar[list[asyncio.Task[Any] | None]] = []

    sessions = [(await started(offline, manager, Together))[2] for _ in range(20)]
    clock.advance_nowait(Together.ttl + 1)  # every deadline passes in one timer callback
    ends = await asyncio.wait_for(asyncio.gather(*(s.end_promise for s in sessions)), 5)
    assert {end.code for end in ends} == {EndCode.EXPIRED}
    await asyncio.gather(*manager._tasks)
    assert len(manager) == 0 and not manager._tasks and not manager._live


def test_recent_ids_remember_at_least_the_last_size_ids() -> None:
    recent = RecentIds(size=4)
    assert all(recent.add(i) for i in range(100))
    assert not any(recent.add(i) for i in range(96, 100))  # the last 4 are remembered
    assert len(recent) < 8  # and never more than twice the size
    assert recent.add(0)  # long forgotten
