"""A ``commands.Bot`` whose cog starts sessions from its slash commands.

Run it with ``DISCORD_TOKEN=... python examples/cog.py``. Commands: ``/shop`` browses
the items, ``/buy item`` asks for a confirmation before it spends your coins.

The manager is made in ``setup_hook``, once the event loop runs, and the cog reaches
it through the bot.
"""

from __future__ import annotations

import os
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from nyx_sessions import Clock, EndCode, SessionManager
from nyx_sessions.sessions import ConfirmSession, PageLike, PaginationSession

ITEMS = {"sword": 120, "shield": 80, "potion": 25, "map": 10, "lantern": 15}
START_COINS = 150


class ShopBot(commands.Bot):
    """The bot: makes the session manager and loads the shop cog on login."""

    manager: SessionManager

    def __init__(self, *, clock: Clock | None = None) -> None:
        super().__init__(command_prefix=commands.when_mentioned, intents=discord.Intents.default())
        self.clock = clock
        self.coins: dict[int, int] = {}
        self.inventory: dict[int, list[str]] = {}

    async def setup_hook(self) -> None:
        self.manager = SessionManager(self, clock=self.clock)
        await self.add_cog(Shop(self))
        await self.tree.sync()

    async def close(self) -> None:
        if hasattr(self, "manager"):
            await self.manager.aclose()
        await super().close()


class Shop(commands.Cog):
    """Slash commands that start a pagination and a confirmation."""

    def __init__(self, bot: ShopBot) -> None:
        self.bot = bot

    def coins_of(self, user_id: int) -> int:
        return self.bot.coins.setdefault(user_id, START_COINS)

    @app_commands.command(description="Browse the shop")
    async def shop(self, interaction: discord.Interaction[Any]) -> None:
        names = sorted(ITEMS)
        pages: list[PageLike] = [
            discord.Embed(title=name.title(), description=f"{ITEMS[name]} coins").set_footer(
                text=f"/buy item:{name}"
            )
            for name in names
        ]
        await self.bot.manager.start(PaginationSession(interaction, pages))

    @app_commands.command(description="Buy an item")
    @app_commands.describe(item="What to buy")
    async def buy(self, interaction: discord.Interaction[Any], item: str) -> None:
        price = ITEMS.get(item.lower())
        user = interaction.user.id
        if price is None:
            await interaction.response.send_message(f"There is no {item} here.", ephemeral=True)
            return
        if self.coins_of(user) < price:
            await interaction.response.send_message(
                f"A {item} costs {price} coins; you have {self.coins_of(user)}.", ephemeral=True
            )
            return
        question = ConfirmSession(
            interaction, f"Buy a {item} for {price} of your {self.coins_of(user)} coins?"
        )
        if not await self.bot.manager.start(question):
            return
        end = await question.end_promise
        if end.code is EndCode.ENDED and end.result and self.coins_of(user) >= price:
            self.bot.coins[user] -= price
            self.bot.inventory.setdefault(user, []).append(item.lower())
            await interaction.followup.send(
                f"You bought a {item}; {self.bot.coins[user]} coins left.", ephemeral=True
            )


def build_bot(*, clock: Clock | None = None) -> ShopBot:
    """Return the bot; its manager and cog appear when it logs in."""
    return ShopBot(clock=clock)


if __name__ == "__main__":
    token = os.environ.get("DISCORD_TOKEN")
    if not token:
        raise SystemExit(f"usage: DISCORD_TOKEN=... python {__file__}")
    build_bot().run(token)
