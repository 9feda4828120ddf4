"""examples/scale_out.py played offline: two processes, one Redis, a restart, expiry."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import discord

from nyx_sessions.testing import ManualClock, OfflineDiscord

from .redis_server import RedisServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "scale_out.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("examples_scale_out", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_two_processes_share_a_counter_across_a_restart(
    redis_server: RedisServer, redis_client: Any
) -> None:
    example = load_example()
    clock = ManualClock()
    bot0, manager0 = example.create_bot(redis_server.url, shard_id=0, shard_count=2, clock=clock)
    bot1, manager1 = example.create_bot(redis_server.url, shard_id=1, shard_count=2, clock=clock)
    async with OfflineDiscord(client=bot0) as offline:
        await offline.login(bot1)
        alice = offline.add_member("alice")
        command = await offline.slash_command(alice, "counter")
        message = command.message
        assert message is not None and message.content == "Count: 0"
        for bot in (bot0, bot1, bot0, bot1):
            await offline.click(alice, message, label="+1", client=bot)
        assert message.content == "Count: 4 (this click was served by shard 1)"

        # Process 0 stops and comes back: the counter carries on.
        await offline.logout(bot0)
        await bot0.close()
        bot0, manager0 = example.create_bot(
            redis_server.url, shard_id=0, shard_count=2, clock=clock
        )
        await offline.login(bot0)
        await offline.click(alice, message, label="+1", client=bot0)
        assert message.content == "Count: 5 (this click was served by shard 0)"
        session = manager0.get(next(iter(manager0._live)))
        assert session is not None and session.data["served_by"] == [0, 1, 0, 1, 0]

        # Expiry: one of the two processes runs end(), which edits the message by id.
        await clock.advance(121)
        for _ in range(100):
            if message.content.startswith("Final count"):
                break
            await asyncio.sleep(0.02)
        assert message.content == "Final count: 5"
        assert all(button["disabled"] for button in message.buttons)
        edits = [r for r in offline.requests if r.method == "PATCH" and "/channels/" in r.path]
        assert len(edits) == 1  # end() ran once
        # end() edits the message before the record is removed: the count follows shortly
        # (a loop turn or two later, once the removal's batch has reached Redis).
        for _ in range(100):
            if await manager1.active() == {}:
                break
            await asyncio.sleep(0.02)
        assert await manager1.active() == {}
        for bot in (bot0, bot1):
            await bot.close()
    assert isinstance(bot0, discord.Client)
