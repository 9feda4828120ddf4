"""A sign-up board that many users click, kept in Redis so that it survives restarts.

Run it with ``REDIS_URL=redis://127.0.0.1:6379/0 DISCORD_TOKEN=... python
examples/signup_board.py`` and use ``/signup title:"Raid night" slots:5``. Anyone may join
or leave until the board is full; only the organiser may close it. Restart the bot: the
next click is served from Redis, by the new process.
"""

from __future__ import annotations

import os
from typing import Any

import discord
from discord import app_commands

from nyx_sessions import AbstractSession, Clock, EndCode, SessionManager, action
from nyx_sessions.stores.redis import RedisStore


class SignupBoard(AbstractSession[list[int]]):
    """Members join and leave; the organiser closes it; the result is who signed up."""

    session_type = "examples.signup_board"
    ttl = 24 * 60 * 60  # a day without clicks

    def configure(self, title: str, slots: int) -> SignupBoard:
        self.data.update(title=title, slots=slots, members=[])
        return self

    async def start(self) -> None:
        await self.reply(self.start_interaction, self.text(), view=self.view())

    def view(self) -> discord.ui.View:
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="Join", custom_id=self.action_id("join")))
        view.add_item(discord.ui.Button(label="Leave", custom_id=self.action_id("leave")))
        view.add_item(discord.ui.Button(label="Close", custom_id=self.action_id("close")))
        return view

    def text(self) -> str:
        members: list[int] = self.data["members"]
        names = ", ".join(f"<@{member}>" for member in members) or "nobody yet"
        return f"**{self.data['title']}** ({len(members)}/{self.data['slots']}): {names}"

    @action("join")
    async def join(self, interaction: discord.Interaction[Any]) -> bool:
        members: list[int] = self.data["members"]
        if interaction.user.id in members:
            await self.reply(interaction, "You are on the board already.", ephemeral=True)
        elif len(members) >= self.data["slots"]:
            await self.reply(interaction, "The board is full.", ephemeral=True)
        else:
            members.append(interaction.user.id)
            await self.edit(interaction, content=self.text())
        return True

    @action("leave")
    async def leave(self, interaction: discord.Interaction[Any]) -> bool:
        members: list[int] = self.data["members"]
        if interaction.user.id not in members:
            await self.reply(interaction, "You are not on the board.", ephemeral=True)
            return True
        members.remove(interaction.user.id)
        await self.edit(interaction, content=self.text())
        return True

    @action("close")
    async def close(self, interaction: discord.Interaction[Any]) -> bool:
        if interaction.user.id != self.owner_id:
            await self.reply(interaction, "Only the organiser can close it.", ephemeral=True)
            return True
        await self.edit(interaction, content=f"{self.text()}\nClosed.", view=None)
        await self.stop(result=list(self.data["members"]))
        return False

    async def end(self) -> None:
        if self.end_code is EndCode.EXPIRED and self.message is not None:
            await self.edit(None, content=f"{self.text()}\nExpired.", view=None)


class SignupBot(discord.Client):
    """A client whose sessions live in Redis."""

    def __init__(self, redis_url: str, *, clock: Clock | None = None) -> None:
        super().__init__(intents=discord.Intents.default())
        self.tree = app_commands.CommandTree(self)
        self.store = RedisStore.from_url(redis_url)
        self.manager = SessionManager(self, store=self.store, clock=clock, sessions=[SignupBoard])

    async def close(self) -> None:
        await self.manager.aclose()  # the boards stay in Redis for the next process
        await self.store.aclose()  # the manager borrows the store; its owner closes it
        await super().close()


def build_bot(redis_url: str, *, clock: Clock | None = None) -> SignupBot:
    """Return the bot with ``/signup``."""
    bot = SignupBot(redis_url, clock=clock)

    @bot.tree.command(description="Open a sign-up board")
    async def signup(
        interaction: discord.Interaction[Any],
        title: str,
        slots: app_commands.Range[int, 1, 25] = 5,
    ) -> None:
        await bot.manager.start(SignupBoard(interaction).configure(title, slots))

    return bot


if __name__ == "__main__":
    token, url = os.environ.get("DISCORD_TOKEN"), os.environ.get("REDIS_URL")
    if not token or not url:
        raise SystemExit(f"usage: REDIS_URL=redis://... DISCORD_TOKEN=... python {__file__}")
    build_bot(url).run(token)
