"""Conversations in memory: the coroutine stays suspended between inputs."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import discord

from nyx_sessions import ConversationSession, EndCode, SessionManager
from nyx_sessions.testing import InteractionResult, OfflineDiscord, OfflineUser

from .flows import Signup, button, view_of


def callbacks(offline: OfflineDiscord) -> Counter[str]:
    """How many times each interaction was answered, by interaction id."""
    return Counter(
        request.path.split("/")[2]
        for request in offline.requests
        if request.path.startswith("/interactions/") and request.path.endswith("/callback")
    )


async def start_signup(
    offline: OfflineDiscord, manager: SessionManager, user: OfflineUser, **kwargs: Any
) -> Signup:
    command = await offline.slash_command(user, "signup", wait=False, **kwargs)
    session = Signup(command.interaction)
    assert await manager.start(session)
    await command.wait_answered()
    return session


async def test_a_three_step_flow_ends_with_its_result(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    Signup.tickets = []
    alice = offline.add_member("alice")
    session = await start_signup(offline, manager, alice)
    message = offline.messages[-1]
    assert message.content == "Ready?"

    opened = await offline.click(alice, message, label="Begin")
    assert opened.modal is not None
    wrong = await offline.submit_modal(alice, opened, {"age": "old"})
    assert wrong.response is not None
    assert message.content == "'old' is not a number."
    again = await offline.click(alice, message, label="Try again")
    assert again.modal is not None
    assert again.modal["custom_id"] != opened.modal["custom_id"]  # a new ask
    right = await offline.submit_modal(alice, again, {"age": "42"})
    assert right.response is not None
    assert message.content == "Age 42. Your team?"
    await offline.select(alice, message, ["blue"])

    end = await session.end_promise
    assert end.code is EndCode.ENDED
    assert end.result == {"age": 42, "team": "blue", "ticket": "T-1"}
    assert message.content == "Done: 42, blue, T-1"
    assert Signup.tickets == ["42"]
    assert set(callbacks(offline).values()) == {1}  # every interaction answered once


async def test_a_click_nobody_waits_for_is_answered_and_changes_nothing(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    Signup.tickets = []
    alice = offline.add_member("alice")
    session = await start_signup(offline, manager, alice)
    message = offline.messages[-1]
    ping = await offline.click(alice, message, label="Ping")
    assert ping.ephemeral
    assert ping.message is not None and "not something you can do right now" in ping.message.content
    assert message.content == "Ready?"
    opened = await offline.click(alice, message, label="Begin")
    assert opened.modal is not None
    # The old button again, while the modal is the pending wait: it reopens the modal.
    reopened = await offline.click(alice, message, label="Begin")
    assert reopened.modal is not None and reopened.modal["custom_id"] == opened.modal["custom_id"]
    stale = await offline.click(alice, message, label="Ping")
    assert stale.ephemeral
    await offline.submit_modal(alice, reopened, {"age": "7"})
    await offline.select(alice, message, ["red"])
    assert (await session.end_promise).result == {"age": 7, "team": "red", "ticket": "T-1"}


async def test_the_flow_waits_in_a_task_of_its_own_and_the_end_stops_it(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    session = await start_signup(offline, manager, alice)
    flow_task = session._flow.task if session._flow is not None else None
    assert flow_task is not None and not flow_task.done()
    assert flow_task.get_name() == f"nyx-sessions-conversation-{session.id}"
    assert await manager.end(session)
    assert (await session.end_promise).code is EndCode.CANCELLED
    await discord.utils.sleep_until(discord.utils.utcnow())  # one loop turn for the cancel
    assert flow_task.cancelled()


async def test_another_users_click_is_refused_by_the_filter(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice, bob = offline.add_member("alice"), offline.add_member("bob")
    await start_signup(offline, manager, alice)
    message = offline.messages[-1]
    refused: InteractionResult = await offline.click(bob, message, label="Begin")
    assert refused.ephemeral
    opened = await offline.click(alice, message, label="Begin")
    assert opened.modal is not None


class Named(ConversationSession[str]):
    """A modal as the command's answer, then a button that fails on purpose."""

    session_type = "tests.named"

    async def converse(self) -> str:
        modal = discord.ui.Modal(title="Name")
        modal.add_item(discord.ui.TextInput(label="Name", custom_id="name"))
        submit, values = await self.ask(self.start_interaction, modal)
        name = values.text("name")
        view = view_of(button(self, "Break", "break"), button(self, "Keep", "keep"))
        await self.reply(submit, f"Hi {name}", view=view)
        data: Any = (await self.wait_for()).data  # any action
        if data["custom_id"].endswith("keep"):
            return name
        raise RuntimeError(f"broken by {name}")


async def test_a_modal_answers_the_command_and_a_failure_ends_with_error(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    command = await offline.slash_command(alice, "named", wait=False)
    session = Named(command.interaction)
    assert await manager.start(session)
    await command.wait_answered()
    assert command.modal is not None
    submit = await offline.submit_modal(alice, command, {"name": "Ada"})
    assert submit.message is not None and submit.message.content == "Hi Ada"
    broken = await offline.click(alice, submit.message, label="Break")
    assert broken.ephemeral  # the manager's answer for a handler that failed
    end = await session.end_promise
    assert end.code is EndCode.ERROR
    assert "broken by Ada" in (end.reason or "")


class Slowpoke(ConversationSession[str]):
    """A step whose external call outlasts the deferral; the flow then edits the message."""

    session_type = "tests.slowpoke"

    @staticmethod
    async def look_up() -> str:
        await asyncio.sleep(0.3)
        return "found"

    async def converse(self) -> str:
        await self.reply(self.start_interaction, "Look?", view=view_of(button(self, "Go", "go")))
        click = await self.wait_for("go")
        found = await self.external(self.look_up)
        await self.edit(click, content=found, view=None)  # after the manager's deferral
        return found


async def test_a_slow_step_is_deferred_in_time_and_still_edits(offline: OfflineDiscord) -> None:
    manager = SessionManager(offline.client, defer_after=0.1)  # the real clock: it must fire
    try:
        alice = offline.add_member("alice")
        command = await offline.slash_command(alice, "look", wait=False)
        session = Slowpoke(command.interaction)
        assert await manager.start(session)
        message = offline.messages[-1]
        click = await offline.click(alice, message, label="Go")
        assert click.response is not None
        assert click.response.type is discord.InteractionResponseType.deferred_message_update
        assert (await session.end_promise).result == "found"
        assert message.content == "found"
        assert callbacks(offline)[str(click.id)] == 1
    finally:
        await manager.aclose()
