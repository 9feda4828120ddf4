"""Actions: dispatch by custom id, arguments, unknown ids, overrides, answering helpers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
import pytest

from nyx_sessions import (
    AbstractSession,
    CustomIdTooLongError,
    EndCode,
    SessionEndData,
    SessionManager,
    SessionStateError,
    action,
    modal_values,
    select_values,
)
from nyx_sessions.actions import collect_actions
from nyx_sessions.testing import (
    InteractionResult,
    ManualClock,
    OfflineDiscord,
    OfflineMessage,
    OfflineUser,
)

Interaction = discord.Interaction[Any]


class Pager(AbstractSession[str]):
    async def start(self) -> None:
        self.data["page"] = "0"
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="3", custom_id=self.action_id("page", "3")))
        view.add_item(discord.ui.Button(label="7", custom_id=self.action_id("page", 7)))
        view.add_item(discord.ui.Button(label="ghost", custom_id=self.action_id("ghost")))
        view.add_item(discord.ui.Button(label="Done", custom_id=self.action_id("done")))
        view.add_item(
            discord.ui.Select(
                custom_id=self.action_id("colour"),
                options=[discord.SelectOption(label=c) for c in ("red", "blue")],
            )
        )
        await self.reply(self.start_interaction, "page 0", view=view)

    @action("page")
    async def page(self, interaction: Interaction, number: str) -> bool:
        self.data["page"] = number
        await self.edit(interaction, content=f"page {number}")
        return True

    @action("colour")
    async def colour(self, interaction: Interaction) -> bool:
        [chosen] = select_values(interaction, str)
        await self.edit(interaction, content=f"colour {chosen}")
        return True

    @action("done")
    async def done(self, interaction: Interaction) -> bool:
        await self.edit(interaction, content="done", view=None)
        await self.stop(result=self.data["page"])
        return False


async def start(
    offline: OfflineDiscord, manager: SessionManager, session_type: type[Any], user: OfflineUser
) -> tuple[Any, OfflineMessage]:
    command = await offline.slash_command(user, "go", wait=False)
    session = session_type(command.interaction)
    assert await manager.start(session)
    await command.wait_answered()
    assert command.message is not None
    return session, command.message


async def test_buttons_and_selects_dispatch_to_actions_with_arguments(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    session, message = await start(offline, manager, Pager, alice)
    assert message.content == "page 0"
    await offline.click(alice, message, label="3")
    assert message.content == "page 3"
    await offline.click(alice, message, label="7")
    assert message.content == "page 7"
    await offline.select(alice, message, ["blue"])
    assert message.content == "colour blue"
    await offline.click(alice, message, label="Done")
    end: SessionEndData[str] = await session.end_promise
    assert (end.code, end.result) == (EndCode.ENDED, "7")
    assert message.content == "done"


async def test_action_of_reads_back_what_action_id_built(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    session, message = await start(offline, manager, Pager, alice)
    clicked = await offline.click(alice, message, label="7")
    assert session.action_of(clicked.interaction) == ["page", "7"]
    picked = await offline.select(alice, message, ["red"])
    assert session.action_of(picked.interaction) == ["colour"]
    command = await offline.slash_command(alice, "go", wait=False)
    assert session.action_of(command.interaction) == []  # no custom id at all


async def test_an_id_naming_no_action_is_answered_and_logged(
    offline: OfflineDiscord, manager: SessionManager, caplog: pytest.LogCaptureFixture
) -> None:
    alice = offline.add_member("alice")
    session, message = await start(offline, manager, Pager, alice)
    with caplog.at_level(logging.WARNING, logger="nyx_sessions"):
        res = await offline.click(alice, message, label="ghost")
    assert res.response is not None
    assert res.ephemeral
    assert res.followups == [] or res.message is not None
    reply = res.message if res.message is not None else offline.messages[-1]
    assert reply.content == Pager.unknown_action_message
    assert "has no action for custom id" in caplog.text
    assert "colour, done, page" in caplog.text
    assert not session.ended


async def test_action_id_is_length_checked(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    session, _ = await start(offline, manager, Pager, alice)
    assert session.action_id("page", "3").endswith(":page:3")
    with pytest.raises(CustomIdTooLongError):
        session.action_id("page", "x" * 100)


async def test_modal_submits_dispatch_to_actions(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    class Rename(AbstractSession[str]):
        async def start(self) -> None:
            view = discord.ui.View(timeout=None)
            view.add_item(discord.ui.Button(label="Rename", custom_id=self.action_id("ask")))
            await self.reply(self.start_interaction, "unnamed", view=view)

        @action("ask")
        async def ask(self, interaction: Interaction) -> bool:
            modal = discord.ui.Modal(title="Rename", custom_id=self.action_id("named", "v1"))
            modal.add_item(discord.ui.TextInput(label="Name", custom_id="name"))
            await interaction.response.send_modal(modal)
            return True

        @action("named")
        async def named(self, interaction: Interaction, version: str) -> bool:
            name = modal_values(interaction).text("name")
            await self.edit(interaction, content=f"{name} ({version})")
            return True

    alice = offline.add_member("alice")
    _, message = await start(offline, manager, Rename, alice)
    opened = await offline.click(alice, message, label="Rename")
    await offline.submit_modal(alice, opened, {"name": "Nyx"})
    assert message.content == "Nyx (v1)"


async def test_overriding_handle_button_keeps_working(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    class Manual(AbstractSession[None]):
        async def start(self) -> None:
            view = discord.ui.View(timeout=None)
            view.add_item(discord.ui.Button(label="go", custom_id=self.custom_id.push("x").build()))
            await self.reply(self.start_interaction, "ready", view=view)

        async def handle_button(self, interaction: Interaction) -> bool:
            await self.edit(interaction, content="handled by hand")
            return True

    alice = offline.add_member("alice")
    _, message = await start(offline, manager, Manual, alice)
    await offline.click(alice, message, label="go")
    assert message.content == "handled by hand"


class Idle(AbstractSession[None]):
    ttl = 10

    async def start(self) -> None:
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="touch", custom_id=self.action_id("touch")))
        view.add_item(discord.ui.Button(label="peek", custom_id=self.action_id("peek")))
        await self.reply(self.start_interaction, "idle", view=view)

    @action("touch")
    async def touch(self, interaction: Interaction) -> None:
        await self.edit(interaction, content="touched")

    @action("peek")
    async def peek(self, interaction: Interaction) -> bool:
        await self.edit(interaction, content="peeked")
        return False


async def test_an_action_returning_nothing_refreshes_the_ttl_and_false_does_not(
    offline: OfflineDiscord, manager: SessionManager, clock: ManualClock
) -> None:
    alice = offline.add_member("alice")
    session, message = await start(offline, manager, Idle, alice)
    await clock.advance(6)
    await offline.click(alice, message, label="touch")  # deadline 6 + 10 = 16
    assert message.content == "touched"
    await clock.advance(7)  # 13 s: past the first deadline, inside the refreshed one
    assert not session.end_promise.done()
    await offline.click(alice, message, label="peek")  # False: the deadline stays at 16
    assert message.content == "peeked"
    await clock.advance(4)  # 17 s
    end = await asyncio.wait_for(session.end_promise, 1)
    assert end.code is EndCode.EXPIRED


def test_actions_are_inherited_overridden_and_unique() -> None:
    class Base(AbstractSession[None]):
        async def start(self) -> None: ...

        @action("a")
        async def first(self, interaction: Interaction) -> bool:
            return True

        @action("b")
        async def second(self, interaction: Interaction) -> bool:
            return True

    class Child(Base):
        @action("a")
        async def replaced(self, interaction: Interaction) -> bool:
            return False

    assert Base._actions == {"a": "first", "b": "second"}
    assert Child._actions == {"a": "replaced", "b": "second"}
    assert collect_actions(Child) == Child._actions

    with pytest.raises(TypeError, match="both handle action 'a'"):

        class Twice(AbstractSession[None]):
            async def start(self) -> None: ...

            @action("a")
            async def one(self, interaction: Interaction) -> bool:
                return True

            @action("a")
            async def two(self, interaction: Interaction) -> bool:
                return True

    with pytest.raises(ValueError, match="invalid action name"):
        action("")


class Slow(AbstractSession[None]):
    """A handler that runs past the manager's deferral, then answers."""

    gate: asyncio.Event
    use_helpers = True

    async def start(self) -> None:
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="slow", custom_id=self.action_id("slow")))
        await self.reply(self.start_interaction, "waiting", view=view)

    @action("slow")
    async def slow(self, interaction: Interaction) -> bool:
        await self.gate.wait()
        if self.use_helpers:
            await self.edit(interaction, content="edited after the deferral")
            await self.reply(interaction, "a follow-up", ephemeral=True)
        else:
            await interaction.response.edit_message(content="too late")
        return True


async def run_slow(
    offline: OfflineDiscord, manager: SessionManager, clock: ManualClock, use_helpers: bool
) -> InteractionResult:
    alice = offline.add_member("alice")
    gate = asyncio.Event()

    class ThisSlow(Slow):
        pass

    ThisSlow.gate = gate
    ThisSlow.use_helpers = use_helpers
    _, message = await start(offline, manager, ThisSlow, alice)
    click = await offline.click(alice, message, label="slow", wait=False)
    await asyncio.sleep(0.01)
    await clock.advance(2.6)  # past the manager's defer_after
    response = await click.wait_answered(1)
    assert response.type is discord.InteractionResponseType.deferred_message_update
    gate.set()
    return click


async def test_edit_and_reply_work_after_the_managers_deferral(
    offline: OfflineDiscord, manager: SessionManager, clock: ManualClock
) -> None:
    click = await run_slow(offline, manager, clock, use_helpers=True)
    await offline.wait_for_request(
        lambda r: r.method == "POST" and "/webhooks/" in r.path and click.token in r.path
    )
    assert click.source_message is not None
    assert click.source_message.content == "edited after the deferral"
    assert offline.messages[-1].content == "a follow-up"
    assert offline.messages[-1].ephemeral


async def test_interaction_responded_after_a_deferral_is_explained(
    offline: OfflineDiscord,
    manager: SessionManager,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="nyx_sessions"):
        await run_slow(offline, manager, clock, use_helpers=False)
        for _ in range(50):
            if "deferred already" in caplog.text:
                break
            await asyncio.sleep(0.01)
    assert "deferred already" in caplog.text
    assert "self.edit(interaction, ...)" in caplog.text
    assert "self.reply(interaction, ...)" in caplog.text


async def test_start_interaction_is_typed_and_explains_when_gone(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    session, _ = await start(offline, manager, Pager, alice)
    assert session.manager is manager
    with pytest.raises(SessionStateError, match="has returned from start"):
        _ = session.start_interaction
    restored = Pager.restore(
        session_id="restored1",
        owner_id=alice.id,
        guild_id=None,
        channel_id=None,
        message_id=None,
        data={},
    )
    with pytest.raises(SessionStateError, match="restored from the store"):
        _ = restored.start_interaction


def test_a_session_starts_only_from_an_interaction_or_a_context() -> None:
    with pytest.raises(TypeError, match="not str"):
        Pager("nope")  # type: ignore[arg-type]
