"""A poll anyone in the channel can vote in.

Run it with ``DISCORD_TOKEN=... python examples/poll.py`` and use
``/poll question:"Lunch?" options:"Pizza, Sushi, Salad" minutes:10``.
"""

from __future__ import annotations

import os
from typing import Any

import discord
from discord import app_commands

from nyx_sessions import Clock, SessionManager
from nyx_sessions.sessions import ChoiceSession


class PollBot(discord.Client):
    """A client with a command tree and a session manager."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        super().__init__(intents=discord.Intents.default())
        self.tree = app_commands.CommandTree(self)
        self.manager = SessionManager(self, clock=clock, sessions=[ChoiceSession])

    async def setup_hook(self) -> None:
        await self.tree.sync()

    async def close(self) -> None:
        await self.manager.aclose()  # live sessions end (and tidy) while Discord is reachable
        await super().close()


def build_bot(*, clock: Clock | None = None) -> PollBot:
    """Return the bot with ``/poll``."""
    bot = PollBot(clock=clock)

    @bot.tree.command(description="Start a poll")
    @app_commands.describe(
        question="What to ask",
        options="2 to 20 options, separated by commas",
        minutes="How long the poll stays open",
    )
    async def poll(
        interaction: discord.Interaction[Any],
        question: str,
        options: str,
        minutes: app_commands.Range[int, 1, 1440] = 10,
    ) -> None:
        labels = list(dict.fromkeys(o.strip() for o in options.split(",") if o.strip()))
        try:
            session = ChoiceSession(interaction, question, labels, duration=minutes * 60)
        except ValueError as error:
            await interaction.response.send_message(
                f"Can't start that poll: {error}.", ephemeral=True
            )
            return
        if not await bot.manager.start(session):
            return
        end = await session.end_promise
        tally: dict[str, int] = end.result or {}
        best = max(tally.values(), default=0)
        winners = [option for option, votes in tally.items() if votes == best and votes > 0]
        channel = session.channel
        if winners and channel is not None:
            # Through the channel, not the interaction: its token is gone after 15 minutes.
            await channel.send(f"**{question}** \u2192 {' / '.join(winners)}")

    return bot


if __name__ == "__main__":
    token = os.environ.get("DISCORD_TOKEN")
    if not token:
        raise SystemExit(f"usage: DISCORD_TOKEN=... python {__file__}")
    build_bot().run(token)
