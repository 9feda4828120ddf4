from __future__ import annotations

import asyncio
from typing import Any

import discord
import pytest
from discord.ext import commands

from nyx_sessions import EndCode, SessionManager, SessionStateError
from nyx_sessions.testing import OfflineDiscord
from tests.sessions import Counter


class HookedBot(commands.Bot):
    def __init__(self) -> None:
        super().__init__(command_prefix="!", intents=discord.Intents.none())
        self.setup_ran = False

    async def setup_hook(self) -> None:
        self.setup_ran = True


@pytest.fixture
def bot_and_manager() -> tuple[HookedBot, SessionManager]:
    # A sync fixture: no event loop runs yet, as at a bot's module level.
    bot = HookedBot()
    return bot, SessionManager(bot)


async def test_manager_made_before_the_loop_starts_in_setup_hook(
    bot_and_manager: tuple[HookedBot, SessionManager],
) -> None:
    bot, manager = bot_and_manager
    assert manager._opened is None
    async with OfflineDiscord(client=bot) as offline:
        assert bot.setup_ran  # the bot's own setup_hook still runs
        opened: Any = vars(manager)["_opened"]
        assert opened is not None
        await opened
        alice = offline.add_member("alice")
        command = await offline.slash_command(alice, "counter", wait=False)
        session = Counter(command.interaction)
        await manager.start(session)
        await offline.click(alice, offline.messages[-1], label="+1")
        await offline.click(alice, offline.messages[-1], label="Done")
        assert (await session.end_promise).result == 1
        await manager.aclose()


async def test_bot_listeners_still_see_every_interaction() -> None:
    bot = HookedBot()
    seen: list[str] = []

    @bot.listen("on_interaction")
    async def listener(interaction: discord.Interaction[Any]) -> None:
        seen.append("listen")

    async with OfflineDiscord(client=bot) as offline:
        manager = SessionManager(bot)
        alice = offline.add_member("alice")
        command = await offline.slash_command(alice, "counter", wait=False)
        session = Counter(command.interaction)
        await manager.start(session)
        await offline.click(alice, offline.messages[-1], label="+1")
        await asyncio.sleep(0.01)
        assert seen == ["listen", "listen"]
        assert session.data["count"] == 1
        await manager.aclose()


async def test_auto_sharded_bot() -> None:
    bot = commands.AutoShardedBot(command_prefix="!", intents=discord.Intents.none())
    async with OfflineDiscord(client=bot) as offline:
        manager = SessionManager(bot)
        alice = offline.add_member("alice")
        command = await offline.slash_command(alice, "counter", wait=False)
        session = Counter(command.interaction)
        await manager.start(session)
        click = await offline.click(alice, offline.messages[-1], label="+1")
        assert click.response is not None
        assert session.data["count"] == 1
        await manager.aclose()


async def test_detach_restores_the_client() -> None:
    async with OfflineDiscord() as offline:
        client = offline.client
        view_store: Any = client._connection._view_store
        manager = SessionManager(client)
        assert "dispatch_view" in vars(view_store)
        with pytest.raises(SessionStateError):
            manager.attach(client)
        with pytest.raises(RuntimeError, match="already has a session manager"):
            SessionManager(client)
        alice = offline.add_member("alice")
        command = await offline.slash_command(alice, "counter", wait=False)
        session = Counter(command.interaction)
        await manager.start(session)
        await manager.aclose()
        assert (await session.end_promise).code is EndCode.SHUTDOWN
        assert not {"dispatch_view", "dispatch_modal", "add_view"} & set(vars(view_store))
        assert "setup_hook" not in vars(client)
        # Detached: the session's old buttons now go to discord.py, which ignores them.
        click = await offline.click(alice, offline.messages[-1], label="+1", timeout=0.2)
        assert click.response is None
