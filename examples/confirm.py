"""A confirmation before a destructive command.

Run it with ``DISCORD_TOKEN=... python examples/confirm.py`` and use ``/reset``.
"""

from __future__ import annotations

import os
from typing import Any

import discord
from discord import app_commands

from nyx_sessions import Clock, EndCode, SessionManager
from nyx_sessions.sessions import ConfirmSession


class ConfirmBot(discord.Client):
    """A client with a command tree, a session manager, and a score table to reset."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        super().__init__(intents=discord.Intents.default())
        self.tree = app_commands.CommandTree(self)
        self.manager = SessionManager(self, clock=clock)
        self.scores: dict[int, int] = {}

    async def setup_hook(self) -> None:
        await self.tree.sync()

    async def close(self) -> None:
        await self.manager.aclose()  # live sessions end (and tidy) while Discord is reachable
        await super().close()


def build_bot(*, clock: Clock | None = None) -> ConfirmBot:
    """Return the bot with ``/reset``."""
    bot = ConfirmBot(clock=clock)

    @bot.tree.command(description="Reset every score on this server")
    async def reset(interaction: discord.Interaction[Any]) -> None:
        question = ConfirmSession(
            interaction,
            f"Reset all {len(bot.scores)} scores? This cannot be undone.",
            confirm_label="Reset",
            cancel_label="Keep them",
            danger=True,
        )
        if not await bot.manager.start(question):
            return
        end = await question.end_promise  # True, False, or None when nobody answered
        if end.code is EndCode.ENDED and end.result:
            bot.scores.clear()
            await interaction.followup.send("All scores were reset.", ephemeral=True)

    return bot


if __name__ == "__main__":
    token = os.environ.get("DISCORD_TOKEN")
    if not token:
        raise SystemExit(f"usage: DISCORD_TOKEN=... python {__file__}")
    build_bot().run(token)
