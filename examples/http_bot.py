"""A counter bot served over HTTP: no gateway, any number of workers, sessions in Redis.

Set the application's *Interactions Endpoint URL* in the developer portal to where your
load balancer serves ``/interactions``, then run one worker per core::

    export DISCORD_TOKEN=... DISCORD_PUBLIC_KEY=... REDIS_URL=redis://127.0.0.1:6379/0
    python -m nyx_sessions serve examples.http_bot:create_bot --port 8081
    python -m nyx_sessions serve examples.http_bot:create_bot --port 8082

Without ``REDIS_URL`` sessions live in the worker's memory: run one worker only. Register
the ``/counter`` command once with ``python examples/http_bot.py sync`` (an HTTP bot has
no ``on_ready`` to do it in, and every worker syncing at start-up would be wasteful).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from typing import Any

import discord
from discord import app_commands

from nyx_sessions import AbstractSession, Clock, EndCode, OwnerOnly, SessionManager, action


class Counter(AbstractSession[int]):
    """Counts clicks on "+1"; "Done" ends it. Any worker can serve any click."""

    session_type = "examples.http-counter"
    ttl = 120
    update_filter = OwnerOnly()

    def view(self) -> discord.ui.View:
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="+1", custom_id=self.action_id("inc")))
        view.add_item(discord.ui.Button(label="Done", custom_id=self.action_id("done")))
        return view

    async def start(self) -> None:
        self.data["count"] = 0
        await self.reply(self.start_interaction, "Count: 0", view=self.view())
        # Over HTTP the first response is the body of Discord's request, so the message id
        # is not in its answer: ask for it, so that end() can edit the message by id
        # from any worker, after the interaction token is gone.
        self.message_id = (await self.start_interaction.original_response()).id

    @action("inc")
    async def inc(self, interaction: discord.Interaction[Any]) -> None:
        self.data["count"] += 1
        await self.edit(interaction, content=f"Count: {self.data['count']}")

    @action("done")
    async def done(self, interaction: discord.Interaction[Any]) -> None:
        await self.edit(interaction, content=f"Final count: {self.data['count']}", view=None)
        await self.stop(result=self.data["count"])

    async def end(self) -> None:
        self.result = self.data["count"]
        message = self.message
        if self.end_code is EndCode.EXPIRED and message is not None:
            with contextlib.suppress(discord.HTTPException):  # the message may be deleted
                await message.edit(content=f"Count: {self.data['count']} (expired)", view=None)


class HttpBot(discord.Client):
    """No intents: an HTTP bot receives no gateway events."""

    def __init__(self, redis_url: str | None = None, *, clock: Clock | None = None) -> None:
        super().__init__(intents=discord.Intents.none())
        self.tree = app_commands.CommandTree(self)
        self.store: Any = None
        if redis_url:
            from nyx_sessions.stores.redis import RedisStore

            self.store = RedisStore.from_url(redis_url)
        self.manager = SessionManager(self, store=self.store, sessions=[Counter], clock=clock)

        @self.tree.command(description="Count clicks, served by any worker")
        async def counter(interaction: discord.Interaction[Any]) -> None:
            await self.manager.start(Counter(interaction))

    async def close(self) -> None:
        await self.manager.aclose()
        if self.store is not None:
            await self.store.aclose()
        await super().close()


def create_bot() -> HttpBot:
    """The worker's bot; ``python -m nyx_sessions serve`` calls this in its event loop."""
    return HttpBot(os.environ.get("REDIS_URL"))


async def sync_commands() -> None:
    bot = HttpBot()
    async with bot:
        await bot.login(os.environ["DISCORD_TOKEN"])
        await bot.tree.sync()


if __name__ == "__main__":
    if sys.argv[1:] != ["sync"] or not os.environ.get("DISCORD_TOKEN"):
        raise SystemExit(f"usage: DISCORD_TOKEN=... python {__file__} sync")
    asyncio.run(sync_commands())
