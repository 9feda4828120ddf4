"""Conversations in Redis: replayed after a restart and across processes, exactly once."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

import discord
import pytest

from nyx_sessions import ConversationSession, EndCode
from nyx_sessions.testing import OfflineDiscord, OfflineUser

from .conftest import Process, Spawn
from .flows import Counting, Signup, view_of
from .test_memory import callbacks


async def start(offline: OfflineDiscord, process: Process, user: OfflineUser, cls: Any) -> Any:
    command = await offline.slash_command(user, "go", client=process.client, wait=False)
    session = cls(command.interaction)
    assert await process.manager.start(session)
    await command.wait_answered()
    return session


async def idle(process: Process) -> None:
    """Wait until the process has committed what it served and told its listeners."""
    for _ in range(500):
        if not any(entry.busy for entry in process.manager._live.values()):
            await process.manager._events.drain()  # END listeners run in tasks of their own
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the manager stayed busy")


async def test_a_three_step_flow_in_redis_ends_with_its_result(
    offline: OfflineDiscord, spawn: Spawn
) -> None:
    Signup.tickets = []
    alice = offline.add_member("alice")
    process = await spawn(first=True)
    session = await start(offline, process, alice, Signup)
    message = offline.messages[-1]
    opened = await offline.click(alice, message, label="Begin")
    await offline.submit_modal(alice, opened, {"age": "x"})
    again = await offline.click(alice, message, label="Try again")
    await offline.submit_modal(alice, again, {"age": "33"})
    await offline.select(alice, message, ["red"])
    end = await session.end_promise
    assert (end.code, end.result) == (EndCode.ENDED, {"age": 33, "team": "red", "ticket": "T-1"})
    assert set(callbacks(offline).values()) == {1}


async def test_a_restart_between_every_two_steps_goes_on_where_it_was(
    offline: OfflineDiscord, spawn: Spawn
) -> None:
    Signup.tickets = []
    alice = offline.add_member("alice")
    process = await spawn(first=True)
    session = await start(offline, process, alice, Signup)
    message = offline.messages[-1]
    sent = len(offline.messages)

    async def restart() -> Process:
        await process.close()
        return await spawn()

    process = await restart()
    opened = await offline.click(alice, message, label="Begin", client=process.client)
    assert opened.modal is not None
    process = await restart()
    wrong = await offline.submit_modal(alice, opened, {"age": "ten"}, client=process.client)
    assert wrong.answered and message.content == "'ten' is not a number."
    process = await restart()
    again = await offline.click(alice, message, label="Try again", client=process.client)
    assert again.modal is not None
    process = await restart()
    await offline.submit_modal(alice, again, {"age": "10"}, client=process.client)
    assert message.content == "Age 10. Your team?"
    process = await restart()
    picked = await offline.select(alice, message, ["blue"], client=process.client)
    assert picked.answered
    assert message.content == "Done: 10, blue, T-1"  # the ticket of the first run
    await idle(process)
    assert len(offline.messages) == sent  # the first message was not sent again
    assert Signup.tickets == ["10"]
    assert set(callbacks(offline).values()) == {1}, callbacks(offline)
    assert await process.manager.active() == {}
    assert session.end_promise.done()  # SHUTDOWN when its first process closed


async def test_two_processes_alternate_the_steps(offline: OfflineDiscord, spawn: Spawn) -> None:
    Signup.tickets = []
    alice = offline.add_member("alice")
    first, second = await spawn(first=True), await spawn()
    session = await start(offline, first, alice, Signup)
    message = offline.messages[-1]
    opened = await offline.click(alice, message, label="Begin", client=second.client)
    await idle(second)
    await offline.submit_modal(alice, opened, {"age": "-"}, client=first.client)
    await idle(first)
    again = await offline.click(alice, message, label="Try again", client=second.client)
    await idle(second)
    await offline.submit_modal(alice, again, {"age": "55"}, client=first.client)
    await idle(first)
    await offline.select(alice, message, ["red"], client=second.client)
    end = await asyncio.wait_for(session.end_promise, 5)
    assert end.code is EndCode.ENDED
    assert end.result == {"age": 55, "team": "red", "ticket": "T-1"}
    assert Signup.tickets == ["55"]
    assert set(callbacks(offline).values()) == {1}


async def test_external_runs_once_across_five_replays(
    offline: OfflineDiscord, spawn: Spawn
) -> None:
    Counting.seeds = []
    alice = offline.add_member("alice")
    process = await spawn(first=True)
    session = await start(offline, process, alice, Counting)
    message = offline.messages[-1]
    for step in range(1, 6):
        await process.close()
        process = await spawn()
        click = await offline.click(alice, message, label="+1", client=process.client)
        assert click.answered and message.content == str(step)
    await idle(process)
    assert Counting.seeds == [100]
    assert session.end_promise.done()
    assert await process.manager.active() == {}


class Changed(ConversationSession[str]):
    """Signup's session type with other code: it waits for "start" where Signup had "begin"."""

    session_type = "tests.signup"
    conversation_version = Signup.conversation_version

    async def converse(self) -> str:
        await self.start_interaction.response.send_message("Hello", view=view_of())
        await self.wait_for("start")
        return "never"


class Bumped(Changed):
    """The changed code, with the version raised as it should be."""

    session_type = "tests.signup"
    conversation_version = Signup.conversation_version + 1


@pytest.mark.parametrize(
    ("cls", "logged"), [(Changed, "diverged from its log"), (Bumped, "conversation_version 1")]
)
async def test_code_that_no_longer_matches_the_log_ends_with_error(
    offline: OfflineDiscord,
    spawn: Spawn,
    caplog: pytest.LogCaptureFixture,
    cls: type[ConversationSession[str]],
    logged: str,
) -> None:
    alice = offline.add_member("alice")
    process = await spawn(first=True)
    session = await start(offline, process, alice, Signup)
    message = offline.messages[-1]
    opened = await offline.click(alice, message, label="Begin", client=process.client)
    await process.close()
    ends: list[Any] = []
    updated = await spawn(sessions=[cls])  # the new release serves the old record

    async def on_end(_: Any, end: Any) -> None:
        ends.append(end)

    updated.manager.add_listener("end", on_end)
    caplog.set_level(logging.ERROR, "nyx_sessions")
    submit = await offline.submit_modal(alice, opened, {"age": "1"}, client=updated.client)
    assert submit.ephemeral
    assert submit.message is not None and "bot was updated" in submit.message.content
    await idle(updated)
    assert [end.code for end in ends] == [EndCode.ERROR]
    assert "step 1" in ends[0].reason
    assert any(
        logged in record.getMessage() and "step 1" in record.getMessage()
        for record in caplog.records
    )
    assert await updated.manager.active() == {}
    assert session.end_promise.done()


class Tight(Counting):
    """Counting with room in its log for a few steps only."""

    session_type = "tests.tight"
    steps: ClassVar[int] = 50
    max_log_size: ClassVar[int] = 120


async def test_a_log_past_its_cap_ends_with_a_clear_error(
    offline: OfflineDiscord, spawn: Spawn
) -> None:
    alice = offline.add_member("alice")
    process = await spawn(first=True, sessions=[Tight])
    session = await start(offline, process, alice, Tight)
    message = offline.messages[-1]
    last = None
    for _ in range(10):
        last = await offline.click(alice, message, label="+1")
        await idle(process)
        if session.end_promise.done():
            break
    end = await session.end_promise
    assert end.code is EndCode.ERROR
    assert "max_log_size" in (end.reason or "")
    assert last is not None and last.ephemeral
    assert last.message is not None and "ran too long" in last.message.content
    assert 1 < int(message.content) < 10  # a few steps fitted


class Looping(Counting):
    """Counting that checkpoints after every click."""

    session_type = "tests.looping"
    steps: ClassVar[int] = 30
    max_log_size: ClassVar[int] = 120
    checkpoint_every: ClassVar[int | None] = 1


async def test_checkpoint_keeps_data_and_cuts_the_log(
    offline: OfflineDiscord, spawn: Spawn
) -> None:
    Counting.seeds = []
    alice = offline.add_member("alice")
    process = await spawn(first=True, sessions=[Looping])
    session = await start(offline, process, alice, Looping)
    message = offline.messages[-1]
    for step in range(1, 31):
        if step % 10 == 0:  # a restart now and then: replayed from the checkpoint
            await process.close()
            process = await spawn(sessions=[Looping])
        await offline.click(alice, message, label="+1", client=process.client)
        if step == 12:
            await idle(process)
            record = await process.manager.store.get(session.id)
            assert record is not None
            state = record.data["conversation"]
            assert state["log"] == []  # cut after the click
            assert state["base"] == {"seed": 100, "total": 12}  # what a replay starts from
            assert record.data["total"] == 12
    await idle(process)
    assert message.content == "30"
    assert Counting.seeds == [100]
    assert await process.manager.active() == {}


class Carried(Signup):
    """Signup at version 2, whose logs of version 1 replay as they are."""

    session_type = "tests.signup"
    conversation_version = 2
    migrated: ClassVar[list[int]] = []

    @classmethod
    def migrate_log(cls, state: dict[str, Any], from_version: int) -> dict[str, Any] | None:
        cls.migrated.append(from_version)
        return state


async def test_a_log_of_an_older_version_is_migrated(offline: OfflineDiscord, spawn: Spawn) -> None:
    Signup.tickets = []
    alice = offline.add_member("alice")
    process = await spawn(first=True)
    session = await start(offline, process, alice, Signup)
    message = offline.messages[-1]
    opened = await offline.click(alice, message, label="Begin", client=process.client)
    await process.close()
    updated = await spawn(sessions=[Carried])
    await offline.submit_modal(alice, opened, {"age": "21"}, client=updated.client)
    assert message.content == "Age 21. Your team?"
    await offline.select(alice, message, ["red"], client=updated.client)
    await idle(updated)
    assert Carried.migrated == [1]
    assert message.content == "Done: 21, red, T-1"
    record_gone = await updated.manager.active() == {}
    assert record_gone
    assert session.end_promise.done()


class Reordered(ConversationSession[str]):
    """Signup's first two steps, then a wait for an action the old code never had."""

    session_type = "tests.signup"

    async def converse(self) -> str:
        await self.reply(self.start_interaction, "Ready?")
        click = await self.wait_for("begin")
        modal = discord.ui.Modal(title="Your age")
        modal.add_item(discord.ui.TextInput(label="Age", custom_id="age"))
        await self.ask(click, modal)
        await self.wait_for("colour")
        return "never"


async def test_the_step_that_diverged_is_named(
    offline: OfflineDiscord, spawn: Spawn, caplog: pytest.LogCaptureFixture
) -> None:
    alice = offline.add_member("alice")
    process = await spawn(first=True)
    session = await start(offline, process, alice, Signup)
    message = offline.messages[-1]
    opened = await offline.click(alice, message, label="Begin", client=process.client)
    await offline.submit_modal(alice, opened, {"age": "?"}, client=process.client)
    await offline.click(alice, message, label="Try again", client=process.client)
    await process.close()
    updated = await spawn(sessions=[Reordered])
    caplog.set_level(logging.ERROR, "nyx_sessions")
    late = await offline.click(alice, message, label="Try again", client=updated.client)
    assert late.ephemeral
    await idle(updated)
    lines = [record.getMessage() for record in caplog.records]
    assert any("ends at step 3" in line and "'colour'" in line for line in lines), lines
    assert session.end_promise.done()
    assert await updated.manager.active() == {}
