"""Browse pages: a fixed list, and pages made on demand that survive restarts.

Run it with ``DISCORD_TOKEN=... python examples/paginator.py``; set ``REDIS_URL`` too to
keep the sessions in Redis, so that they carry on after the bot restarts.
Commands: ``/planets`` (a list of embeds) and ``/table n`` (a multiplication table,
one page per row, made when it is shown).
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from nyx_sessions import Clock, SessionManager
from nyx_sessions.sessions import PageLike, PaginationSession

if TYPE_CHECKING:
    from nyx_sessions import SessionStore

PLANETS = [
    ("Mercury", "The smallest planet, closest to the Sun."),
    ("Venus", "The hottest planet, under thick clouds."),
    ("Earth", "Home."),
    ("Mars", "The red planet, with the tallest volcano."),
    ("Jupiter", "The largest planet; a storm bigger than Earth."),
    ("Saturn", "Rings of ice and rock."),
    ("Uranus", "Rolls around the Sun on its side."),
    ("Neptune", "The windiest planet."),
]


def planet_pages() -> list[PageLike]:
    """One embed per planet."""
    return [
        discord.Embed(title=name, description=text).set_footer(text=f"Planet {n} of 8")
        for n, (name, text) in enumerate(PLANETS, start=1)
    ]


class TablePages(PaginationSession):
    """A multiplication table, one row per page, made when the page is shown.

    A subclass rather than a ``source=`` callable: after a restart the store gives back
    the class and its data (``factor``), so ``get_page`` works again.
    """

    session_type = "examples.table-pages"

    def __init__(self, interaction: discord.Interaction[Any], factor: int) -> None:
        super().__init__(interaction, page_count=12)
        self.data["factor"] = factor

    async def get_page(self, index: int) -> PageLike:
        factor: int = self.data["factor"]
        row = index + 1
        return f"**{factor} \u00d7 {row} = {factor * row}**"


class PaginatorBot(discord.Client):
    """A client with a command tree and a session manager."""

    def __init__(self, *, clock: Clock | None = None, store: SessionStore | None = None) -> None:
        super().__init__(intents=discord.Intents.default())
        self.tree = app_commands.CommandTree(self)
        self.manager = SessionManager(
            self, clock=clock, store=store, sessions=[PaginationSession, TablePages]
        )

    async def setup_hook(self) -> None:
        await self.tree.sync()

    async def close(self) -> None:
        await self.manager.aclose()  # live sessions end (and tidy) while Discord is reachable
        await super().close()


def build_bot(*, clock: Clock | None = None, store: SessionStore | None = None) -> PaginatorBot:
    """Return the bot with ``/planets`` and ``/table``."""
    bot = PaginatorBot(clock=clock, store=store)

    @bot.tree.command(description="Browse the planets")
    async def planets(interaction: discord.Interaction[Any]) -> None:
        await bot.manager.start(PaginationSession(interaction, planet_pages()))

    @bot.tree.command(description="A multiplication table")
    @app_commands.describe(factor="The number to multiply")
    async def table(interaction: discord.Interaction[Any], factor: int) -> None:
        await bot.manager.start(TablePages(interaction, factor))

    return bot


async def main(token: str) -> None:
    """Run the bot; with ``REDIS_URL`` set, keep its sessions in Redis."""
    store: SessionStore | None = None
    if url := os.environ.get("REDIS_URL"):
        from nyx_sessions.stores.redis import RedisStore  # needs nyx-sessions[redis]

        store = RedisStore.from_url(url)
    bot = build_bot(store=store)
    try:
        async with bot:  # closing the bot closes its manager
            await bot.start(token)
    finally:
        if store is not None:
            await store.aclose()


if __name__ == "__main__":
    token = os.environ.get("DISCORD_TOKEN")
    if not token:
        raise SystemExit(f"usage: DISCORD_TOKEN=... [REDIS_URL=...] python {__file__}")
    asyncio.run(main(token))
