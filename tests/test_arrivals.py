"""Clicks are queued while discord.py parses them and stepped, in arrival order, by one task.

A click that waits keeps that task for itself; the clicks behind it get a new one.
Sessions whose deadlines pass together are expired the same way.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any, ClassVar

import discord
import pytest

from nyx_sessions import AbstractSession, EndCode, SessionManager
from nyx_sessions._arrivals import Arrivals, resume
from nyx_sessions._live import STEPPING, LiveSession, RecentIds
from nyx_sessions.testing import ManualClock, OfflineDiscord

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="caller")


class Click:
    """Stands for an interaction: the queue only reads its id."""

    def __init__(self, interaction_id: int) -> None:
        self.id = interaction_id

    def __repr__(self) -> str:
        return f"<Click {self.id}>"


class Harness:
    """An :class:`Arrivals` whose clicks run ``work(click)``, with what it did recorded."""

    def __init__(self, work: Any) -> None:
        self.work = work
        self.tasks: list[asyncio.Task[Any]] = []
        self.watched: list[Any] = []
        self.failures: list[tuple[str, BaseException]] = []
        self.ran: list[tuple[int, asyncio.Task[Any] | None, object]] = []
        self.arrivals = Arrivals(self.serve, self.spawn, self.watched.append, self.note_failure)

    async def serve(self, entry: LiveSession, click: Any) -> None:
        try:
            self.ran.append((click.id, asyncio.current_task(), entry.runner))
            await self.work(click)
        finally:
            entry.runner = None
            entry.busy = False

    def spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.append(task)
        return task

    def note_failure(self, name: str, error: BaseException) -> None:
        self.failures.append((name, error))

    def add(self, *ids: int) -> list[LiveSession]:
        entries = []
        for click_id in ids:
            entry = LiveSession(f"s{click_id}")
            entry.busy = True
            self.arrivals.add(entry, Click(click_id))  # type: ignore[arg-type]
            entries.append(entry)
        return entries

    async def finish(self) -> None:
        while not all(task.done() for task in self.tasks):
            await asyncio.gather(*self.tasks, return_exceptions=True)


# -- the queue itself ---------------------------------------------------------------------


async def test_clicks_of_one_loop_turn_are_stepped_in_order_by_one_task_not_the_caller() -> None:
    async def work(click: Click) -> None:
        VAR.set(f"click {click.id}")  # stays in the click's own context

    harness = Harness(work)
    entries = harness.add(1, 2, 3)
    assert harness.ran == []  # nothing runs in the caller (discord.py's parser)
    assert len(harness.tasks) == 1 and len(harness.arrivals) == 3
    await harness.finish()
    assert [click_id for click_id, _, _ in harness.ran] == [1, 2, 3]
    assert {task for _, task, _ in harness.ran} == {harness.tasks[0]}
    assert all(runner is STEPPING for _, _, runner in harness.ran)
    assert VAR.get() == "caller"
    assert not any(entry.busy for entry in entries)
    assert harness.watched == [] and harness.failures == []  # nothing waited
    harness.add(4)  # a later turn gets a task of its own
    await harness.finish()
    assert len(harness.tasks) == 2 and harness.ran[-1][1] is harness.tasks[1]


async def test_a_click_that_waits_keeps_its_task_and_the_clicks_behind_it_go_on() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    after_wait: list[tuple[asyncio.Task[Any] | None, str]] = []

    async def work(click: Click) -> None:
        VAR.set(f"click {click.id}")
        if click.id == 1:
            await gate
            after_wait.append((asyncio.current_task(), VAR.get()))

    harness = Harness(work)
    first, _, _ = harness.add(1, 2, 3)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    # Click 1 waits in the first task; 2 and 3 were served meanwhile, by a second one.
    assert [click_id for click_id, _, _ in harness.ran] == [1, 2, 3]
    assert len(harness.tasks) == 2
    assert harness.ran[1][1] is harness.tasks[1]
    assert first.busy and first.runner is harness.tasks[0]
    assert harness.tasks[0].get_name() == "nyx-sessions-update-s1"
    assert [click.id for click in harness.watched] == [1]  # only the one that waited
    gate.set_result(None)
    await harness.finish()
    assert after_wait == [(harness.tasks[0], "click 1")]  # same task, same context
    assert (first.busy, VAR.get()) == (False, "caller")


async def test_a_timeout_entered_in_the_first_step_cancels_that_click_only() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    outcomes: list[str] = []

    async def work(click: Click) -> None:
        if click.id == 1:
            try:
                async with asyncio.timeout(0.01):  # entered before the first wait
                    await gate
            except TimeoutError:
                outcomes.append("click 1 timed out")
        else:
            await asyncio.sleep(0.03)  # still waiting when click 1's timeout fires
            outcomes.append(f"click {click.id} done")

    harness = Harness(work)
    harness.add(1, 2)
    await asyncio.sleep(0.05)  # the caller is not cancelled meanwhile
    await harness.finish()
    assert sorted(outcomes) == ["click 1 timed out", "click 2 done"]
    assert len(harness.tasks) == 2


async def test_a_failing_or_cancelled_first_step_is_logged_watched_and_the_rest_served() -> None:
    async def work(click: Click) -> None:
        if click.id == 1:
            raise LookupError("handler bug")
        if click.id == 2:
            raise asyncio.CancelledError

    harness = Harness(work)
    harness.add(1, 2, 3)
    await harness.finish()
    assert [click_id for click_id, _, _ in harness.ran] == [1, 2, 3]
    assert [click.id for click in harness.watched] == [1, 2]  # answered in time anyway
    assert len(harness.failures) == 1  # a cancellation is not a failure
    name, error = harness.failures[0]
    assert "interaction 1" in name and isinstance(error, LookupError)
    assert len(harness.tasks) == 1 and not harness.tasks[0].cancelled()


async def test_clicks_whose_task_was_cancelled_before_it_ran_are_abandoned() -> None:
    async def work(click: Click) -> None:
        raise AssertionError("never served")

    harness = Harness(work)
    harness.add(1, 2)
    harness.tasks[0].cancel()
    await harness.finish()
    assert [click.id for click in harness.arrivals.abandon()] == [1, 2]
    assert len(harness.arrivals) == 0
    harness.add(3)  # and the queue takes clicks again
    assert len(harness.tasks) == 2


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


async def test_resume_with_a_context_runs_every_step_in_it() -> None:
    loop = asyncio.get_running_loop()
    seen: list[str] = []

    async def work(gate: asyncio.Future[None]) -> str:
        VAR.set("work")
        await gate
        seen.append(VAR.get())
        await asyncio.sleep(0)
        seen.append(VAR.get())
        return "done"

    async def drive() -> str:
        context = contextvars.copy_context()
        coro = work(gate)
        waiting_on = context.run(coro.send, None)
        result = await resume(coro, waiting_on, context)
        seen.append(VAR.get())  # the driver's own context, untouched
        return result

    gate: asyncio.Future[None] = loop.create_future()
    loop.call_soon(gate.set_result, None)
    assert await drive() == "done"
    assert seen == ["work", "work", "caller"]


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


async def test_a_click_runs_its_handler_outside_the_parser_and_is_answered(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    class Recorded(Immediate):
        ran_in: ClassVar[list[asyncio.Task[Any] | None]] = []

    alice, message, _ = await started(offline, manager, Recorded)
    click = await offline.click(alice, message, wait=False)
    assert Recorded.ran_in == []  # the parser only queued it
    await click.wait_answered()
    assert VAR.get() == "caller"  # what the handler set stayed in its own context
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
        others = [await started(offline, manager, Silent) for _ in range(3)]
        await manager._watchdog.drain()
        watched = len(manager._watchdog._pending)
        tasks_before = set(manager._tasks)
        # Five clicks on one session and one on each of three others, in one loop turn.
        for _ in range(5):
            await offline.click(alice, message, wait=False)
        for user, other_message, _ in others:
            await offline.click(user, other_message, wait=False)
        assert Silent.ran_in == [] and len(manager._tasks - tasks_before) == 1
        await asyncio.gather(*manager._tasks)
        assert len(Silent.ran_in) == 8
        # The one task served the first click of each session in turn, and the session's
        # four later clicks right after its first: one task in all. Only those four,
        # queued behind a busy session from arrival, were watched.
        assert len(set(map(id, Silent.ran_in))) == 1
        assert asyncio.current_task() not in Silent.ran_in
        watched += 4
        assert len(manager._watchdog._pending) == watched
        # update() serves in its caller's task and watches nothing it served at once.
        manager.detach()
        click = await offline.click(alice, message, wait=False)
        assert await manager.update(click.interaction)
        assert Silent.ran_in[-1] is asyncio.current_task()
        assert len(manager._watchdog._pending) == watched
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


# -- what it means for expiries -----------------------------------------------------------


class Expiring(Silent):
    """Records the task its ``end()`` runs in; the session named :attr:`slow` waits there."""

    ended_in: ClassVar[dict[str, asyncio.Task[Any] | None]] = {}
    slow: ClassVar[str | None] = None
    gate: ClassVar[asyncio.Future[None] | None] = None

    async def end(self) -> None:
        type(self).ended_in[self.id] = asyncio.current_task()
        gate = type(self).gate
        if self.id == type(self).slow and gate is not None:
            await gate


async def test_sessions_expiring_together_are_expired_by_one_task(
    offline: OfflineDiscord, manager: SessionManager, clock: ManualClock
) -> None:
    class Together(Expiring):
        ended_in: ClassVar[dict[str, asyncio.Task[Any] | None]] = {}

    sessions = [(await started(offline, manager, Together))[2] for _ in range(20)]
    await asyncio.gather(*manager._tasks)
    tasks_before = set(manager._tasks)
    clock.advance_nowait(Together.ttl + 1)  # every deadline passes in one timer callback
    assert Together.ended_in == {} and len(manager._tasks - tasks_before) == 1
    ends = await asyncio.wait_for(asyncio.gather(*(s.end_promise for s in sessions)), 5)
    assert {end.code for end in ends} == {EndCode.EXPIRED}
    tasks = set(Together.ended_in.values())
    assert len(tasks) == 1
    (task,) = tasks
    assert task is not None and task.get_name() == "nyx-sessions-clicks"
    assert len(manager) == 0


async def test_an_expiry_whose_end_waits_keeps_its_task_and_the_rest_go_on(
    offline: OfflineDiscord, manager: SessionManager, clock: ManualClock
) -> None:
    class Gated(Expiring):
        ended_in: ClassVar[dict[str, asyncio.Task[Any] | None]] = {}

    sessions = []
    for _ in range(5):
        sessions.append((await started(offline, manager, Gated))[2])
        clock.advance_nowait(0.01)  # deadlines in start order: they expire in that order
    Gated.slow = sessions[1].id
    Gated.gate = asyncio.get_running_loop().create_future()
    clock.advance_nowait(Gated.ttl + 1)
    others = [s for s in sessions if s.id != Gated.slow]
    ends = await asyncio.wait_for(asyncio.gather(*(s.end_promise for s in others)), 5)
    assert {end.code for end in ends} == {EndCode.EXPIRED}
    assert not sessions[1].end_promise.done()
    waiting = Gated.ended_in[sessions[1].id]
    assert waiting is not None and waiting.get_name() == f"nyx-sessions-expire-{sessions[1].id}"
    assert manager._live[sessions[1].id].runner is waiting
    # The sessions behind the waiting one went on in a task of their own.
    assert Gated.ended_in[sessions[0].id] is waiting
    assert all(Gated.ended_in[s.id] not in (waiting, None) for s in sessions[2:])
    Gated.gate.set_result(None)
    end = await asyncio.wait_for(sessions[1].end_promise, 5)
    assert end.code is EndCode.EXPIRED
    assert len(manager) == 0


def test_recent_ids_remember_at_least_the_last_size_ids() -> None:
    recent = RecentIds(size=4)
    assert all(recent.add(i) for i in range(100))
    assert not any(recent.add(i) for i in range(96, 100))  # the last 4 are remembered
    assert len(recent) < 8  # and never more than twice the size
    assert recent.add(0)  # long forgotten
