"""examples/http_bot.py, played over HTTP in the offline Discord."""

from __future__ import annotations

import asyncio

from examples import http_bot
from nyx_sessions.testing import ManualClock
from nyx_sessions.testing.http import HttpOfflineDiscord


async def test_the_http_example_counts_and_refuses_strangers() -> None:
    async with HttpOfflineDiscord(http_bot.HttpBot()) as offline:
        alice, bob = offline.add_member("alice"), offline.add_member("bob")
        started = await offline.slash_command(alice, "counter")
        message = started.message
        assert message is not None and message.content == "Count: 0"
        await offline.click(alice, message, label="+1")
        await offline.click(alice, message, label="+1")
        refused = await offline.click(bob, message, label="+1")
        assert refused.ephemeral and message.content == "Count: 2"
        await offline.click(alice, message, label="Done")
        assert message.content == "Final count: 2" and message.components == []


async def test_an_unclicked_counter_is_tidied_when_it_expires() -> None:
    clock = ManualClock()
    async with HttpOfflineDiscord(http_bot.HttpBot(clock=clock), clock=clock) as offline:
        started = await offline.slash_command(offline.add_member("alice"), "counter")
        message = started.message
        assert message is not None
        await clock.advance(http_bot.Counter.ttl + 1)
        for _ in range(100):
            if message.content.endswith("(expired)"):
                break
            await asyncio.sleep(0.01)
        assert message.content == "Count: 0 (expired)"
