"""Two bot processes sharing sessions through Redis.

Run the same bot twice, as two shards of one application, both pointing at one Redis::

    REDIS_URL=redis://127.0.0.1:6379/0 DISCORD_TOKEN=... python examples/scale_out.py 0 2
    REDIS_URL=redis://127.0.0.1:6379/0 DISCORD_TOKEN=... python examples/scale_out.py 1 2

A ``/counter`` started through one process can be clicked through either: each click is
served by the process that receives it, one at a time per session across both, and the
count is never lost. Stop a process and start it again: the counter carries on. When a
counter expires, exactly one process runs its ``end()``, which edits the message by id.
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
from nyx_sessions.stores.redis import RedisStore


class SharedCounter(AbstractSession[int]):
    """A counter whose state lives in Redis, so any process can serve it."""

    session_type = "examples.shared-counter"  # stable across renames: it is in the records
    ttl = 120
    update_filter = OwnerOnly()

    async def start(self) -> None:
        self.data["count"] = 0
        self.data["served_by"] = []
        await self.reply(self.start_interaction, "Count: 0", view=self.view())

    def view(self, *, disabled: bool = False) -> discord.ui.View:
        view = discord.ui.View(timeout=None)
        view.add_item(
            discord.ui.Button(label="+1", disabled=disabled, custom_id=self.action_id("inc"))
        )
        return view

    @action("inc")
    async def inc(self, interaction: discord.Interaction[Any]) -> None:
        self.data["count"] += 1
        shard = interaction.client.shard_id if interaction.client.shard_id is not None else 0
        self.data["served_by"].append(shard)
        await self.edit(
            interaction,
            content=f"Count: {self.data['count']} (this click was served by shard {shard})",
        )

    async def end(self) -> None:
        self.result = self.data["count"]
        if self.end_code is EndCode.EXPIRED and self.message is not None:
            # By message id: the start interaction may be long gone, or in another process.
            with contextlib.suppress(discord.HTTPException):  # deleted: nothing to tidy
                await self.message.edit(
                    content=f"Final count: {self.data['count']}", view=self.view(disabled=True)
                )


def create_bot(
    redis_url: str,
    *,
    shard_id: int | None = None,
    shard_count: int | None = None,
    clock: Clock | None = None,
) -> tuple[discord.Client, SessionManager]:
    """Build one process of the bot: a client, its command tree and a manager on Redis.

    ``clock`` is for tests (a ``ManualClock``); a bot uses the real one.
    """
    client = discord.Client(
        intents=discord.Intents.default(), shard_id=shard_id, shard_count=shard_count
    )
    tree = app_commands.CommandTree(client)
    store = RedisStore.from_url(redis_url, clock=clock)  # owns its connection
    manager = SessionManager(client, store=store, clock=clock, sessions=[SharedCounter])

    @tree.command(description="A counter any process of the bot can serve")
    async def counter(interaction: discord.Interaction[Any]) -> None:
        await manager.start(SharedCounter(interaction))

    original_close = client.close

    async def close() -> None:
        await manager.aclose()
        await store.aclose()
        await original_close()

    client.close = close  # type: ignore[method-assign]
    return client, manager


def main(argv: list[str]) -> int:
    """Run one shard: ``scale_out.py SHARD_ID SHARD_COUNT``."""
    token = os.environ.get("DISCORD_TOKEN")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if token is None or len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    client, _ = create_bot(redis_url, shard_id=int(argv[0]), shard_count=int(argv[1]))

    async def runner() -> None:
        async with client:
            await client.start(token)

    asyncio.run(runner())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
