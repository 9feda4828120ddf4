"""Ticket triage: a category from a select menu, details from a modal, owner only.

Run it with ``DISCORD_TOKEN=... python examples/ticket_triage.py`` and use ``/ticket``.
The session is one message: pick a category, fill in a modal (a text input and a
priority select), then file or cancel. Only the user who ran ``/ticket`` may use it; left
alone for two minutes, it says so on the message.
"""

from __future__ import annotations

import os
from typing import Any, TypedDict

import discord
from discord import app_commands

from nyx_sessions import (
    AbstractSession,
    Clock,
    EndCode,
    OwnerOnly,
    SessionManager,
    action,
    modal_values,
    select_values,
)

CATEGORIES = ("bug", "feature", "question")
PRIORITIES = ("low", "normal", "high")


class Ticket(TypedDict):
    """What a filed ticket holds."""

    category: str
    title: str
    priority: str


class TicketTriage(AbstractSession[Ticket]):
    """Category, then details, then file: the result is the ticket."""

    session_type = "examples.ticket_triage"
    ttl = 120
    update_filter = OwnerOnly()

    async def start(self) -> None:
        view = discord.ui.View(timeout=None)
        options = [discord.SelectOption(label=name) for name in CATEGORIES]
        view.add_item(discord.ui.Select(custom_id=self.action_id("category"), options=options))
        await self.reply(self.start_interaction, "New ticket: pick a category.", view=view)

    @action("category")
    async def category(self, interaction: discord.Interaction[Any]) -> bool:
        [self.data["category"]] = select_values(interaction, str)
        modal = discord.ui.Modal(title="Ticket details", custom_id=self.action_id("details"))
        modal.add_item(discord.ui.TextInput(label="Title", custom_id="title", max_length=80))
        priorities = [discord.SelectOption(label=p) for p in PRIORITIES]
        priority: discord.ui.Select[Any] = discord.ui.Select(
            custom_id="priority", options=priorities
        )
        modal.add_item(discord.ui.Label(text="Priority", component=priority))
        await interaction.response.send_modal(modal)
        return True

    @action("details")
    async def details(self, interaction: discord.Interaction[Any]) -> bool:
        values = modal_values(interaction)
        self.data["title"] = values.text("title")
        [self.data["priority"]] = values.strings("priority")
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="File it", custom_id=self.action_id("file")))
        view.add_item(discord.ui.Button(label="Cancel", custom_id=self.action_id("cancel")))
        await self.edit(interaction, content=self.summary(), view=view)
        return True

    @action("file")
    async def file(self, interaction: discord.Interaction[Any]) -> bool:
        await self.edit(interaction, content=f"Filed: {self.summary()}", view=None)
        ticket = Ticket(
            category=self.data["category"],
            title=self.data["title"],
            priority=self.data["priority"],
        )
        await self.stop(result=ticket)
        return False

    @action("cancel")
    async def cancel(self, interaction: discord.Interaction[Any]) -> bool:
        await self.edit(interaction, content="Ticket cancelled.", view=None)
        await self.stop(reason="cancelled by its author")
        return False

    def summary(self) -> str:
        data = self.data
        return f"[{data['category']}, {data['priority']}] {data['title']}"

    async def end(self) -> None:
        if self.end_code is EndCode.EXPIRED and self.message is not None:
            text = "This ticket expired before it was filed; run /ticket again."
            await self.edit(None, content=text, view=None)


class TriageBot(discord.Client):
    """A client with a command tree, a session manager and a list of filed tickets."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        super().__init__(intents=discord.Intents.default())
        self.tree = app_commands.CommandTree(self)
        self.manager = SessionManager(self, clock=clock)
        self.tickets: list[Ticket] = []

    async def close(self) -> None:
        await self.manager.aclose()
        await super().close()


def build_bot(*, clock: Clock | None = None) -> TriageBot:
    """Return the bot with ``/ticket``."""
    bot = TriageBot(clock=clock)

    @bot.tree.command(description="File a ticket")
    async def ticket(interaction: discord.Interaction[Any]) -> None:
        session = TicketTriage(interaction)
        if not await bot.manager.start(session):
            return
        end = await session.end_promise
        if end.result is not None:
            bot.tickets.append(end.result)

    return bot


if __name__ == "__main__":
    token = os.environ.get("DISCORD_TOKEN")
    if not token:
        raise SystemExit(f"usage: DISCORD_TOKEN=... python {__file__}")
    build_bot().run(token)
