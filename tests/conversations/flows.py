"""Conversations the tests drive: a three-step signup, a counting loop, a slow question."""

from __future__ import annotations

from typing import Any, ClassVar

import discord

from nyx_sessions import ConversationSession, ConversationTimeout, OwnerOnly, select_values


def button(session: ConversationSession[Any], label: str, action: str) -> discord.ui.Button[Any]:
    """A button of ``session`` for ``action``."""
    return discord.ui.Button(label=label, custom_id=session.custom_id.push(action).build())


def view_of(*items: discord.ui.Item[Any]) -> discord.ui.View:
    """A view of ``items`` that discord.py does not keep in its view store."""
    view = discord.ui.View(timeout=None)
    for item in items:
        view.add_item(item)
    return view


class Signup(ConversationSession[dict[str, Any]]):
    """Click "Begin", type an age in a modal (asked again until it is a number), pick a team."""

    session_type = "tests.signup"
    update_filter = OwnerOnly()
    tickets: ClassVar[list[str]] = []  # every real run of the external call

    @staticmethod
    async def make_ticket(age: str) -> str:
        Signup.tickets.append(age)
        return f"T-{len(Signup.tickets)}"

    async def converse(self) -> dict[str, Any]:
        begin = view_of(button(self, "Begin", "begin"), button(self, "Ping", "ping"))
        await self.reply(self.start_interaction, "Ready?", view=begin)
        click = await self.wait_for("begin")
        while True:
            modal = discord.ui.Modal(title="Your age")
            modal.add_item(discord.ui.TextInput(label="Age", custom_id="age"))
            submit, values = await self.ask(click, modal)
            age = values.text("age").strip()
            if age.isdigit():
                break
            retry = view_of(button(self, "Try again", "retry"))
            await self.edit(submit, content=f"{age!r} is not a number.", view=retry)
            click = await self.wait_for("retry")
        ticket = await self.external(self.make_ticket, age)
        team = discord.ui.Select[Any](
            custom_id=self.custom_id.push("team").build(),
            options=[discord.SelectOption(label=name) for name in ("red", "blue")],
        )
        await submit.response.edit_message(content=f"Age {age}. Your team?", view=view_of(team))
        pick = await self.wait_for("team")
        chosen = select_values(pick, str)[0]
        await pick.response.edit_message(content=f"Done: {age}, {chosen}, {ticket}", view=None)
        return {"age": int(age), "team": chosen, "ticket": ticket}


class Slow(ConversationSession[str]):
    """One question with a 30-second limit; ``patient`` asks once more after a timeout."""

    session_type = "tests.slow"
    patient: ClassVar[bool] = True

    async def converse(self) -> str:
        await self.start_interaction.response.send_message(
            "Quick!", view=view_of(button(self, "Answer", "answer"))
        )
        try:
            click = await self.wait_for("answer", timeout=30)
        except ConversationTimeout:
            if not type(self).patient:
                raise
            await self.edit_message(content="Too slow. One more chance?")
            try:
                click = await self.wait_for("answer", timeout=30)
            except ConversationTimeout:
                await self.edit_message(content="Too slow again.", view=None)
                return "gave up"
        await click.response.edit_message(content="Answered.", view=None)
        return "answered"


class Counting(ConversationSession[int]):
    """Counts clicks on "+1" up to :attr:`steps`; its seed comes from an external call."""

    session_type = "tests.counting"
    steps: ClassVar[int] = 5
    checkpoint_every: ClassVar[int | None] = None
    seeds: ClassVar[list[int]] = []  # every real run of the external call

    @staticmethod
    def seed() -> int:
        Counting.seeds.append(100)
        return 100

    async def converse(self) -> int:
        await self.start_interaction.response.send_message(
            "0", view=view_of(button(self, "+1", "add"))
        )
        # Before the loop, from data alone: a checkpoint inside it replays from here.
        if "seed" not in self.data:
            self.data.update(seed=await self.external(self.seed), total=0)
        while self.data["total"] < type(self).steps:
            click = await self.wait_for("add")
            self.data["total"] += 1
            await click.response.edit_message(content=str(self.data["total"]))
            every = type(self).checkpoint_every
            if every is not None and self.data["total"] % every == 0:
                self.checkpoint()
        return int(self.data["seed"] + self.data["total"])
