"""A counter that only the user who started it can click.

Run it with ``DISCORD_TOKEN=... python examples/counter.py`` and use ``/counter``.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import discord
from discord import app_commands

from nyx_sessions import AbstractSession, Clock, EndCode, OwnerOnly, SessionManager, action


class Counter(AbstractSession[int]):
    """Counts clicks on "+1"; "Done" ends it with the count as the result."""

    session_type = "examples.counter"  # stable: renaming the class keeps stored sessions
    ttl = 60  # seconds of inactivity; every click starts the count again
    update_filter = OwnerOnly()

    async def start(self) -> None:
        self.data["count"] = 0
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="+1", custom_id=self.action_id("inc")))
        done_id = self.action_id("done")
        view.add_item(
            discord.ui.Button(label="Done", style=discord.ButtonStyle.success, custom_id=done_id)
        )
        await self.reply(self.start_interaction, "Count: 0", view=view)

    @action("inc")
    async def inc(self, interaction: discord.Interaction[Any]) -> bool:
        self.data["count"] += 1
        await self.edit(interaction, content=f"Count: {self.data['count']}")
        return True  # refresh the TTL

    @action("done")
    async def done(self, interaction: discord.Interaction[Any]) -> bool:
        await self.edit(interaction, content=f"Final count: {self.data['count']}", view=None)
        await self.stop(result=self.data["count"])
        return False

    async def end(self) -> None:
        self.result = self.data["count"]
        if self.end_code is EndCode.EXPIRED and self.message is not None:
            # By message id: works after the 15-minute interaction token is gone.
            with contextlib.suppress(discord.HTTPException):  # the message may be deleted
                await self.edit(None, content=f"Count: {self.data['count']} (expired)", view=None)


class CounterBot(discord.Client):
    """A client with a command tree and a session manager."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        super().__init__(intents=discord.Intents.default())
        self.tree = app_commands.CommandTree(self)
        self.manager = SessionManager(self, clock=clock)

    async def setup_hook(self) -> None:
        await self.tree.sync()  # fine for a small bot; big ones sync on demand

    async def close(self) -> None:
        await self.manager.aclose()  # live sessions end (and tidy) while Discord is reachable
        await super().close()


def build_bot(*, clock: Clock | None = None) -> CounterBot:
    """Return the bot, its ``/counter`` command registered."""
    bot = CounterBot(clock=clock)

    @bot.tree.command(description="Count clicks")
    async def counter(interaction: discord.Interaction[Any]) -> None:
        await bot.manager.start(Counter(interaction))

    return bot


if __name__ == "__main__":
    token = os.environ.get("DISCORD_TOKEN")
    if not token:
        raise SystemExit(f"usage: DISCORD_TOKEN=... python {__file__}")
    build_bot().run(token)
